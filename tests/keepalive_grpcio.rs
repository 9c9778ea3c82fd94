//! Keepalive and connection age against Python grpcio, both ways (`tests/python/keepalive.py`):
//!
//! - a grpcio client pinging every 100 ms without calls gets GOAWAY ENHANCE_YOUR_CALM
//!   `too_many_pings` from our server (seen on the wire, through a relay that reads the frames)
//!   and its next call still succeeds;
//! - our client's keepalive against a grpcio server that permits it keeps one connection alive
//!   across an idle spell (pings seen on the wire, the same peer before and after);
//! - a grpcio client calling in a loop against our server with `max_connection_age` sees no
//!   failed call over several connections; our client against a grpcio server with
//!   `grpc.max_connection_age_ms`, likewise.
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, provisioned by the first
//! test that needs it.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use grpc_sync::{Channel, Request, Server, ServerContext, Service, Status};
use support::python::{run_script, PythonServer};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    s: String,
}

fn our_server(
    b: impl FnOnce(grpc_sync::ServerBuilder) -> grpc_sync::ServerBuilder,
) -> (Server, u16) {
    let svc = Service::builder("test.Ka")
        .unary("Echo", |m: Text, _: &ServerContext| Ok::<_, Status>(m))
        .unary("Peer", |_: Text, ctx: &ServerContext| {
            Ok::<_, Status>(Text {
                s: ctx.peer().to_string(),
            })
        })
        .build();
    let server = b(Server::builder()).add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port)
}

/// One HTTP/2 frame seen by the relay: direction (true: towards the server), type, payload.
type Seen = (bool, u8, Vec<u8>);

/// A loopback relay that forwards both ways and decodes the HTTP/2 frames it passes.
struct SniffRelay {
    port: u16,
    seen: Arc<(Mutex<Vec<Seen>>, Condvar)>,
}

impl SniffRelay {
    fn new(to: u16) -> SniffRelay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen: Arc<(Mutex<Vec<Seen>>, Condvar)> = Arc::default();
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let Ok(s) = TcpStream::connect(("127.0.0.1", to)) else {
                    return;
                };
                for (mut from, mut into, up) in [
                    (c.try_clone().unwrap(), s.try_clone().unwrap(), true),
                    (s, c, false),
                ] {
                    let seen = s2.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        let mut pending = Vec::new();
                        // The client's stream starts with the 24-byte preface.
                        let mut skip = if up { 24 } else { 0 };
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => {
                                    let _ = into.shutdown(std::net::Shutdown::Write);
                                    return;
                                }
                                Ok(n) => n,
                            };
                            pending.extend_from_slice(&buf[..n]);
                            let drop_n = skip.min(pending.len());
                            pending.drain(..drop_n);
                            skip -= drop_n;
                            while pending.len() >= 9 {
                                let len =
                                    u32::from_be_bytes([0, pending[0], pending[1], pending[2]])
                                        as usize;
                                if pending.len() < 9 + len {
                                    break;
                                }
                                let kind = pending[3];
                                let payload = pending[9..9 + len].to_vec();
                                pending.drain(..9 + len);
                                let (m, cv) = &*seen;
                                m.lock().unwrap().push((up, kind, payload));
                                cv.notify_all();
                            }
                            if into.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        SniffRelay { port, seen }
    }

    /// Waits until the frames seen satisfy `f`.
    fn wait_for(&self, what: &str, mut f: impl FnMut(&[Seen]) -> bool) {
        let (m, cv) = &*self.seen;
        let g = m.lock().unwrap();
        let (g, _) = cv.wait_timeout_while(g, WAIT, |s| !f(s)).unwrap();
        let summary: Vec<(bool, u8, usize)> = g.iter().map(|(u, k, p)| (*u, *k, p.len())).collect();
        assert!(
            f(&g),
            "never saw {what}; saw (to server, type, length): {summary:?}"
        );
    }
}

const PING: u8 = 6;
const GOAWAY: u8 = 7;

#[test]
fn a_grpcio_client_pinging_too_often_gets_too_many_pings_and_calls_on() {
    let (_server, port) = our_server(|b| b);
    let relay = SniffRelay::new(port);
    let out = run_script(
        "keepalive.py",
        &["--mode", "client-pings", "--port", &relay.port.to_string()],
    );
    out.assert_success("grpcio client with keepalive_time_ms=100 and no calls");
    relay.wait_for("GOAWAY ENHANCE_YOUR_CALM too_many_pings", |s| {
        s.iter().any(|(up, kind, p)| {
            !*up && *kind == GOAWAY
                && p.len() >= 8
                && p[4..8] == [0, 0, 0, 0xb]
                && &p[8..] == b"too_many_pings"
        })
    });
}

#[test]
fn our_keepalive_keeps_a_connection_to_grpcio_alive_while_idle() {
    let py = PythonServer::start_script("keepalive.py", "ka", &["--mode", "server-permissive"]);
    let relay = SniffRelay::new(py.port());
    let ch = Channel::builder(&format!("127.0.0.1:{}", relay.port))
        .keepalive_time(Duration::from_millis(100))
        .keepalive_timeout(Duration::from_secs(5))
        .keepalive_permit_without_calls(true)
        .max_pings_without_data(0)
        .build()
        .unwrap();
    let peer = |ch: &Channel| {
        ch.unary::<_, Text>(
            "/test.Ka/Peer",
            Request::new(Text::default()).with_timeout(WAIT),
        )
        .unwrap()
        .into_inner()
        .s
    };
    let first = peer(&ch);
    // Idle: our pings go out and are answered, many times over.
    relay.wait_for("10 keepalive pings answered", |s| {
        let pings = s
            .iter()
            .filter(|(up, k, p)| *up && *k == PING && p[..8] == *b"h2-alive")
            .count();
        pings >= 10
    });
    let after = peer(&ch);
    assert_eq!(first, after, "the same connection carried both calls");
    let (m, _) = &*relay.seen;
    assert!(
        !m.lock()
            .unwrap()
            .iter()
            .any(|(up, k, _)| !*up && *k == GOAWAY),
        "grpcio sent GOAWAY"
    );
}

#[test]
fn a_grpcio_client_sees_no_failure_across_our_max_connection_age() {
    let (_server, port) = our_server(|b| {
        b.max_connection_age(Duration::from_millis(300))
            .max_connection_age_grace(Duration::from_secs(1))
    });
    let out = run_script(
        "keepalive.py",
        &[
            "--mode",
            "client-age",
            "--seconds",
            "2",
            "--port",
            &port.to_string(),
        ],
    );
    out.assert_success("grpcio client calling in a loop across connection ages");
}

#[test]
fn our_client_sees_no_failure_across_grpcio_max_connection_age() {
    let py = PythonServer::start_script("keepalive.py", "ka", &["--mode", "server-age"]);
    let ch = Channel::insecure(&py.addr()).unwrap();
    let mut peers = std::collections::HashSet::new();
    let end = Instant::now() + Duration::from_secs(2);
    let mut calls = 0;
    while Instant::now() < end {
        let r = ch
            .unary::<_, Text>(
                "/test.Ka/Peer",
                Request::new(Text::default()).with_timeout(WAIT),
            )
            .unwrap_or_else(|e| panic!("call {calls} failed: {e}"));
        peers.insert(r.into_inner().s);
        calls += 1;
    }
    assert!(
        peers.len() >= 2,
        "{calls} calls over {} connections",
        peers.len()
    );
}
