//! Runs the Python grpcio side of the interop tests: `tests/python/{gen,servers,clients}.py`.
//!
//! The interpreter is [`python()`]: `GRPC_SYNC_PYTHON` if set, else a virtualenv in
//! `target/pyenv` with `tests/python/requirements.txt` installed, which the first test to need
//! it provisions (`tests/support/provision.rs`). The `.proto` files are read from the
//! repository's `proto/` (or `GRPC_SYNC_PROTO_DIR`) and compiled once per test binary into
//! `target/python-gen`.
//!
//! Every wait has a deadline: a server that never prints its `PORT <n>` line, or a client that
//! never finishes, is killed and the test fails with the process's output. Nothing sleeps.
//!
//! ```ignore
//! let server = PythonServer::start("helloworld");
//! let out = run_client("helloworld", server.port(), Some("say_hello"));
//! out.assert_success("grpcio client against grpcio server");
//! ```

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

pub use super::provision::{python, repo_root, Output};
use super::provision::{run_with_deadline, target_dir};

/// How long a Python server may take to print its `PORT <n>` line.
pub const PORT_DEADLINE: Duration = Duration::from_secs(30);
/// How long one run of `clients.py` may take before it is killed.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(180);
/// How long `gen.py` may take to compile the protos.
pub const GEN_DEADLINE: Duration = Duration::from_secs(120);

/// The protos the Python scripts use (`proto/` holds others, some of which clash in Python's
/// descriptor pool when imported together, so only these are compiled). The `grpc/testing`
/// messages serve `interop_server.py` and `interop_client.py`.
pub const INTEROP_PROTOS: [&str; 6] = [
    "helloworld.proto",
    "route_guide.proto",
    "calculator.proto",
    "format_data.proto",
    "grpc/testing/empty.proto",
    "grpc/testing/messages.proto",
];

/// The folder holding `gen.py`, `servers.py` and `clients.py`.
pub fn scripts_dir() -> PathBuf {
    repo_root().join("tests").join("python")
}

/// The `.proto` folder: `GRPC_SYNC_PROTO_DIR` if set, else the repository's `proto/`.
pub fn proto_dir() -> PathBuf {
    match std::env::var_os("GRPC_SYNC_PROTO_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("proto"),
    }
}

/// The route guide database that servers and clients both read.
pub fn route_guide_db() -> PathBuf {
    repo_root()
        .join("tests")
        .join("data")
        .join("route_guide_db.json")
}

/// A `Command` running one of the scripts with the interop interpreter.
fn python_command(script: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(scripts_dir().join(script))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(repo_root());
    cmd
}

/// Compiles the protos into `target/python-gen` (once per test binary) and returns that folder.
///
/// # Panics
///
/// If the proto folder is missing or `gen.py` fails, with its output.
pub fn gen_dir() -> &'static Path {
    static GEN_DIR: OnceLock<PathBuf> = OnceLock::new();
    GEN_DIR.get_or_init(|| {
        let protos = proto_dir();
        assert!(
            protos.is_dir(),
            "proto folder {} not found: the interop tests compile the repository's proto/ \
             (set GRPC_SYNC_PROTO_DIR to use another folder)",
            protos.display()
        );
        let out_dir = target_dir().join("python-gen");
        let mut cmd = python_command("gen.py");
        cmd.arg(&out_dir)
            .arg("--proto-path")
            .arg(&protos)
            .args(INTEROP_PROTOS);
        run_with_deadline(cmd, GEN_DEADLINE, "gen.py").assert_success("gen.py");
        out_dir
    })
}

impl Output {
    /// The `FAIL …` lines of a `clients.py` run.
    pub fn failures(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| line.starts_with("FAIL "))
            .collect()
    }
}

/// Runs `clients.py --service <service> --port <port>` against a server on 127.0.0.1, with
/// every case of the service or only `case` (a name, or several separated by commas).
pub fn run_client(service: &str, port: u16, case: Option<&str>) -> Output {
    run_client_args::<&str>(service, port, case, &[])
}

/// [`run_client`] with extra arguments for `clients.py` (for example `--timeout`, `5`).
pub fn run_client_args<S: AsRef<OsStr>>(
    service: &str,
    port: u16,
    case: Option<&str>,
    extra: &[S],
) -> Output {
    let mut cmd = python_command("clients.py");
    cmd.args(["--service", service, "--port", &port.to_string()])
        .arg("--gen")
        .arg(gen_dir())
        .arg("--db")
        .arg(route_guide_db());
    if let Some(case) = case {
        cmd.args(["--case", case]);
    }
    cmd.args(extra);
    run_with_deadline(cmd, CLIENT_DEADLINE, "clients.py")
}

