//! Provisions the browser test's tools, once per machine, the way `provision.rs` provisions
//! Python: headless Chromium (Debian/Ubuntu's `chromium` package, installed with apt when the
//! tests run as root there), Node.js's npm packages of `examples/web/package.json` (installed
//! with `npm ci` from the checked-in lock into `target/web-test/`), and the route_guide page
//! built there (`npm run build`: protoc-gen-es code, an esbuild bundle) into
//! `target/web-test/dist/`.
//!
//! `GRPC_SYNC_CHROMIUM` names a Chromium (or Chrome) to use instead of looking for one.
//! Anything missing that cannot be installed here is a test failure whose message says what
//! to install, unless `GRPC_SYNC_SKIP_SYSTEM_TESTS=1` is set: then the test says it skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::provision::{note, once_under_lock, repo_root, target_dir, try_run};
use super::tools::{install, CHROMIUM, NODE, NPM};

/// How long `npm ci` may take (downloads included).
const NPM_DEADLINE: Duration = Duration::from_secs(600);
/// How long building the page may take.
const BUILD_DEADLINE: Duration = Duration::from_secs(180);

/// The stamp in `target/web-test` recording the lock file `npm ci` installed from.
const LOCK_STAMP: &str = "grpc-sync-package-lock.json";

/// What the browser test runs.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The Chromium executable.
    pub chromium: PathBuf,
    /// `target/web-test`: `node_modules`, the driver script.
    pub dir: PathBuf,
    /// The built page (`index.html`, `app.js`).
    pub dist: PathBuf,
}

impl Browser {
    /// The test driver (`examples/web/test/drive.mjs`, copied beside `node_modules`).
    pub fn driver(&self) -> PathBuf {
        self.dir.join("drive.mjs")
    }
}

/// The browser, the packages and the page, provisioned once per test binary; `None` (after
/// saying so) when `GRPC_SYNC_SKIP_SYSTEM_TESTS=1` and something is missing.
///
/// # Panics
/// If something is missing and cannot be installed here, with what to install.
pub fn browser_or_skip() -> Option<Browser> {
    static BROWSER: OnceLock<Result<Browser, String>> = OnceLock::new();
    let got = BROWSER.get_or_init(provision).clone();
    match got {
        Ok(b) => Some(b),
        Err(msg) if super::tools::skip_requested() => {
            note(&format!(
                "skipped the browser test (GRPC_SYNC_SKIP_SYSTEM_TESTS=1): {msg}"
            ));
            None
        }
        Err(msg) => panic!("{msg}"),
    }
}

/// The web-test folder: `target/web-test`.
pub fn web_dir() -> PathBuf {
    target_dir().join("web-test")
}

fn provision() -> Result<Browser, String> {
    let chromium = chromium()?;
    check_node()?;
    let dir = web_dir();
    npm_packages(&dir)?;
    let dist = build_page(&dir)?;
    Ok(Browser {
        chromium,
        dir,
        dist,
    })
}

const INSTALL_CHROMIUM: &str = "install Chromium (Debian/Ubuntu: apt-get install chromium; \
     the tests do it themselves when run as root there) or set GRPC_SYNC_CHROMIUM to a Chromium \
     or Chrome executable; GRPC_SYNC_SKIP_SYSTEM_TESTS=1 skips the browser test";

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium: `GRPC_SYNC_CHROMIUM`, else one on `PATH`, else Debian's package installed with
/// apt (as root on Debian/Ubuntu), under a lock in `target/`.
fn chromium() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("GRPC_SYNC_CHROMIUM").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(given);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "GRPC_SYNC_CHROMIUM={} does not exist: {INSTALL_CHROMIUM}",
                p.display()
            ))
        };
    }
    if let Some(p) = find_chromium() {
        return Ok(p);
    }
    // Not found: Debian's package, installed with apt as root on Debian/Ubuntu.
    install(CHROMIUM)
        .and_then(|_| find_chromium().ok_or_else(|| "chromium is still not on PATH".into()))
        .map_err(|e| format!("no Chromium: {e}; {INSTALL_CHROMIUM}"))
}

const INSTALL_NODE: &str = "install Node.js 18 or newer with npm (Debian/Ubuntu: apt-get \
     install nodejs npm); GRPC_SYNC_SKIP_SYSTEM_TESTS=1 skips the browser test";

