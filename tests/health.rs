//! The health service (`grpc.health.v1.Health`) and the detached streams under its `Watch`,
//! between our client and our server on 127.0.0.1: Check, List, Watch (the current status,
//! then every change in order; NOT_SERVING when the server stops), watchers that hold no
//! worker, and rich error details over the wire.
//!
//! Every wait has a deadline; nothing sleeps.

use std::time::{Duration, Instant};

use grpc_sync::error_details::{BadRequest, ErrorDetails, ErrorInfo, FieldViolation, RetryInfo};
use grpc_sync::health::{
    HealthCheckRequest, HealthCheckResponse, HealthClient, HealthListRequest, HealthReporter,
    ServingStatus,
};
use grpc_sync::{
    Channel, Code, Request, ResponseSink, Server, ServerContext, Service, Status, Streaming,
};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    s: String,
}

/// A server with the health service (and `extra`), and a health client on it.
fn start(workers: usize, health: &HealthReporter, extra: Option<Service>) -> (Server, Channel) {
    let mut b = Server::builder()
        .max_workers(workers)
        .add_service(health.service());
    if let Some(svc) = extra {
        b = b.add_service(svc);
    }
    let server = b.build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let channel = Channel::insecure(&format!("127.0.0.1:{port}")).unwrap();
    (server, channel)
}

fn req(service: &str) -> Request<HealthCheckRequest> {
    Request::new(HealthCheckRequest {
        service: service.to_string(),
    })
    .with_timeout(WAIT)
}

/// Waits (with a deadline) until `f` holds, re-checking whenever the scheduler lets us.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// The next status of a watch (the call carries a deadline, so this cannot hang).
fn next_status(watch: &mut Streaming<HealthCheckResponse>) -> ServingStatus {
    watch
        .next()
        .expect("the watch goes on")
        .expect("a status")
        .status()
}

#[test]
fn check_answers_set_statuses_and_not_found_for_unknown_services() {
    let health = HealthReporter::new();
    health.set("a.Up", ServingStatus::Serving);
    health.set("b.Down", ServingStatus::NotServing);
    let (_server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);

    assert_eq!(
        client.check(req("")).unwrap().status(),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check(req("a.Up")).unwrap().status(),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check(req("b.Down")).unwrap().status(),
        ServingStatus::NotServing
    );
    let err = client.check(req("c.Unknown")).unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    health.set("a.Up", ServingStatus::NotServing);
    assert_eq!(
        client.check(req("a.Up")).unwrap().status(),
        ServingStatus::NotServing
    );
    health.clear("a.Up");
    assert_eq!(
        client.check(req("a.Up")).unwrap_err().code(),
        Code::NotFound
    );
}

#[test]
fn list_answers_every_status() {
    let health = HealthReporter::new();
    health.set("a.Up", ServingStatus::Serving);
    health.set("b.Down", ServingStatus::NotServing);
    let (_server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);
    let list = client
        .list(Request::new(HealthListRequest {}).with_timeout(WAIT))
        .unwrap();
    let mut got: Vec<(String, ServingStatus)> = list
        .statuses
        .iter()
        .map(|(k, v)| (k.clone(), v.status()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (String::new(), ServingStatus::Serving),
            ("a.Up".to_string(), ServingStatus::Serving),
            ("b.Down".to_string(), ServingStatus::NotServing),
        ]
    );

    // More than 100 services: RESOURCE_EXHAUSTED, as health.proto says.
    for i in 0..100 {
        health.set(&format!("svc{i}"), ServingStatus::Serving);
    }
    let err = client
        .list(Request::new(HealthListRequest {}).with_timeout(WAIT))
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}

