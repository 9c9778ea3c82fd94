//! gRPC-Web on the server's port, on the wire, without a browser: HTTP/1.1 (keep-alive,
//! chunked and Content-Length bodies, pipelining, bad input) and HTTP/2, binary and text
//! modes, trailers in the body, CORS, errors, checked against the rules of gRPC's
//! `doc/PROTOCOL-WEB.md`:
//!
//! - content-type `application/grpc-web[+proto]` / `application/grpc-web-text[+proto]`;
//! - lower-case header and trailer names;
//! - the status in the body: the last frame, flag byte 0x80, an HTTP/1 header block;
//! - trailers-only responses: the status in the response head, no body;
//! - text mode: the body is base64 (padding may come between chunks), both ways;
//! - the end of the body ends the call (no HTTP/2 trailers, no GOAWAY needed).

#[path = "support/h2client.rs"]
mod h2client;
#[path = "support/h2.rs"]
mod h2support;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grpc_sync::h2::hpack::Header;
use grpc_sync::{
    GrpcWebConfig, MetadataMap, ResponseStream, Server, ServerContext, Service, Status, Streaming,
};
use h2client::RawClient;
use prost::Message;
use support::web::{chunked, encode_text, frame, parse_web_body, request, Http1, Response};

#[derive(Clone, PartialEq, prost::Message)]
struct Num {
    #[prost(int64, tag = "1")]
    n: i64,
}

const WAIT: Duration = Duration::from_secs(10);
const PAGE: &str = "http://127.0.0.1:8080";

struct Web {
    server: Server,
    port: u16,
    /// Handlers run so far.
    calls: Arc<AtomicUsize>,
}

fn service(calls: Arc<AtomicUsize>) -> Service {
    let c1 = calls.clone();
    let c2 = calls.clone();
    Service::builder("test.Web")
        .unary("Double", move |m: Num, _: &ServerContext| {
            c1.fetch_add(1, Ordering::SeqCst);
            Ok(Num { n: m.n * 2 })
        })
        .unary("EchoBytes", |m: Bytes1, _: &ServerContext| Ok(m))
        .unary("Fail", |m: Num, _: &ServerContext| -> Result<Num, Status> {
            Err(Status::invalid_argument(format!("bad n: {} (ü)", m.n)))
        })
        .unary("Meta", |m: Num, ctx: &ServerContext| {
            let mut initial = MetadataMap::new();
            initial.insert("x-initial", "i").unwrap();
            ctx.send_initial_metadata(initial)?;
            let mut trailing = MetadataMap::new();
            trailing.insert("x-trailing", "t").unwrap();
            ctx.set_trailing_metadata(trailing);
            Ok(m)
        })
        .unary(
            "Slow",
            |_: Num, ctx: &ServerContext| -> Result<Num, Status> {
                // Until the deadline passes (the test sets one); whichever of the server's timer
                // and this handler ends the call first, the status is DEADLINE_EXCEEDED.
                while ctx.is_active() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(Status::deadline_exceeded("gave up at the deadline"))
            },
        )
        .server_streaming_fn("Count", move |m: Num, _: &ServerContext| {
            c2.fetch_add(1, Ordering::SeqCst);
            let it: ResponseStream<'_, Num> = Box::new((0..m.n).map(|n| Ok(Num { n })));
            Ok(it)
        })
        .server_streaming_fn("Big", |m: Num, _: &ServerContext| {
            // `m.n` messages of 64 KiB: more than a non-reading peer takes.
            let it: ResponseStream<'_, Bytes1> = Box::new((0..m.n).map(|_| {
                Ok(Bytes1 {
                    b: vec![7u8; 64 * 1024],
                })
            }));
            Ok(it)
        })
        .client_streaming("Sum", |reqs: Streaming<Num>, _: &ServerContext| {
            let mut n = 0;
            for r in reqs {
                n += r?.n;
            }
            Ok(Num { n })
        })
        .build()
}

#[derive(Clone, PartialEq, prost::Message)]
struct Bytes1 {
    #[prost(bytes = "vec", tag = "1")]
    b: Vec<u8>,
}

