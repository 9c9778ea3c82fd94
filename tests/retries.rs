//! Client retries (gRFC A6) against our server on 127.0.0.1:0: a server whose methods fail
//! the attempts a plan says (trailers-only errors, with or without a pushback) records each
//! attempt it sees — its `grpc-previous-rpc-attempts`, when it came, how many request messages
//! it read — and the tests check what our client did: how many attempts, with which headers,
//! how far apart, and the status it ended with. Every call has a deadline; nothing sleeps to
//! wait. The last test has grpcio's client (`tests/python/retry_client.py`) make the same calls
//! with the same service config and compares what the server saw of both.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver};
use grpc_sync::client::{CallEnd, ClientInterceptor};
use grpc_sync::server::ResponseStream;
use grpc_sync::{
    Channel, Code, MetadataMap, Request, Server, ServerContext, Service, Status, Streaming,
};
use support::msg::{num, text, Num, Text};

const WAIT: Duration = Duration::from_secs(10);

/// What the server saw of one attempt.
#[derive(Debug, Clone)]
struct Attempt {
    method: &'static str,
    /// Its `grpc-previous-rpc-attempts`.
    previous: Option<String>,
    at: Instant,
    /// Request messages read before answering.
    messages: usize,
}

/// How the server answers attempt `i` (counted over all its calls): `None` to succeed, or a
/// code and an optional `grpc-retry-pushback-ms`.
type Plan = Arc<dyn Fn(usize) -> Option<(Code, Option<&'static str>)> + Send + Sync>;

struct TestServer {
    _server: Server,
    port: u16,
    attempts: Receiver<Attempt>,
}

impl TestServer {
    fn channel(&self, config: &str) -> Channel {
        Channel::builder(&format!("127.0.0.1:{}", self.port))
            .service_config(config)
            .build()
            .unwrap()
    }

    /// Every attempt recorded so far (the server records one before it answers it, so all of
    /// a finished call's attempts are there).
    fn seen(&self) -> Vec<Attempt> {
        self.attempts.try_iter().collect()
    }

    fn previous(&self) -> Vec<Option<String>> {
        self.seen().into_iter().map(|a| a.previous).collect()
    }
}

fn start(
    plan: impl Fn(usize) -> Option<(Code, Option<&'static str>)> + Send + Sync + 'static,
) -> TestServer {
    let plan: Plan = Arc::new(plan);
    let (tx, rx) = unbounded();
    let count = Arc::new(AtomicUsize::new(0));
    // Records the attempt and answers it as the plan says.
    let answer = move |method: &'static str, ctx: &ServerContext, messages: usize| {
        let i = count.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(Attempt {
            method,
            previous: ctx
                .metadata()
                .get("grpc-previous-rpc-attempts")
                .map(str::to_string),
            at: Instant::now(),
            messages,
        });
        match plan(i) {
            None => Ok(()),
            Some((code, pushback)) => {
                if let Some(ms) = pushback {
                    let mut t = MetadataMap::new();
                    t.insert("grpc-retry-pushback-ms", ms).unwrap();
                    ctx.set_trailing_metadata(t);
                }
                Err(Status::new(code, format!("attempt {i} failed")))
            }
        }
    };
    let answer = Arc::new(answer);
    let (a1, a2, a3, a4, a5, a6) = (
        answer.clone(),
        answer.clone(),
        answer.clone(),
        answer.clone(),
        answer.clone(),
        answer.clone(),
    );
    let service = Service::builder("test.Retry")
        .unary("Echo", move |m: Num, ctx: &ServerContext| {
            answer("Echo", ctx, 1)?;
            Ok(m)
        })
        .unary("Size", move |m: Text, ctx: &ServerContext| {
            a6("Size", ctx, 1)?;
            Ok(num(m.s.len() as i64))
        })
        .unary("LateFail", move |_m: Num, ctx: &ServerContext| {
            // Response headers first: the call is committed, whatever follows.
            ctx.send_initial_metadata(MetadataMap::new())?;
            a1("LateFail", ctx, 1)?;
            Err::<Num, _>(Status::unavailable("failed after the headers"))
        })
        .unary("Hang", move |m: Num, ctx: &ServerContext| {
            let first = a2("Hang", ctx, 1);
            first?;
            // Later attempts answer only once the call is dead (its deadline), bounded by WAIT.
            let (tx, rx) = bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            Ok(m)
        })
        .client_streaming("Sum", move |reqs: Streaming<Text>, ctx: &ServerContext| {
            let mut n = 0;
            for r in reqs {
                r?;
                n += 1;
            }
            a3("Sum", ctx, n)?;
            Ok(num(n as i64))
        })
        .server_streaming_fn("Count", move |m: Num, ctx: &ServerContext| {
            a4("Count", ctx, 1)?;
            let it: ResponseStream<'_, Num> = Box::new((0..m.n).map(|i| Ok(num(i))));
            Ok(it)
        })
        .bidi_streaming_fn("Chat", move |reqs: Streaming<Text>, ctx: &ServerContext| {
            let got: Vec<Text> = reqs.collect::<Result<_, _>>()?;
            a5("Chat", ctx, got.len())?;
            let it: ResponseStream<'_, Text> = Box::new(got.into_iter().map(Ok));
            Ok(it)
        })
        .build();
    let server = Server::builder().add_service(service).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    TestServer {
        _server: server,
        port,
        attempts: rx,
    }
}

/// A service config retrying every `test.Retry` method on `codes`, with short back-offs, and
/// `extra` top-level fields (e.g. `retryThrottling`).
fn config(max_attempts: u32, codes: &str, extra: &str) -> String {
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "test.Retry"}}],
            "retryPolicy": {{"maxAttempts": {max_attempts}, "initialBackoff": "0.01s",
                            "maxBackoff": "0.05s", "backoffMultiplier": 2,
                            "retryableStatusCodes": [{codes}]}}}}]{extra}}}"#
    )
}

