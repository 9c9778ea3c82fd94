//! Hedged unary calls (gRFC A6 `hedgingPolicy`) against our servers on 127.0.0.1:0. A plan
//! says how the server answers each attempt (counted over all its calls): at once, with an
//! error (and maybe a `grpc-retry-pushback-ms`), or not until the client cancels it. The
//! server reports each attempt as it starts (its `grpc-previous-rpc-attempts`, its port) and
//! each hung attempt the client cancelled; the tests check what our client did. Every call
//! has a deadline; nothing sleeps to wait.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use grpc_sync::client::{CallEnd, ClientInterceptor};
use grpc_sync::server::ResponseStream;
use grpc_sync::{Channel, Code, MetadataMap, Request, Server, ServerContext, Service, Status};
use support::msg::{num, text, Num, Text};

const WAIT: Duration = Duration::from_secs(10);

/// How the server answers one attempt.
#[derive(Clone, Copy)]
enum Act {
    Answer,
    /// Trailers-only with this code, and this `grpc-retry-pushback-ms` if any.
    Fail(Code, Option<&'static str>),
    /// Nothing until the call is over (the client cancelled it), bounded by `WAIT`.
    Hang,
}

/// What the server reports.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// Attempt `i` came: its `grpc-previous-rpc-attempts`, the port it came to, when.
    Started {
        i: usize,
        previous: Option<String>,
        port: u16,
        at: Instant,
    },
    /// Hung attempt `i` ended without the server answering: the client cancelled it.
    Cancelled(usize),
}

type Plan = Arc<dyn Fn(usize) -> Act + Send + Sync>;

struct Backend {
    _server: Server,
    port: u16,
}

/// A server with `test.Hedge/Echo` (answering as `plan` says, attempts counted in `count`),
/// `test.Hedge/Count` (a server stream, same plan) and `test.Plain/Ping` (answers its port,
/// for priming a round_robin channel).
fn backend(plan: Plan, count: Arc<AtomicUsize>, events: Sender<Event>) -> Backend {
    let port_cell = Arc::new(AtomicUsize::new(0));
    let (pc1, pc2, pc3) = (port_cell.clone(), port_cell.clone(), port_cell.clone());
    let (plan2, count2, events2) = (plan.clone(), count.clone(), events.clone());
    let act = move |plan: &Plan,
                    count: &AtomicUsize,
                    events: &Sender<Event>,
                    port: u16,
                    ctx: &ServerContext|
          -> Result<(), Status> {
        let i = count.fetch_add(1, Ordering::SeqCst);
        let previous = ctx
            .metadata()
            .get("grpc-previous-rpc-attempts")
            .map(str::to_string);
        let _ = events.send(Event::Started {
            i,
            previous,
            port,
            at: Instant::now(),
        });
        match plan(i) {
            Act::Answer => Ok(()),
            Act::Fail(code, pushback) => {
                if let Some(ms) = pushback {
                    let mut t = MetadataMap::new();
                    t.insert("grpc-retry-pushback-ms", ms).unwrap();
                    ctx.set_trailing_metadata(t);
                }
                Err(Status::new(code, format!("attempt {i} failed")))
            }
            Act::Hang => {
                let (tx, rx) = bounded::<()>(1);
                // add_callback says false when the call is over already (cancelled before
                // the handler got here).
                let registered = ctx.add_callback(move || {
                    let _ = tx.send(());
                });
                if (!registered || rx.recv_timeout(WAIT).is_ok()) && !ctx.is_active() {
                    let _ = events.send(Event::Cancelled(i));
                }
                Err(Status::aborted(format!("attempt {i} hung")))
            }
        }
    };
    let act = Arc::new(act);
    let act2 = act.clone();
    let service = Service::builder("test.Hedge")
        .unary("Echo", move |m: Text, ctx: &ServerContext| {
            let port = pc1.load(Ordering::SeqCst) as u16;
            act(&plan, &count, &events, port, ctx)?;
            Ok(m)
        })
        .server_streaming_fn("Count", move |m: Num, ctx: &ServerContext| {
            let port = pc2.load(Ordering::SeqCst) as u16;
            act2(&plan2, &count2, &events2, port, ctx)?;
            let it: ResponseStream<'_, Num> = Box::new((0..m.n).map(|i| Ok(num(i))));
            Ok(it)
        })
        .build();
    let plain = Service::builder("test.Plain")
        .unary("Ping", move |_m: Num, _ctx: &ServerContext| {
            Ok(num(pc3.load(Ordering::SeqCst) as i64))
        })
        .build();
    let server = Server::builder()
        .add_service(service)
        .add_service(plain)
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    port_cell.store(port as usize, Ordering::SeqCst);
    server.start().unwrap();
    Backend {
        _server: server,
        port,
    }
}

