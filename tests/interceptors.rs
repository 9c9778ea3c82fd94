//! Server interceptors against our own client on 127.0.0.1:0: their order, rejections of
//! every RPC kind (the handler never runs, the worker is released), the end hook (exactly
//! once per call, with the right status however the call ends), values handed to handlers,
//! and the response metadata they add. Services are built from closures.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::msg::{num, Num, Text};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use grpc_sync::health::{HealthCheckRequest, HealthClient, HealthReporter, ServingStatus};
use grpc_sync::server::{CallEnd, CallStart, MethodKind, ServerBuilder, ServerInterceptor};
use grpc_sync::{
    CallOptions, Channel, Code, MetadataMap, Request, ResponseStream, Server, ServerContext,
    Service, Status, Streaming,
};

const WAIT: Duration = Duration::from_secs(10);

/// Who the auth interceptor says made the call; handlers read it from their context.
#[derive(Debug, Clone, PartialEq)]
struct User(String);

fn user_of(ctx: &ServerContext) -> String {
    ctx.extensions()
        .get::<User>()
        .map_or_else(|| "nobody".to_string(), |u| u.0.clone())
}

/// A service of every kind. Each handler counts itself in `handled` and reports to `events`
/// (so tests prove a handler did or did not run, and wait on events instead of sleeping).
fn service(handled: Arc<AtomicUsize>, events: Sender<String>) -> Service {
    let h = move || handled.fetch_add(1, Ordering::SeqCst);
    let (h1, h2, h3, h4, h5, h6, h7) = (
        h.clone(),
        h.clone(),
        h.clone(),
        h.clone(),
        h.clone(),
        h.clone(),
        h.clone(),
    );
    let e1 = events.clone();
    let e2 = events;
    Service::builder("test.Icpt")
        .unary("Who", move |m: Text, ctx: &ServerContext| {
            h1();
            let _ = e1.send("handler".into());
            Ok(Text {
                s: format!("{}|{}", m.s, user_of(ctx)),
            })
        })
        .unary(
            "Fail",
            move |m: Text, _ctx: &ServerContext| -> Result<Num, Status> {
                h2();
                Err(Status::invalid_argument(m.s))
            },
        )
        .unary(
            "Panic",
            move |_m: Num, _ctx: &ServerContext| -> Result<Num, Status> {
                h3();
                panic!("handler bug")
            },
        )
        .unary("WaitForEnd", move |_m: Num, ctx: &ServerContext| {
            // Reports that it started, then waits for the call to die (deadline or cancel).
            h4();
            let _ = e2.send("started".into());
            let (tx, rx) = bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            Ok(num(0))
        })
        .unary("Metadata", move |m: Num, ctx: &ServerContext| {
            h5();
            let mut initial = MetadataMap::new();
            initial.insert("x-handler-initial", "h").unwrap();
            ctx.send_initial_metadata(initial)?;
            let mut trailing = MetadataMap::new();
            trailing.insert("x-handler-trailing", "h").unwrap();
            ctx.set_trailing_metadata(trailing);
            Ok(m)
        })
        .server_streaming_fn("Count", move |m: Num, _ctx: &ServerContext| {
            h6();
            let it: ResponseStream<'_, Num> = Box::new((0..m.n).map(|i| Ok(num(i))));
            Ok(it)
        })
        .client_streaming("Sum", {
            let h = h.clone();
            move |reqs: Streaming<Num>, _ctx: &ServerContext| {
                h();
                let mut sum = 0;
                for r in reqs {
                    sum += r?.n;
                }
                Ok(num(sum))
            }
        })
        .bidi_streaming_fn("Echo", move |reqs: Streaming<Num>, ctx: &ServerContext| {
            h7();
            // Each reply carries the user's name length, to show the context value got here.
            let bonus = user_of(ctx).len() as i64 * 1000;
            let it: ResponseStream<'_, Num> =
                Box::new(reqs.map(move |r| r.map(|m| num(m.n + bonus))));
            Ok(it)
        })
        .build()
}

/// A running server with [`service`] and a channel to it.
struct Fixture {
    server: Server,
    ch: Channel,
    handled: Arc<AtomicUsize>,
    events: Receiver<String>,
}

fn start(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Fixture {
    let handled = Arc::new(AtomicUsize::new(0));
    let (tx, events) = unbounded();
    let builder = Server::builder().add_service(service(handled.clone(), tx));
    let server = configure(builder).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    Fixture {
        server,
        ch,
        handled,
        events,
    }
}

impl Fixture {
    fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }

    /// Stops the server and waits until it has: every handler and end hook has run then.
    fn stop(&self) {
        assert!(
            self.server.stop(None).wait_timeout(WAIT),
            "server did not stop"
        );
    }
}

