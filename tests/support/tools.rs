//! System programs the deployment tests run (nginx, tinyproxy), and a guard for the processes
//! they start.
//!
//! [`require`] finds the program (on `PATH`, and in `/usr/sbin`, `/usr/local/sbin`, `/sbin`,
//! where Debian puts daemons). If it is missing and the tests run as root on Debian or
//! Ubuntu, it installs the package with `apt-get install -y` (running `apt-get update` first
//! if that fails), once per machine: under the lock `target/apt-install.lock`
//! ([`once_under_lock`]), so parallel tests and test binaries do not race apt. Anywhere else a
//! missing program fails the test with a message saying what to install, unless
//! `GRPC_SYNC_SKIP_SYSTEM_TESTS=1` is set: then the test says on stderr that it was skipped and
//! why, and passes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::provision::{note, once_under_lock, target_dir, try_run};

/// The opt-out: set to `1`, a test whose program is missing is skipped instead of failed.
pub const SKIP_VAR: &str = "GRPC_SYNC_SKIP_SYSTEM_TESTS";

/// How long `apt-get install` may take.
const APT_INSTALL_DEADLINE: Duration = Duration::from_secs(600);
/// How long `apt-get update` may take.
const APT_UPDATE_DEADLINE: Duration = Duration::from_secs(300);

/// A program a test needs and the Debian/Ubuntu package that has it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The executable's name.
    pub program: &'static str,
    /// The package to install.
    pub package: &'static str,
}

/// nginx (the `nginx` package has the HTTP/2 and gRPC modules; so do `nginx-light`,
/// `nginx-core` and `nginx-full`).
pub const NGINX: Tool = Tool {
    program: "nginx",
    package: "nginx",
};

/// tinyproxy, a small HTTP CONNECT proxy.
pub const TINYPROXY: Tool = Tool {
    program: "tinyproxy",
    package: "tinyproxy",
};

/// Where to look besides `PATH`: Debian installs daemons in sbin, often not on a user's path.
const SBIN: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The path of `program`, if it is installed.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // std has no geteuid; /proc/self/status has it on Linux, `id -u` elsewhere.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.trim_ascii() == b"0")
}

/// Whether this is Debian or a derivative (Ubuntu, …) with apt.
fn is_debian() -> bool {
    if Path::new("/etc/debian_version").exists() {
        return true;
    }
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os.lines()
        .filter_map(|l| l.strip_prefix("ID=").or_else(|| l.strip_prefix("ID_LIKE=")))
        .any(|v| {
            v.trim_matches('"')
                .split_whitespace()
                .any(|id| id == "debian" || id == "ubuntu")
        })
}

/// Whether the opt-out variable is set to `1`.
pub fn skip_requested() -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v.trim() == "1")
}

/// The path of `tool` for `test`: found, or installed (see the module docs). `None` means the
/// test is skipped at the user's request, which has been said on stderr; the caller returns.
///
/// # Panics
///
/// The program is missing and cannot be installed here (not root, not Debian/Ubuntu, or apt
/// failed), with a message saying what to install or set.
pub fn require(tool: Tool, test: &str) -> Option<PathBuf> {
    // Each program once per test binary; the other tests get the outcome.
    static FOUND: Mutex<Option<HashMap<&'static str, Result<PathBuf, String>>>> = Mutex::new(None);
    if let Some(path) = find(tool.program) {
        return Some(path);
    }
    let skip = |why: &str| {
        note(&format!(
            "SKIPPED {test}: {why} ({SKIP_VAR}=1; unset it to make this a failure)"
        ));
    };
    if skip_requested() {
        skip(&format!("{} is not installed", tool.program));
        return None;
    }
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = found
        .get_or_insert_with(HashMap::new)
        .entry(tool.program)
        .or_insert_with(|| provision(tool))
        .clone();
    drop(found);
    match outcome {
        Ok(path) => Some(path),
        Err(why) => panic!(
            "{test} needs {}: {why}\n(or set {SKIP_VAR}=1 to skip the tests that need programs \
             from the system)",
            tool.program
        ),
    }
}

