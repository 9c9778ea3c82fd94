//! Our client against our server on 127.0.0.1:0: every RPC kind, errors, deadlines,
//! cancellation, metadata, limits, futures and shutdown. Services are built from closures
//! (no code generation) so this file tests the runtime alone.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::msg::{num, Num, Text};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use grpc_sync::{
    CallOptions, Channel, Code, MetadataMap, Request, ResponseStream, Server, ServerContext,
    Service, Status, Streaming,
};

const WAIT: Duration = Duration::from_secs(10);

/// A test server: the services of this file on 127.0.0.1:0.
struct TestServer {
    server: Server,
    port: u16,
}

impl TestServer {
    fn channel(&self) -> Channel {
        Channel::insecure(&format!("127.0.0.1:{}", self.port)).unwrap()
    }
}

/// Events the handlers report, so tests wait on them instead of sleeping.
#[derive(Clone)]
struct Probe {
    tx: Sender<String>,
}

fn math_service(probe: Probe) -> Service {
    let p1 = probe.clone();
    let p2 = probe.clone();
    let p3 = probe.clone();
    Service::builder("test.Math")
        .unary("Double", |m: Num, _ctx: &ServerContext| Ok(num(m.n * 2)))
        .unary(
            "Fail",
            |m: Text, _ctx: &ServerContext| -> Result<Num, Status> {
                Err(Status::invalid_argument(m.s))
            },
        )
        .unary(
            "Panic",
            |_m: Num, _ctx: &ServerContext| -> Result<Num, Status> { panic!("handler bug") },
        )
        .unary("Echo", |m: Text, _ctx: &ServerContext| Ok(m))
        .unary("WhereAmI", |_m: Num, _ctx: &ServerContext| {
            Ok(Text {
                s: std::thread::current().name().unwrap_or("").to_string(),
            })
        })
        .unary("Metadata", |m: Text, ctx: &ServerContext| {
            let mut initial = MetadataMap::new();
            let got = ctx.metadata().get("x-in").unwrap_or("none").to_string();
            initial.insert("x-initial", &got).unwrap();
            ctx.send_initial_metadata(initial)?;
            let mut trailing = MetadataMap::new();
            trailing
                .insert_bin("x-trailing-bin", vec![0u8, 1, 2, 255])
                .unwrap();
            ctx.set_trailing_metadata(trailing);
            Ok(Text {
                s: format!("{}|{}", m.s, ctx.peer()),
            })
        })
        .unary("WaitForCancel", move |_m: Num, ctx: &ServerContext| {
            // Reports when it starts, then waits for the call to die (deadline or cancel).
            let _ = p1.tx.send("started".into());
            let (tx, rx) = bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            let _ = p1.tx.send(format!("active={}", ctx.is_active()));
            Ok(num(0))
        })
        .unary("Block", move |m: Num, _ctx: &ServerContext| {
            // Holds a worker until the test releases it through the probe's channel pair.
            let _ = p3.tx.send(format!("block {}", m.n));
            std::thread::park_timeout(Duration::from_millis(m.n as u64));
            Ok(num(m.n))
        })
        .server_streaming_fn("Count", |m: Num, _ctx: &ServerContext| {
            let it: ResponseStream<'_, Num> = Box::new((0..m.n).map(|i| Ok(num(i))));
            Ok(it)
        })
        .server_streaming_fn("CountThenFail", |m: Num, _ctx: &ServerContext| {
            let it: ResponseStream<'_, Num> = Box::new(
                (0..m.n)
                    .map(|i| Ok(num(i)))
                    .chain(std::iter::once(Err(Status::data_loss("stream broke")))),
            );
            Ok(it)
        })
        .server_streaming_fn("Forever", move |_m: Num, ctx: &ServerContext| {
            // The event comes however the call ends: the worker may notice the cancel through
            // is_active() or through a failed send, and then stops pulling this iterator.
            let p = p2.clone();
            ctx.add_callback(move || {
                let _ = p.tx.send("forever ended".into());
            });
            let it: ResponseStream<'_, Num> = Box::new(
                (0..)
                    .take_while(move |_| ctx.is_active())
                    .map(|i| Ok(num(i))),
            );
            Ok(it)
        })
        .client_streaming("Sum", |reqs: Streaming<Num>, _ctx: &ServerContext| {
            let mut sum = 0;
            for r in reqs {
                sum += r?.n;
            }
            Ok(num(sum))
        })
        .client_streaming("TakeTen", |reqs: Streaming<Num>, _ctx: &ServerContext| {
            // Like seed 003: stop reading after ten messages and answer.
            let got = reqs.take(10).count();
            Ok(Text {
                s: format!("ok {got}"),
            })
        })
        .bidi_streaming_fn("BidiEcho", |reqs: Streaming<Num>, _ctx: &ServerContext| {
            let it: ResponseStream<'_, Num> = Box::new(reqs.map(|r| r.map(|m| num(m.n + 1))));
            Ok(it)
        })
        .build()
}