fn expect_event(rx: &Receiver<String>, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(e) if e == want => return,
            Ok(_) => continue,
            Err(_) => panic!("no {want:?} event within {WAIT:?}"),
        }
    }
}

/// An interceptor that reports its start and end to a shared log, under its name.
struct Named {
    name: &'static str,
    log: Sender<String>,
}

impl ServerInterceptor for Named {
    fn intercept(&self, _call: &mut CallStart<'_>) -> Result<(), Status> {
        let _ = self.log.send(format!("{} start", self.name));
        Ok(())
    }

    fn on_end(&self, _end: &CallEnd<'_>) {
        let _ = self.log.send(format!("{} end", self.name));
    }
}

/// What the end hook reported for one call.
#[derive(Debug, Clone)]
struct Ended {
    method: String,
    kind: MethodKind,
    code: Code,
    message: String,
    received: u64,
    sent: u64,
    duration: Duration,
}

/// An interceptor that lets everything through and reports every end.
struct Recorder(Sender<Ended>);

impl ServerInterceptor for Recorder {
    fn on_end(&self, end: &CallEnd<'_>) {
        let _ = self.0.send(Ended {
            method: end.method().to_string(),
            kind: end.kind(),
            code: end.status().code(),
            message: end.status().message().to_string(),
            received: end.messages_received(),
            sent: end.messages_sent(),
            duration: end.duration(),
        });
    }
}

/// Rejects calls that carry `x-deny`, saying why in metadata both ways.
fn deny_marked(call: &mut CallStart<'_>) -> Result<(), Status> {
    if !call.metadata().contains_key("x-deny") {
        return Ok(());
    }
    call.initial_metadata_mut()
        .insert("x-why-initial", "denied")
        .unwrap();
    call.trailing_metadata_mut()
        .insert("x-why-trailing", "denied")
        .unwrap();
    Err(Status::permission_denied("x-deny says no"))
}

fn next_end(rx: &Receiver<Ended>) -> Ended {
    rx.recv_timeout(WAIT).expect("no end hook within the wait")
}

/// Waits for the next end hook and checks that the call ended OK with these counts.
fn expect_ok_end(rx: &Receiver<Ended>, kind: MethodKind, received: u64, sent: u64) {
    let e = next_end(rx);
    assert_eq!(
        (e.kind, e.code, e.received, e.sent),
        (kind, Code::Ok, received, sent),
        "{e:?}"
    );
}

fn deny() -> CallOptions {
    CallOptions::new().timeout(WAIT).metadata("x-deny", "1")
}

/// The first error of a streaming response, whether it came at the call or as an item.
fn first_error<T: prost::Message + Default>(res: Result<Streaming<T>, Status>) -> Status {
    match res {
        Err(s) => s,
        Ok(mut stream) => match stream.next() {
            Some(Err(s)) => s,
            Some(Ok(_)) => panic!("a message arrived on a rejected call"),
            None => panic!("a rejected call ended without an error"),
        },
    }
}

fn assert_denied(s: &Status, what: &str) {
    assert_eq!(s.code(), Code::PermissionDenied, "{what}: {s}");
    assert_eq!(s.message(), "x-deny says no", "{what}");
    // A trailers-only response: both maps arrive in the one header block.
    assert_eq!(s.metadata().get("x-why-initial"), Some("denied"), "{what}");
    assert_eq!(s.metadata().get("x-why-trailing"), Some("denied"), "{what}");
}