/// Chromium (Debian's package; Ubuntu's `chromium-browser` name is looked for too, see
/// `browser.rs`).
pub const CHROMIUM: Tool = Tool {
    program: "chromium",
    package: "chromium",
};

/// Node.js, for the browser test's driver and page build.
pub const NODE: Tool = Tool {
    program: "node",
    package: "nodejs",
};

/// npm, which installs the browser test's packages into `target/`.
pub const NPM: Tool = Tool {
    program: "npm",
    package: "npm",
};

/// The path of `tool`: found, or installed with apt (as [`require`] does), or why not.
pub fn install(tool: Tool) -> Result<PathBuf, String> {
    match find(tool.program) {
        Some(path) => Ok(path),
        None => provision(tool),
    }
}

/// Installs `tool` with apt, under the machine-wide lock, if this is Debian/Ubuntu and root.
fn provision(tool: Tool) -> Result<PathBuf, String> {
    let what = format!(
        "install it (Debian/Ubuntu: apt-get install {}; other systems: the {} package) and put \
         it on PATH",
        tool.package, tool.program
    );
    if !is_debian() {
        return Err(format!(
            "{} is not installed and this is not Debian/Ubuntu, where the tests install it \
             themselves: {what}",
            tool.program
        ));
    }
    if !is_root() {
        return Err(format!(
            "{} is not installed, and the tests install it only when they run as root: {what}",
            tool.program
        ));
    }
    let ready =
        || find(tool.program).ok_or_else(|| format!("{} is not on PATH or in sbin", tool.program));
    once_under_lock(&target_dir().join("apt-install"), ready, || {
        note(&format!(
            "installing {} with apt-get (once: later runs find it installed)",
            tool.package
        ));
        let install = || {
            let mut cmd = Command::new("apt-get");
            cmd.args([
                "install",
                "-y",
                "--no-install-recommends",
                // Wait for another apt (a second clone's tests) instead of failing.
                "-o",
                "DPkg::Lock::Timeout=300",
                tool.package,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive");
            try_run(&mut cmd, APT_INSTALL_DEADLINE).map_err(|e| format!("cannot run apt-get: {e}"))
        };
        let first = install()?;
        if first.success {
            return Ok(());
        }
        // Most often stale package lists (a fresh container has none).
        let mut update = Command::new("apt-get");
        update
            .args(["update", "-o", "DPkg::Lock::Timeout=300"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        let updated = try_run(&mut update, APT_UPDATE_DEADLINE)
            .map_err(|e| format!("cannot run apt-get update: {e}"))?;
        let second = install()?;
        if second.success {
            return Ok(());
        }
        Err(format!(
            "apt-get install {} failed (is a Debian mirror reachable?)\n{second}\n\
             apt-get update:\n{updated}",
            tool.package
        ))
    })
}

/// A process a test started, killed and reaped when the guard drops; its output lines (stdout
/// and stderr) are read as they are written, through [`wait_for_line`](Daemon::wait_for_line).
pub struct Daemon {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    /// Starts `cmd` with its output piped to this guard.
    ///
    /// # Panics
    ///
    /// If it cannot start.
    pub fn start(name: &str, mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let (tx, lines) = mpsc::channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped stdout"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped stderr"));
        for pipe in [out, err] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Daemon {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until the process writes a line containing `fragment` (true), exits, or
    /// `deadline` passes (false; the lines seen are kept for [`output`](Daemon::output)).
    pub fn wait_for_line(&mut self, fragment: &str, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(fragment);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// The lines read so far (by [`wait_for_line`](Daemon::wait_for_line)), in order.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Everything it wrote that was read so far.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        format!("--- {} output ---\n{}", self.name, self.seen.join("\n"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 for a program that cannot be told to pick one: bound and released.
/// Another process may take it before the program binds it; callers retry on "in use".
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A fresh folder under `target/deploy-tests/`, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes `target/deploy-tests/<name>-<pid>-<n>`, `n` counting the folders of this process.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = target_dir()
            .join("deploy-tests")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