fn start(
    configure: impl FnOnce(grpc_sync::server::ServerBuilder) -> grpc_sync::server::ServerBuilder,
) -> (TestServer, Receiver<String>) {
    let (tx, rx) = unbounded();
    let builder = Server::builder().add_service(math_service(Probe { tx }));
    let server = configure(builder).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (TestServer { server, port }, rx)
}

fn start_default() -> (TestServer, Receiver<String>) {
    start(|b| b.max_workers(4))
}

fn expect_event(rx: &Receiver<String>, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if e == want => return,
            Ok(_) => continue,
            Err(_) => panic!("no {want:?} event within {WAIT:?}"),
        }
    }
}

#[test]
fn unary_call_round_trips() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let r: Num = ch
        .unary("/test.Math/Double", Request::new(num(21)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 42);
}

#[test]
fn handler_error_reaches_client_with_code_and_message() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let msg = "cannot divide by 0 — 100% \t\n ☺ 😈";
    let err = ch
        .unary::<_, Num>("/test.Math/Fail", Request::new(Text { s: msg.into() }))
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), msg);
}

#[test]
fn unknown_method_and_service_are_unimplemented_naming_them() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let e = ch
        .unary::<_, Num>("/test.Math/Nope", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("/test.Math/Nope"), "{e}");
    let e = ch
        .unary::<_, Num>("/test.Other/Nope", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("test.Other"), "{e}");
}

#[test]
fn panicking_handler_is_unknown_and_the_pool_keeps_serving() {
    let (s, _rx) = start(|b| b.max_workers(1));
    let ch = s.channel();
    for _ in 0..3 {
        let e = ch
            .unary::<_, Num>("/test.Math/Panic", Request::new(num(1)))
            .unwrap_err();
        assert_eq!(e.code(), Code::Unknown);
        assert!(e.message().contains("handler bug"), "{e}");
    }
    let r: Num = ch
        .unary("/test.Math/Double", Request::new(num(1)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 2);
    // The panic is counted after the UNKNOWN answer left: read the final statistics.
    assert!(s.server.stop(None).wait_timeout(WAIT));
    let stats = s.server.pool_stats();
    assert_eq!(stats.workers, 1);
    assert_eq!(stats.panicked, 3);
}

#[test]
fn server_streaming_yields_every_message_then_ends() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let got: Vec<i64> = ch
        .server_streaming::<_, Num>("/test.Math/Count", Request::new(num(1000)))
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn sparse_server_stream_delivers_each_message_without_waiting_for_the_next() {
    // The handler sends one message, then blocks until the client has read it: a message held
    // back for company (or for the next one) would deadlock this until the deadline.
    let (ack_tx, ack_rx) = bounded::<()>(1);
    let service = Service::builder("test.Sparse")
        .server_streaming_fn("Two", move |_m: Num, _ctx: &ServerContext| {
            let ack_rx = ack_rx.clone();
            let it: ResponseStream<'_, Num> = Box::new((0..2).map(move |i| {
                if i == 1 && ack_rx.recv_timeout(WAIT).is_err() {
                    return Err(Status::deadline_exceeded("the first message was not read"));
                }
                Ok(num(i))
            }));
            Ok(it)
        })
        .build();
    let server = Server::builder().add_service(service).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let mut replies = ch
        .server_streaming::<_, Num>("/test.Sparse/Two", Request::new(num(0)).with_timeout(WAIT))
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(replies.next().unwrap().unwrap().n, 0);
    assert!(
        t0.elapsed() < WAIT / 2,
        "first message took {:?}",
        t0.elapsed()
    );
    ack_tx.send(()).unwrap();
    assert_eq!(replies.next().unwrap().unwrap().n, 1);
    assert!(replies.next().is_none());
}

