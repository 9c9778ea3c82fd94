//! The server's I/O loops under peers that do not behave: clients that never read (the
//! "wedge" that a thread-per-connection server with blocking writes falls into), clients that
//! connect and say nothing, a first flight that is no protocol at all. Each test checks that a
//! normal client on a new connection is still served, and what the server holds meanwhile.
//!
//! Every wait has a deadline; nothing sleeps.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use grpc_sync::h2::conn::{Connection, Role};
use grpc_sync::h2::settings::Config;
use grpc_sync::{
    Channel, ChannelCredentials, Request, Server, ServerContext, ServerCredentials, Service, Status,
};
use prost::Message;
use support::certs::Pki;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    s: String,
}

fn hs(list: &[(&str, &str)]) -> Vec<grpc_sync::h2::hpack::Header> {
    list.iter()
        .map(|(n, v)| {
            grpc_sync::h2::hpack::Header::new(
                bytes::Bytes::copy_from_slice(n.as_bytes()),
                bytes::Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect()
}

fn echo_service() -> Service {
    Service::builder("test.Echo")
        .unary("Echo", |m: Text, _: &ServerContext| Ok::<_, Status>(m))
        .build()
}

fn start(
    tls: Option<&Pki>,
    b: impl FnOnce(grpc_sync::ServerBuilder) -> grpc_sync::ServerBuilder,
) -> (Server, u16) {
    let server = b(Server::builder().max_workers(4))
        .add_service(echo_service())
        .build();
    let port = match tls {
        None => server.add_insecure_port("127.0.0.1:0").unwrap(),
        Some(pki) => server
            .add_secure_port(
                "127.0.0.1:0",
                ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
                    .unwrap(),
            )
            .unwrap(),
    };
    server.start().unwrap();
    (server, port)
}

/// One unary call on a fresh channel, within `WAIT`.
fn call(port: u16, tls: Option<&Pki>) -> Result<String, Status> {
    let target = format!("127.0.0.1:{port}");
    let ch = match tls {
        None => Channel::insecure(&target).unwrap(),
        Some(pki) => Channel::secure(
            &target,
            ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap(),
        )
        .unwrap(),
    };
    ch.unary::<_, Text>(
        "/test.Echo/Echo",
        Request::new(Text { s: "hi".into() }).with_timeout(WAIT),
    )
    .map(|r| r.into_inner().s)
}

/// Waits (with a deadline) until `f` holds, re-checking whenever the scheduler lets us.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A gRPC request message: the 5-byte prefix and the encoded `Text`.
fn grpc_message(s: &str) -> BytesMut {
    let msg = Text { s: s.into() };
    let mut b = BytesMut::new();
    b.put_u8(0);
    b.put_u32(msg.encoded_len() as u32);
    msg.encode(&mut b).unwrap();
    b
}

/// Opens `streams` Echo calls of `size`-byte names on a raw connection whose receive window
/// is 0, so that no response can be sent, and never reads.
fn never_reading_client(port: u16, streams: u32, size: usize) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    never_reading(&mut sock, streams, size);
    sock
}

/// The same over TLS (the handshake, then HTTP/2 as above).
fn never_reading_tls_client(
    port: u16,
    pki: &Pki,
    streams: u32,
    size: usize,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    never_reading(&mut tls, streams, size);
    tls
}

fn never_reading(sock: &mut (impl Read + Write), streams: u32, size: usize) {
    let config = Config {
        initial_window_size: 0,
        ..Config::default()
    };
    let mut conn = Connection::new(Role::Client, config);
    let body = grpc_message(&"x".repeat(size));
    let head = hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/test.Echo/Echo"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    // Take the server's SETTINGS and window first (then never read again).
    sock.write_all(&conn.take_output()).unwrap();
    sock.flush().unwrap();
    let need = streams as usize * body.len();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    while conn.connection_send_capacity() < need {
        assert!(Instant::now() < deadline, "no window from the server");
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed");
        conn.recv(&buf[..n], Instant::now()).unwrap();
        while conn.poll_event().is_some() {}
    }
    for _ in 0..streams {
        let id = conn.open_stream(&head, false).unwrap();
        let sent = conn.send_data(id, &body, true).unwrap();
        assert_eq!(sent, body.len(), "the server's windows take the request");
    }
    sock.write_all(&conn.take_output()).unwrap();
    sock.flush().unwrap();
}

/// 10 connections × 50 streams whose 15 kB responses cannot be sent (window 0, never read):
/// the handlers return at once, the responses wait on their streams within the output budget,
/// and a new client is served meanwhile.
fn never_reading_peers_hold_no_worker<S>(tls: Option<&Pki>, connect: impl Fn(u16) -> S) {
    let (server, port) = start(tls, |b| b);
    let budget = grpc_sync::server::DEFAULT_OUTPUT_BUDGET;
    let socks: Vec<S> = (0..10).map(|_| connect(port)).collect();
    wait_until("all 500 handlers to finish", || {
        server.pool_stats().finished >= 500
    });
    assert_eq!(call(port, tls).unwrap(), "hi");
    wait_until("no busy worker", || server.pool_stats().busy == 0);
    let queued = server.queued_output();
    assert!(queued >= 500 * 15_000, "responses queued: {queued}");
    assert!(
        queued <= 10 * (budget + 16_000),
        "queued {queued} bytes, over 10 budgets of {budget}"
    );
    drop(socks);
    wait_until("the connections to close", || server.connections() == 0);
}

#[test]
fn peers_that_never_read_hold_no_worker_and_others_are_served() {
    never_reading_peers_hold_no_worker(None, |port| never_reading_client(port, 50, 15_000));
}

#[test]
fn tls_peers_that_never_read_hold_no_worker_and_others_are_served() {
    let pki = Pki::new();
    never_reading_peers_hold_no_worker(Some(&pki), |port| {
        never_reading_tls_client(port, &pki, 50, 15_000)
    });
}

#[test]
fn a_stalled_peer_is_cut_off_after_send_stall_timeout() {
    let (server, port) = start(None, |b| b.send_stall_timeout(Duration::from_millis(200)));
    let mut sock = never_reading_client(port, 5, 15_000);
    wait_until("the handlers to finish", || {
        server.pool_stats().finished >= 5
    });
    // The server ends the connection: reading finds the close (after its SETTINGS, the
    // response heads and the GOAWAY).
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut all = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!("expected the server to close the connection: {e}"),
        }
        assert!(start.elapsed() < WAIT, "never closed");
    }
    wait_until("the connection to be forgotten", || {
        server.connections() == 0
    });
    assert_eq!(server.queued_output(), 0);
    assert_eq!(call(port, None).unwrap(), "hi");
}

