//! Edge cases on real sockets that our own client never produces (or our own server never
//! answers): a raw HTTP/2 client and scripted HTTP/2 servers, built on the crate's public
//! sans-IO `Connection`, probe the server's and the client's error handling.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::msg::{Num, Text};

use bytes::{Bytes, BytesMut};
use grpc_sync::h2::conn::{Connection, Event, Role};
use grpc_sync::h2::frame::StreamId;
use grpc_sync::h2::hpack::Header;
use grpc_sync::h2::settings::Config;
use grpc_sync::{
    Channel, Code, ConnectivityState, Request, Server, ServerContext, Service, Status,
};

#[path = "support/h2client.rs"]
mod h2client;

use h2client::RawClient;

const WAIT: Duration = Duration::from_secs(10);

fn hs(list: &[(&str, &str)]) -> Vec<Header> {
    list.iter()
        .map(|(n, v)| {
            Header::new(
                Bytes::copy_from_slice(n.as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect()
}

fn get<'a>(h: &'a [Header], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|x| x.name.as_ref() == name.as_bytes())
        .and_then(|x| std::str::from_utf8(&x.value).ok())
}

fn grpc_request(path: &str) -> Vec<Header> {
    hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    v.extend_from_slice(msg);
    v
}

fn echo_server() -> (Server, u16) {
    let svc = Service::builder("edge.Echo")
        .unary("Num", |m: Num, _: &ServerContext| Ok(m))
        .unary_raw("Raw", |b: Bytes, _: &ServerContext| {
            let mut v = b"raw:".to_vec();
            v.extend_from_slice(&b);
            Ok(Bytes::from(v))
        })
        .build();
    let server = Server::builder().max_workers(2).add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port)
}

#[test]
fn get_request_is_http_415_with_a_plain_text_explanation() {
    let (_s, port) = echo_server();
    let mut c = RawClient::connect(port);
    let a = c.request(
        &hs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "localhost"),
        ]),
        b"",
    );
    assert_eq!(get(&a.head, ":status"), Some("415"));
    assert!(get(&a.head, "content-type")
        .unwrap()
        .starts_with("text/plain"));
    let body = String::from_utf8_lossy(&a.body);
    assert!(body.contains("gRPC"), "{body}");
}

#[test]
fn non_grpc_content_type_is_http_415() {
    let (_s, port) = echo_server();
    let mut c = RawClient::connect(port);
    let mut h = grpc_request("/edge.Echo/Num");
    h[4] = Header::new(
        Bytes::from_static(b"content-type"),
        Bytes::from_static(b"application/json"),
    );
    let a = c.request(&h, b"{}");
    assert_eq!(get(&a.head, ":status"), Some("415"));
    // The connection carries on: a proper gRPC request on it works.
    let a = c.request(&grpc_request("/edge.Echo/Raw"), &framed(b"x"));
    assert_eq!(get(&a.head, ":status"), Some("200"));
    assert_eq!(get(&a.trailers, "grpc-status"), Some("0"));
}

#[test]
fn malformed_grpc_timeout_is_internal() {
    let (_s, port) = echo_server();
    let mut c = RawClient::connect(port);
    let mut h = grpc_request("/edge.Echo/Num");
    h.push(Header::new(
        Bytes::from_static(b"grpc-timeout"),
        Bytes::from_static(b"12x"),
    ));
    let a = c.request(&h, &framed(b""));
    // Trailers-only: the status is in the head.
    assert_eq!(get(&a.head, "grpc-status"), Some("13"));
    assert!(get(&a.head, "grpc-message")
        .unwrap()
        .contains("grpc-timeout"));
}

#[test]
fn truncated_request_message_is_internal() {
    let (_s, port) = echo_server();
    let mut c = RawClient::connect(port);
    // The prefix promises 10 bytes; 3 arrive before END_STREAM.
    let a = c.request(&grpc_request("/edge.Echo/Num"), &[0, 0, 0, 0, 10, 1, 2, 3]);
    assert_eq!(get(&a.head, "grpc-status"), Some("13"), "{a:?}");
}

#[test]
fn undecodable_request_message_is_internal() {
    let (_s, port) = echo_server();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    // A string where the server expects an int64 at field 1: a wire-type mismatch.
    let e = ch
        .unary::<_, Num>("/edge.Echo/Num", Request::new(Text { s: "nan".into() }))
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
}

#[test]
fn raw_bytes_service_needs_no_protobuf() {
    let (_s, port) = echo_server();
    let mut c = RawClient::connect(port);
    let a = c.request(&grpc_request("/edge.Echo/Raw"), &framed(b"\xff\x00bytes"));
    assert_eq!(&a.body[..], &framed(b"raw:\xff\x00bytes")[..]);
    assert_eq!(get(&a.trailers, "grpc-status"), Some("0"));
}

