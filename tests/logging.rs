//! What the library logs, caught by a small `log::Log` of this binary's own: a failed TLS
//! handshake is one warning, a flood of them a bounded number of lines plus a count, a
//! handler panic an error, a client that cannot connect a warning. All traffic is on
//! 127.0.0.1.
//!
//! The logger and the library's rate limiters are process-wide, so the tests here take
//! turns (`SERIAL`) and look only at the lines that name their own peers.

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use grpc_sync::{Channel, Code, Request, Server, ServerContext, ServerCredentials, Service};
use log::{Level, LevelFilter, Log, Metadata, Record};
use support::certs::Pki;

const WAIT: Duration = Duration::from_secs(30);

/// The most lines of one kind the library logs in a second (`src/logging.rs`).
const PER_SECOND: usize = 10;

/// One captured line.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

/// Keeps every line from the library, and wakes whoever waits for one.
struct Capture {
    lines: Mutex<Vec<Line>>,
    added: Condvar,
}

static CAPTURE: Capture = Capture {
    lines: Mutex::new(Vec::new()),
    added: Condvar::new(),
};

impl Log for Capture {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target().starts_with("grpc_sync")
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = Line {
            level: r.level(),
            target: r.target().to_string(),
            text: r.args().to_string(),
        };
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
        self.added.notify_all();
    }

    fn flush(&self) {}
}

/// Installs the logger (once) and takes this binary's turn.
fn setup() -> MutexGuard<'static, ()> {
    static INSTALL: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this binary");
        log::set_max_level(LevelFilter::Trace);
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lines captured so far that `pick` wants.
fn lines(pick: impl Fn(&Line) -> bool) -> Vec<Line> {
    let all = CAPTURE.lines.lock().unwrap_or_else(|e| e.into_inner());
    all.iter().filter(|l| pick(l)).cloned().collect()
}

/// Waits for a line that `pick` wants; fails after `WAIT`.
fn wait_for(what: &str, pick: impl Fn(&Line) -> bool) -> Line {
    let deadline = Instant::now() + WAIT;
    let mut all = CAPTURE.lines.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(l) = all.iter().find(|l| pick(l)) {
            return l.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no log line {what} within {WAIT:?}");
        all = CAPTURE
            .added
            .wait_timeout(all, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// A plaintext HTTP/2 client on a TLS port: writes the preface and hangs up. Returns the
/// peer name the server sees.
fn plaintext_hello(port: u16) -> String {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let local = sock.local_addr().expect("local address");
    let _ = sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    format!("ipv4:{local}")
}

#[test]
fn failed_tls_handshakes_warn_and_a_flood_of_them_is_cut_short() {
    let _turn = setup();
    let pki = Pki::new();
    let (tx, failures) = unbounded();
    let server = Server::builder()
        .on_handshake_error(move |_, _| {
            let _ = tx.send(());
        })
        .build();
    let creds = ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
        .expect("server credentials");
    let port = server
        .add_secure_port("127.0.0.1:0", creds)
        .expect("TLS port");
    server.start().expect("start");
    let is_tls_failure = |l: &Line| l.text.contains("TLS handshake with client");

    // One plaintext client: one warning, naming it and the cause.
    let peer = plaintext_hello(port);
    failures.recv_timeout(WAIT).expect("the handshake failed");
    let line = wait_for("about the failed handshake", |l| {
        is_tls_failure(l) && l.text.contains(&format!("{peer} "))
    });
    assert_eq!(line.level, Level::Warn, "{line:?}");
    assert!(line.target.starts_with("grpc_sync::"), "{line:?}");
    assert!(line.text.contains("does not speak TLS"), "{line:?}");
    let about_peer = format!("{peer} ");
    assert_eq!(lines(|l| l.text.contains(&about_peer)).len(), 1);

    // A scanner: 1000 of them as fast as they come.
    let before = lines(is_tls_failure).len();
    let started = Instant::now();
    for _ in 0..1000 {
        plaintext_hello(port);
    }
    for i in 0..1000 {
        failures
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("only {i} of 1000 handshakes failed within {WAIT:?}"));
    }
    let secs = started.elapsed().as_secs() as usize;
    let logged = lines(is_tls_failure).len() - before;
    // One window per second begun, and a line or two more where threads cross into a new
    // second together.
    let bound = (secs + 2) * (PER_SECOND + 2);
    assert!(
        logged <= bound,
        "{logged} lines for 1000 failed handshakes in {secs} s (at most {bound})"
    );
    assert!(logged < 1000);

    // A stopping server says how many it left out (there may be no later line to carry it).
    server.stop(None).wait();
    let summary = wait_for("counting the handshakes left out", |l| {
        l.text
            .contains("more failed TLS handshakes were not logged")
    });
    assert_eq!(summary.level, Level::Warn);
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

#[test]
fn a_handler_panic_logs_an_error_and_connections_log_at_debug() {
    let _turn = setup();
    let server = Server::builder()
        .add_service(
            Service::builder("test.Logging")
                .unary("Boom", |_: Empty, _: &ServerContext| -> Result<Empty, _> {
                    panic!("the handler's own bug")
                })
                .build(),
        )
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").expect("port");
    server.start().expect("start");
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).expect("channel");
    let err = ch
        .unary::<Empty, Empty>("/test.Logging/Boom", Request::new(Empty {}))
        .expect_err("the handler panics");
    assert_eq!(err.code(), Code::Unknown);
    let line = wait_for("about the panic", |l| {
        l.text.contains("/test.Logging/Boom") && l.text.contains("panicked")
    });
    assert_eq!(line.level, Level::Error, "{line:?}");
    assert!(line.text.contains("the handler's own bug"), "{line:?}");

    // The connection, at debug, on both sides.
    let server_side = wait_for("about the accepted connection", |l| {
        l.text.contains("connected (plaintext)")
    });
    assert_eq!(server_side.level, Level::Debug);
    let client_side = wait_for("about the client's connection", |l| {
        l.text
            .contains(&format!("connected to server 127.0.0.1:{port}"))
    });
    assert_eq!(client_side.level, Level::Debug);
    drop(ch);
    server.stop(None).wait();
}

#[test]
fn a_client_that_cannot_connect_warns() {
    let _turn = setup();
    // A port nobody listens on any more.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).expect("channel");
    let err = ch
        .unary::<Empty, Empty>("/test.Logging/Nobody", Request::new(Empty {}))
        .expect_err("nobody listens");
    assert_eq!(err.code(), Code::Unavailable);
    let line = wait_for("about the failed connection", |l| {
        l.text.contains("cannot connect to") && l.text.contains(&format!(":{port}"))
    });
    assert_eq!(line.level, Level::Warn, "{line:?}");
    assert!(line.text.contains("next attempt in"), "{line:?}");
}