#[test]
fn server_streaming_error_arrives_after_the_messages() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let items: Vec<Result<Num, Status>> = ch
        .server_streaming("/test.Math/CountThenFail", Request::new(num(3)))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(|r| r.is_ok()));
    let e = items[3].as_ref().unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::DataLoss, "stream broke"));
}

#[test]
fn client_streaming_sums_every_request() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let r: Num = ch
        .client_streaming("/test.Math/Sum", Request::new((1..=100).map(num)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 5050);
}

#[test]
fn handler_that_stops_reading_still_answers_an_endless_client_stream() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let opts = CallOptions::new().timeout(WAIT);
    let r: Text = ch
        .client_streaming(
            "/test.Math/TakeTen",
            Request::with_options((0..).map(num), opts),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.s, "ok 10");
}

#[test]
fn bidi_streaming_echoes_in_order() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let got: Vec<i64> = ch
        .bidi_streaming::<_, Num, _>("/test.Math/BidiEcho", Request::new((0..500).map(num)))
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect();
    assert_eq!(got, (1..=500).collect::<Vec<_>>());
}

#[test]
fn bidi_interactive_ping_pong() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let (mut tx, mut rx) = ch
        .bidi_interactive::<Num, Num>("/test.Math/BidiEcho", CallOptions::new().timeout(WAIT))
        .unwrap();
    for i in 0..20 {
        tx.send(num(i)).unwrap();
        let r = rx.next().unwrap().unwrap();
        assert_eq!(r.n, i + 1);
    }
    tx.close().unwrap();
    assert!(rx.next().is_none());
}

#[test]
fn metadata_travels_both_ways_with_peer() {
    let (s, _rx) = start_default();
    let ch = s.channel();
    let resp = ch
        .unary::<_, Text>(
            "/test.Math/Metadata",
            Request::new(Text { s: "x".into() }).with_metadata("x-in", "hello"),
        )
        .unwrap();
    assert_eq!(resp.initial_metadata().get("x-initial"), Some("hello"));
    assert_eq!(
        resp.trailing_metadata()
            .get_bin("x-trailing-bin")
            .as_deref(),
        Some(&[0u8, 1, 2, 255][..])
    );
    assert!(
        resp.get_ref().s.starts_with("x|ipv4:127.0.0.1:"),
        "{}",
        resp.get_ref().s
    );
}