#[test]
fn silent_connections_hold_no_thread_on_plain_and_tls_ports() {
    let pki = Pki::new();
    let (plain, plain_port) = start(None, |b| b.io_threads(2));
    let (secure, secure_port) = start(Some(&pki), |b| b.io_threads(2));
    assert_eq!(call(plain_port, None).unwrap(), "hi");
    assert_eq!(call(secure_port, Some(&pki)).unwrap(), "hi");
    let before = threads_of_this_process();
    let mut socks = Vec::new();
    for port in [plain_port, secure_port] {
        for _ in 0..500 {
            socks.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
    }
    // Both still serve a normal client, and the silent ones cost no thread.
    assert_eq!(call(plain_port, None).unwrap(), "hi");
    assert_eq!(call(secure_port, Some(&pki)).unwrap(), "hi");
    let after = threads_of_this_process();
    assert!(
        after <= before + 4,
        "1,000 silent connections made {} threads",
        after.saturating_sub(before)
    );
    drop(socks);
    drop((plain, secure));
}

#[test]
fn a_first_flight_that_is_no_protocol_gets_goaway_protocol_error() {
    // RFC 9113 §3.4: an invalid preface is a connection error PROTOCOL_ERROR; neither
    // HTTP/2 nor HTTP/1 (nor TLS) gets the GOAWAY before the close.
    let (_server, port) = start(None, |b| b);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"\x00\x01\x02 this is not any protocol at all\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("expected a close: {e}"),
        }
    }
    // Walk the frames: SETTINGS, then GOAWAY (type 7) with PROTOCOL_ERROR (1).
    let mut at = 0;
    let mut goaway = None;
    while at + 9 <= all.len() {
        let len = u32::from_be_bytes([0, all[at], all[at + 1], all[at + 2]]) as usize;
        let kind = all[at + 3];
        let payload = &all[at + 9..(at + 9 + len).min(all.len())];
        if kind == 7 && payload.len() >= 8 {
            goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        at += 9 + len;
    }
    assert_eq!(goaway, Some(1), "GOAWAY PROTOCOL_ERROR; got {all:?}");
}