struct TestServer {
    _backend: Backend,
    port: u16,
    events: Receiver<Event>,
}

fn start(plan: impl Fn(usize) -> Act + Send + Sync + 'static) -> TestServer {
    let (tx, rx) = unbounded();
    let b = backend(Arc::new(plan), Arc::default(), tx);
    TestServer {
        port: b.port,
        _backend: b,
        events: rx,
    }
}

impl TestServer {
    fn channel(&self, config: &str) -> Channel {
        Channel::builder(&format!("127.0.0.1:{}", self.port))
            .service_config(config)
            .build()
            .unwrap()
    }

    /// The attempts started so far: `(i, previous)`.
    fn started(&self) -> Vec<(usize, Option<String>)> {
        started(&self.events.try_iter().collect::<Vec<_>>())
    }

    /// Waits for the server to see attempt `i` cancelled; returns the other events that
    /// came before.
    fn wait_cancelled(&self, i: usize) -> Vec<Event> {
        let until = Instant::now() + WAIT;
        let mut others = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Cancelled(n)) if n == i => return others,
                Ok(e) => others.push(e),
                Err(e) => panic!("attempt {i} was not cancelled: {e}"),
            }
        }
    }
}

fn started(events: &[Event]) -> Vec<(usize, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Started { i, previous, .. } => Some((*i, previous.clone())),
            _ => None,
        })
        .collect()
}

/// A service config hedging every `test.Hedge` method, with `extra` top-level fields.
fn config(max_attempts: u32, delay: &str, non_fatal: &str, extra: &str) -> String {
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "test.Hedge"}}],
            "hedgingPolicy": {{"maxAttempts": {max_attempts}, "hedgingDelay": "{delay}",
                              "nonFatalStatusCodes": [{non_fatal}]}}}}]{extra}}}"#
    )
}

fn echo(ch: &Channel, timeout: Duration) -> Result<String, Status> {
    ch.unary::<_, Text>(
        "/test.Hedge/Echo",
        Request::new(text("hi")).with_timeout(timeout),
    )
    .map(|r| r.into_inner().s)
}

fn attempts(list: &[(usize, Option<&str>)]) -> Vec<(usize, Option<String>)> {
    list.iter()
        .map(|(i, p)| (*i, p.map(str::to_string)))
        .collect()
}