fn start_with(
    web: Option<GrpcWebConfig>,
    tune: impl FnOnce(grpc_sync::ServerBuilder) -> grpc_sync::ServerBuilder,
) -> Web {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut b = Server::builder().add_service(service(calls.clone()));
    if let Some(w) = web {
        b = b.grpc_web(w);
    }
    let server = tune(b).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    Web {
        server,
        port,
        calls,
    }
}

fn start() -> Web {
    start_with(Some(GrpcWebConfig::new().allow_origin(PAGE)), |b| b)
}

fn num(n: i64) -> Vec<u8> {
    Num { n }.encode_to_vec()
}

fn decode(msg: &[u8]) -> i64 {
    Num::decode(msg).unwrap().n
}

/// The checks every gRPC-Web response with a body passes.
fn assert_web_response(r: &Response, text: bool) -> support::web::WebBody {
    assert_eq!(r.status, 200);
    let ct = if text {
        "application/grpc-web-text+proto"
    } else {
        "application/grpc-web+proto"
    };
    assert_eq!(r.header("content-type"), Some(ct));
    for (n, _) in &r.headers {
        assert_eq!(n, &n.to_ascii_lowercase(), "header names are lower-case");
    }
    assert!(
        r.header("grpc-status").is_none(),
        "the status is in the body"
    );
    let body = r.web(text);
    assert!(body.trailers_last, "the trailers frame ends the body");
    for (n, _) in &body.trailers {
        assert_eq!(n, &n.to_ascii_lowercase(), "trailer names are lower-case");
    }
    body
}

