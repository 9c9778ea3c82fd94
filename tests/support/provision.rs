//! Installs the peers the tests talk to, once per machine, under a file lock in `target/`.
//!
//! Plain `cargo test` provisions what it needs itself: the first test that wants Python grpcio
//! creates a virtualenv in `target/pyenv` and installs the pinned
//! `tests/python/requirements.txt` into it from PyPI; every other test, in this binary, in the
//! other test binaries and in any other `cargo test` started at the same time, waits for that
//! install and then uses it. Later runs find it ready and do not touch the network.
//! `GRPC_SYNC_PYTHON` overrides all of this with an interpreter that already has grpcio.
//!
//! # The pattern, for every peer that has to be installed
//!
//! [`once_under_lock`] is the generic part. It locks `<dir>.lock`, beside the folder being
//! provisioned (`target/pyenv.lock`), with [`std::fs::File::lock_shared`] and asks `ready`
//! whether the install is there and usable; if not, it takes the lock exclusively
//! ([`std::fs::File::lock`]), asks again (another process may have installed meanwhile), runs
//! `install`, and asks `ready` a last time. The locks block (no polling) and belong to the
//! process: the kernel releases them when the holder exits or dies, so a crashed run leaves no
//! stale lock behind. Waiting has no deadline of its own; the holder's commands all have one
//! ([`try_run`]).
//!
//! A later peer installed into `target/` (Chromium, …) follows [`python`]. Programs from the
//! system's packages (nginx, tinyproxy) are `tools.rs`'s: found on the system, installed with
//! apt under `target/apt-install.lock`, and skippable with `GRPC_SYNC_SKIP_SYSTEM_TESTS=1`.
//! The pattern:
//!
//! 1. an override from the environment wins (`GRPC_SYNC_PYTHON`): no lock, no install, and a
//!    value naming nothing is an error, not a fallback;
//! 2. otherwise a folder under [`target_dir`] (`target/pyenv`), provisioned with
//!    `once_under_lock(folder, ready, install)`, where `ready` checks without the network (a
//!    stamp written last, recording what was installed, then running the program once) and
//!    `install` runs every command with a deadline and says what went wrong;
//! 3. the outcome, success or error, is kept in a `static OnceLock<Result<_, String>>`, so the
//!    other tests of the binary get it without asking again;
//! 4. a missing prerequisite (Python 3, its venv module, an unreachable registry) is a test
//!    failure whose message says what to install or set, never a skip.
//!
//! This file uses only `std`, so anything that builds tests can include it with
//! `#[path = ".../tests/support/provision.rs"] mod provision;`.
//!
//! `File::lock` is Rust 1.89; the dev-dependencies (rcgen 0.14 needs 1.88) already hold the
//! tests above the library's `rust-version`, hence the `incompatible_msrv` allowances.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long checking an install (running `python -c 'import …'`) may take.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);
/// How long `python3 -m venv` may take.
pub const VENV_DEADLINE: Duration = Duration::from_secs(300);
/// How long `pip install -r tests/python/requirements.txt` may take (downloads included).
pub const PIP_DEADLINE: Duration = Duration::from_secs(1200);

/// What the Python environment must be able to import: grpcio, grpcio-tools and protobuf.
pub const PYTHON_IMPORT_CHECK: &str = "import grpc, grpc_tools, google.protobuf";

/// The file in the virtualenv recording the `requirements.txt` it was installed from. It is
/// written last, so its presence means the install finished.
pub const REQUIREMENTS_STAMP: &str = "grpc-sync-requirements.txt";

/// The repository root (where `Cargo.toml`, `proto/` and `tests/` are): the package whose
/// tests include this file.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory: `CARGO_TARGET_DIR` if set, else `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        _ => repo_root().join("target"),
    }
}

/// The lock file guarding the provisioning of `dir`: `<dir>.lock`, beside it.
pub fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or(dir.as_os_str()).to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