fn check_node() -> Result<(), String> {
    // Debian's nodejs and npm, installed with apt as root on Debian/Ubuntu when missing.
    for tool in [NODE, NPM] {
        install(tool).map_err(|e| format!("{e}; {INSTALL_NODE}"))?;
    }
    for (tool, args) in [("node", ["--version"]), ("npm", ["--version"])] {
        let out = try_run(Command::new(tool).args(args), Duration::from_secs(60))
            .map_err(|e| format!("cannot run {tool}: {e}: {INSTALL_NODE}"))?;
        if !out.success {
            return Err(format!("`{tool} --version` failed: {INSTALL_NODE}\n{out}"));
        }
        if tool == "node" {
            let major: u32 = out
                .stdout
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 18 {
                return Err(format!(
                    "node {} is too old: {INSTALL_NODE}",
                    out.stdout.trim()
                ));
            }
        }
    }
    Ok(())
}

/// The page's sources: `examples/web`.
fn web_src() -> PathBuf {
    repo_root().join("examples").join("web")
}

/// `npm ci` into `dir` from the checked-in `package.json` and lock, once per lock.
fn npm_packages(dir: &Path) -> Result<(), String> {
    let src = web_src();
    let lock = fs::read_to_string(src.join("package-lock.json"))
        .map_err(|e| format!("cannot read examples/web/package-lock.json: {e}"))?;
    let stamp = dir.join(LOCK_STAMP);
    let ready = || match fs::read_to_string(&stamp) {
        Ok(s) if s == lock && dir.join("node_modules/.bin/esbuild").exists() => Ok(()),
        Ok(_) => Err("examples/web/package-lock.json changed since `npm ci`".to_string()),
        Err(_) => Err(format!("{} is missing", stamp.display())),
    };
    once_under_lock(dir, ready, || {
        note("installing the npm packages of examples/web into target/web-test (npm ci, once)");
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for f in ["package.json", "package-lock.json"] {
            copy(&src.join(f), &dir.join(f))?;
        }
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
        let out = try_run(&mut cmd, NPM_DEADLINE).map_err(|e| format!("cannot run npm: {e}"))?;
        if !out.success {
            return Err(format!(
                "`npm ci` in {} failed (is the npm registry reachable?)\n{out}",
                dir.display()
            ));
        }
        fs::write(&stamp, &lock).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
    })
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// The page's inputs, from the repository, and where they go in `target/web-test`.
fn page_inputs() -> Vec<(PathBuf, PathBuf)> {
    let src = web_src();
    let mut v: Vec<(PathBuf, PathBuf)> = [
        "buf.gen.yaml",
        "package.json",
        "src/index.html",
        "src/main.js",
        "test/drive.mjs",
    ]
    .iter()
    .map(|f| (src.join(f), PathBuf::from(f)))
    .collect();
    v.iter_mut()
        .filter(|(_, to)| to == Path::new("test/drive.mjs"))
        .for_each(|(_, to)| *to = PathBuf::from("drive.mjs"));
    v.push((
        repo_root().join("proto").join("route_guide.proto"),
        PathBuf::from("proto/route_guide.proto"),
    ));
    v
}

fn modified(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Builds the page into `dir/dist` unless it is newer than all its inputs.
fn build_page(dir: &Path) -> Result<PathBuf, String> {
    let dist = dir.join("dist");
    let built = dist.join("app.js");
    let inputs = page_inputs();
    let ready = || {
        let at = modified(&built).ok_or("the page is not built")?;
        let stale = inputs
            .iter()
            .any(|(from, to)| modified(from).is_none_or(|m| m > at) || !dir.join(to).exists());
        if stale {
            return Err("the page's sources changed".to_string());
        }
        Ok(dist.clone())
    };
    once_under_lock(&dir.join("dist"), ready, || {
        for (from, to) in &inputs {
            copy(from, &dir.join(to))?;
        }
        let mut cmd = Command::new("npm");
        cmd.args(["run", "build"]).current_dir(dir);
        let out = try_run(&mut cmd, BUILD_DEADLINE).map_err(|e| format!("cannot run npm: {e}"))?;
        if !out.success {
            return Err(format!(
                "building the page (`npm run build` in {}) failed\n{out}",
                dir.display()
            ));
        }
        Ok(())
    })
}