#[test]
fn server_listens_on_ipv6_any_and_several_ports() {
    let svc = Service::builder("edge.Echo")
        .unary("Num", |m: Num, _: &ServerContext| Ok(m))
        .build();
    let server = Server::builder().add_service(svc).build();
    let Ok(p6) = server.add_insecure_port("[::]:0") else {
        // No IPv6 on this host: the IPv4 part below still runs.
        return;
    };
    let p4 = server.add_insecure_port("127.0.0.1:0").unwrap();
    assert_ne!(p6, p4);
    server.start().unwrap();
    for target in [
        format!("[::1]:{p6}"),
        format!("127.0.0.1:{p6}"),
        format!("ipv4:127.0.0.1:{p4}"),
        format!("dns:///localhost:{p4}"),
    ] {
        let ch = Channel::insecure(&target).unwrap();
        let r: Num = ch
            .unary(
                "/edge.Echo/Num",
                Request::new(Num { n: 7 }).with_timeout(WAIT),
            )
            .unwrap_or_else(|e| panic!("{target}: {e}"))
            .into_inner();
        assert_eq!(r.n, 7, "{target}");
    }
}

#[test]
fn default_pool_size_is_pythons_and_drop_stops_the_server() {
    let (server, port) = echo_server();
    let mut open = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(server);
    // After the drop the server's connections are closed...
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match open.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {} // its SETTINGS, a GOAWAY
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the dropped server kept its connection open"
                );
                break;
            }
        }
    }
    // ... and nothing listens on the port. (Connecting to a free port can, rarely, connect
    // the socket to itself: that is not a listener either.)
    if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
        assert_eq!(
            s.local_addr().unwrap(),
            s.peer_addr().unwrap(),
            "something still listens on the dropped server's port"
        );
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    let s = Server::builder().build();
    assert_eq!(s.pool_stats().workers, (cpus + 4).min(32));
}

#[test]
fn wait_for_termination_times_out_while_running() {
    let (server, _port) = echo_server();
    assert!(!server.wait_for_termination(Some(Duration::from_millis(1))));
    server.stop(None).wait();
    assert!(server.wait_for_termination(Some(Duration::ZERO)));
}

/// A server that accepts connections and reads, but never answers anything.
fn silent_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { return };
            a.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (port, accepted)
}