#[test]
fn a_slow_first_attempt_is_overtaken_by_the_hedge_and_cancelled() {
    let s = start(|i| if i == 0 { Act::Hang } else { Act::Answer });
    let ch = s.channel(&config(3, "0.1s", r#""UNAVAILABLE""#, ""));
    let call_start = Instant::now();
    assert_eq!(echo(&ch, WAIT).unwrap(), "hi");
    let first = s.events.recv_timeout(WAIT).unwrap();
    let second = s.events.recv_timeout(WAIT).unwrap();
    let (Event::Started { .. }, Event::Started { at: t1, .. }) = (&first, &second) else {
        panic!("{first:?} {second:?}");
    };
    // The hedge leaves 100 ms after the first attempt, which leaves after the call starts.
    // (The server's start times alone would not do: the first request may reach the handler
    // late on a busy machine.)
    assert!(
        *t1 >= call_start + Duration::from_millis(100),
        "{:?}",
        *t1 - call_start
    );
    assert_eq!(
        started(&[first, second]),
        attempts(&[(0, None), (1, Some("1"))])
    );
    let mut later = started(&s.wait_cancelled(0));
    later.extend(s.started());
    assert_eq!(later, [], "the call committed: no third attempt");
}

#[test]
fn a_non_fatal_failure_starts_the_next_attempt_at_once() {
    let s = start(|i| {
        if i == 0 {
            Act::Fail(Code::Unavailable, None)
        } else {
            Act::Answer
        }
    });
    // The delay is past the deadline: only the non-fatal shortcut can start attempt 1.
    let ch = s.channel(&config(3, "60s", r#""UNAVAILABLE""#, ""));
    assert_eq!(echo(&ch, WAIT).unwrap(), "hi");
    assert_eq!(s.started(), attempts(&[(0, None), (1, Some("1"))]));
}

#[test]
fn a_fatal_code_ends_the_call_and_cancels_the_other_attempts() {
    let s = start(|i| {
        if i == 0 {
            Act::Hang
        } else {
            Act::Fail(Code::InvalidArgument, None)
        }
    });
    let ch = s.channel(&config(2, "0.05s", r#""UNAVAILABLE""#, ""));
    let e = echo(&ch, WAIT).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert_eq!(e.message(), "attempt 1 failed");
    let seen = started(&s.wait_cancelled(0));
    assert_eq!(seen, attempts(&[(0, None), (1, Some("1"))]));
}

#[test]
fn max_attempts_bounds_the_attempts_and_the_last_failure_is_the_status() {
    let s = start(|_| Act::Fail(Code::Unavailable, None));
    // 9 counts as 5; each failure starts the next at once.
    let ch = s.channel(&config(9, "60s", "14", ""));
    let e = echo(&ch, WAIT).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(e.message(), "attempt 4 failed");
    assert_eq!(
        s.started(),
        attempts(&[
            (0, None),
            (1, Some("1")),
            (2, Some("2")),
            (3, Some("3")),
            (4, Some("4"))
        ])
    );
}

#[test]
fn the_deadline_bounds_the_call() {
    let s = start(|_| Act::Hang);
    let ch = s.channel(&config(3, "0.05s", r#""UNAVAILABLE""#, ""));
    let t0 = Instant::now();
    let e = echo(&ch, Duration::from_millis(1000)).unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t0.elapsed() < WAIT / 2, "{:?}", t0.elapsed());
    // All three went before the deadline, and none outlives the call.
    let mut seen = 0;
    let mut ended = 0;
    let until = Instant::now() + WAIT;
    while ended < 3 {
        let left = until.saturating_duration_since(Instant::now());
        match s.events.recv_timeout(left).unwrap() {
            Event::Started { .. } => seen += 1,
            Event::Cancelled(_) => ended += 1,
        }
    }
    assert_eq!(seen, 3);
}

#[test]
fn pushbacks_delay_or_stop_the_next_attempt() {
    let s = start(|i| {
        if i == 0 {
            Act::Fail(Code::Unavailable, Some("200"))
        } else {
            Act::Answer
        }
    });
    let ch = s.channel(&config(3, "60s", r#""UNAVAILABLE""#, ""));
    assert_eq!(echo(&ch, WAIT).unwrap(), "hi");
    let ev: Vec<Event> = s.events.try_iter().collect();
    let [Event::Started { at: t0, .. }, Event::Started { at: t1, .. }] = ev.as_slice() else {
        panic!("{ev:?}");
    };
    assert!(*t1 >= *t0 + Duration::from_millis(190), "{:?}", *t1 - *t0);

    // A hedging delay far longer than the test: only the failure could start attempt 1 (at
    // once, for a non-fatal code), and the negative pushback forbids it.
    let s = start(|_| Act::Fail(Code::Unavailable, Some("-1")));
    let ch = s.channel(&config(3, "60s", r#""UNAVAILABLE""#, ""));
    let e = echo(&ch, WAIT).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(s.started(), attempts(&[(0, None)]), "no more attempts");
}

#[test]
fn the_throttle_holds_hedges_back() {
    let s = start(|_| Act::Fail(Code::Unavailable, None));
    // Two tokens: the first failure leaves one, not above half; no hedge goes after it.
    let ch = s.channel(&config(
        3,
        "60s",
        r#""UNAVAILABLE""#,
        r#", "retryThrottling": {"maxTokens": 2, "tokenRatio": 0.1}"#,
    ));
    for _ in 0..2 {
        assert_eq!(echo(&ch, WAIT).unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(s.started(), attempts(&[(0, None), (1, None)]));
}

#[test]
fn a_request_over_the_retry_buffer_is_not_hedged() {
    let s = start(|_| Act::Hang);
    let ch = Channel::builder(&format!("127.0.0.1:{}", s.port))
        .service_config(&config(3, "0.02s", r#""UNAVAILABLE""#, ""))
        .per_rpc_retry_buffer_size(16)
        .build()
        .unwrap();
    let e = ch
        .unary::<_, Text>(
            "/test.Hedge/Echo",
            Request::new(text(&"x".repeat(100))).with_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    let mut seen = started(&s.wait_cancelled(0));
    seen.extend(s.started());
    assert_eq!(seen, attempts(&[(0, None)]));
}

#[test]
fn a_server_stream_with_a_hedging_policy_is_a_plain_call() {
    let s = start(|i| {
        if i == 0 {
            Act::Fail(Code::Unavailable, None)
        } else {
            Act::Answer
        }
    });
    let ch = s.channel(&config(3, "0s", r#""UNAVAILABLE""#, ""));
    let mut stream = ch
        .server_streaming::<_, Num>("/test.Hedge/Count", Request::new(num(2)).with_timeout(WAIT))
        .unwrap();
    assert_eq!(
        stream.next().unwrap().unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(s.started(), attempts(&[(0, None)]));
}

/// Counts `after_call`s.
struct Ends(crossbeam_channel::Sender<Code>);

impl ClientInterceptor for Ends {
    fn after_call(&self, end: &CallEnd<'_>) {
        let _ = self.0.send(end.status().code());
    }
}

#[test]
fn interceptors_see_one_end_per_hedged_call() {
    let s = start(|i| match i {
        0 => Act::Hang,
        1 => Act::Fail(Code::Unavailable, None),
        _ => Act::Answer,
    });
    let (tx, ends) = unbounded();
    let ch = s
        .channel(&config(3, "0.02s", r#""UNAVAILABLE""#, ""))
        .with_interceptor(Ends(tx));
    assert_eq!(echo(&ch, WAIT).unwrap(), "hi");
    assert_eq!(ends.try_iter().collect::<Vec<_>>(), [Code::Ok]);
    let seen = started(&s.wait_cancelled(0));
    assert_eq!(seen, attempts(&[(0, None), (1, Some("1")), (2, Some("2"))]));
}

#[test]
fn hedged_futures_complete_and_cancel() {
    let s = start(|i| if i == 0 { Act::Hang } else { Act::Answer });
    let ch = s.channel(&config(3, "0.05s", r#""UNAVAILABLE""#, ""));
    let f = ch.unary_future::<_, Text>(
        "/test.Hedge/Echo",
        Request::new(text("f")).with_timeout(WAIT),
    );
    assert_eq!(f.result().unwrap().into_inner().s, "f");
    let seen = started(&s.wait_cancelled(0));
    assert_eq!(seen, attempts(&[(0, None), (1, Some("1"))]));

    // A cancel ends the call and every attempt. With "0s" both attempts may reach the server
    // in one read; the second must not wait behind the first, which hangs.
    let s = start(|_| Act::Hang);
    let ch = s.channel(&config(2, "0s", r#""UNAVAILABLE""#, ""));
    let f = ch.unary_future::<_, Text>(
        "/test.Hedge/Echo",
        Request::new(text("f")).with_timeout(WAIT),
    );
    for _ in 0..2 {
        let e = s.events.recv_timeout(WAIT).unwrap();
        assert!(matches!(e, Event::Started { .. }), "{e:?}");
    }
    assert!(f.cancel());
    assert_eq!(f.result().unwrap_err().code(), Code::Cancelled);
    let mut cancelled = vec![];
    for _ in 0..2 {
        match s.events.recv_timeout(WAIT).unwrap() {
            Event::Cancelled(i) => cancelled.push(i),
            e => panic!("{e:?}"),
        }
    }
    cancelled.sort();
    assert_eq!(cancelled, [0, 1]);
}

#[test]
fn round_robin_sends_the_hedges_of_a_call_to_different_servers() {
    let plan: Plan = Arc::new(|i| if i < 2 { Act::Hang } else { Act::Answer });
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, events) = unbounded();
    let backends: Vec<Backend> = (0..3)
        .map(|_| backend(plan.clone(), count.clone(), tx.clone()))
        .collect();
    let addrs: Vec<String> = backends
        .iter()
        .map(|b| format!("127.0.0.1:{}", b.port))
        .collect();
    let ch = Channel::builder(&format!("ipv4:{}", addrs.join(",")))
        .lb_policy("round_robin")
        .service_config(&config(3, "0.05s", r#""UNAVAILABLE""#, ""))
        .build()
        .unwrap();
    // Every subchannel READY first: plain calls until all three servers answered.
    let until = Instant::now() + WAIT;
    let mut ports = std::collections::HashSet::new();
    while ports.len() < 3 {
        assert!(
            Instant::now() < until,
            "not all servers answered: {ports:?}"
        );
        let r = ch.unary::<_, Num>("/test.Plain/Ping", Request::new(num(0)).with_timeout(WAIT));
        ports.insert(r.unwrap().into_inner().n);
    }
    assert_eq!(echo(&ch, WAIT).unwrap(), "hi");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        let left = until.saturating_duration_since(Instant::now());
        if let Event::Started { port, .. } = events.recv_timeout(left).unwrap() {
            assert!(seen.insert(port), "two attempts on port {port}");
        }
    }
}

#[test]
fn a_bad_hedging_policy_fails_the_build_naming_the_field() {
    let build = |config: &str| {
        Channel::builder("127.0.0.1:1")
            .service_config(config)
            .build()
            .unwrap_err()
    };
    let e = build(&config(1, "0s", "", ""));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "invalid service config: methodConfig[0].hedgingPolicy.maxAttempts: must be at least 2"
    );
    let e = build(&config(2, "soon", "", ""));
    assert_eq!(
        e.message(),
        r#"invalid service config: methodConfig[0].hedgingPolicy.hedgingDelay: "soon" is not a duration like "1.5s""#
    );
    let e = build(&config(2, "1s", r#""SOMETIMES""#, ""));
    assert_eq!(
        e.message(),
        r#"invalid service config: methodConfig[0].hedgingPolicy.nonFatalStatusCodes[0]: "SOMETIMES" is not a status code (a name such as "UNAVAILABLE", or 0 to 16)"#
    );
    let both = r#"{"methodConfig": [{"name": [{"service": "test.Hedge"}],
        "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "1s"},
        "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    assert_eq!(
        build(both).message(),
        "invalid service config: methodConfig[0]: has both retryPolicy and hedgingPolicy; a \
         method may have only one"
    );
}
