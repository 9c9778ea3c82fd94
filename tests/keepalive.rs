//! Keepalive, ping enforcement and connection age on real sockets: a client that pings too
//! often is told `too_many_pings`, a server that vanished behind a black hole is found by the
//! client's keepalive, a client that vanished is found by the server's, and a server that
//! retires old connections fails no call.
//!
//! Every wait has a deadline; nothing sleeps.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use grpc_sync::h2::conn::{Connection, Event, Role};
use grpc_sync::h2::error::Reason;
use grpc_sync::h2::settings::Config;
use grpc_sync::{Channel, Code, Request, Server, ServerContext, Service, Status};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    s: String,
}

fn service(active: Arc<AtomicUsize>) -> Service {
    Service::builder("test.Ka")
        .unary("Echo", |m: Text, _: &ServerContext| Ok::<_, Status>(m))
        .unary("Peer", |_: Text, ctx: &ServerContext| {
            Ok::<_, Status>(Text {
                s: ctx.peer().to_string(),
            })
        })
        .unary("Hold", move |_: Text, ctx: &ServerContext| {
            // Until the call is cancelled (or a long while): counts itself while running.
            active.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = crossbeam_channel::bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            active.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Status>(Text::default())
        })
        .build()
}

fn start(
    b: impl FnOnce(grpc_sync::ServerBuilder) -> grpc_sync::ServerBuilder,
) -> (Server, u16, Arc<AtomicUsize>) {
    let active = Arc::new(AtomicUsize::new(0));
    let server = b(Server::builder().max_workers(4))
        .add_service(service(active.clone()))
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port, active)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn echo(ch: &Channel) -> Result<String, Status> {
    ch.unary::<_, Text>(
        "/test.Ka/Echo",
        Request::new(Text { s: "hi".into() }).with_timeout(WAIT),
    )
    .map(|r| r.into_inner().s)
}

/// A raw HTTP/2 client on a socket: handshake done.
fn raw_client(port: u16) -> (TcpStream, Connection) {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = Connection::new(Role::Client, Config::default());
    sock.write_all(&conn.take_output()).unwrap();
    (sock, conn)
}

/// Reads until an event matching `f` arrives (writing what the machine answers).
fn read_until(sock: &mut TcpStream, conn: &mut Connection, mut f: impl FnMut(&Event) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 16384];
    loop {
        while let Some(ev) = conn.poll_event() {
            if f(&ev) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no such event");
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the event");
        let _ = conn.recv(&buf[..n], Instant::now());
        let out = conn.take_output();
        let _ = sock.write_all(&out);
    }
}

#[test]
fn a_client_that_pings_too_often_gets_too_many_pings_and_others_carry_on() {
    let (server, port, _) = start(|b| b);
    let (mut sock, mut conn) = raw_client(port);
    read_until(&mut sock, &mut conn, |e| matches!(e, Event::RemoteSettings));
    // No calls, pings back to back: the first is fine, the next three are strikes.
    let mut got = None;
    for i in 0..4u8 {
        conn.ping([i; 8]);
        sock.write_all(&conn.take_output()).unwrap();
    }
    read_until(&mut sock, &mut conn, |e| match e {
        Event::GoAway { reason, debug, .. } => {
            got = Some((*reason, debug.clone()));
            true
        }
        _ => false,
    });
    let (reason, debug) = got.unwrap();
    assert_eq!(reason, Reason::ENHANCE_YOUR_CALM);
    assert_eq!(&debug[..], b"too_many_pings");
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(echo(&ch).unwrap(), "hi");
    drop(server);
}

/// A loopback relay that can stop forwarding in both directions without closing anything:
/// a black hole, as a NAT that forgot the connection.
struct Relay {
    port: u16,
    pass: Arc<(Mutex<bool>, Condvar)>,
}

impl Relay {
    fn new(to: u16) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let pass = Arc::new((Mutex::new(true), Condvar::new()));
        let p = pass.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let Ok(s) = TcpStream::connect(("127.0.0.1", to)) else {
                    return;
                };
                for (mut from, mut into) in
                    [(c.try_clone().unwrap(), s.try_clone().unwrap()), (s, c)]
                {
                    let p = p.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            let Ok(n) = from.read(&mut buf) else { return };
                            if n == 0 {
                                return;
                            }
                            // Hold the bytes while the relay is a black hole; drop them if it
                            // stays one (the connection is dead by then).
                            let (m, cv) = &*p;
                            let g = m.lock().unwrap();
                            let (g, _) = cv.wait_timeout_while(g, WAIT, |pass| !*pass).unwrap();
                            if !*g {
                                return;
                            }
                            drop(g);
                            if into.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Relay { port, pass }
    }