#[test]
fn client_deadline_is_enforced_locally_against_a_silent_server() {
    let (port, accepted) = silent_server();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let t0 = Instant::now();
    let e = ch
        .unary::<_, Num>(
            "/x.Y/Z",
            Request::new(Num { n: 1 }).with_timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Serves up to `conns` connections, each with a hand-driven server `Connection`.
/// `on_request(connection index, request index on it, connection, stream, extra output)` runs
/// once per complete request; it answers through the connection (or writes raw bytes into
/// the extra output) and returns false to close the connection after that output.
fn h2_server(
    conns: usize,
    on_request: impl Fn(usize, usize, &mut Connection, StreamId, &mut BytesMut) -> bool
        + Send
        + Sync
        + 'static,
) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let on_request = Arc::new(on_request);
    std::thread::spawn(move || {
        for (index, s) in l.incoming().take(conns).enumerate() {
            let Ok(mut s) = s else { return };
            let on_request = on_request.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut conn = Connection::new(Role::Server, Config::default());
                let mut buf = vec![0u8; 65536];
                let mut requests = 0;
                loop {
                    let out = conn.take_output();
                    if s.write_all(&out).is_err() {
                        return;
                    }
                    let n = match s.read(&mut buf) {
                        Ok(n) if n > 0 => n,
                        _ => return,
                    };
                    if conn.recv(&buf[..n], Instant::now()).is_err() {
                        return;
                    }
                    while let Some(ev) = conn.poll_event() {
                        let (id, end) = match ev {
                            Event::Headers {
                                stream_id,
                                end_stream,
                                ..
                            } => (stream_id, end_stream),
                            Event::Data {
                                stream_id,
                                data,
                                end_stream,
                            } => {
                                conn.release_capacity(stream_id, data.len());
                                (stream_id, end_stream)
                            }
                            _ => continue,
                        };
                        if !end {
                            continue;
                        }
                        let mut extra = BytesMut::new();
                        let go_on = on_request(index, requests, &mut conn, id, &mut extra);
                        requests += 1;
                        if !go_on {
                            let mut out = conn.take_output();
                            out.extend_from_slice(&extra);
                            let _ = s.write_all(&out);
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// A server answering every request with `respond`'s head, body and trailers.
fn scripted_server(
    respond: impl Fn() -> (Vec<Header>, Vec<u8>, Option<Vec<Header>>) + Send + Sync + 'static,
) -> u16 {
    h2_server(8, move |_, _, conn, id, _| {
        let (head, body, trailers) = respond();
        let only_head = body.is_empty() && trailers.is_none();
        let _ = conn.send_headers(id, &head, only_head);
        if !body.is_empty() {
            let _ = conn.send_data(id, &body, trailers.is_none());
        }
        if let Some(t) = trailers {
            let _ = conn.send_headers(id, &t, true);
        }
        true
    })
}

fn call_scripted(port: u16) -> Status {
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    ch.unary::<_, Num>("/x.Y/Z", Request::new(Num { n: 1 }).with_timeout(WAIT))
        .unwrap_err()
}

#[test]
fn http_status_without_grpc_status_maps_to_grpc_codes() {
    for (http, code) in [
        ("400", Code::Internal),
        ("401", Code::Unauthenticated),
        ("403", Code::PermissionDenied),
        ("404", Code::Unimplemented),
        ("429", Code::Unavailable),
        ("503", Code::Unavailable),
        ("500", Code::Unknown),
    ] {
        let port = scripted_server(move || {
            (
                hs(&[(":status", http), ("content-type", "text/html")]),
                b"<html>oops</html>".to_vec(),
                None,
            )
        });
        let e = call_scripted(port);
        assert_eq!(e.code(), code, "HTTP {http}: {e}");
    }
}

#[test]
fn missing_grpc_status_in_trailers_is_internal() {
    let port = scripted_server(|| {
        (
            hs(&[(":status", "200"), ("content-type", "application/grpc")]),
            framed(&[8, 1]),
            Some(hs(&[("x-not-status", "1")])),
        )
    });
    let e = call_scripted(port);
    assert_eq!(e.code(), Code::Internal, "{e}");
    assert!(e.message().contains("grpc-status"), "{e}");
}

#[test]
fn wrong_response_content_type_is_unknown() {
    let port = scripted_server(|| {
        (
            hs(&[(":status", "200"), ("content-type", "text/plain")]),
            b"hello".to_vec(),
            Some(hs(&[("grpc-status", "0")])),
        )
    });
    let e = call_scripted(port);
    assert_eq!(e.code(), Code::Unknown, "{e}");
}

#[test]
fn connectivity_state_follows_the_connection() {
    // Nobody listens: connecting fails and the channel is in back-off.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = Channel::insecure(&format!("127.0.0.1:{dead}")).unwrap();
    assert_eq!(ch.state(false), ConnectivityState::Idle);
    assert_eq!(ch.state(true), ConnectivityState::TransientFailure);
    // Fail fast while in back-off; wait_for_ready waits instead, until its deadline.
    let e = ch
        .unary::<_, Num>("/x.Y/Z", Request::new(Num { n: 1 }))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    let e = ch
        .unary::<_, Num>(
            "/x.Y/Z",
            Request::new(Num { n: 1 })
                .wait_for_ready(true)
                .with_timeout(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");

    let (_s, port) = echo_server();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    ch.wait_for_ready(WAIT).unwrap();
    assert_eq!(ch.state(false), ConnectivityState::Ready);
    ch.close();
    assert_eq!(ch.state(false), ConnectivityState::Shutdown);
    let e = ch
        .unary::<_, Num>("/edge.Echo/Num", Request::new(Num { n: 1 }))
        .unwrap_err();
    assert_eq!(e.code(), Code::Cancelled, "{e}");
}

#[test]
fn calls_beyond_max_concurrent_streams_wait_for_a_free_stream() {
    let (tx, rx) = crossbeam_channel::unbounded::<()>();
    let gate = Arc::new(std::sync::Mutex::new(rx));
    let svc = Service::builder("edge.Gate")
        .unary("Wait", move |m: Num, _: &ServerContext| {
            // Each call waits for one token; tokens come only after all calls started.
            let _ = gate.lock().unwrap().recv_timeout(WAIT);
            Ok(m)
        })
        .build();
    let server = Server::builder()
        .max_workers(8)
        .max_concurrent_streams(2)
        .add_service(svc)
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                ch.unary::<_, Num>(
                    "/edge.Gate/Wait",
                    Request::new(Num { n: i }).with_timeout(WAIT),
                )
                .map(|r| r.into_inner().n)
            })
        })
        .collect();
    for _ in 0..6 {
        tx.send(()).unwrap();
    }
    let mut got: Vec<i64> = threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap()
                .expect("no call fails for lack of streams")
        })
        .collect();
    got.sort();
    assert_eq!(got, (0..6).collect::<Vec<_>>());
}

#[cfg(unix)]
#[test]
fn server_and_client_speak_over_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("grpc-sync-edge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("grpc.sock");
    let svc = Service::builder("edge.Echo")
        .unary("Num", |m: Num, ctx: &ServerContext| {
            assert!(ctx.peer().starts_with("unix:"), "{}", ctx.peer());
            Ok(m)
        })
        .build();
    let server = Server::builder().add_service(svc).build();
    // grpcio's form; a Unix socket has no port.
    assert_eq!(
        server
            .add_insecure_port(&format!("unix:{}", path.display()))
            .unwrap(),
        0
    );
    server.start().unwrap();
    for target in [
        format!("unix:{}", path.display()),
        format!("unix://{}", path.display()),
    ] {
        let ch = Channel::insecure(&target).unwrap();
        let r: Num = ch
            .unary(
                "/edge.Echo/Num",
                Request::new(Num { n: 11 }).with_timeout(WAIT),
            )
            .unwrap_or_else(|e| panic!("{target}: {e}"))
            .into_inner();
        assert_eq!(r.n, 11);
    }
    server.stop(None).wait();
    assert!(!path.exists(), "stop removes the socket file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unfinished_unary_requests_hold_no_worker() {
    // One worker; a raw client opens unary requests and never ends them.
    let svc = Service::builder("edge.Echo")
        .unary("Num", |m: Num, _: &ServerContext| Ok(m))
        .build();
    let server = Server::builder().max_workers(1).add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let mut raw = RawClient::connect(port);
    for _ in 0..5 {
        let id = raw
            .conn
            .open_stream(&grpc_request("/edge.Echo/Num"), false)
            .unwrap();
        raw.conn.send_data(id, &[0, 0, 0, 0, 9, 8], false).unwrap();
    }
    raw.flush();
    // The single worker is still free for a well-behaved client.
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let r: Num = ch
        .unary(
            "/edge.Echo/Num",
            Request::new(Num { n: 3 }).with_timeout(WAIT),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 3);
}

#[test]
fn streaming_rpcs_per_connection_are_bounded() {
    let svc = Service::builder("edge.Stream")
        .server_streaming_fn("Hold", |_m: Num, ctx: &ServerContext| {
            let it: grpc_sync::ResponseStream<'_, Num> = Box::new(
                std::iter::once(Ok(Num { n: 0 })).chain(std::iter::from_fn(move || {
                    // Hold the worker until the client goes away.
                    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
                    // add_callback says false when the call is over already: no wait then.
                    let registered = ctx.add_callback(move || {
                        let _ = tx.send(());
                    });
                    if registered {
                        let _ = rx.recv_timeout(WAIT);
                    }
                    None
                })),
            );
            Ok(it)
        })
        .build();
    let server = Server::builder()
        .max_workers(4)
        .max_streaming_rpcs_per_connection(2)
        .add_service(svc)
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let open = |n| {
        let mut s = ch
            .server_streaming::<_, Num>("/edge.Stream/Hold", Request::new(Num { n }))
            .unwrap();
        let first = s.next().unwrap();
        (s, first)
    };
    let (_a, first) = open(1);
    assert!(first.is_ok());
    let (_b, first) = open(2);
    assert!(first.is_ok());
    let (_c, third) = open(3);
    assert_eq!(third.unwrap_err().code(), Code::ResourceExhausted);
}

#[test]
fn streams_refused_by_goaway_are_retried_on_a_new_connection() {
    use grpc_sync::h2::error::Reason;
    use grpc_sync::h2::frame::GoAway;
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    // Connection 1 answers its first request, then refuses the second unseen with
    // GOAWAY(last_stream_id = 1) and closes; connection 2 answers everything.
    let port = h2_server(2, move |conn_index, request, conn, id, extra| {
        if request == 0 {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        if conn_index == 0 && request == 1 {
            GoAway::new(1, Reason::NO_ERROR, "draining").encode(extra);
            return false;
        }
        let head = hs(&[(":status", "200"), ("content-type", "application/grpc")]);
        let _ = conn.send_headers(id, &head, false);
        let _ = conn.send_data(id, &framed(&[8, 5]), false);
        let _ = conn.send_headers(id, &hs(&[("grpc-status", "0")]), true);
        true
    });
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    for _ in 0..2 {
        let r: Num = ch
            .unary("/x.Y/Z", Request::new(Num { n: 1 }).with_timeout(WAIT))
            .unwrap()
            .into_inner();
        assert_eq!(r.n, 5);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}