/// Provisions `dir` once per machine: under a shared lock on [`lock_path`]`(dir)`, returns what
/// `ready` gives if it succeeds; otherwise, under the exclusive lock, asks `ready` again, runs
/// `install` if it still fails, and returns what `ready` gives then. Threads and processes
/// calling this at the same time for the same `dir` take turns installing, so only the first
/// installs; the others wait for it and find the install ready.
///
/// `ready` explains in its error why the install is not usable; that explanation is the error
/// if it still is not after `install`.
///
/// # Errors
///
/// The lock file cannot be created or locked, `install` fails (its message), or the install
/// is still not ready afterwards.
#[allow(clippy::incompatible_msrv)]
pub fn once_under_lock<T>(
    dir: &Path,
    ready: impl Fn() -> Result<T, String>,
    install: impl FnOnce() -> Result<(), String>,
) -> Result<T, String> {
    let lock_path = lock_path(dir);
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", lock_path.display()))?;
    // Checking takes a shared lock, so that test binaries finding the install ready do not
    // queue behind each other; installing takes the exclusive one, and checks again first.
    wait_for_lock(&lock, &lock_path, dir, Share::Shared)?;
    if let Ok(value) = ready() {
        return Ok(value);
    }
    lock.unlock()
        .map_err(|e| format!("cannot unlock {}: {e}", lock_path.display()))?;
    wait_for_lock(&lock, &lock_path, dir, Share::Exclusive)?;

    // Dropping `lock` (on every return below) closes the file, which releases the lock.
    if let Ok(value) = ready() {
        return Ok(value);
    }
    install()?;
    ready().map_err(|why| {
        format!(
            "{} was provisioned but is still not usable: {why}\n(remove {} and run the tests \
             again)",
            dir.display(),
            dir.display()
        )
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Share {
    Shared,
    Exclusive,
}

/// Takes the lock on `lock` (the open `lock_path`), blocking until it is free, and tells the
/// person running the tests when that means waiting for another test's install.
#[allow(clippy::incompatible_msrv)]
fn wait_for_lock(lock: &File, lock_path: &Path, dir: &Path, share: Share) -> Result<(), String> {
    let tried = match share {
        Share::Shared => lock.try_lock_shared(),
        Share::Exclusive => lock.try_lock(),
    };
    let locked = match tried {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => {
            // Said once per folder and process: the threads of one binary may queue here too.
            static WAITED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
            let mut waited = WAITED.lock().unwrap_or_else(|e| e.into_inner());
            if !waited.iter().any(|p| p == lock_path) {
                waited.push(lock_path.to_path_buf());
                note(&format!(
                    "waiting for another test to finish provisioning {} (it holds {})",
                    dir.display(),
                    lock_path.display()
                ));
            }
            drop(waited);
            match share {
                Share::Shared => lock.lock_shared(),
                Share::Exclusive => lock.lock(),
            }
        }
        Err(fs::TryLockError::Error(e)) => Err(e),
    };
    locked.map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))
}

/// Tells the person running the tests what is happening, on the real stderr: `eprintln!`
/// would be captured by the test harness and only shown if the test fails.
pub fn note(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "grpc-sync tests: {msg}");
}

/// What a finished (or killed) process printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// True if the process exited with status 0 before its deadline.
    pub success: bool,
    /// True if the deadline passed and the process was killed.
    pub timed_out: bool,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// Panics with the whole output unless the process succeeded.
    pub fn assert_success(&self, what: &str) {
        assert!(self.success, "{what} failed\n{self}");
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timed_out {
            writeln!(f, "(killed at its deadline)")?;
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// Reads a pipe to its end on a thread, then reports on `done`; the thread returns the bytes.
fn drain<R: Read + Send + 'static>(
    mut pipe: R,
    done: mpsc::Sender<()>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = done.send(());
        buf
    })
}

