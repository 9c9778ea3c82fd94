//! HTTP CONNECT proxies, against a small proxy in the test (a thread on 127.0.0.1:0 that
//! parses CONNECT and relays, or answers what the test says): TLS and plaintext servers
//! through it, Basic credentials, refusals, garbage, a proxy that never answers, `no_proxy`,
//! and the switches. Every channel names its proxy and its `no_proxy` list itself, so the
//! environment of the test process plays no part (tests run in parallel threads of one
//! process: none of them sets a variable). tinyproxy, a real proxy, is in `tests/deploy.rs`.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use grpc_sync::{
    Channel, ChannelCredentials, Code, Request, Server, ServerContext, ServerCredentials, Service,
    Status, Streaming,
};
use support::certs::Pki;
use support::msg::{text, Text};

const WAIT: Duration = Duration::from_secs(10);

/// Echo, a count stream and an upper-casing bidi stream.
fn service() -> Service {
    Service::builder("test.Echo")
        .unary("Echo", |m: Text, _ctx: &ServerContext| Ok(m))
        .server_streaming_fn("Count", |m: Text, _ctx: &ServerContext| {
            let n: usize = m.s.parse().unwrap_or(0);
            let it: grpc_sync::ResponseStream<'_, Text> =
                Box::new((0..n).map(|i| Ok(text(&i.to_string()))));
            Ok(it)
        })
        .bidi_streaming_fn("Upper", |reqs: Streaming<Text>, _ctx: &ServerContext| {
            let it: grpc_sync::ResponseStream<'_, Text> =
                Box::new(reqs.map(|r| r.map(|m| text(&m.s.to_uppercase()))));
            Ok(it)
        })
        .into()
}

/// Our server on 127.0.0.1:0, with TLS if `creds`.
fn server(creds: Option<ServerCredentials>) -> (Server, u16) {
    let server = Server::builder().add_service(service()).build();
    let port = match creds {
        Some(c) => server.add_secure_port("127.0.0.1:0", c).unwrap(),
        None => server.add_insecure_port("127.0.0.1:0").unwrap(),
    };
    server.start().unwrap();
    (server, port)
}

fn echo(ch: &Channel, s: &str) -> Result<String, Status> {
    ch.unary::<Text, Text>("/test.Echo/Echo", Request::new(text(s)).with_timeout(WAIT))
        .map(|r| r.into_inner().s)
}