fn fail_first(n: usize, code: Code) -> impl Fn(usize) -> Option<(Code, Option<&'static str>)> {
    move |i| (i < n).then_some((code, None))
}

fn unary(ch: &Channel, method: &'static str) -> Result<Num, Status> {
    ch.unary(method, Request::new(num(7)).with_timeout(WAIT))
        .map(|r| r.into_inner())
}

fn previous(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn a_unary_call_is_retried_until_it_succeeds_with_the_attempt_count_sent() {
    let s = start(fail_first(2, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    assert_eq!(unary(&ch, "/test.Retry/Echo").unwrap().n, 7);
    assert_eq!(s.previous(), previous(&[None, Some("1"), Some("2")]));
}

#[test]
fn max_attempts_bounds_the_attempts() {
    let s = start(fail_first(usize::MAX, Code::Unavailable));
    let ch = s.channel(&config(2, r#""UNAVAILABLE""#, ""));
    let e = unary(&ch, "/test.Retry/Echo").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(e.message(), "attempt 1 failed");
    assert_eq!(s.previous(), previous(&[None, Some("1")]));
}

#[test]
fn codes_are_matched_by_name_in_any_case_or_number() {
    let s = start(fail_first(2, Code::Aborted));
    let ch = s.channel(&config(3, r#""unavailable", 10"#, ""));
    assert_eq!(unary(&ch, "/test.Retry/Echo").unwrap().n, 7);
    assert_eq!(s.seen().len(), 3);
}

#[test]
fn a_code_not_listed_is_not_retried() {
    let s = start(fail_first(1, Code::Internal));
    let ch = s.channel(&config(5, r#""UNAVAILABLE""#, ""));
    let e = unary(&ch, "/test.Retry/Echo").unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn a_failure_after_the_response_headers_is_not_retried() {
    let s = start(|_| None);
    let ch = s.channel(&config(5, r#""UNAVAILABLE""#, ""));
    let e = unary(&ch, "/test.Retry/LateFail").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(e.message(), "failed after the headers");
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn a_pushback_sets_the_wait_before_the_next_attempt() {
    let s = start(|i| (i == 0).then_some((Code::Unavailable, Some("300"))));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    assert_eq!(unary(&ch, "/test.Retry/Echo").unwrap().n, 7);
    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(300), "{gap:?}");
}

#[test]
fn a_negative_pushback_stops_retries() {
    let s = start(|_| Some((Code::Unavailable, Some("-1"))));
    let ch = s.channel(&config(5, r#""UNAVAILABLE""#, ""));
    let e = unary(&ch, "/test.Retry/Echo").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn the_throttle_stops_retries_once_half_the_tokens_are_gone() {
    let s = start(fail_first(usize::MAX, Code::Unavailable));
    let ch = s.channel(&config(
        5,
        r#""UNAVAILABLE""#,
        r#", "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}"#,
    ));
    // 10 tokens: the first call's five failed attempts leave 5, which is not above 10 / 2, so
    // the next calls make one attempt each.
    let mut per_call = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        last = Some(unary(&ch, "/test.Retry/Echo").unwrap_err());
        per_call.push(s.seen().len());
    }
    assert_eq!(per_call, [5, 1, 1]);
    let e = last.unwrap();
    assert!(e.message().contains("throttled"), "{e}");
    // Another channel has its own throttle.
    let other = s.channel(&config(2, r#""UNAVAILABLE""#, ""));
    let _ = unary(&other, "/test.Retry/Echo").unwrap_err();
    assert_eq!(s.seen().len(), 2);
}

#[test]
fn a_client_stream_is_replayed_on_the_retry() {
    let s = start(fail_first(1, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let reqs = ["a", "b", "c"].map(text);
    let r: Num = ch
        .client_streaming(
            "/test.Retry/Sum",
            Request::new(reqs.into_iter()).with_timeout(WAIT),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 3);
    let seen = s.seen();
    assert_eq!(
        seen.iter()
            .map(|a| (a.messages, a.previous.clone()))
            .collect::<Vec<_>>(),
        [(3, None), (3, Some("1".to_string()))]
    );
}

/// 30 messages of 10 KiB: 300 KiB of request, over the 256 KiB a call keeps by default.
fn big_stream() -> impl Iterator<Item = Text> + Send {
    (0..30).map(|_| text(&"x".repeat(10 * 1024)))
}

#[test]
fn a_client_stream_over_the_retry_buffer_is_not_retried_and_says_so() {
    let s = start(fail_first(usize::MAX, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let e = ch
        .client_streaming::<_, Num, _>(
            "/test.Retry/Sum",
            Request::new(big_stream()).with_timeout(WAIT),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(
        e.message(),
        "attempt 0 failed (not retried: the 301 KiB sent exceed the 256 KiB retry buffer)"
    );
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].messages, 30);

    // A single request over the buffer is sent once, like a call without a policy.
    let e = ch
        .unary::<_, Num>(
            "/test.Retry/Size",
            Request::new(text(&"x".repeat(300 * 1024))).with_timeout(WAIT),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn a_larger_retry_buffer_lets_the_big_stream_retry() {
    let s = start(fail_first(1, Code::Unavailable));
    let ch = Channel::builder(&format!("127.0.0.1:{}", s.port))
        .options([("grpc.per_rpc_retry_buffer_size", 1 << 20)])
        .unwrap()
        .service_config(&config(3, r#""UNAVAILABLE""#, ""))
        .build()
        .unwrap();
    let r: Num = ch
        .client_streaming(
            "/test.Retry/Sum",
            Request::new(big_stream()).with_timeout(WAIT),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 30);
    let seen: Vec<usize> = s.seen().iter().map(|a| a.messages).collect();
    assert_eq!(seen, [30, 30]);
}

#[test]
fn a_server_stream_is_retried_before_its_headers() {
    let s = start(fail_first(2, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let got: Vec<i64> = ch
        .server_streaming::<_, Num>("/test.Retry/Count", Request::new(num(3)).with_timeout(WAIT))
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(s.previous(), previous(&[None, Some("1"), Some("2")]));
}

#[test]
fn a_bidi_stream_is_replayed_and_retried_before_its_headers() {
    let s = start(fail_first(1, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let mut responses = ch
        .bidi_streaming::<_, Text, _>(
            "/test.Retry/Chat",
            Request::new(["x", "y", "z"].map(text).into_iter()).with_timeout(WAIT),
        )
        .unwrap();
    // The initial metadata comes from the attempt that succeeded.
    assert!(responses.initial_metadata().is_some());
    let got: Vec<String> = responses.map(|r| r.unwrap().s).collect();
    assert_eq!(got, ["x", "y", "z"]);
    let seen: Vec<_> = s.seen().iter().map(|a| (a.method, a.messages)).collect();
    assert_eq!(seen, [("Chat", 3), ("Chat", 3)]);
}

#[test]
fn the_deadline_bounds_every_attempt() {
    // The second attempt hangs: the call ends at its deadline, not with a late answer.
    let s = start(fail_first(1, Code::Unavailable));
    let ch = s.channel(&config(5, r#""UNAVAILABLE""#, ""));
    let t0 = Instant::now();
    let e = ch
        .unary::<_, Num>(
            "/test.Retry/Hang",
            Request::new(num(1)).with_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t0.elapsed() < WAIT / 2, "{:?}", t0.elapsed());
    assert_eq!(s.seen().len(), 2);

    // A pushback past the deadline: no attempt is made that could only start after it.
    let s = start(|_| Some((Code::Unavailable, Some("10000"))));
    let ch = s.channel(&config(5, r#""UNAVAILABLE""#, ""));
    let t0 = Instant::now();
    let e = ch
        .unary::<_, Num>(
            "/test.Retry/Echo",
            Request::new(num(1)).with_timeout(Duration::from_millis(500)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(e.message().contains("attempt 0 failed"), "{e}");
    assert!(t0.elapsed() < WAIT / 2, "{:?}", t0.elapsed());
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn retried_futures_complete_with_the_last_attempt() {
    let s = start(fail_first(2, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let f = ch.unary_future::<_, Num>("/test.Retry/Echo", Request::new(num(5)).with_timeout(WAIT));
    let (tx, rx) = bounded(1);
    f.add_done_callback(move |f| {
        let _ = tx.send(f.result().map(|r| r.into_inner().n));
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap().unwrap(), 5);
    assert!(f.is_done());
    assert_eq!(f.result().unwrap().into_inner().n, 5);
    assert_eq!(s.seen().len(), 3);

    // A client-streaming future: replayed on its own thread.
    let s = start(fail_first(1, Code::Unavailable));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let f = ch.client_streaming_future::<_, Num, _>(
        "/test.Retry/Sum",
        Request::new(["a", "b"].map(text).into_iter()).with_timeout(WAIT),
    );
    assert_eq!(f.result().unwrap().into_inner().n, 2);
    let seen: Vec<usize> = s.seen().iter().map(|a| a.messages).collect();
    assert_eq!(seen, [2, 2]);

    // A cancel ends the back-off and the call.
    let s = start(|_| Some((Code::Unavailable, Some("5000"))));
    let ch = s.channel(&config(3, r#""UNAVAILABLE""#, ""));
    let f = ch.unary_future::<_, Num>("/test.Retry/Echo", Request::new(num(5)).with_timeout(WAIT));
    // The first attempt is seen: the future is in its back-off.
    let first = s.attempts.recv_timeout(WAIT).unwrap();
    assert_eq!(first.previous, None);
    assert!(f.cancel());
    assert_eq!(f.result().unwrap_err().code(), Code::Cancelled);
}

/// Counts `after_call`s and keeps the last status.
struct Ends(crossbeam_channel::Sender<Code>);

impl ClientInterceptor for Ends {
    fn after_call(&self, end: &CallEnd<'_>) {
        let _ = self.0.send(end.status().code());
    }
}

#[test]
fn interceptors_see_one_end_per_call() {
    let s = start(fail_first(2, Code::Unavailable));
    let (tx, ends) = unbounded();
    let ch = s
        .channel(&config(3, r#""UNAVAILABLE""#, ""))
        .with_interceptor(Ends(tx));
    assert_eq!(unary(&ch, "/test.Retry/Echo").unwrap().n, 7);
    assert_eq!(ends.try_iter().collect::<Vec<_>>(), [Code::Ok]);

    let s = start(fail_first(2, Code::Unavailable));
    let (tx, ends) = unbounded();
    let ch = s
        .channel(&config(3, r#""UNAVAILABLE""#, ""))
        .with_interceptor(Ends(tx));
    let n = ch
        .server_streaming::<_, Num>("/test.Retry/Count", Request::new(num(2)).with_timeout(WAIT))
        .unwrap()
        .map(|r| r.unwrap().n)
        .collect::<Vec<_>>();
    assert_eq!(n, [0, 1]);
    assert_eq!(ends.try_iter().collect::<Vec<_>>(), [Code::Ok]);

    // Retries used up: the one end is the last attempt's failure.
    let s = start(fail_first(usize::MAX, Code::Unavailable));
    let (tx, ends) = unbounded();
    let ch = s
        .channel(&config(2, r#""UNAVAILABLE""#, ""))
        .with_interceptor(Ends(tx));
    let mut stream = ch
        .server_streaming::<_, Num>("/test.Retry/Count", Request::new(num(2)).with_timeout(WAIT))
        .unwrap();
    assert_eq!(
        stream.next().unwrap().unwrap_err().code(),
        Code::Unavailable
    );
    assert!(stream.next().is_none());
    assert_eq!(ends.try_iter().collect::<Vec<_>>(), [Code::Unavailable]);
    assert_eq!(s.seen().len(), 2);
}

#[test]
fn retries_can_be_turned_off() {
    let s = start(fail_first(usize::MAX, Code::Unavailable));
    let addr = format!("127.0.0.1:{}", s.port);
    let config = config(5, r#""UNAVAILABLE""#, "");
    let by_method = Channel::builder(&addr)
        .service_config(&config)
        .enable_retries(false)
        .build()
        .unwrap();
    let by_option = Channel::builder(&addr)
        .options([("grpc.enable_retries", 0)])
        .unwrap()
        .service_config(&config)
        .build()
        .unwrap();
    for ch in [by_method, by_option] {
        let e = unary(&ch, "/test.Retry/Echo").unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(s.seen().len(), 1);
    }
}

#[test]
fn a_bad_retry_policy_fails_the_build_naming_the_field() {
    let e = Channel::builder("127.0.0.1:1")
        .service_config(&config(1, r#""UNAVAILABLE""#, ""))
        .build()
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "invalid service config: methodConfig[0].retryPolicy.maxAttempts: must be at least 2"
    );
}

/// grpcio's client and ours, with the same service config, against a server that fails the
/// first two attempts of every call: the server sees the same attempts from both.
#[test]
fn grpcio_and_our_client_make_the_same_attempts() {
    // Attempts 0 and 1 of every call fail: the counter restarts per call through `seen`.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let s = start(move |_| {
        let i = c.fetch_add(1, Ordering::SeqCst) % 3;
        (i < 2).then_some((Code::Unavailable, None))
    });
    let config = config(3, r#""UNAVAILABLE""#, "");
    // Ours: two calls.
    let ch = s.channel(&config);
    for _ in 0..2 {
        assert_eq!(unary(&ch, "/test.Retry/Echo").unwrap().n, 7);
    }
    let ours = s.previous();
    // grpcio's: the same two calls.
    let out = support::python::run_script(
        "retry_client.py",
        &[
            "--port",
            &s.port.to_string(),
            "--config",
            &config,
            "--calls",
            "2",
        ],
    );
    out.assert_success("retry_client.py");
    let theirs = s.previous();
    let expected = previous(&[None, Some("1"), Some("2"), None, Some("1"), Some("2")]);
    assert_eq!(theirs, expected, "grpcio's client:\n{}", out.stdout);
    assert_eq!(ours, expected);
}

#[test]
fn attempts_that_cannot_connect_are_failed_attempts() {
    // Nothing listens there: every attempt fails with UNAVAILABLE before it is sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = Channel::builder(&format!("127.0.0.1:{port}"))
        .service_config(&config(3, r#""UNAVAILABLE""#, ""))
        .build()
        .unwrap();
    let e = unary(&ch, "/test.Retry/Echo").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    let e = ch
        .server_streaming::<_, Num>("/test.Retry/Count", Request::new(num(1)).with_timeout(WAIT))
        .err()
        .map(|e| e.code());
    assert_eq!(e, Some(Code::Unavailable));
}

#[test]
fn a_client_stream_whose_first_stream_cannot_open_is_retried_by_the_policy() {
    // The first lookup names a port where nothing listens; the lookup that the failed connect
    // asks for starts the server and names it. With a retry policy the call's next attempt
    // reaches it; the whole stream arrives once, on that attempt.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = Arc::new(std::sync::Mutex::new(None::<TestServer>));
    let lookups = Arc::new(AtomicUsize::new(0));
    let (srv, n) = (server.clone(), lookups.clone());
    let ch = Channel::builder("retry-test:1")
        .resolver(move || {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                return Ok(vec![closed]);
            }
            let mut g = srv.lock().unwrap();
            let s = g.get_or_insert_with(|| start(|_| None));
            Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], s.port))])
        })
        .min_time_between_resolutions(Duration::ZERO)
        .backoff(grpc_sync::client::BackoffConfig {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            ..Default::default()
        })
        .service_config(
            r#"{"methodConfig": [{"name": [{"service": "test.Retry"}],
                "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "0.5s",
                                "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
        )
        .build()
        .unwrap();
    let reqs = ["a", "b", "c"].map(text);
    let r: Num = ch
        .client_streaming(
            "/test.Retry/Sum",
            Request::new(reqs.into_iter()).with_timeout(WAIT),
        )
        .unwrap()
        .into_inner();
    assert_eq!(r.n, 3);
    assert!(lookups.load(Ordering::SeqCst) >= 2);
    let seen = server.lock().unwrap().as_ref().unwrap().seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].messages, 3);
    // The attempt that reached the server was not the first.
    assert!(seen[0].previous.is_some(), "{seen:?}");
}