#[test]
fn unary_over_http1_keep_alive_content_length_and_chunked() {
    let w = start();
    let mut c = Http1::connect(w.port);
    for n in 1..=3 {
        c.send(&request("/test.Web/Double", &num(n), &[]));
        let r = c.response(WAIT);
        let body = assert_web_response(&r, false);
        assert_eq!(body.messages.len(), 1);
        assert_eq!(decode(&body.messages[0]), 2 * n);
        assert_eq!(body.trailer("grpc-status"), Some("0"));
        assert!(r.header("connection").is_none(), "kept alive");
    }
    // A chunked request body, cut inside the length prefix and inside the message.
    let f = frame(&num(21));
    let req = chunked(
        "/test.Web/Double",
        "application/grpc-web",
        &[&f[..2], &f[2..6], &f[6..]],
    );
    c.send(&req);
    let body = assert_web_response(&c.response(WAIT), false);
    assert_eq!(decode(&body.messages[0]), 42);
    // Two requests pipelined in one write: two responses, in order.
    let mut two = request("/test.Web/Double", &num(5), &[]);
    two.extend(request("/test.Web/Double", &num(6), &[]));
    c.send(&two);
    for n in [5, 6] {
        let body = assert_web_response(&c.response(WAIT), false);
        assert_eq!(decode(&body.messages[0]), 2 * n);
    }
    // Expect: 100-continue: the body follows the interim answer.
    let body = frame(&num(50));
    c.send(
        format!(
            "POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web\r\n\
             Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut c.stream, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(&body);
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 100);
    assert_eq!(w.server.connections(), 1);
}

#[test]
fn text_mode_both_ways_with_a_body_split_anywhere() {
    let w = start();
    let mut c = Http1::connect(w.port);
    // Two padded base64 pieces (padding in the middle of the body), chunked at odd places.
    let f = frame(&num(1000));
    let mut text = encode_text(&f[..4]);
    text.extend(encode_text(&f[4..]));
    for cut in [1, 3, 5, 7, text.len() - 1] {
        let req = chunked(
            "/test.Web/Double",
            "application/grpc-web-text\r\nAccept: application/grpc-web-text",
            &[&text[..cut], &text[cut..]],
        );
        c.send(&req);
        let r = c.response(WAIT);
        assert!(r
            .body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
        let body = assert_web_response(&r, true);
        assert_eq!(decode(&body.messages[0]), 2000, "cut at {cut}");
        assert_eq!(body.trailer("grpc-status"), Some("0"));
    }
    // Server streaming in text mode: each message its own padded base64 piece.
    let text = encode_text(&frame(&num(4)));
    let req = format!(
        "POST /test.Web/Count HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web-text+proto\r\n\
         Content-Length: {}\r\n\r\n",
        text.len()
    );
    c.send(&[req.as_bytes(), &text].concat());
    let body = assert_web_response(&c.response(WAIT), true);
    let got: Vec<i64> = body.messages.iter().map(|m| decode(m)).collect();
    assert_eq!(got, vec![0, 1, 2, 3]);
    // Not base64: INTERNAL, said in a trailers-only response.
    let req = b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\n\
        Content-Type: application/grpc-web-text\r\nContent-Length: 8\r\n\r\nAAAA!!!!";
    c.send(req);
    let r = c.response(WAIT);
    assert_eq!(r.header("grpc-status"), Some("13"));
    assert!(r.header("grpc-message").unwrap().contains("base64"));
}

#[test]
fn server_streaming_errors_metadata_and_deadlines_over_http1() {
    let w = start();
    let mut c = Http1::connect(w.port);
    c.send(&request("/test.Web/Count", &num(5), &[]));
    let body = assert_web_response(&c.response(WAIT), false);
    let got: Vec<i64> = body.messages.iter().map(|m| decode(m)).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert_eq!(body.trailer("grpc-status"), Some("0"));

    // An error before any message: trailers-only, the status in the response head.
    c.send(&request("/test.Web/Fail", &num(7), &[]));
    let r = c.response(WAIT);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/grpc-web+proto"));
    assert_eq!(r.header("grpc-status"), Some("3"));
    assert_eq!(r.header("grpc-message"), Some("bad n: 7 (%C3%BC)"));
    assert!(r.body.is_empty());

    // Metadata: initial in the head, trailing in the trailers frame.
    c.send(&request("/test.Web/Meta", &num(1), &[]));
    let r = c.response(WAIT);
    assert_eq!(r.header("x-initial"), Some("i"));
    let body = assert_web_response(&r, false);
    assert_eq!(body.trailer("x-trailing"), Some("t"));

    // Unknown method, and a client-streaming one: UNIMPLEMENTED, saying why.
    c.send(&request("/test.Web/Nope", &num(1), &[]));
    assert_eq!(c.response(WAIT).header("grpc-status"), Some("12"));
    c.send(&request("/test.Web/Sum", &num(1), &[]));
    let r = c.response(WAIT);
    assert_eq!(r.header("grpc-status"), Some("12"));
    let msg = r.header("grpc-message").unwrap();
    assert!(
        msg.contains("client-streaming") && msg.contains("gRPC-Web"),
        "{msg}"
    );

    // A deadline: DEADLINE_EXCEEDED from the server, the handler's context cancelled.
    let t0 = Instant::now();
    c.send(&request(
        "/test.Web/Slow",
        &num(1),
        &[("grpc-timeout", "200m")],
    ));
    let r = c.response(WAIT);
    assert_eq!(r.header("grpc-status"), Some("4"));
    assert!(t0.elapsed() >= Duration::from_millis(150));
    // The connection still serves.
    c.send(&request("/test.Web/Double", &num(2), &[]));
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 4);
}

#[test]
fn cors_preflight_allowed_origin_and_refused_origin() {
    let w = start();
    let mut c = Http1::connect(w.port);
    c.send(
        format!(
            "OPTIONS /test.Web/Double HTTP/1.1\r\nHost: x\r\nOrigin: {PAGE}\r\n\
             Access-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type,x-grpc-web,x-user-agent\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.response(WAIT);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type,x-grpc-web,x-user-agent")
    );
    assert!(r.header("access-control-max-age").is_some());
    // The call itself, with the origin: the CORS fields on the response.
    c.send(&request("/test.Web/Meta", &num(1), &[("Origin", PAGE)]));
    let r = c.response(WAIT);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    let expose = r.header("access-control-expose-headers").unwrap();
    for f in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-initial",
    ] {
        assert!(expose.split(',').any(|e| e == f), "{f} in {expose}");
    }
    // Trailers-only responses expose their status fields too.
    c.send(&request("/test.Web/Fail", &num(1), &[("Origin", PAGE)]));
    let r = c.response(WAIT);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("grpc-message"));

    // Another origin: 403 on the preflight and on the call, and no handler ran.
    let before = w.calls.load(Ordering::SeqCst);
    let evil = "http://localhost:9999";
    c.send(
        format!(
            "OPTIONS /test.Web/Double HTTP/1.1\r\nHost: x\r\nOrigin: {evil}\r\n\
             Access-Control-Request-Method: POST\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.response(WAIT);
    assert_eq!(r.status, 403);
    assert!(r.header("access-control-allow-origin").is_none());
    c.send(&request("/test.Web/Double", &num(1), &[("Origin", evil)]));
    let r = c.response(WAIT);
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("allow-list"));
    assert_eq!(w.calls.load(Ordering::SeqCst), before);

    // No origin allowed by default; "*" allows any.
    let none = start_with(Some(GrpcWebConfig::new()), |b| b);
    let mut c = Http1::connect(none.port);
    c.send(&request("/test.Web/Double", &num(1), &[("Origin", PAGE)]));
    assert_eq!(c.response(WAIT).status, 403);
    let any = start_with(Some(GrpcWebConfig::new().allow_origin("*")), |b| b);
    let mut c = Http1::connect(any.port);
    c.send(&request("/test.Web/Double", &num(1), &[("Origin", evil)]));
    let r = c.response(WAIT);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(evil));
}