#[test]
fn watch_sends_the_current_status_then_every_change_in_order() {
    let health = HealthReporter::new();
    let (_server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);

    // Unknown: SERVICE_UNKNOWN, and the call stays open.
    let mut watch = client.watch(req("x.Svc")).unwrap();
    assert_eq!(next_status(&mut watch), ServingStatus::ServiceUnknown);
    wait_until("the watcher is registered", || health.watchers() == 1);

    let changes = [
        ServingStatus::Serving,
        ServingStatus::NotServing,
        ServingStatus::Serving,
        ServingStatus::Unknown,
        ServingStatus::NotServing,
    ];
    for s in changes {
        health.set("x.Svc", s);
        // Setting the same status again is no change: nothing is sent for it.
        health.set("x.Svc", s);
    }
    // Another service's changes are not this watcher's business.
    health.set("y.Other", ServingStatus::NotServing);
    health.clear("x.Svc");
    let mut got = Vec::new();
    for _ in 0..changes.len() + 1 {
        got.push(next_status(&mut watch));
    }
    let mut want = changes.to_vec();
    want.push(ServingStatus::ServiceUnknown);
    assert_eq!(got, want);

    // A second watcher of a known service starts from its current status.
    health.set("x.Svc", ServingStatus::Serving);
    assert_eq!(next_status(&mut watch), ServingStatus::Serving);
    let mut second = client.watch(req("x.Svc")).unwrap();
    assert_eq!(next_status(&mut second), ServingStatus::Serving);

    // Dropping the stream cancels the call, and the reporter forgets the watcher.
    drop(watch);
    drop(second);
    wait_until("the watchers are gone", || health.watchers() == 0);
}

#[test]
fn watchers_hold_no_worker() {
    let health = HealthReporter::new();
    health.set("x.Svc", ServingStatus::Serving);
    // Two workers, five watchers: each would hold one if watching took a worker.
    let (server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);
    let mut watches: Vec<_> = (0..5)
        .map(|_| {
            let mut w = client.watch(req("x.Svc")).unwrap();
            assert_eq!(next_status(&mut w), ServingStatus::Serving);
            w
        })
        .collect();
    wait_until("five watchers", || health.watchers() == 5);
    wait_until("no busy worker", || server.pool_stats().busy == 0);
    // The pool is free for other calls meanwhile.
    assert_eq!(
        client.check(req("x.Svc")).unwrap().status(),
        ServingStatus::Serving
    );

    health.set("x.Svc", ServingStatus::NotServing);
    for w in &mut watches {
        assert_eq!(next_status(w), ServingStatus::NotServing);
    }
    assert_eq!(server.pool_stats().busy, 0);
}

#[test]
fn stop_turns_watchers_not_serving_before_the_goaway() {
    let health = HealthReporter::new();
    health.set("x.Svc", ServingStatus::Serving);
    let (server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);
    let mut whole = client.watch(req("")).unwrap();
    let mut one = client.watch(req("x.Svc")).unwrap();
    assert_eq!(next_status(&mut whole), ServingStatus::Serving);
    assert_eq!(next_status(&mut one), ServingStatus::Serving);

    let stopped = server.stop(Some(Duration::from_millis(200)));
    assert_eq!(next_status(&mut whole), ServingStatus::NotServing);
    assert_eq!(next_status(&mut one), ServingStatus::NotServing);
    // After the grace the connections close, and the watches end with an error.
    assert!(stopped.wait_timeout(WAIT), "the server stops");
    let end = one.next();
    assert!(
        matches!(&end, Some(Err(_)) | None),
        "the watch ends: {end:?}"
    );
    // Later sets are ignored.
    health.set("x.Svc", ServingStatus::Serving);
    assert_eq!(health.get("x.Svc"), Some(ServingStatus::NotServing));
}