#[test]
fn an_http1_request_gets_a_readable_answer() {
    let (_server, port) = start(None, |b| b);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    let _ = sock.read_to_string(&mut all);
    assert!(all.starts_with("HTTP/1.1 426"), "{all}");
    assert!(all.contains("gRPC server"), "{all}");
}

#[test]
fn a_request_that_is_not_grpc_is_still_checked_to_its_end() {
    // The HTTP 415 waits for the request's END_STREAM, so the rest of the request is still
    // held to the protocol: a body that disagrees with its content-length is a stream error
    // (RFC 9113 §8.1.1), not a 415.
    use grpc_sync::h2::conn::Event;
    use grpc_sync::h2::error::Reason;
    let (_server, port) = start(None, |b| b);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = Connection::new(Role::Client, Config::default());
    let head = hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/test.Echo/Echo"),
        (":authority", "localhost"),
        ("content-type", "text/plain"),
        ("content-length", "5"),
    ]);
    let bad = conn.open_stream(&head, false).unwrap();
    conn.send_data(bad, b"abc", true).unwrap();
    let good = conn.open_stream(&head, false).unwrap();
    conn.send_data(good, b"abcde", true).unwrap();
    sock.write_all(&conn.take_output()).unwrap();
    let (mut bad_reset, mut good_status) = (None, None);
    let mut buf = [0u8; 16384];
    let deadline = Instant::now() + WAIT;
    while bad_reset.is_none() || good_status.is_none() {
        assert!(Instant::now() < deadline, "no answer");
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        conn.recv(&buf[..n], Instant::now()).unwrap();
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Reset {
                    stream_id, reason, ..
                } if stream_id == bad => bad_reset = Some(reason),
                Event::Headers {
                    stream_id, headers, ..
                } if stream_id == good => {
                    let s = headers.iter().find(|h| h.name.as_ref() == b":status");
                    good_status = s.map(|h| String::from_utf8_lossy(&h.value).into_owned());
                }
                _ => {}
            }
        }
        sock.write_all(&conn.take_output()).unwrap();
    }
    assert_eq!(bad_reset, Some(Reason::PROTOCOL_ERROR));
    assert_eq!(good_status.as_deref(), Some("415"));
}

#[test]
fn a_quick_method_whose_handler_blocks_does_not_hold_back_requests_read_with_it() {
    // Two requests arrive in one read for a method whose handlers are usually quick, so the
    // loop runs them inline, one after the other. The first blocks (on a latch, not on a
    // stream): the loop moves to another thread after ~1 ms, and the second must go to the
    // pool then, not wait for the first to return.
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let service = Service::builder("test.Slow")
        .unary("Echo", move |m: Text, _: &ServerContext| {
            if m.s == "block" {
                let _ = release_rx.recv_timeout(WAIT);
            }
            Ok::<_, Status>(m)
        })
        .build();
    let server = Server::builder()
        .max_workers(4)
        .add_service(service)
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    for _ in 0..50 {
        // Teach the server that the method is quick (inline-eligible).
        ch.unary::<_, Text>(
            "/test.Slow/Echo",
            Request::new(Text { s: "warm".into() }).with_timeout(WAIT),
        )
        .unwrap();
    }

    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = Connection::new(Role::Client, Config::default());
    let headers = hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/test.Slow/Echo"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    let first = conn.open_stream(&headers, false).unwrap();
    conn.send_data(first, &grpc_message("block"), true).unwrap();
    let second = conn.open_stream(&headers, false).unwrap();
    conn.send_data(second, &grpc_message("quick"), true)
        .unwrap();
    // Both requests in one write, after the preface.
    sock.write_all(&conn.take_output()).unwrap();

    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    let mut second_done = false;
    while !second_done {
        assert!(
            Instant::now() < deadline,
            "the second request waited behind the blocked first one"
        );
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the connection");
        conn.recv(&buf[..n], Instant::now()).unwrap();
        while let Some(ev) = conn.poll_event() {
            match ev {
                grpc_sync::h2::conn::Event::Headers {
                    stream_id,
                    end_stream,
                    ..
                } if stream_id == second && end_stream => second_done = true,
                grpc_sync::h2::conn::Event::Headers { stream_id, .. } if stream_id == first => {
                    panic!("the blocked call answered before it was released")
                }
                _ => {}
            }
        }
        let out = conn.take_output();
        if !out.is_empty() {
            sock.write_all(&out).unwrap();
        }
    }
    release_tx.send(()).unwrap();
}