/// What the test proxy does with a CONNECT.
#[derive(Clone, Copy)]
enum Mode {
    /// Connects to the target, answers 200 and relays both ways.
    Relay,
    /// Answers these bytes and closes.
    Answer(&'static str),
    /// Reads the request and never answers (the connection stays open until the proxy drops).
    Silent,
}

/// A CONNECT proxy on 127.0.0.1:0, stopped (every connection closed) when dropped.
struct TestProxy {
    addr: SocketAddr,
    /// The request heads received, in order.
    requests: Receiver<String>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TestProxy {
    fn start(mode: Mode) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop2, open2) = (stop.clone(), open.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(c) = conn.try_clone() {
                    open2.lock().unwrap().push(c);
                }
                let (tx, open) = (tx.clone(), open2.clone());
                thread::spawn(move || {
                    let _ = serve(conn, mode, &tx, &open);
                });
            }
        });
        TestProxy {
            addr,
            requests,
            stop,
            open,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request head, within `WAIT`.
    fn next_request(&self) -> String {
        self.requests
            .recv_timeout(WAIT)
            .expect("the proxy received no CONNECT")
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn serve(
    mut conn: TcpStream,
    mode: Mode,
    requests: &Sender<String>,
    open: &Mutex<Vec<TcpStream>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(WAIT))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    conn.set_read_timeout(None)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_string();
    let _ = requests.send(head);
    match mode {
        Mode::Answer(reply) => {
            conn.write_all(reply.as_bytes())?;
            // `open` holds a clone: closing this handle alone would not end the connection.
            conn.shutdown(Shutdown::Both)
        }
        Mode::Silent => Ok(()),
        Mode::Relay => {
            let upstream = TcpStream::connect(&target)?;
            open.lock().unwrap().push(upstream.try_clone()?);
            conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
            let (mut down_r, mut down_w) = (conn.try_clone()?, conn);
            thread::spawn(move || {
                let _ = io::copy(&mut up_r, &mut down_w);
                let _ = down_w.shutdown(Shutdown::Write);
            });
            let _ = io::copy(&mut down_r, &mut up_w);
            up_w.shutdown(Shutdown::Write)
        }
    }
}

/// A channel to `target` through `proxy_url` for every host (an empty `no_proxy`, so the
/// environment's list cannot send it around the proxy).
fn via(proxy_url: &str, target: &str) -> grpc_sync::ChannelBuilder {
    Channel::builder(target).http_proxy(proxy_url).no_proxy("")
}

#[test]
fn a_tls_server_through_the_proxy_with_the_targets_name() {
    let pki = Pki::new();
    let creds =
        ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let (_server, port) = server(Some(creds));
    let proxy = TestProxy::start(Mode::Relay);
    let roots = ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();
    // `localhost` is the name the certificate has: the handshake in the tunnel checks it.
    let ch = via(&proxy.url(), &format!("localhost:{port}"))
        .tls(roots)
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "through").unwrap(), "through");
    assert!(
        proxy.next_request().starts_with(&format!(
            "CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n"
        )),
        "the CONNECT names the target"
    );
    let counted: Vec<String> = ch
        .server_streaming::<Text, Text>("/test.Echo/Count", Request::new(text("3")))
        .unwrap()
        .map(|m| m.unwrap().s)
        .collect();
    assert_eq!(counted, ["0", "1", "2"]);
    let upper: Vec<String> = ch
        .bidi_streaming::<Text, Text, _>(
            "/test.Echo/Upper",
            Request::new(vec![text("a"), text("b")].into_iter()),
        )
        .unwrap()
        .map(|m| m.unwrap().s)
        .collect();
    assert_eq!(upper, ["A", "B"]);
    // One connection carried it all.
    assert!(proxy.requests.try_recv().is_err());
}

#[test]
fn a_plaintext_server_through_the_proxy_given_as_an_option() {
    let (_server, port) = server(None);
    let proxy = TestProxy::start(Mode::Relay);
    let ch = Channel::builder(&format!("127.0.0.1:{port}"))
        .option("grpc.http_proxy", proxy.addr.to_string())
        .unwrap()
        .option("grpc.enable_http_proxy", 1)
        .unwrap()
        .no_proxy("")
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "plain").unwrap(), "plain");
    assert!(proxy
        .next_request()
        .starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")));
}

#[test]
fn credentials_in_the_url_arrive_as_basic_proxy_authorization() {
    let (_server, port) = server(None);
    let proxy = TestProxy::start(Mode::Relay);
    let url = format!("http://user:p%40ss@{}", proxy.addr);
    let ch = via(&url, &format!("127.0.0.1:{port}")).build().unwrap();
    assert_eq!(echo(&ch, "x").unwrap(), "x");
    let head = proxy.next_request();
    // base64("user:p@ss")
    assert!(
        head.contains("\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n"),
        "{head}"
    );
    // The password is in no Debug output.
    assert!(!format!("{:?}", via(&url, "x:1")).contains("p%40ss"));
}

#[test]
fn a_refusal_is_unavailable_with_the_proxys_status_line() {
    let proxy = TestProxy::start(Mode::Answer(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    ));
    let ch = via(&proxy.url(), "blocked.example:443").build().unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "proxy {} refused CONNECT to blocked.example:443: HTTP/1.1 403 Forbidden",
            proxy.addr
        )
    );

    let proxy = TestProxy::start(Mode::Answer(
        "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
    ));
    let ch = via(&proxy.url(), "blocked.example:443").build().unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message()
            .contains("HTTP/1.1 407 Proxy Authentication Required; it wants credentials"),
        "{e:?}"
    );
}

