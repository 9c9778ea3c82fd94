//! Client interceptors and call credentials, our client against our server on 127.0.0.1:
//!
//! - interceptors run in order (and see the end in reverse), for stubs too; metadata they add
//!   reaches the server; a deadline they set is enforced; one that rejects a call sends
//!   nothing (the client's bytes, read through a relay, hold no such request);
//! - the end hook sees every call of every kind once, with its status: success, errors,
//!   deadline exceeded, dropped and cancelled streams and futures;
//! - call credentials reach a TLS server (channel-wide, per call and from an interceptor);
//!   on an insecure channel the call fails UNAUTHENTICATED and the token is not in the bytes
//!   the client sent; a local channel sends them; a failing or panicking plugin fails only
//!   its call (UNAVAILABLE); a plugin blocking past the deadline gives DEADLINE_EXCEEDED.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use grpc_sync::client::{
    intercept_channel, AuthMetadataContext, CallEnd, CallKind, ClientCallDetails, ClientInterceptor,
};
use grpc_sync::h2::hpack::Decoder;
use grpc_sync::{
    CallCredentials, CallOptions, Channel, ChannelCredentials, Code, MetadataMap, Request,
    ResponseStream, Server, ServerContext, ServerCredentials, Service, Status, Streaming,
};

use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::greeter_server::GreeterServer;
use common::pb::helloworld::HelloRequest;
use support::certs::Pki;
use support::msg::{text, Text};

const WAIT: Duration = Duration::from_secs(10);

/// The request metadata a handler saw, as `key=value` entries joined by `;` (ASCII entries,
/// without `user-agent`).
fn seen_metadata(ctx: &ServerContext) -> String {
    ctx.metadata()
        .iter()
        .filter(|(k, _)| *k != "user-agent")
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect::<Vec<_>>()
        .join(";")
}

/// The test service; handlers report to `events` (method names, and what `Deadline` saw).
fn service(events: Sender<String>) -> Service {
    let (e1, e2, e3) = (events.clone(), events.clone(), events);
    Service::builder("test.I")
        .unary("Echo", move |_m: Text, ctx: &ServerContext| {
            let _ = e1.send("Echo".into());
            Ok(text(&seen_metadata(ctx)))
        })
        .unary("Secret", move |_m: Text, _ctx: &ServerContext| {
            let _ = e2.send("Secret".into());
            Ok(text("the server saw it"))
        })
        .unary(
            "Fail",
            |m: Text, _ctx: &ServerContext| -> Result<Text, Status> {
                Err(Status::invalid_argument(m.s))
            },
        )
        .unary("Deadline", move |_m: Text, ctx: &ServerContext| {
            // Says whether the call came with a deadline, then waits for it to pass.
            let _ = e3.send(format!("deadline={}", ctx.time_remaining().is_some()));
            let (tx, rx) = bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            Ok(text("late"))
        })
        .server_streaming_fn("Count", |m: Text, _ctx: &ServerContext| {
            let n: usize = m.s.parse().unwrap_or(0);
            let it: ResponseStream<'_, Text> = Box::new((0..n).map(|i| Ok(text(&i.to_string()))));
            Ok(it)
        })
        .server_streaming_fn("Forever", |_m: Text, ctx: &ServerContext| {
            let it: ResponseStream<'_, Text> = Box::new(
                (0..)
                    .take_while(move |_| ctx.is_active())
                    .map(|i| Ok(text(&i.to_string()))),
            );
            Ok(it)
        })
        .client_streaming("Join", |reqs: Streaming<Text>, _ctx: &ServerContext| {
            let parts: Result<Vec<String>, Status> = reqs.map(|r| r.map(|t| t.s)).collect();
            Ok(text(&parts?.join("+")))
        })
        .bidi_streaming_fn("Upper", |reqs: Streaming<Text>, _ctx: &ServerContext| {
            let it: ResponseStream<'_, Text> =
                Box::new(reqs.map(|r| r.map(|t| text(&t.s.to_uppercase()))));
            Ok(it)
        })
        .build()
}

/// A started server (plain or TLS) with the test service and the greeter.
struct TestServer {
    _server: Server,
    port: u16,
    events: Receiver<String>,
}