#[test]
fn enter_graceful_shutdown_is_for_good() {
    let health = HealthReporter::new();
    health.set("x.Svc", ServingStatus::Serving);
    let (_server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);
    let mut watch = client.watch(req("x.Svc")).unwrap();
    assert_eq!(next_status(&mut watch), ServingStatus::Serving);
    health.enter_graceful_shutdown();
    assert_eq!(next_status(&mut watch), ServingStatus::NotServing);
    health.set("x.Svc", ServingStatus::Serving);
    health.set("new.Svc", ServingStatus::Serving);
    assert_eq!(
        client.check(req("x.Svc")).unwrap().status(),
        ServingStatus::NotServing
    );
    assert_eq!(
        client.check(req("")).unwrap().status(),
        ServingStatus::NotServing
    );
    assert_eq!(
        client.check(req("new.Svc")).unwrap_err().code(),
        Code::NotFound
    );
}

#[test]
fn a_watch_past_its_deadline_ends_and_is_forgotten() {
    let health = HealthReporter::new();
    let (_server, channel) = start(2, &health, None);
    let client = HealthClient::new(channel);
    let mut watch = client
        .watch(
            Request::new(HealthCheckRequest {
                service: String::new(),
            })
            .with_timeout(Duration::from_millis(100)),
        )
        .unwrap();
    assert_eq!(next_status(&mut watch), ServingStatus::Serving);
    let end = watch.next();
    assert!(
        matches!(&end, Some(Err(s)) if s.code() == Code::DeadlineExceeded),
        "{end:?}"
    );
    wait_until("the watcher is forgotten", || health.watchers() == 0);
}

/// A detached stream that panics in its handler answers UNKNOWN; one that finishes at once
/// answers its status; messages sent from another thread arrive.
#[test]
fn detached_streams_from_other_threads() {
    let health = HealthReporter::new();
    let svc = Service::builder("test.Detached")
        .server_streaming_detached("Panic", |_: Text, _sink: ResponseSink<Text>| {
            panic!("boom");
        })
        .server_streaming_detached("Fail", |_: Text, sink: ResponseSink<Text>| {
            sink.finish(Status::invalid_argument("no"));
        })
        .server_streaming_detached("Later", |m: Text, mut sink: ResponseSink<Text>| {
            std::thread::spawn(move || {
                for i in 0..3 {
                    let _ = sink.try_send(&Text {
                        s: format!("{}{i}", m.s),
                    });
                }
                sink.finish(Status::ok(""));
            });
        })
        .build();
    let (server, channel) = start(1, &health, Some(svc));
    let call = |path: &'static str| -> Result<Vec<String>, Status> {
        channel
            .server_streaming::<_, Text>(
                path,
                Request::new(Text { s: "m".into() }).with_timeout(WAIT),
            )?
            .map(|r| r.map(|t| t.s))
            .collect()
    };
    let err = call("/test.Detached/Panic").unwrap_err();
    assert_eq!(err.code(), Code::Unknown, "{err:?}");
    let err = call("/test.Detached/Fail").unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(call("/test.Detached/Later").unwrap(), ["m0", "m1", "m2"]);
    wait_until("the panic is counted", || server.pool_stats().panicked == 1);
}

#[test]
fn rich_error_details_cross_the_wire() {
    let health = HealthReporter::new();
    let svc = Service::builder("test.Rich")
        .unary(
            "Fail",
            |m: Text, _: &ServerContext| -> Result<Text, Status> {
                Err(Status::with_error_details(
                    Code::InvalidArgument,
                    "bad request",
                    ErrorDetails::new()
                        .with(BadRequest {
                            field_violations: vec![FieldViolation::new("s", m.s)],
                        })
                        .with(ErrorInfo {
                            reason: "EMPTY".into(),
                            domain: "test".into(),
                            metadata: Default::default(),
                        })
                        .with(RetryInfo::after(Duration::from_secs(2))),
                ))
            },
        )
        .build();
    let (_server, channel) = start(1, &health, Some(svc));
    let err = channel
        .unary::<_, Text>(
            "/test.Rich/Fail",
            Request::new(Text { s: "why".into() }).with_timeout(WAIT),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "bad request");
    let details = err.error_details().unwrap();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0],
        FieldViolation::new("s", "why")
    );
    assert_eq!(details.error_info().unwrap().reason, "EMPTY");
    assert_eq!(
        details
            .retry_info()
            .unwrap()
            .retry_delay
            .unwrap()
            .to_duration(),
        Duration::from_secs(2)
    );
}