/// Sends `req`, expects `status` and a closed connection.
fn expect_refused(port: u16, req: &[u8], status: u16) -> Response {
    let mut c = Http1::connect(port);
    c.send(req);
    let r = c.response(WAIT);
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(WAIT);
    r
}

#[test]
fn bad_http1_input_gets_the_right_4xx_and_a_close() {
    let w = start_with(Some(GrpcWebConfig::new()), |b| {
        b.max_receive_message_length(1024)
            .handshake_timeout(Duration::from_millis(300))
    });
    let big = format!(
        "POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    expect_refused(w.port, big.as_bytes(), 431);
    let bad_chunk =
        b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web\r\n\
        Transfer-Encoding: chunked\r\n\r\nxyz\r\n";
    expect_refused(w.port, bad_chunk, 400);
    let too_big = format!(
        "POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web\r\n\
         Content-Length: {}\r\n\r\n",
        2048
    );
    expect_refused(w.port, too_big.as_bytes(), 413);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refused(w.port, get, 405);
    // Native gRPC cannot be carried by HTTP/1.1 (no trailers): said, not attempted.
    let native = b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\n\
        Content-Length: 0\r\n\r\n";
    let r = expect_refused(w.port, native, 415);
    assert!(String::from_utf8_lossy(&r.body).contains("HTTP/2"));
    // A slow sender: half a head, then nothing (408 after handshake_timeout).
    let t0 = Instant::now();
    expect_refused(
        w.port,
        b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\n",
        408,
    );
    assert!(t0.elapsed() >= Duration::from_millis(250));
    // A body that stops coming.
    expect_refused(
        w.port,
        b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web\r\n\
          Content-Length: 100\r\n\r\n\0\0\0",
        408,
    );
    // Pipelined garbage after a good request: the good one is answered, then 400 and close.
    let mut c = Http1::connect(w.port);
    let mut req = request("/test.Web/Double", &num(3), &[]);
    req.extend_from_slice(b"\x16\x03\x01 not http at all\r\n\r\n");
    c.send(&req);
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 6);
    let r = c.response(WAIT);
    assert_eq!(r.status, 400);
    c.expect_closed(WAIT);
    // Nothing held: every connection closed, no worker busy.
    let deadline = Instant::now() + WAIT;
    while w.server.connections() > 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(w.server.connections(), 0);
    assert_eq!(w.server.pool_stats().busy, 0);
}

#[test]
fn a_peer_that_does_not_read_holds_no_worker_and_is_closed_by_the_stall_timeout() {
    let w = start_with(Some(GrpcWebConfig::new()), |b| {
        b.max_workers(2)
            .send_stall_timeout(Duration::from_millis(300))
            .output_budget(64 * 1024)
    });
    let mut quiet = Vec::new();
    for _ in 0..3 {
        let mut c = Http1::connect(w.port);
        // 64 MiB of responses that this peer never reads.
        c.send(&request("/test.Web/Big", &num(1024), &[]));
        quiet.push(c);
    }
    // They are served (and stall)...
    let t0 = Instant::now();
    let deadline = t0 + WAIT;
    while w.server.connections() < 3 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(w.server.connections(), 3);
    // ...until the stall timeout ends them; the workers come back.
    let deadline = Instant::now() + WAIT;
    while (w.server.connections() > 0 || w.server.pool_stats().busy > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(w.server.connections(), 0);
    assert_eq!(w.server.pool_stats().busy, 0);
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    // And the server still serves.
    let mut c = Http1::connect(w.port);
    c.send(&request("/test.Web/Double", &num(4), &[]));
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 8);
}