fn server(tls: Option<&Pki>) -> TestServer {
    let (tx, events) = unbounded();
    let server = Server::builder()
        .max_workers(8)
        .add_service(service(tx))
        .add_service(GreeterServer::new(common::helloworld::Greeter))
        .build();
    let port = match tls {
        None => server.add_insecure_port("127.0.0.1:0").unwrap(),
        Some(pki) => {
            let creds =
                ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
                    .unwrap();
            server.add_secure_port("127.0.0.1:0", creds).unwrap()
        }
    };
    server.start().unwrap();
    TestServer {
        _server: server,
        port,
        events,
    }
}

impl TestServer {
    fn channel(&self) -> Channel {
        Channel::insecure(&format!("127.0.0.1:{}", self.port)).unwrap()
    }

    /// A TLS channel (the certificate is for `localhost`) with `creds` on every call.
    fn tls_channel(&self, pki: &Pki, creds: Option<CallCredentials>) -> Channel {
        let tls = ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();
        let target = format!("localhost:{}", self.port);
        match creds {
            Some(c) => Channel::secure(&target, tls.with_call_credentials(c)).unwrap(),
            None => Channel::secure(&target, tls).unwrap(),
        }
    }

    /// Waits for the handler event `want`, skipping others.
    fn wait_event(&self, want: &str) {
        let deadline = Instant::now() + WAIT;
        while let Ok(e) = self.events.recv_deadline(deadline) {
            if e == want {
                return;
            }
        }
        panic!("no {want:?} event within {WAIT:?}");
    }

    /// The handler events so far, without waiting.
    fn events_so_far(&self) -> Vec<String> {
        self.events.try_iter().collect()
    }
}

fn echo(ch: &Channel, req: Request<Text>) -> Result<String, Status> {
    ch.unary::<_, Text>("/test.I/Echo", req)
        .map(|r| r.into_inner().s)
}

/// One call's end, as an interceptor saw it.
#[derive(Debug, Clone, PartialEq)]
struct Ended {
    method: String,
    kind: CallKind,
    code: Code,
    message: String,
}

/// Records every hook it runs, in one log shared by several recorders.
struct Recorder {
    name: &'static str,
    log: Sender<String>,
    ends: Sender<Ended>,
}

impl ClientInterceptor for Recorder {
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        let _ = self
            .log
            .send(format!("{} before {}", self.name, call.method()));
        call.metadata_mut().append("x-order", self.name).unwrap();
        Ok(())
    }

    fn after_call(&self, end: &CallEnd<'_>) {
        let _ = self
            .log
            .send(format!("{} after {:?}", self.name, end.status().code()));
        let _ = self.ends.send(Ended {
            method: end.method().to_string(),
            kind: end.kind(),
            code: end.status().code(),
            message: end.status().message().to_string(),
        });
    }
}

/// An interceptor that rejects calls to one method and records who got past it.
struct Gate {
    deny: &'static str,
    passed: Arc<AtomicUsize>,
}

impl ClientInterceptor for Gate {
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        if call.method() == self.deny {
            return Err(Status::permission_denied(format!(
                "{} is not for this client",
                self.deny
            )));
        }
        self.passed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Sets every call's timeout.
struct SetTimeout(Option<Duration>);

impl ClientInterceptor for SetTimeout {
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        call.set_timeout(self.0);
        Ok(())
    }
}

fn recorder(
    name: &'static str,
    log: &Sender<String>,
    ends: &Sender<Ended>,
) -> Arc<dyn ClientInterceptor> {
    Arc::new(Recorder {
        name,
        log: log.clone(),
        ends: ends.clone(),
    })
}