/// Runs `cmd` to completion with no stdin, killing it if it outlives `deadline`. The end of
/// both output pipes is the event waited on: it comes when the process exits (or is killed).
///
/// # Errors
///
/// The process could not be started (`ErrorKind::NotFound`: no such program).
pub fn try_run(cmd: &mut Command, deadline: Duration) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = drain(child.stdout.take().expect("piped stdout"), done_tx.clone());
    let stderr = drain(child.stderr.take().expect("piped stderr"), done_tx);

    let start = Instant::now();
    let mut timed_out = false;
    for _ in 0..2 {
        let left = deadline.saturating_sub(start.elapsed());
        if done_rx.recv_timeout(left).is_err() {
            timed_out = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(Output {
        success: !timed_out && status.is_ok_and(|s| s.success()),
        timed_out,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// [`try_run`], panicking with `what` and the command if it cannot start.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration, what: &str) -> Output {
    try_run(&mut cmd, deadline).unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"))
}

/// The pinned Python requirements of the interop tests.
pub fn requirements() -> PathBuf {
    repo_root()
        .join("tests")
        .join("python")
        .join("requirements.txt")
}

/// The virtualenv the tests provision: `target/pyenv`.
pub fn pyenv_dir() -> PathBuf {
    target_dir().join("pyenv")
}

/// The interpreter of the virtualenv in `venv`.
pub fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The Python 3 that creates the virtualenv: `PYTHON` if set, else `python3`.
fn base_python() -> OsString {
    match std::env::var_os("PYTHON") {
        Some(py) if !py.is_empty() => py,
        _ if cfg!(windows) => "python".into(),
        _ => "python3".into(),
    }
}

/// The Python interpreter with grpcio installed: `GRPC_SYNC_PYTHON` if set, else the
/// virtualenv in `target/pyenv`, provisioned on first use (see the module docs). Computed once
/// per test binary.
///
/// # Panics
///
/// If `GRPC_SYNC_PYTHON` names a missing file, or provisioning fails, with a message saying
/// what to install or set.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(
            || match python_override(std::env::var_os("GRPC_SYNC_PYTHON")) {
                Some(given) => given,
                None => provision_python(&base_python(), &pyenv_dir(), &requirements()),
            },
        )
        .clone()
        .unwrap_or_else(|msg| panic!("{msg}"))
}

/// The interpreter `GRPC_SYNC_PYTHON` (given as `value`) names: `None` when unset or empty
/// (provision one), else that path, or an error if it does not exist.
pub fn python_override(value: Option<OsString>) -> Option<Result<PathBuf, String>> {
    let path = PathBuf::from(value.filter(|v| !v.is_empty())?);
    Some(if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "GRPC_SYNC_PYTHON={} does not exist: point it at a Python that has the packages of \
             tests/python/requirements.txt, or unset it to let the tests install them into \
             target/pyenv",
            path.display()
        ))
    })
}