    fn set_passing(&self, on: bool) {
        let (m, cv) = &*self.pass;
        *m.lock().unwrap() = on;
        cv.notify_all();
    }
}

#[test]
fn client_keepalive_finds_a_black_holed_server_and_reconnects() {
    let (_server, port, active) = start(|b| b);
    let relay = Relay::new(port);
    let ch = Channel::builder(&format!("127.0.0.1:{}", relay.port))
        .keepalive_time(Duration::from_millis(200))
        .keepalive_timeout(Duration::from_millis(300))
        // The held call sends nothing after its request: without this, the client stops
        // pinging after two pings (grpcio's default), and a slow start of the black hole
        // would leave it undetected.
        .max_pings_without_data(0)
        .build()
        .unwrap();
    assert_eq!(echo(&ch).unwrap(), "hi");
    let ch2 = ch.clone();
    let held = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = ch2.unary::<_, Text>(
            "/test.Ka/Hold",
            Request::new(Text::default()).with_timeout(WAIT),
        );
        (r.map(|_| ()), t0.elapsed())
    });
    wait_until("the held call to start", || {
        active.load(Ordering::SeqCst) == 1
    });
    relay.set_passing(false);
    let (r, took) = held.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("keepalive"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    relay.set_passing(true);
    let deadline = Instant::now() + WAIT;
    loop {
        match echo(&ch) {
            Ok(s) => {
                assert_eq!(s, "hi");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "never reconnected: {e}"),
        }
    }
}

#[test]
fn server_keepalive_drops_a_vanished_client_and_frees_its_calls() {
    let (server, port, active) = start(|b| {
        b.keepalive_time(Duration::from_millis(200))
            .keepalive_timeout(Duration::from_millis(200))
    });
    let relay = Relay::new(port);
    let ch = Channel::insecure(&format!("127.0.0.1:{}", relay.port)).unwrap();
    let ch2 = ch.clone();
    let _held = std::thread::spawn(move || {
        let _ = ch2.unary::<_, Text>(
            "/test.Ka/Hold",
            Request::new(Text::default()).with_timeout(WAIT),
        );
    });
    wait_until("the held call to start", || {
        active.load(Ordering::SeqCst) == 1
    });
    relay.set_passing(false);
    // The server's ping goes unanswered: it drops the connection and cancels the call.
    wait_until("the server to drop the client", || {
        server.connections() == 0
    });
    wait_until("the handler to be cancelled", || {
        active.load(Ordering::SeqCst) == 0
    });
    relay.set_passing(true);
}

#[test]
fn max_connection_age_retires_connections_without_failing_a_call() {
    let (_server, port, _) = start(|b| {
        b.max_connection_age(Duration::from_millis(200))
            .max_connection_age_grace(Duration::from_secs(1))
    });
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let mut peers = std::collections::HashSet::new();
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut calls = 0;
    while Instant::now() < stop {
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
        peers.len() >= 3,
        "{calls} calls over {} connections",
        peers.len()
    );
}

#[test]
fn max_connection_idle_closes_an_idle_connection() {
    let (server, port, _) = start(|b| b.max_connection_idle(Duration::from_millis(200)));
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    assert_eq!(echo(&ch).unwrap(), "hi");
    assert_eq!(server.connections(), 1);
    wait_until("the idle connection to close", || server.connections() == 0);
    assert_eq!(echo(&ch).unwrap(), "hi", "the channel reconnects");
}

#[test]
fn an_idle_channel_lets_go_of_its_connection_and_reconnects_on_the_next_call() {
    let (server, port, _) = start(|b| b);
    let ch = Channel::builder(&format!("127.0.0.1:{port}"))
        .idle_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    assert_eq!(echo(&ch).unwrap(), "hi");
    assert_eq!(server.connections(), 1);
    wait_until("the channel to close its idle connection", || {
        server.connections() == 0
    });
    assert_eq!(echo(&ch).unwrap(), "hi");
    assert_eq!(server.connections(), 1);
}