#[test]
fn interceptors_run_in_order_and_see_the_end_in_reverse() {
    let s = server(None);
    let (log_tx, log) = unbounded();
    let (ends_tx, ends) = unbounded();
    let ch = intercept_channel(
        s.channel(),
        [
            recorder("a", &log_tx, &ends_tx),
            recorder("b", &log_tx, &ends_tx),
        ],
    );
    // Wrapping again puts the new one outside: it runs first (as in grpcio).
    let ch = intercept_channel(ch, [recorder("outer", &log_tx, &ends_tx)]);
    let got = echo(&ch, Request::new(text("hi"))).unwrap();
    assert_eq!(got, "x-order=outer;x-order=a;x-order=b");
    assert_eq!(
        log.try_iter().collect::<Vec<_>>(),
        [
            "outer before /test.I/Echo",
            "a before /test.I/Echo",
            "b before /test.I/Echo",
            "b after Ok",
            "a after Ok",
            "outer after Ok",
        ]
    );
    assert_eq!(ends.try_iter().count(), 3);

    // A stub made from the channel sees them too.
    let greeter = GreeterClient::new(ch.clone());
    let reply = greeter
        .say_hello(HelloRequest {
            name: "stub".into(),
        })
        .unwrap();
    assert!(reply.message.contains("stub"), "{reply:?}");
    let seen: Vec<Ended> = ends.try_iter().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen
        .iter()
        .all(|e| e.method == "/helloworld.Greeter/SayHello" && e.code == Code::Ok));
}

#[test]
fn metadata_added_or_changed_by_an_interceptor_reaches_the_server() {
    struct Stamp;
    impl ClientInterceptor for Stamp {
        fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
            let md = call.metadata_mut();
            md.insert("x-request-id", "r-42").unwrap();
            // Replaces what the caller gave.
            md.insert("x-tenant", "green").unwrap();
            assert_eq!(call.kind(), CallKind::Unary);
            Ok(())
        }
    }
    let s = server(None);
    let ch = s.channel().with_interceptor(Stamp);
    let got = echo(
        &ch,
        Request::new(text("")).with_metadata("x-tenant", "blue"),
    )
    .unwrap();
    assert_eq!(got, "x-tenant=green;x-request-id=r-42");
    // The caller's channel without the interceptor sends only its own.
    let got = echo(
        &s.channel(),
        Request::new(text("")).with_metadata("x-tenant", "blue"),
    );
    assert_eq!(got.unwrap(), "x-tenant=blue");
}

#[test]
fn a_deadline_set_by_an_interceptor_is_sent_and_enforced() {
    let s = server(None);
    let ch = s
        .channel()
        .with_interceptor(SetTimeout(Some(Duration::from_millis(200))));
    let t = Instant::now();
    let e = ch
        .unary::<_, Text>("/test.I/Deadline", Request::new(text("")))
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t.elapsed() < WAIT, "the deadline was not enforced");
    s.wait_event("deadline=true");

    // And one that removes the caller's deadline: the server sees none.
    let ch = s.channel().with_interceptor(SetTimeout(None));
    let f = ch.unary_future::<_, Text>(
        "/test.I/Deadline",
        Request::new(text("")).with_timeout(Duration::from_millis(100)),
    );
    s.wait_event("deadline=false");
    assert!(f.cancel());
}

/// A loopback relay to `to` that keeps every byte the client sent.
struct Relay {
    port: u16,
    sent: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl Relay {
    fn new(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent: Arc<(Mutex<Vec<u8>>, Condvar)> = Arc::default();
        let record = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(upstream)) = (client, TcpStream::connect(("127.0.0.1", to)))
                else {
                    return;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let record = record.clone();
                std::thread::spawn(move || pump(client, upstream, Some(record)));
                std::thread::spawn(move || pump(u2, c2, None));
            }
        });
        Relay { port, sent }
    }

    /// Waits until the client's bytes satisfy `done`, and returns them.
    fn sent_until(&self, what: &str, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let (m, cv) = &*self.sent;
        let mut bytes = m.lock().unwrap();
        while !done(&bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the client never sent {what}");
            bytes = cv.wait_timeout(bytes, left).unwrap().0;
        }
        bytes.clone()
    }
}