#[test]
fn deadline_expires_on_time_and_the_handler_sees_it() {
    let (s, rx) = start_default();
    let ch = s.channel();
    let t0 = Instant::now();
    let e = ch
        .unary::<_, Num>(
            "/test.Math/WaitForCancel",
            Request::new(num(0)).with_timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    expect_event(&rx, "started");
    expect_event(&rx, "active=false");
}

#[test]
fn oversized_request_is_resource_exhausted() {
    let (s, _rx) = start(|b| b.max_receive_message_length(1024));
    let ch = s.channel();
    let e = ch
        .unary::<_, Text>(
            "/test.Math/Echo",
            Request::new(Text {
                s: "x".repeat(2000),
            }),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    // The connection is still good.
    let r: Num = ch
        .unary("/test.Math/Double", Request::new(num(2)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 4);
}

#[test]
fn oversized_response_is_resource_exhausted_at_the_client() {
    let (s, _rx) = start_default();
    let ch = Channel::builder(&format!("127.0.0.1:{}", s.port))
        .max_receive_message_length(1000)
        .build()
        .unwrap();
    let e = ch
        .unary::<_, Text>(
            "/test.Math/Echo",
            Request::new(Text {
                s: "y".repeat(5000),
            }),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
}

#[test]
fn large_messages_round_trip() {
    let (s, _rx) = start(|b| b.max_receive_message_length(8 << 20));
    let ch = Channel::builder(&format!("127.0.0.1:{}", s.port))
        .max_receive_message_length(8 << 20)
        .build()
        .unwrap();
    let big = "z".repeat(4 << 20);
    let r: Text = ch
        .unary("/test.Math/Echo", Request::new(Text { s: big.clone() }))
        .unwrap()
        .into_inner();
    assert_eq!(r.s.len(), big.len());
}

#[test]
fn max_concurrent_rpcs_answers_resource_exhausted_instead_of_queueing() {
    let (s, rx) = start(|b| b.max_workers(2).max_concurrent_rpcs(1));
    let ch = s.channel();
    let ch2 = ch.clone();
    let t = std::thread::spawn(move || {
        ch2.unary::<_, Num>(
            "/test.Math/WaitForCancel",
            Request::new(num(0)).with_timeout(Duration::from_secs(2)),
        )
    });
    expect_event(&rx, "started");
    let e = ch
        .unary::<_, Num>("/test.Math/Double", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let _ = t.join();
}

#[test]
fn dropping_a_server_stream_frees_its_worker() {
    let (s, rx) = start(|b| b.max_workers(1));
    let ch = s.channel();
    let mut stream = ch
        .server_streaming::<_, Num>("/test.Math/Forever", Request::new(num(0)))
        .unwrap();
    for i in 0..3 {
        assert_eq!(stream.next().unwrap().unwrap().n, i);
    }
    drop(stream);
    expect_event(&rx, "forever ended");
    // The single worker is free again.
    let r: Num = ch
        .unary("/test.Math/Double", Request::new(num(5)).with_timeout(WAIT))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 10);
}

#[test]
fn many_threads_share_one_channel() {
    let (s, _rx) = start(|b| b.max_workers(4));
    let ch = s.channel();
    let ok = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ch = ch.clone();
            let ok = ok.clone();
            std::thread::spawn(move || {
                for i in 0..13 {
                    let n = t * 100 + i;
                    let r: Num = ch
                        .unary("/test.Math/Double", Request::new(num(n)).with_timeout(WAIT))
                        .unwrap()
                        .into_inner();
                    assert_eq!(r.n, 2 * n);
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 104);
}

#[test]
fn connection_refused_is_unavailable_naming_the_address() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    let e = ch
        .unary::<_, Num>("/test.Math/Double", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains(&port.to_string()), "{e}");
}

#[test]
fn channel_reconnects_after_a_server_restart() {
    let (s, _rx) = start_default();
    let port = s.port;
    let ch = s.channel();
    let r: Num = ch
        .unary("/test.Math/Double", Request::new(num(1)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 2);
    assert!(s.server.stop(None).wait_timeout(WAIT));
    drop(s);
    let (tx, _rx2) = unbounded();
    let server = Server::builder()
        .add_service(math_service(Probe { tx }))
        .build();
    server
        .add_insecure_port(&format!("127.0.0.1:{port}"))
        .unwrap();
    server.start().unwrap();
    let r: Num = ch
        .unary(
            "/test.Math/Double",
            Request::new(num(3)).with_timeout(WAIT).wait_for_ready(true),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 6);
}

#[test]
fn stop_with_grace_finishes_in_flight_calls_and_refuses_new_ones() {
    let (s, rx) = start_default();
    let ch = s.channel();
    let ch2 = ch.clone();
    // A call that holds its worker for 300 ms.
    let t = std::thread::spawn(move || {
        ch2.unary::<_, Num>(
            "/test.Math/Block",
            Request::new(num(300)).with_timeout(WAIT),
        )
    });
    expect_event(&rx, "block 300");
    let stop = s.server.stop(Some(Duration::from_secs(5)));
    let r = t.join().unwrap().unwrap().into_inner();
    assert_eq!(r.n, 300);
    let e = ch
        .unary::<_, Num>("/test.Math/Double", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(stop.wait_timeout(WAIT));
    assert!(s.server.wait_for_termination(Some(Duration::ZERO)));
}

#[test]
fn future_result_callback_and_cancel() {
    let (s, rx) = start_default();
    let ch = s.channel();
    let f = ch.unary_future::<_, Num>("/test.Math/Double", Request::new(num(4)));
    let (tx, done) = bounded(1);
    f.add_done_callback(move |f| {
        let _ = tx.send(f.result().map(|r| r.into_inner().n));
    });
    assert_eq!(f.result().unwrap().into_inner().n, 8);
    assert_eq!(done.recv_timeout(WAIT).unwrap().unwrap(), 8);
    assert!(f.is_done());

    let slow = ch.unary_future::<_, Num>(
        "/test.Math/WaitForCancel",
        Request::new(num(0)).with_timeout(WAIT),
    );
    expect_event(&rx, "started");
    assert!(!slow.is_done());
    assert!(slow.cancel());
    assert_eq!(slow.result().unwrap_err().code(), Code::Cancelled);
    expect_event(&rx, "active=false");
}

#[test]
fn http1_client_gets_a_clear_http1_answer() {
    use std::io::{Read, Write};
    let (s, _rx) = start_default();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    let _ = sock.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 "), "{resp}");
    assert!(resp.contains("gRPC"), "{resp}");
}

#[test]
fn pool_stats_count_started_and_finished() {
    let (s, _rx) = start(|b| b.max_workers(3));
    let ch = s.channel();
    for i in 0..5 {
        let _: Num = ch
            .unary("/test.Math/Double", Request::new(num(i)))
            .unwrap()
            .into_inner();
    }
    // A worker counts its RPC finished after the client already has the answer: stopping
    // joins every worker, so the statistics read after it are final.
    assert!(s.server.stop(None).wait_timeout(WAIT));
    let st = s.server.pool_stats();
    assert_eq!(st.workers, 3);
    assert_eq!(
        (st.started, st.finished, st.busy, st.queued),
        (5, 5, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.queue_wait_histogram.iter().sum::<u64>(), 5);
}

fn thread_of_handler(ch: &Channel) -> String {
    ch.unary::<_, Text>("/test.Math/WhereAmI", Request::new(num(0)))
        .unwrap()
        .into_inner()
        .s
}

#[test]
fn unary_handlers_run_on_the_io_thread_unless_inline_is_off() {
    let (s, _rx) = start_default();
    let name = thread_of_handler(&s.channel());
    // An I/O loop's thread, or a spare that took the loop over.
    assert!(
        name.starts_with("grpc-io") || name.starts_with("grpc-conn"),
        "{name}"
    );
    let (s, _rx) = start(|b| b.max_workers(4).inline_unary(false));
    let name = thread_of_handler(&s.channel());
    assert!(name.starts_with("grpc-worker"), "{name}");
}

#[test]
fn a_slow_inline_handler_does_not_hold_up_its_connection() {
    // One channel, one connection: while a handler that read its request on the connection's
    // reader thread waits, the reading moves on and the connection's other RPCs, and the
    // cancel that ends the slow one, still get through.
    let (s, rx) = start_default();
    let ch = s.channel();
    let slow = ch.unary_future::<_, Num>(
        "/test.Math/WaitForCancel",
        Request::new(num(0)).with_timeout(WAIT),
    );
    expect_event(&rx, "started");
    for i in 0..20 {
        let r: Num = ch
            .unary(
                "/test.Math/Double",
                Request::new(num(i)).with_timeout(Duration::from_secs(5)),
            )
            .unwrap()
            .into_inner();
        assert_eq!(r.n, i * 2);
    }
    assert!(slow.cancel());
    expect_event(&rx, "active=false");
}

#[test]
fn inline_handlers_count_against_max_workers() {
    // With one worker permit held by a handler running on connection 1's reader thread, a call
    // on connection 2 waits for it (and its deadline passes) instead of running beside it.
    let (s, rx) = start(|b| b.max_workers(1));
    let (ch1, ch2) = (s.channel(), s.channel());
    let slow = ch1.unary_future::<_, Num>(
        "/test.Math/WaitForCancel",
        Request::new(num(0)).with_timeout(WAIT),
    );
    expect_event(&rx, "started");
    assert_eq!(s.server.pool_stats().busy, 1);
    let e = ch2
        .unary::<_, Num>(
            "/test.Math/Double",
            Request::new(num(1)).with_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(slow.cancel());
    expect_event(&rx, "active=false");
    let r: Num = ch2
        .unary("/test.Math/Double", Request::new(num(21)))
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 42);
}

#[test]
fn inline_handoff_survives_a_mix_of_slow_and_fast_calls() {
    // Handlers of 3 ms (past the 1 ms hand-off threshold: their connection's reading moves to
    // another thread) interleaved with quick ones, on two shared channels: every call gets its
    // own answer, and the pool's bookkeeping adds up.
    let (s, _rx) = start(|b| b.max_workers(3));
    let channels = [s.channel(), s.channel()];
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let ch = channels[t % 2].clone();
            std::thread::spawn(move || {
                for i in 0..40i64 {
                    let (path, n, want) = if (i + t as i64) % 4 == 0 {
                        ("/test.Math/Block", 3, 3)
                    } else {
                        ("/test.Math/Double", i, 2 * i)
                    };
                    let r: Num = ch
                        .unary(path, Request::new(num(n)).with_timeout(WAIT))
                        .unwrap()
                        .into_inner();
                    assert_eq!(r.n, want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(s.server.stop(None).wait_timeout(WAIT));
    let st = s.server.pool_stats();
    assert_eq!((st.started, st.finished, st.busy), (240, 240, 0), "{st:?}");
}