/// Provisions a virtualenv in `venv` with `requirements` installed, creating it with `base`
/// (a Python 3), once per machine under `<venv>.lock`; returns its interpreter. Later calls
/// check the stamp and the imports and touch no network.
///
/// # Errors
///
/// A message saying what to install or set: no Python 3, no venv module, pip failing (for
/// example because PyPI is unreachable), with the commands' output.
pub fn provision_python(base: &OsStr, venv: &Path, requirements: &Path) -> Result<PathBuf, String> {
    let wanted = fs::read_to_string(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let python = venv_python(venv);
    let stamp = venv.join(REQUIREMENTS_STAMP);
    once_under_lock(
        venv,
        || python_ready(&python, &stamp, &wanted, requirements),
        || install_python(base, venv, requirements, &stamp, &wanted),
    )
}

/// The virtualenv is usable if it was installed from these requirements (the stamp) and its
/// interpreter imports them.
fn python_ready(
    python: &Path,
    stamp: &Path,
    wanted: &str,
    requirements: &Path,
) -> Result<PathBuf, String> {
    match fs::read_to_string(stamp) {
        Ok(installed) if installed == wanted => {}
        Ok(_) => {
            return Err(format!(
                "{} changed since it was installed",
                requirements.display()
            ))
        }
        Err(_) => return Err(format!("{} is missing", stamp.display())),
    }
    let mut check = Command::new(python);
    check.args(["-c", PYTHON_IMPORT_CHECK]);
    match try_run(&mut check, CHECK_DEADLINE) {
        Ok(out) if out.success => Ok(python.to_path_buf()),
        Ok(out) => Err(format!(
            "`{} -c '{PYTHON_IMPORT_CHECK}'` failed\n{out}",
            python.display()
        )),
        Err(e) => Err(format!("cannot run {}: {e}", python.display())),
    }
}

/// What to do when no Python 3 can be used, appended to every such error.
const INSTALL_PYTHON: &str = "install Python 3 with its venv module and pip (Debian/Ubuntu: \
     apt-get install python3 python3-venv python3-pip), or set GRPC_SYNC_PYTHON to a Python \
     that has the packages of tests/python/requirements.txt";

/// Run by the Python that creates the virtualenv: it must be a Python 3 with the modules
/// `python3 -m venv` needs (Debian splits `venv` and `ensurepip` into python3-venv).
const BASE_PYTHON_CHECK: &str = "import sys
if sys.version_info[0] < 3:
    sys.exit('this is Python %s, not Python 3' % sys.version.split()[0])
try:
    import venv, ensurepip
except ImportError as e:
    sys.exit('no venv module (%s)' % e)";

/// Run by the virtualenv's interpreter: it must be a virtualenv (with its `pyvenv.cfg`) and
/// have pip.
const VENV_CHECK: &str = "import sys, pip
sys.exit(0 if sys.prefix != sys.base_prefix else 'not a virtualenv')";

/// Creates the virtualenv unless it is one and has pip, then installs the requirements and writes
/// the stamp.
fn install_python(
    base: &OsStr,
    venv: &Path,
    requirements: &Path,
    stamp: &Path,
    wanted: &str,
) -> Result<(), String> {
    let python = venv_python(venv);
    let mut probe = Command::new(&python);
    probe.args(["-c", VENV_CHECK]);
    let usable = python.exists() && try_run(&mut probe, CHECK_DEADLINE).is_ok_and(|o| o.success);
    if !usable {
        let shown = base.to_string_lossy();
        let mut probe = Command::new(base);
        probe.args(["-c", BASE_PYTHON_CHECK]);
        let out = try_run(&mut probe, CHECK_DEADLINE).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!(
                "the grpcio interop tests need Python 3, and `{shown}` was not found: \
                 {INSTALL_PYTHON}"
            ),
            _ => format!("cannot run `{shown}`: {e}; {INSTALL_PYTHON}"),
        })?;
        if !out.success {
            return Err(format!(
                "`{shown}` cannot create a virtualenv: {INSTALL_PYTHON}\n{out}"
            ));
        }

        note(&format!(
            "creating a Python virtualenv in {} for the grpcio interop tests",
            venv.display()
        ));
        let mut create = Command::new(base);
        create.args(["-m", "venv", "--clear"]).arg(venv);
        let out = try_run(&mut create, VENV_DEADLINE)
            .map_err(|e| format!("cannot run `{shown}`: {e}; {INSTALL_PYTHON}"))?;
        if !out.success {
            return Err(format!(
                "`{shown} -m venv {}` failed: {INSTALL_PYTHON}\n{out}",
                venv.display()
            ));
        }
    }

    note(&format!(
        "installing {} into {} from PyPI (once: later runs reuse it)",
        requirements.display(),
        venv.display()
    ));
    let _ = fs::remove_file(stamp);
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        // Never into the Python the virtualenv was made from, should it be broken.
        "--require-virtualenv",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(requirements);
    let out = try_run(&mut pip, PIP_DEADLINE)
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.success {
        return Err(format!(
            "pip could not install {} into {}: is PyPI (https://pypi.org) reachable? Behind a \
             proxy set HTTPS_PROXY, for a mirror set PIP_INDEX_URL; or set GRPC_SYNC_PYTHON to \
             a Python that already has these packages\n{out}",
            requirements.display(),
            venv.display()
        ));
    }
    fs::write(stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}