/// Copies `from` into `to`, keeping a copy of what passes in `record`.
fn pump(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<(Mutex<Vec<u8>>, Condvar)>>) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Some(r) = &record {
            r.0.lock().unwrap().extend_from_slice(&buf[..n]);
            r.1.notify_all();
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Every request header list in a client's bytes: the HPACK blocks of its HEADERS and
/// CONTINUATION frames, decoded (so a Huffman-coded value is seen too).
fn request_heads(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
    const PREFACE: usize = 24;
    let mut rest = bytes.get(PREFACE..).unwrap_or_default();
    let mut decoder = Decoder::new(4096);
    let mut heads = Vec::new();
    let mut block = Vec::new();
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let (kind, flags) = (rest[3], rest[4]);
        if rest.len() < 9 + len {
            break;
        }
        let mut payload = &rest[9..9 + len];
        rest = &rest[9 + len..];
        match kind {
            // HEADERS: strip padding and priority.
            1 => {
                if flags & 0x8 != 0 {
                    let pad = payload[0] as usize;
                    payload = &payload[1..payload.len() - pad];
                }
                if flags & 0x20 != 0 {
                    payload = &payload[5..];
                }
                block.extend_from_slice(payload);
            }
            9 => block.extend_from_slice(payload),
            _ => continue,
        }
        if flags & 0x4 != 0 {
            let mut head = Vec::new();
            decoder
                .decode(&block, usize::MAX, |h| {
                    head.push((
                        String::from_utf8_lossy(&h.name).into_owned(),
                        String::from_utf8_lossy(&h.value).into_owned(),
                    ))
                })
                .expect("the client's header block decodes");
            heads.push(head);
            block.clear();
        }
    }
    heads
}

fn path_of(head: &[(String, String)]) -> &str {
    head.iter()
        .find(|(n, _)| n == ":path")
        .map_or("", |(_, v)| v.as_str())
}

fn has_path(bytes: &[u8], path: &str) -> bool {
    request_heads(bytes).iter().any(|h| path_of(h) == path)
}

#[test]
fn a_rejected_call_sends_nothing() {
    let s = server(None);
    let relay = Relay::new(s.port);
    let (log_tx, log) = unbounded();
    let (ends_tx, ends) = unbounded();
    let passed = Arc::new(AtomicUsize::new(0));
    let gate: Arc<dyn ClientInterceptor> = Arc::new(Gate {
        deny: "/test.I/Secret",
        passed: passed.clone(),
    });
    let ch = intercept_channel(
        Channel::insecure(&format!("127.0.0.1:{}", relay.port)).unwrap(),
        [
            recorder("first", &log_tx, &ends_tx),
            gate,
            recorder("last", &log_tx, &ends_tx),
        ],
    );
    let e = ch
        .unary::<_, Text>("/test.I/Secret", Request::new(text("x")))
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "/test.I/Secret is not for this client");
    // The interceptor before the gate saw the call and its end; the one after never ran.
    assert_eq!(
        log.try_iter().collect::<Vec<_>>(),
        [
            "first before /test.I/Secret",
            "first after PermissionDenied"
        ]
    );
    assert_eq!(ends.try_iter().count(), 1);

    // A call that passes, on the same channel: its request follows anything sent before.
    assert_eq!(
        echo(&ch, Request::new(text(""))).unwrap(),
        "x-order=first;x-order=last"
    );
    let bytes = relay.sent_until("the Echo request", |b| has_path(b, "/test.I/Echo"));
    let paths: Vec<String> = request_heads(&bytes)
        .iter()
        .map(|h| path_of(h).to_string())
        .collect();
    assert_eq!(
        paths,
        ["/test.I/Echo"],
        "the rejected call reached the wire"
    );
    assert_eq!(passed.load(Ordering::SeqCst), 1);
    assert_eq!(
        s.events_so_far(),
        ["Echo"],
        "the server ran the rejected call"
    );
}