#[test]
fn interceptors_run_in_order_and_end_in_reverse() {
    let (log_tx, log) = unbounded();
    let f = start(|b| {
        let b = b.max_workers(2);
        ["a", "b", "c"].iter().fold(b, |b, name| {
            b.intercept(Named {
                name,
                log: log_tx.clone(),
            })
        })
    });
    // The handler reports to the fixture's events; merge it into the log here.
    let r: Text =
        f.ch.unary("/test.Icpt/Who", Request::new(Text { s: "x".into() }))
            .unwrap()
            .into_inner();
    assert_eq!(r.s, "x|nobody");
    expect_event(&f.events, "handler");
    let got: Vec<String> = (0..6).map(|_| log.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(
        got,
        ["a start", "b start", "c start", "c end", "b end", "a end"]
    );
    f.stop();
    assert!(log.try_recv().is_err(), "an extra hook ran");
}

#[test]
fn the_handler_runs_between_the_starts_and_the_ends() {
    // One log for the interceptors and the handler: the handler's line sits in the middle.
    let handled = Arc::new(AtomicUsize::new(0));
    let (tx, log) = unbounded();
    let server = Server::builder()
        .intercept(Named {
            name: "a",
            log: tx.clone(),
        })
        .intercept(Named {
            name: "b",
            log: tx.clone(),
        })
        .add_service(service(handled, tx))
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    ch.unary::<_, Text>("/test.Icpt/Who", Request::new(Text { s: "x".into() }))
        .unwrap();
    let got: Vec<String> = (0..5).map(|_| log.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(got, ["a start", "b start", "handler", "b end", "a end"]);
}

#[test]
fn a_rejection_of_each_kind_skips_the_handler_and_reaches_the_client() {
    let (end_tx, ends) = unbounded();
    let f = start(|b| b.intercept(Recorder(end_tx)).intercept(deny_marked));
    let ch = &f.ch;

    let e = ch
        .unary::<_, Text>(
            "/test.Icpt/Who",
            Request::with_options(Text { s: "x".into() }, deny()),
        )
        .unwrap_err();
    assert_denied(&e, "unary");
    let e = first_error(
        ch.server_streaming::<_, Num>("/test.Icpt/Count", Request::with_options(num(3), deny())),
    );
    assert_denied(&e, "server streaming");
    let e = ch
        .client_streaming::<_, Num, _>(
            "/test.Icpt/Sum",
            Request::with_options((1..=3).map(num), deny()),
        )
        .unwrap_err();
    assert_denied(&e, "client streaming");
    let e = first_error(ch.bidi_streaming::<_, Num, _>(
        "/test.Icpt/Echo",
        Request::with_options((1..=3).map(num), deny()),
    ));
    assert_denied(&e, "bidi streaming");

    // The earlier interceptor's end hook heard each rejection.
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let end = next_end(&ends);
        assert_eq!(end.code, Code::PermissionDenied, "{end:?}");
        assert_eq!(end.message, "x-deny says no");
        assert_eq!(end.sent, 0, "{end:?}");
        kinds.push(end.kind);
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        [
            MethodKind::BidiStreaming,
            MethodKind::ClientStreaming,
            MethodKind::ServerStreaming,
            MethodKind::Unary
        ]
    );
    assert_eq!(f.handled(), 0, "a handler ran for a rejected call");

    // Not marked: every kind goes through.
    assert_eq!(
        ch.client_streaming::<_, Num, _>("/test.Icpt/Sum", Request::new((1..=3).map(num)))
            .unwrap()
            .into_inner()
            .n,
        6
    );
    assert_eq!(f.handled(), 1);
}

#[test]
fn one_worker_keeps_serving_after_many_rejections() {
    // The worker is held only while the interceptor runs: with one worker, hundreds of
    // rejected calls of every kind leave it free for the next call.
    let f = start(|b| b.max_workers(1).intercept(deny_marked));
    for i in 0..200 {
        let e = match i % 4 {
            0 => {
                f.ch.unary::<_, Num>("/test.Icpt/Panic", Request::with_options(num(1), deny()))
                    .unwrap_err()
            }
            1 => first_error(f.ch.server_streaming::<_, Num>(
                "/test.Icpt/Count",
                Request::with_options(num(1), deny()),
            )),
            2 => {
                f.ch.client_streaming::<_, Num, _>(
                    "/test.Icpt/Sum",
                    Request::with_options((0..1).map(num), deny()),
                )
                .unwrap_err()
            }
            _ => first_error(f.ch.bidi_streaming::<_, Num, _>(
                "/test.Icpt/Echo",
                Request::with_options((0..1).map(num), deny()),
            )),
        };
        assert_eq!(e.code(), Code::PermissionDenied, "call {i}: {e}");
    }
    let got: Vec<i64> = f
        .ch
        .server_streaming::<_, Num>("/test.Icpt/Count", Request::new(num(3)).with_timeout(WAIT))
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(f.handled(), 1);
}

#[test]
fn the_end_hook_sees_every_call_once_with_its_status_and_counts() {
    end_hooks_see_every_call_once(true);
}

#[test]
fn the_end_hook_sees_every_call_once_when_every_handler_runs_on_the_pool() {
    end_hooks_see_every_call_once(false);
}

fn end_hooks_see_every_call_once(inline: bool) {
    let (end_tx, ends) = unbounded();
    let f = start(|b| {
        b.max_workers(4)
            .inline_unary(inline)
            .intercept(Recorder(end_tx))
    });
    let ch = &f.ch;
    let mut calls = 0;

    // Unary: OK, a handler error, a handler panic.
    ch.unary::<_, Text>("/test.Icpt/Who", Request::new(Text { s: "x".into() }))
        .unwrap();
    let e = next_end(&ends);
    assert_eq!(
        (e.method.as_str(), e.kind, e.code, e.received, e.sent),
        ("/test.Icpt/Who", MethodKind::Unary, Code::Ok, 1, 1),
        "{e:?}"
    );
    assert!(e.duration < WAIT, "{e:?}");
    let _ = ch.unary::<_, Num>("/test.Icpt/Fail", Request::new(Text { s: "bad".into() }));
    let e = next_end(&ends);
    assert_eq!(
        (e.code, e.message.as_str(), e.sent),
        (Code::InvalidArgument, "bad", 0)
    );
    let _ = ch.unary::<_, Num>("/test.Icpt/Panic", Request::new(num(1)));
    let e = next_end(&ends);
    assert_eq!(e.code, Code::Unknown, "{e:?}");
    assert!(e.message.contains("handler bug"), "{e:?}");
    calls += 3;

    // Deadline exceeded while the handler waits.
    let err = ch
        .unary::<_, Num>(
            "/test.Icpt/WaitForEnd",
            Request::new(num(0)).with_timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    expect_event(&f.events, "started");
    let e = next_end(&ends);
    assert_eq!(e.code, Code::DeadlineExceeded, "{e:?}");
    assert!(e.duration >= Duration::from_millis(150), "{e:?}");

    // Cancelled by the client (RST_STREAM) while the handler waits.
    let call = ch.unary_future::<_, Num>(
        "/test.Icpt/WaitForEnd",
        Request::new(num(0)).with_timeout(WAIT),
    );
    expect_event(&f.events, "started");
    assert!(call.cancel());
    let e = next_end(&ends);
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    calls += 2;

    // Streams: the messages each way are counted.
    let n = ch
        .server_streaming::<_, Num>("/test.Icpt/Count", Request::new(num(5)))
        .unwrap()
        .count();
    assert_eq!(n, 5);
    expect_ok_end(&ends, MethodKind::ServerStreaming, 1, 5);
    ch.client_streaming::<_, Num, _>("/test.Icpt/Sum", Request::new((1..=10).map(num)))
        .unwrap();
    expect_ok_end(&ends, MethodKind::ClientStreaming, 10, 1);
    let n = ch
        .bidi_streaming::<_, Num, _>("/test.Icpt/Echo", Request::new((0..7).map(num)))
        .unwrap()
        .count();
    assert_eq!(n, 7);
    expect_ok_end(&ends, MethodKind::BidiStreaming, 7, 7);
    calls += 3;

    // A server stream the client drops half-way: cancelled, with what was sent by then.
    let mut stream = ch
        .server_streaming::<_, Num>("/test.Icpt/Count", Request::new(num(1_000_000)))
        .unwrap();
    assert_eq!(stream.next().unwrap().unwrap().n, 0);
    drop(stream);
    let e = next_end(&ends);
    assert_eq!(e.code, Code::Cancelled, "{e:?}");
    assert!(e.sent >= 1 && e.sent < 1_000_000, "{e:?}");
    calls += 1;

    // Exactly once: nothing more once every handler has finished.
    f.stop();
    assert!(ends.try_recv().is_err(), "an end hook ran twice");
    assert_eq!(f.handled(), calls);
}

#[test]
fn a_later_rejection_or_a_panicking_interceptor_still_ends_the_earlier_ones() {
    let (end_tx, ends) = unbounded();
    let f = start(|b| {
        b.intercept(Recorder(end_tx))
            .intercept(|call: &mut CallStart<'_>| {
                if call.metadata().contains_key("x-boom") {
                    panic!("interceptor bug");
                }
                Ok(())
            })
            .intercept(deny_marked)
    });
    let e =
        f.ch.unary::<_, Num>("/test.Icpt/Panic", Request::with_options(num(1), deny()))
            .unwrap_err();
    assert_denied(&e, "later rejection");
    assert_eq!(next_end(&ends).code, Code::PermissionDenied);
    let e =
        f.ch.unary::<_, Num>(
            "/test.Icpt/Panic",
            Request::new(num(1)).with_metadata("x-boom", "1"),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Unknown, "{e}");
    assert!(e.message().contains("interceptor bug"), "{e}");
    let end = next_end(&ends);
    assert_eq!(end.code, Code::Unknown);
    assert_eq!(f.handled(), 0);
    f.stop();
    assert!(ends.try_recv().is_err());
}

/// Accepts `x-user: NAME` as the caller, and tells the handler through the context.
fn user_from_metadata(call: &mut CallStart<'_>) -> Result<(), Status> {
    let Some(name) = call.metadata().get("x-user").map(str::to_string) else {
        return Err(Status::unauthenticated("who are you? (x-user)"));
    };
    call.extensions_mut().insert(User(name));
    Ok(())
}

#[test]
fn values_in_the_context_reach_the_handler() {
    let f = start(|b| b.intercept(user_from_metadata));
    let r: Text =
        f.ch.unary(
            "/test.Icpt/Who",
            Request::new(Text { s: "x".into() }).with_metadata("x-user", "alice"),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.s, "x|alice");
    let got: Vec<i64> =
        f.ch.bidi_streaming::<_, Num, _>(
            "/test.Icpt/Echo",
            Request::new((1..=2).map(num)).with_metadata("x-user", "bob"),
        )
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect();
    assert_eq!(got, [3001, 3002]);
    let e =
        f.ch.unary::<_, Text>("/test.Icpt/Who", Request::new(Text { s: "x".into() }))
            .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[test]
fn metadata_added_by_an_interceptor_arrives_beside_the_handlers() {
    let f = start(|b| {
        b.intercept(|call: &mut CallStart<'_>| {
            call.initial_metadata_mut()
                .insert("x-icpt-initial", "i")
                .unwrap();
            call.trailing_metadata_mut()
                .insert_bin("x-icpt-trailing-bin", vec![0u8, 255])
                .unwrap();
            Ok(())
        })
    });
    let resp =
        f.ch.unary::<_, Num>("/test.Icpt/Metadata", Request::new(num(1)))
            .unwrap();
    let (init, trail) = (resp.initial_metadata(), resp.trailing_metadata());
    assert_eq!(init.get("x-icpt-initial"), Some("i"));
    assert_eq!(init.get("x-handler-initial"), Some("h"));
    assert_eq!(
        trail.get_bin("x-icpt-trailing-bin").as_deref(),
        Some(&[0u8, 255][..])
    );
    assert_eq!(trail.get("x-handler-trailing"), Some("h"));
    // On a server stream too (the handler sets none).
    let mut stream =
        f.ch.server_streaming::<_, Num>("/test.Icpt/Count", Request::new(num(2)))
            .unwrap();
    assert_eq!(
        stream
            .initial_metadata()
            .and_then(|m| m.get("x-icpt-initial")),
        Some("i")
    );
    assert_eq!(stream.by_ref().count(), 2);
    let trailing = stream.trailing_metadata().expect("trailers");
    assert!(trailing.get_bin("x-icpt-trailing-bin").is_some());
}

#[test]
fn health_checks_and_watches_are_intercepted_too() {
    let health = HealthReporter::new();
    health.set("svc", ServingStatus::Serving);
    let (seen_tx, seen) = unbounded::<String>();
    let (end_tx, ends) = unbounded();
    let server = Server::builder()
        .intercept(Recorder(end_tx))
        .intercept(move |call: &mut CallStart<'_>| {
            let _ = seen_tx.send(call.method().to_string());
            deny_marked(call)
        })
        .add_service(health.service())
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let client = HealthClient::new(Channel::insecure(&format!("127.0.0.1:{port}")).unwrap());
    let req = || HealthCheckRequest {
        service: "svc".into(),
    };
    assert_eq!(
        client.check(req()).unwrap().status,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        "/grpc.health.v1.Health/Check"
    );
    assert_eq!(next_end(&ends).code, Code::Ok);

    // Watch, a detached stream: rejected, then accepted and ended by the client.
    let e = first_error(client.watch(Request::with_options(req(), deny())));
    assert_denied(&e, "health watch");
    let end = next_end(&ends);
    assert_eq!(
        (end.kind, end.code),
        (MethodKind::ServerStreaming, Code::PermissionDenied)
    );
    let mut watch = client.watch(req()).unwrap();
    assert_eq!(
        watch.next().unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    watch.cancel();
    let end = next_end(&ends);
    assert_eq!(end.method, "/grpc.health.v1.Health/Watch");
    assert_eq!((end.code, end.sent), (Code::Cancelled, 1), "{end:?}");
    assert!(server.stop(None).wait_timeout(WAIT));
    assert!(ends.try_recv().is_err());
}