#[test]
fn a_reply_that_is_not_http_is_unavailable_and_says_so() {
    let proxy = TestProxy::start(Mode::Answer("SSH-2.0-OpenSSH_9.2\r\n"));
    let ch = via(&proxy.url(), "target.example:443").build().unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().starts_with(&format!(
            "the proxy {} answered CONNECT to target.example:443 with not an HTTP reply",
            proxy.addr
        )) && e.message().contains("SSH-2.0-OpenSSH_9.2"),
        "{e:?}"
    );

    let proxy = TestProxy::start(Mode::Answer(""));
    let ch = via(&proxy.url(), "target.example:443").build().unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message()
            .contains("closed the connection without answering CONNECT"),
        "{e:?}"
    );
}

#[test]
fn a_proxy_that_never_answers_is_bounded_by_the_deadline() {
    let proxy = TestProxy::start(Mode::Silent);
    let ch = via(&proxy.url(), "target.example:443").build().unwrap();
    let start = Instant::now();
    let e = ch
        .unary::<Text, Text>(
            "/test.Echo/Echo",
            Request::new(text("x")).with_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        matches!(e.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{e:?}"
    );
    proxy.next_request();

    // wait_for_ready is bounded the same way, and names the proxy.
    let ch = via(&proxy.url(), "target.example:443").build().unwrap();
    let start = Instant::now();
    let e = ch.wait_for_ready(Duration::from_millis(300)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(e.message().contains("did not answer CONNECT"), "{e:?}");
}

#[test]
fn no_proxy_and_the_switch_connect_directly() {
    let (_server, port) = server(None);
    // A proxy that refuses everything: a call that reaches it fails.
    let proxy = TestProxy::start(Mode::Answer("HTTP/1.1 403 Forbidden\r\n\r\n"));
    let target = format!("127.0.0.1:{port}");
    for list in [
        "127.0.0.1",
        "127.0.0.0/8",
        &format!("127.0.0.1:{port}"),
        "*",
    ] {
        let ch = Channel::builder(&target)
            .http_proxy(&proxy.url())
            .no_proxy(list)
            .build()
            .unwrap();
        assert_eq!(echo(&ch, list).unwrap(), list, "no_proxy={list}");
    }
    let ch = via(&proxy.url(), &target)
        .enable_http_proxy(false)
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "off").unwrap(), "off");
    let ch = via("", &target).build().unwrap();
    assert_eq!(echo(&ch, "empty").unwrap(), "empty");
    assert!(
        proxy.requests.try_recv().is_err(),
        "the proxy saw a request"
    );
    // And the proxy does get a port that no_proxy names with another port.
    let ch = Channel::builder(&target)
        .http_proxy(&proxy.url())
        .no_proxy("127.0.0.1:1")
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "x").unwrap_err().code(), Code::Unavailable);
    proxy.next_request();
}

#[cfg(unix)]
#[test]
fn unix_socket_targets_never_use_the_proxy() {
    let dir = std::env::temp_dir().join(format!("grpc-sync-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::builder().add_service(service()).build();
    server
        .add_insecure_port(&format!("unix:{}", path.display()))
        .unwrap();
    server.start().unwrap();
    let proxy = TestProxy::start(Mode::Answer("HTTP/1.1 403 Forbidden\r\n\r\n"));
    let ch = via(&proxy.url(), &format!("unix:{}", path.display()))
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "unix").unwrap(), "unix");
    assert!(proxy.requests.try_recv().is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_proxy_url_fails_the_build() {
    for url in [
        "https://proxy:3128",
        "socks5://proxy:1080",
        "proxy:notaport",
    ] {
        let e = Channel::builder("x:1").http_proxy(url).build().unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{url}");
        assert!(e.message().contains("bad HTTP proxy"), "{url}: {e:?}");
    }
}