#[test]
fn the_end_hook_sees_every_call_of_every_kind_once() {
    let s = server(None);
    let (log_tx, _log) = unbounded();
    let (ends_tx, ends) = unbounded();
    let ch = intercept_channel(s.channel(), [recorder("r", &log_tx, &ends_tx)]);
    let one = |what: &str, method: &str, kind: CallKind, code: Code| {
        let got: Vec<Ended> = ends.try_iter().collect();
        assert_eq!(got.len(), 1, "{what}: {got:?}");
        assert_eq!(
            (got[0].method.as_str(), got[0].kind, got[0].code),
            (method, kind, code),
            "{what}: {got:?}"
        );
        got.into_iter().next().unwrap()
    };
    use CallKind::*;

    // Every call, stream and future lives in this block: the check after it sees any end
    // reported a second time when they are dropped.
    {
        // Unary: success, a server error (its message), the deadline.
        echo(&ch, Request::new(text(""))).unwrap();
        one("unary ok", "/test.I/Echo", Unary, Code::Ok);
        ch.unary::<_, Text>("/test.I/Fail", Request::new(text("bad input")))
            .unwrap_err();
        let e = one("unary error", "/test.I/Fail", Unary, Code::InvalidArgument);
        assert_eq!(e.message, "bad input");
        let req = Request::new(text("")).with_timeout(Duration::from_millis(100));
        ch.unary::<_, Text>("/test.I/Deadline", req).unwrap_err();
        one(
            "unary deadline",
            "/test.I/Deadline",
            Unary,
            Code::DeadlineExceeded,
        );

        // Client streaming.
        let r: Text = ch
            .client_streaming(
                "/test.I/Join",
                Request::new(vec![text("a"), text("b")].into_iter()),
            )
            .unwrap()
            .into_inner();
        assert_eq!(r.s, "a+b");
        one(
            "client streaming",
            "/test.I/Join",
            ClientStreaming,
            Code::Ok,
        );

        // Server streaming: read to the end (reported at the end, not at the drop).
        let mut stream = ch
            .server_streaming::<_, Text>("/test.I/Count", Request::new(text("3")))
            .unwrap();
        assert_eq!(stream.by_ref().count(), 3);
        one(
            "server streaming",
            "/test.I/Count",
            ServerStreaming,
            Code::Ok,
        );
        drop(stream);
        // Dropped midway: cancelled.
        let mut stream = ch
            .server_streaming::<_, Text>("/test.I/Forever", Request::new(text("")))
            .unwrap();
        stream.next().unwrap().unwrap();
        assert_eq!(ends.try_iter().count(), 0, "ended before it ended");
        drop(stream);
        let e = one(
            "dropped stream",
            "/test.I/Forever",
            ServerStreaming,
            Code::Cancelled,
        );
        assert_eq!(e.message, "Locally cancelled by application!");
        // Past its deadline.
        let req = Request::new(text("")).with_timeout(Duration::from_millis(100));
        let stream = ch
            .server_streaming::<_, Text>("/test.I/Forever", req)
            .unwrap();
        let last = stream.last().unwrap();
        assert_eq!(last.unwrap_err().code(), Code::DeadlineExceeded);
        one(
            "stream deadline",
            "/test.I/Forever",
            ServerStreaming,
            Code::DeadlineExceeded,
        );

        // Bidi: to the end; and cancelled.
        let stream = ch
            .bidi_streaming::<_, Text, _>(
                "/test.I/Upper",
                Request::new(vec![text("x")].into_iter()),
            )
            .unwrap();
        assert_eq!(stream.map(|r| r.unwrap().s).collect::<Vec<_>>(), ["X"]);
        one("bidi", "/test.I/Upper", BidiStreaming, Code::Ok);
        let (mut tx, mut rx) = ch
            .bidi_interactive::<Text, Text>("/test.I/Upper", CallOptions::new())
            .unwrap();
        tx.send(text("ping")).unwrap();
        assert_eq!(rx.next().unwrap().unwrap().s, "PING");
        rx.cancel();
        one(
            "bidi cancelled",
            "/test.I/Upper",
            BidiStreaming,
            Code::Cancelled,
        );
        drop((tx, rx));

        // Futures: reported when the result is read, or when cancelled or dropped.
        let f = ch.unary_future::<_, Text>("/test.I/Echo", Request::new(text("")));
        f.result().unwrap();
        f.result().unwrap();
        one("future", "/test.I/Echo", Unary, Code::Ok);
        let f = ch.unary_future::<_, Text>("/test.I/Deadline", Request::new(text("")));
        s.wait_event("deadline=false");
        assert!(f.cancel());
        one(
            "future cancelled",
            "/test.I/Deadline",
            Unary,
            Code::Cancelled,
        );
        assert_eq!(f.result().unwrap_err().code(), Code::Cancelled);
        let f = ch.unary_future::<_, Text>("/test.I/Deadline", Request::new(text("")));
        s.wait_event("deadline=false");
        drop(f);
        one("future dropped", "/test.I/Deadline", Unary, Code::Cancelled);
        let f = ch.client_streaming_future::<_, Text, _>(
            "/test.I/Join",
            Request::new(vec![text("c")].into_iter()),
        );
        assert_eq!(f.result().unwrap().into_inner().s, "c");
        one(
            "client streaming future",
            "/test.I/Join",
            ClientStreaming,
            Code::Ok,
        );

        // A call that fails before it is sent (no server): reported too.
        let dead = intercept_channel(
            Channel::insecure("127.0.0.1:1").unwrap(),
            [recorder("r", &log_tx, &ends_tx)],
        );
        dead.unary::<_, Text>("/test.I/Echo", Request::new(text("")))
            .unwrap_err();
        one("no server", "/test.I/Echo", Unary, Code::Unavailable);
    }
    assert_eq!(ends.try_iter().count(), 0, "a call was reported twice");
}