/// Runs `interop_client.py --port <port>` (gRPC interop cases, grpcio side) against a server on
/// 127.0.0.1, with every case or only `case` (a name, or several separated by commas).
pub fn run_interop_client(port: u16, case: Option<&str>) -> Output {
    let mut cmd = python_command("interop_client.py");
    cmd.args(["--port", &port.to_string()])
        .arg("--gen")
        .arg(gen_dir());
    if let Some(case) = case {
        cmd.args(["--case", case]);
    }
    run_with_deadline(cmd, CLIENT_DEADLINE, "interop_client.py")
}

/// Runs another script of `tests/python` (for example `tls_client.py`) with `--gen`, `--db`
/// and `args`, killing it after [`CLIENT_DEADLINE`].
pub fn run_script<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Output {
    let mut cmd = python_command(script);
    cmd.arg("--gen")
        .arg(gen_dir())
        .arg("--db")
        .arg(route_guide_db())
        .args(args);
    run_with_deadline(cmd, CLIENT_DEADLINE, script)
}

/// A running `servers.py` (or `interop_server.py`, or another server script), killed when
/// dropped.
pub struct PythonServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    output: Arc<Mutex<Vec<u8>>>,
}

impl PythonServer {
    /// Starts `servers.py --service <service> --port 0` (one of `helloworld`, `route_guide`,
    /// `calculator`, `format_data`, `all`) and waits for its `PORT <n>` line.
    ///
    /// # Panics
    ///
    /// If the server cannot start, exits, or prints no `PORT` line within [`PORT_DEADLINE`];
    /// the message carries what it wrote to stderr.
    pub fn start(service: &str) -> PythonServer {
        PythonServer::start_script::<&str>("servers.py", service, &[])
    }

    /// Like [`start`](Self::start) with another server script of `tests/python` (for example
    /// `tls_server.py`) and extra arguments.
    pub fn start_script<S: AsRef<OsStr>>(script: &str, service: &str, extra: &[S]) -> PythonServer {
        let mut cmd = python_command(script);
        cmd.args(["--service", service, "--port", "0", "--host", "127.0.0.1"])
            .args(extra)
            .arg("--gen")
            .arg(gen_dir())
            .arg("--db")
            .arg(route_guide_db());
        PythonServer::spawn(cmd, &format!("{script} --service {service}"))
    }

    /// Starts `interop_server.py --port 0` (grpcio's `grpc.testing.TestService`) and waits
    /// for its `PORT <n>` line.
    ///
    /// # Panics
    ///
    /// As [`PythonServer::start`].
    pub fn start_interop() -> PythonServer {
        let mut cmd = python_command("interop_server.py");
        cmd.args(["--port", "0", "--host", "127.0.0.1"])
            .arg("--gen")
            .arg(gen_dir());
        PythonServer::spawn(cmd, "interop_server.py")
    }

    fn spawn(mut cmd: Command, what: &str) -> PythonServer {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");

        // Everything but the PORT line (stderr, and stdout after it) is kept for diagnostics.
        let output = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, line_rx) = mpsc::channel::<Option<String>>();
        let kept = Arc::clone(&output);
        let stdout_reader = thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let got = lines.read_line(&mut first).ok().filter(|&n| n > 0);
            let _ = line_tx.send(got.map(|_| first));
            let mut rest = Vec::new();
            let _ = lines.read_to_end(&mut rest);
            kept.lock().unwrap().extend_from_slice(&rest);
        });
        let kept = Arc::clone(&output);
        let stderr_reader = thread::spawn(move || {
            let mut stderr = stderr;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                kept.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });

        let mut server = PythonServer {
            child,
            stdin,
            port: 0,
            output,
        };
        let port = match line_rx.recv_timeout(PORT_DEADLINE) {
            Ok(Some(line)) => line
                .trim_end()
                .strip_prefix("PORT ")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("expected `PORT <n>`, got {line:?}")),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("it exited without printing `PORT <n>`".to_string())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "no `PORT <n>` line within {} s",
                PORT_DEADLINE.as_secs()
            )),
        };
        match port {
            Ok(port) => {
                server.port = port;
                server
            }
            Err(why) => {
                // Stop it and collect all it said before failing the test.
                server.stop();
                let _ = stdout_reader.join();
                let _ = stderr_reader.join();
                panic!(
                    "{what}: {why}\n--- its output ---\n{}",
                    server.output().trim_end()
                );
            }
        }
    }

    /// The port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for a channel target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server has written so far, besides its `PORT` line (mostly stderr).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    fn stop(&mut self) {
        // Closing stdin alone would stop it too; killing does not depend on it being healthy.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        self.stop();
    }
}