/// A watcher whose client does not take its updates (its stream window, 20 bytes here, is
/// full and never given back) is ended with UNAVAILABLE rather than waited for: `set` never
/// blocks, and the reporter forgets it.
#[test]
fn a_watcher_that_does_not_read_is_ended_with_unavailable() {
    use std::io::{Read, Write};

    use grpc_sync::h2::conn::{Connection, Event, Role};
    use grpc_sync::h2::hpack::Header;
    use grpc_sync::h2::settings::Config;
    use prost::Message;

    let health = HealthReporter::new();
    health.set("x.Svc", ServingStatus::Serving);
    let (server, _channel) = start(2, &health, None);
    let port = server.local_addrs()[0].port();

    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut conn = Connection::new(
        Role::Client,
        Config {
            initial_window_size: 20,
            ..Config::default()
        },
    );
    let h = |n: &'static str, v: &'static str| Header::from_static(n.as_bytes(), v.as_bytes());
    let head = [
        h(":method", "POST"),
        h(":scheme", "http"),
        h(":path", "/grpc.health.v1.Health/Watch"),
        h(":authority", "localhost"),
        h("content-type", "application/grpc"),
        h("te", "trailers"),
    ];
    let req = HealthCheckRequest {
        service: "x.Svc".into(),
    };
    let mut body = vec![0u8];
    body.extend_from_slice(&(req.encoded_len() as u32).to_be_bytes());
    body.extend_from_slice(&req.encode_to_vec());
    let id = conn.open_stream(&head, false).unwrap();
    assert_eq!(conn.send_data(id, &body, true).unwrap(), body.len());
    sock.write_all(&conn.take_output()).unwrap();

    // Reads until `done` says so; nothing is ever given back to the stream's window.
    let mut data = 0;
    let mut trailers = None;
    let mut buf = [0u8; 4096];
    let mut pump = |data: &mut usize, trailers: &mut Option<Vec<Header>>| {
        let n = sock.read(&mut buf).expect("the server answers in time");
        assert!(n > 0, "the server closed the connection");
        conn.recv(&buf[..n], Instant::now()).unwrap();
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Data { data: d, .. } => *data += d.len(),
                Event::Headers {
                    headers,
                    end_stream: true,
                    ..
                } => *trailers = Some(headers),
                _ => {}
            }
        }
        let out = conn.take_output();
        if !out.is_empty() {
            sock.write_all(&out).unwrap();
        }
    };
    // The current status: 7 bytes of the 20.
    let deadline = Instant::now() + WAIT;
    while data < 7 {
        assert!(Instant::now() < deadline, "no first status");
        pump(&mut data, &mut trailers);
    }
    wait_until("the watcher is registered", || health.watchers() == 1);
    // One more change fits (14 of the 20 bytes), the next does not: the watch ends.
    for s in [
        ServingStatus::NotServing,
        ServingStatus::Serving,
        ServingStatus::NotServing,
    ] {
        health.set("x.Svc", s);
    }
    assert_eq!(health.watchers(), 0, "the watcher is ended at once");
    while trailers.is_none() {
        assert!(Instant::now() < deadline, "no trailers");
        pump(&mut data, &mut trailers);
    }
    let trailers = trailers.unwrap();
    let status = trailers
        .iter()
        .find(|f| &f.name[..] == b"grpc-status")
        .map(|f| f.value.clone());
    assert_eq!(status.as_deref(), Some(&b"14"[..]), "{trailers:?}");
    assert_eq!(data, 14, "two statuses of 7 bytes");
}