#[test]
fn a_panicking_interceptor_fails_the_call_with_unknown() {
    struct Bug;
    impl ClientInterceptor for Bug {
        fn before_call(&self, _call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
            panic!("interceptor bug")
        }
    }
    let s = server(None);
    let e = echo(&s.channel().with_interceptor(Bug), Request::new(text(""))).unwrap_err();
    assert_eq!(e.code(), Code::Unknown);
    assert!(e.message().contains("interceptor bug"), "{e}");
}

/// A plugin that adds `x-who: <name>` and records the context it was given.
fn who(name: &'static str, seen: &Sender<AuthMetadataContext>) -> CallCredentials {
    let seen = seen.clone();
    CallCredentials::from_fn(move |ctx| {
        let _ = seen.send(ctx.clone());
        let mut md = MetadataMap::new();
        md.insert("x-who", name).unwrap();
        Ok(md)
    })
}

#[test]
fn call_credentials_reach_a_tls_server() {
    let pki = Pki::new();
    let s = server(Some(&pki));
    let (ctx_tx, ctxs) = unbounded();
    let ch = s.tls_channel(&pki, Some(CallCredentials::access_token("tok")));
    assert_eq!(
        echo(&ch, Request::new(text(""))).unwrap(),
        "authorization=Bearer tok"
    );

    // Per call: after the channel's; the plugin is told the service URL and the method.
    let req = Request::new(text("")).with_credentials(who("call", &ctx_tx));
    assert_eq!(
        echo(&ch, req).unwrap(),
        "authorization=Bearer tok;x-who=call"
    );
    let ctx = ctxs.try_recv().unwrap();
    assert_eq!(
        ctx.service_url(),
        format!("https://localhost:{}/test.I", s.port)
    );
    assert_eq!(ctx.method_name(), "Echo");

    // From an interceptor, and composed; on every kind of call.
    struct AddCreds(CallCredentials);
    impl ClientInterceptor for AddCreds {
        fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
            call.set_credentials(Some(self.0.clone()));
            Ok(())
        }
    }
    let both = who("one", &ctx_tx).and(who("two", &ctx_tx));
    let plain = s.tls_channel(&pki, None).with_interceptor(AddCreds(both));
    assert_eq!(
        echo(&plain, Request::new(text(""))).unwrap(),
        "x-who=one;x-who=two"
    );
    let tok = s.tls_channel(&pki, Some(CallCredentials::access_token("tok")));
    let n = tok
        .server_streaming::<_, Text>("/test.I/Count", Request::new(text("2")))
        .unwrap()
        .count();
    assert_eq!(n, 2);
    let joined: Text = tok
        .client_streaming("/test.I/Join", Request::new(vec![text("a")].into_iter()))
        .unwrap()
        .into_inner();
    assert_eq!(joined.s, "a");
}