#[test]
fn without_grpc_web_http1_gets_426_and_grpc_web_content_types_415() {
    let w = start_with(None, |b| b);
    let mut c = Http1::connect(w.port);
    c.send(&request("/test.Web/Double", &num(1), &[]));
    let r = c.response(WAIT);
    assert_eq!(r.status, 426);
    let mut h2 = RawClient::connect(w.port);
    let (head, _) = h2_call(
        &mut h2,
        "/test.Web/Double",
        "application/grpc-web",
        &frame(&num(1)),
    );
    assert_eq!(Header::find(&head, b":status"), Some(&b"415"[..]));
}

/// One HTTP/2 request from a page at [`PAGE`]; the response head and body (DATA
/// concatenated). gRPC-Web responses have no HTTP/2 trailers.
fn h2_call(c: &mut RawClient, path: &str, ct: &str, body: &[u8]) -> (Vec<Header>, Vec<u8>) {
    let h = h2support::hs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "x"),
        ("content-type", ct),
        ("origin", PAGE),
    ]);
    let a = c.request(&h, body);
    if ct.contains("grpc-web") {
        assert!(a.trailers.is_empty(), "gRPC-Web sends no HTTP/2 trailers");
    }
    (a.head, a.body.to_vec())
}

fn field<'a>(head: &'a [Header], name: &str) -> Option<&'a str> {
    Header::find(head, name.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
}

#[test]
fn grpc_web_over_http2_binary_text_streaming_and_errors() {
    let w = start();
    let mut h2 = RawClient::connect(w.port);
    let (head, body) = h2_call(
        &mut h2,
        "/test.Web/Double",
        "application/grpc-web+proto",
        &frame(&num(8)),
    );
    assert_eq!(
        field(&head, "content-type"),
        Some("application/grpc-web+proto")
    );
    assert_eq!(field(&head, "access-control-allow-origin"), Some(PAGE));
    let web = parse_web_body(&body);
    assert_eq!(decode(&web.messages[0]), 16);
    assert_eq!(web.trailer("grpc-status"), Some("0"));
    assert!(web.trailers_last);

    let text = encode_text(&frame(&num(3)));
    let (head, body) = h2_call(
        &mut h2,
        "/test.Web/Count",
        "application/grpc-web-text",
        &text,
    );
    assert_eq!(
        field(&head, "content-type"),
        Some("application/grpc-web-text+proto")
    );
    let web = parse_web_body(&support::web::decode_text(&body));
    let got: Vec<i64> = web.messages.iter().map(|m| decode(m)).collect();
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(web.trailer("grpc-status"), Some("0"));

    let (head, body) = h2_call(
        &mut h2,
        "/test.Web/Fail",
        "application/grpc-web",
        &frame(&num(1)),
    );
    assert_eq!(field(&head, "grpc-status"), Some("3"));
    assert!(body.is_empty());

    let (head, _) = h2_call(
        &mut h2,
        "/test.Web/Sum",
        "application/grpc-web",
        &frame(&num(1)),
    );
    assert_eq!(field(&head, "grpc-status"), Some("12"));

    // Plain gRPC on the same connection is untouched.
    let (head, body) = h2_call(
        &mut h2,
        "/test.Web/Double",
        "application/grpc",
        &frame(&num(2)),
    );
    assert_eq!(field(&head, "content-type"), Some("application/grpc"));
    assert_eq!(&body[5..], &num(4)[..]);
}

#[test]
fn grpc_web_over_tls_takes_http1_by_alpn() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let pki = support::certs::Pki::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .grpc_web(GrpcWebConfig::new())
        .add_service(service(calls))
        .build();
    let creds = grpc_sync::ServerCredentials::from_pem(
        pki.server.cert.as_bytes(),
        pki.server.key.as_bytes(),
    )
    .unwrap();
    let port = server.add_secure_port("127.0.0.1:0", creds).unwrap();
    server.start().unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    for n in [1, 2] {
        tls.write_all(&request("/test.Web/Double", &num(n), &[]))
            .unwrap();
        // The whole response: head, then a Content-Length body.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let body = loop {
            let k = std::io::Read::read(&mut tls, &mut buf).unwrap();
            assert!(k > 0, "closed");
            got.extend_from_slice(&buf[..k]);
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            if got.len() >= end + 4 + len {
                break got[end + 4..end + 4 + len].to_vec();
            }
        };
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let web = parse_web_body(&body);
        assert_eq!(decode(&web.messages[0]), 2 * n);
        assert_eq!(web.trailer("grpc-status"), Some("0"));
    }
}

#[test]
fn a_long_stream_goes_chunked_and_a_stopping_server_closes_idle_http1_connections() {
    let w = start();
    let mut c = Http1::connect(w.port);
    c.send(&request("/test.Web/Big", &num(64), &[]));
    let r = c.response(WAIT);
    assert!(r.chunked, "a response that did not come whole is chunked");
    let body = assert_web_response(&r, false);
    assert_eq!(body.messages.len(), 64);
    assert_eq!(body.trailer("grpc-status"), Some("0"));
    // Idle between requests: the stop closes the connection.
    w.server.stop(Some(Duration::from_secs(5)));
    c.expect_closed(WAIT);
    assert!(w.server.wait_for_termination(Some(WAIT)));
}

#[test]
fn a_large_request_body_flows_through_the_windows_both_framings() {
    let w = start();
    let mut c = Http1::connect(w.port);
    let big = Bytes1 {
        b: (0..3 << 19).map(|i| (i % 251) as u8).collect(),
    }
    .encode_to_vec();
    // Content-Length.
    c.send(&request("/test.Web/EchoBytes", &big, &[]));
    let body = assert_web_response(&c.response(WAIT), false);
    assert_eq!(body.messages[0], big);
    // Chunked, in 100 KiB chunks, text mode (1.5 MiB: more than the stream's window).
    let text = encode_text(&frame(&big));
    let pieces: Vec<&[u8]> = text.chunks(100 * 1024).collect();
    let req = chunked("/test.Web/EchoBytes", "application/grpc-web-text", &pieces);
    c.send(&req);
    let body = assert_web_response(&c.response(WAIT), true);
    assert_eq!(body.messages[0], big);
}

/// Threads of this process (Linux: /proc/self/task).
#[cfg(target_os = "linux")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[cfg(target_os = "linux")]
#[test]
fn slow_senders_hold_no_thread() {
    let w = start_with(Some(GrpcWebConfig::new()), |b| {
        b.max_workers(2).io_threads(1)
    });
    // Warm up: the pool and the loop exist.
    let mut c = Http1::connect(w.port);
    c.send(&request("/test.Web/Double", &num(1), &[]));
    c.response(WAIT);
    let before = threads();
    // 64 clients each send half a request (a head, or a head and part of a body) and stop.
    let mut slow = Vec::new();
    for i in 0..64 {
        let mut c = Http1::connect(w.port);
        if i % 2 == 0 {
            c.send(b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Ty");
        } else {
            c.send(
                b"POST /test.Web/Double HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web\r\n\
                  Content-Length: 100\r\n\r\n\0\0\0",
            );
        }
        slow.push(c);
    }
    // Every one of them is accepted and parsed on the one loop...
    let deadline = Instant::now() + WAIT;
    while w.server.connections() < 65 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(w.server.connections(), 65);
    // ...with no thread more, and none of the two workers held.
    assert!(
        threads() <= before + 1,
        "{} threads, {before} before",
        threads()
    );
    assert_eq!(w.server.pool_stats().busy, 0);
    // And a normal request still gets through at once.
    c.send(&request("/test.Web/Double", &num(2), &[]));
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 4);
    // A request whose first segment is two letters of its method (its own segment with
    // TCP_NODELAY; the server usually reads it alone, and must then wait for the rest).
    let mut c = Http1::connect(w.port);
    let req = request("/test.Web/Double", &num(3), &[]);
    c.send(&req[..2]);
    c.send(&req[2..]);
    assert_eq!(decode(&c.response(WAIT).web(false).messages[0]), 6);
}