#[test]
fn call_credentials_on_an_insecure_channel_fail_and_never_reach_the_wire() {
    let s = server(None);
    let relay = Relay::new(s.port);
    let target = format!("127.0.0.1:{}", relay.port);
    let token = "tok-do-not-leak";
    let ch = Channel::builder(&target)
        .call_credentials(CallCredentials::access_token(token))
        .build()
        .unwrap();
    for _ in 0..2 {
        let e = echo(&ch, Request::new(text(""))).unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        assert!(
            e.message()
                .starts_with("call credentials require a secure channel"),
            "{e}"
        );
    }
    // Per-call credentials likewise, on every kind of call.
    let plain = Channel::insecure(&target).unwrap();
    let creds = CallCredentials::access_token(token);
    let req = Request::new(text("")).with_credentials(creds.clone());
    assert_eq!(echo(&plain, req).unwrap_err().code(), Code::Unauthenticated);
    let req = Request::new(vec![text("a")].into_iter()).with_credentials(creds.clone());
    let e = plain
        .bidi_streaming::<_, Text, _>("/test.I/Upper", req)
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // Then a call without credentials goes through the same relay: whatever the failed
    // calls sent would be before it.
    echo(
        &plain,
        Request::new(text("")).with_metadata("x-marker", "after"),
    )
    .unwrap();
    let bytes = relay.sent_until("the Echo request", |b| has_path(b, "/test.I/Echo"));
    let heads = request_heads(&bytes);
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0]
            .iter()
            .all(|(n, v)| n != "authorization" && !v.contains(token)),
        "{heads:?}"
    );
    assert!(
        !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token is in the client's bytes"
    );
    assert_eq!(s.events_so_far(), ["Echo"]);
}

#[test]
fn a_local_channel_sends_call_credentials_and_connects_only_to_loopback() {
    let s = server(None);
    let ch = Channel::builder(&format!("127.0.0.1:{}", s.port))
        .local()
        .call_credentials(CallCredentials::access_token("tok"))
        .build()
        .unwrap();
    assert_eq!(
        echo(&ch, Request::new(text(""))).unwrap(),
        "authorization=Bearer tok"
    );
    // 192.0.2.0/24 is TEST-NET-1: refused before any connection attempt.
    let far = Channel::builder("ipv4:192.0.2.1:443")
        .local()
        .build()
        .unwrap();
    let e = echo(&far, Request::new(text(""))).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("not a loopback address"), "{e}");
}

#[test]
fn a_failing_plugin_fails_only_its_call() {
    let pki = Pki::new();
    let s = server(Some(&pki));
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    // Fails the first call, panics in the second, then works.
    let creds = CallCredentials::from_fn(move |_| match c2.fetch_add(1, Ordering::SeqCst) {
        0 => Err(Status::internal("token service down")),
        1 => panic!("plugin bug"),
        _ => {
            let mut md = MetadataMap::new();
            md.insert("authorization", "Bearer fresh").unwrap();
            Ok(md)
        }
    });
    let ch = s.tls_channel(&pki, Some(creds));
    let e = echo(&ch, Request::new(text(""))).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(
        e.message(),
        "Getting metadata from plugin failed with error: token service down"
    );
    // With a deadline the plugin runs on another thread: its panic is caught there.
    let req = Request::new(text("")).with_timeout(WAIT);
    let e = echo(&ch, req).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("plugin bug"), "{e}");
    assert_eq!(
        echo(&ch, Request::new(text(""))).unwrap(),
        "authorization=Bearer fresh"
    );
    assert_eq!(s.events_so_far(), ["Echo"]);
}

#[test]
fn a_plugin_blocking_past_the_deadline_is_deadline_exceeded() {
    let pki = Pki::new();
    let s = server(Some(&pki));
    let (release, held) = bounded::<()>(1);
    let creds = CallCredentials::from_fn(move |_| {
        let _ = held.recv_timeout(WAIT);
        Ok(MetadataMap::new())
    });
    let ch = s.tls_channel(&pki, Some(creds));
    let t = Instant::now();
    let req = Request::new(text("")).with_timeout(Duration::from_millis(200));
    let e = echo(&ch, req).unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < WAIT,
        "{took:?}"
    );
    drop(release);
    assert_eq!(s.events_so_far(), Vec::<String>::new());
}
