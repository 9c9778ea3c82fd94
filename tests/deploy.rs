//! Our client and server behind the software they are deployed behind, started by the tests
//! on loopback ports with generated configurations:
//!
//! - **tinyproxy** as the HTTP CONNECT proxy: our client reaches a TLS server through it (the
//!   proxy given to the channel, and in a child process through `https_proxy`), with Basic
//!   credentials; `no_proxy` goes around it (its log shows it saw nothing); a port its
//!   configuration denies, and wrong credentials, are UNAVAILABLE with its status line;
//! - **nginx** as the gRPC reverse proxy (`grpc_pass` over two of our servers): our client
//!   makes all four kinds of call, metadata and trailers, a status with details, a deadline;
//!   grpcio's route guide client passes through the same nginx.
//!
//! The programs come from [`support::tools::require`]: installed with apt when missing and the
//! tests run as root on Debian/Ubuntu, else the test fails saying what to install, unless
//! `GRPC_SYNC_SKIP_SYSTEM_TESTS=1` (then it says it was skipped). Every process started is
//! killed when its guard drops; every wait has a deadline.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};
use grpc_sync::error_details::{BadRequest, ErrorDetails, FieldViolation};
use grpc_sync::metadata::MetadataValue;
use grpc_sync::{
    Channel, ChannelCredentials, Code, MetadataMap, Request, Server, ServerContext,
    ServerCredentials, Service, Status,
};

use common::checks::{self, Checks};
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use support::certs::Pki;
use support::msg::{text, Text};
use support::provision::try_run;
use support::tools::{free_port, require, Daemon, TempDir, NGINX, TINYPROXY};

const WAIT: Duration = Duration::from_secs(10);
/// How long nginx or tinyproxy may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long the child process of the `https_proxy` check may run.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// Starts a program that cannot be told to pick its own port: up to three free ports in turn,
/// in case another process takes the one picked before the program binds it. `ready` is the
/// line it writes once listening.
fn start_on_free_port(name: &str, ready: &str, command: impl Fn(u16) -> Command) -> (Daemon, u16) {
    let mut outputs = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut daemon = Daemon::start(name, command(port));
        if daemon.wait_for_line(ready, START_DEADLINE) {
            return (daemon, port);
        }
        let out = daemon.output();
        if !out.contains("Address already in use") && !out.contains("Could not create listening") {
            panic!("{name} did not start (it exited, or did not listen within {START_DEADLINE:?})\n{out}");
        }
        let _ = writeln!(outputs, "{out}");
    }
    panic!("{name} found no free port in three tries\n{outputs}");
}

// ---------------------------------------------------------------------------------------------
// tinyproxy

/// A tinyproxy on 127.0.0.1 allowing CONNECT to `ports` only, with Basic credentials
/// `user`/`s3cret.pw`, logging every connection to stderr (read by the guard).
struct Tinyproxy {
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

fn tinyproxy(binary: &Path, ports: &[u16]) -> Tinyproxy {
    let dir = TempDir::new("tinyproxy");
    let conf_dir = dir.path().to_path_buf();
    let ports = ports.to_vec();
    let (daemon, port) = start_on_free_port("tinyproxy", "Accepting connections", |port| {
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Info\n\
             Allow 127.0.0.1\nDisableViaHeader Yes\nBasicAuth user s3cret.pw\n"
        );
        for p in &ports {
            let _ = writeln!(conf, "ConnectPort {p}");
        }
        let path = conf_dir.join(format!("tinyproxy-{port}.conf"));
        std::fs::write(&path, conf).expect("write tinyproxy.conf");
        // -d: in the foreground, logging to stderr; it runs as the current user.
        let mut cmd = Command::new(binary);
        cmd.arg("-d").arg("-c").arg(&path);
        cmd
    });
    Tinyproxy {
        daemon,
        port,
        _dir: dir,
    }
}

impl Tinyproxy {
    fn url(&self) -> String {
        // %2E is `.`: the URL is percent-decoded.
        format!("http://user:s3cret%2Epw@127.0.0.1:{}", self.port)
    }

    /// Waits for the proxy to log a CONNECT to `authority`.
    fn saw_connect_to(&mut self, authority: &str) -> bool {
        self.daemon
            .wait_for_line(&format!("CONNECT {authority} "), WAIT)
    }

    /// The CONNECT requests it logged from now until a marker request this sends (so that
    /// everything logged before the marker has been read).
    fn requests_until_marker(&mut self, from: usize) -> Vec<String> {
        let marker = format!("marker-{}.invalid:1", std::process::id());
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to tinyproxy");
        write!(s, "CONNECT {marker} HTTP/1.1\r\nHost: {marker}\r\n\r\n").unwrap();
        assert!(
            self.saw_connect_to(&marker),
            "tinyproxy did not log the marker\n{}",
            self.daemon.output()
        );
        self.daemon.seen()[from..]
            .iter()
            .filter(|l| l.contains("Request (") && !l.contains(&marker))
            .cloned()
            .collect()
    }
}

/// Our TLS server (certificate for `localhost`) with an echo method.
fn tls_server(pki: &Pki) -> (Server, u16) {
    let server = Server::builder()
        .add_service(
            Service::builder("test.Echo")
                .unary("Echo", |m: Text, _ctx: &ServerContext| Ok(m))
                .build(),
        )
        .build();
    let creds =
        ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let port = server.add_secure_port("127.0.0.1:0", creds).unwrap();
    server.start().unwrap();
    (server, port)
}

fn echo(ch: &Channel, s: &str) -> Result<String, Status> {
    ch.unary::<Text, Text>("/test.Echo/Echo", Request::new(text(s)).with_timeout(WAIT))
        .map(|r| r.into_inner().s)
}

#[test]
fn tinyproxy_carries_tls_to_our_server_and_no_proxy_goes_around_it() {
    let test = "tinyproxy_carries_tls_to_our_server_and_no_proxy_goes_around_it";
    let Some(binary) = require(TINYPROXY, test) else {
        return;
    };
    let pki = Pki::new();
    let (_server, port) = tls_server(&pki);
    let mut proxy = tinyproxy(&binary, &[port]);
    let target = format!("localhost:{port}");
    let roots = || ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();

    // Through the proxy: TLS inside the tunnel verifies the name `localhost`.
    let ch = Channel::builder(&target)
        .tls(roots())
        .http_proxy(&proxy.url())
        .no_proxy("")
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "via tinyproxy").unwrap(), "via tinyproxy");
    assert!(
        proxy.saw_connect_to(&target),
        "tinyproxy did not log the CONNECT\n{}",
        proxy.daemon.output()
    );

    // no_proxy names the target: the proxy sees nothing.
    let from = proxy.daemon.seen().len();
    let ch = Channel::builder(&target)
        .tls(roots())
        .http_proxy(&proxy.url())
        .no_proxy("example.com, localhost")
        .build()
        .unwrap();
    assert_eq!(echo(&ch, "direct").unwrap(), "direct");
    let seen = proxy.requests_until_marker(from);
    assert!(seen.is_empty(), "tinyproxy saw {seen:?}");

    // A port the configuration does not allow: its 403, in its words.
    let other = free_port();
    let ch = Channel::builder(&format!("localhost:{other}"))
        .tls(roots())
        .http_proxy(&proxy.url())
        .no_proxy("")
        .build()
        .unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "proxy 127.0.0.1:{} refused CONNECT to localhost:{other}: HTTP/1.1 403 Access \
             violation",
            proxy.port
        )
    );

    // Wrong credentials: its 407.
    let ch = Channel::builder(&target)
        .tls(roots())
        .http_proxy(&format!("http://user:wrong@127.0.0.1:{}", proxy.port))
        .no_proxy("")
        .build()
        .unwrap();
    let e = echo(&ch, "x").unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    // tinyproxy says 401 Unauthorized where RFC 9110 has 407.
    assert!(
        e.message().starts_with(&format!(
            "proxy 127.0.0.1:{} refused CONNECT to {target}: HTTP/1.",
            proxy.port
        )) && e.message().contains("did not accept the credentials"),
        "{e:?}"
    );
}

/// Tells a child process of [`tinyproxy_from_the_environment`] what to call.
const CHILD_VAR: &str = "GRPC_SYNC_DEPLOY_CHILD";

/// Runs the ignored test `name` of this binary in a child process whose environment has
/// `vars` and none of the proxy variables of ours: the way to test what the environment does
/// without changing it for the other tests of this process.
fn run_child(name: &str, vars: &[(&str, String)]) -> support::provision::Output {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--test-threads=1",
        "--nocapture",
    ]);
    for v in [
        "grpc_proxy",
        "https_proxy",
        "http_proxy",
        "no_grpc_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    try_run(&mut cmd, CHILD_DEADLINE).expect("run the test binary")
}

/// Run only as a child process of `tinyproxy_from_the_environment`, which sets the proxy
/// variables for it alone (the tests of one process share its environment): calls the TLS
/// server `GRPC_SYNC_DEPLOY_CHILD` names (`target ca-file`) on a plain channel.
#[test]
#[ignore = "a child process of tinyproxy_from_the_environment"]
fn child_calls_with_the_proxy_of_its_environment() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let (target, ca) = spec.split_once(' ').expect("target ca-file");
    let ca = std::fs::read(ca).expect("CA file");
    let ch = Channel::secure(target, ChannelCredentials::from_ca_pem(&ca).unwrap()).unwrap();
    assert_eq!(echo(&ch, "from env").unwrap(), "from env");
}

#[test]
fn tinyproxy_from_the_environment() {
    let test = "tinyproxy_from_the_environment";
    let Some(binary) = require(TINYPROXY, test) else {
        return;
    };
    let pki = Pki::new();
    let certs = pki.write("deploy-env");
    let (_server, port) = tls_server(&pki);
    let mut proxy = tinyproxy(&binary, &[port]);
    let target = format!("localhost:{port}");
    let spec = format!("{target} {}", certs.arg("ca.pem"));
    let child = |vars: &[(&str, String)]| {
        let mut vars = vars.to_vec();
        vars.push((CHILD_VAR, spec.clone()));
        let out = run_child("child_calls_with_the_proxy_of_its_environment", &vars);
        assert!(
            out.success && out.stdout.contains("1 passed"),
            "the child with {vars:?} failed\n{out}"
        );
    };

    child(&[("https_proxy", proxy.url())]);
    assert!(
        proxy.saw_connect_to(&target),
        "https_proxy was not used\n{}",
        proxy.daemon.output()
    );

    let from = proxy.daemon.seen().len();
    child(&[
        ("https_proxy", proxy.url()),
        ("no_proxy", "localhost".to_string()),
    ]);
    let seen = proxy.requests_until_marker(from);
    assert!(seen.is_empty(), "no_proxy was not honoured: {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// nginx

/// The nginx configuration the test runs: one HTTP/2 cleartext listener proxying every gRPC
/// call to `upstreams` (round robin), everything it writes under `dir`.
fn nginx_conf(dir: &Path, port: u16, upstreams: &[u16]) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    format!(
        "# Generated by tests/deploy.rs.
# In the foreground and in one process: no daemon, no worker switching to another user.
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream grpc_servers {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port} http2;
        # A client stream is one request body: no size limit on it.
        client_max_body_size 0;
        location / {{
            grpc_pass grpc://grpc_servers;
        }}
    }}
}}
"
    )
}

struct Nginx {
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

fn nginx_for(binary: &Path, upstreams: &[u16]) -> Nginx {
    let dir = TempDir::new("nginx");
    let prefix = dir.path().to_path_buf();
    // nginx writes its version once its sockets listen.
    let (daemon, port) = start_on_free_port("nginx", ": nginx/", |port| {
        let conf = prefix.join(format!("nginx-{port}.conf"));
        std::fs::write(&conf, nginx_conf(&prefix, port, upstreams)).expect("write nginx.conf");
        let mut cmd = Command::new(binary);
        cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf);
        cmd
    });
    Nginx {
        daemon,
        port,
        _dir: dir,
    }
}

/// What the deadline method saw: the time the server had left when the call arrived.
type Seen = Sender<Option<Duration>>;

/// The methods the nginx test calls besides the route guide: `Who` (which server),
/// `Meta` (echoes `x-echo-*` request metadata, ASCII as initial metadata, `-bin` as trailing),
/// `Fail` (a status with details), `Sleep` (waits for the call to end).
fn deploy_service(name: &'static str, seen: Seen) -> Service {
    Service::builder("test.Deploy")
        .unary("Who", move |_m: Text, _ctx: &ServerContext| Ok(text(name)))
        .unary("Meta", |m: Text, ctx: &ServerContext| {
            let (mut initial, mut trailing) = (MetadataMap::new(), MetadataMap::new());
            for (key, value) in ctx.metadata().iter() {
                match value {
                    MetadataValue::Ascii(v) if key.starts_with("x-echo-") => {
                        initial.append(key, v)?
                    }
                    MetadataValue::Binary(v) if key.starts_with("x-echo-") => {
                        trailing.append_bin(key, v.clone())?
                    }
                    _ => {}
                }
            }
            ctx.send_initial_metadata(initial)?;
            ctx.set_trailing_metadata(trailing);
            Ok(m)
        })
        .unary("Fail", |_m: Text, _ctx: &ServerContext| {
            Err::<Text, _>(Status::with_error_details(
                Code::InvalidArgument,
                "the name is empty",
                ErrorDetails::new().with(BadRequest {
                    field_violations: vec![FieldViolation::new("name", "must not be empty")],
                }),
            ))
        })
        .unary("Sleep", move |m: Text, ctx: &ServerContext| {
            let _ = seen.send(ctx.time_remaining());
            let (tx, rx) = crossbeam_channel::bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            Ok(m)
        })
        .build()
}

/// Our server with the route guide and `test.Deploy`, on 127.0.0.1:0.
fn upstream(name: &'static str, seen: Seen) -> (Server, u16) {
    let db = common::route_guide::load_db().expect("route guide database");
    let server = Server::builder()
        .add_service(RouteGuideServer::new(
            common::route_guide::RouteGuideService::new(db),
        ))
        .add_service(deploy_service(name, seen))
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port)
}

/// A channel to 127.0.0.1:`port` that uses no proxy whatever the environment says.
fn direct(port: u16) -> Channel {
    Channel::builder(&format!("127.0.0.1:{port}"))
        .enable_http_proxy(false)
        .build()
        .unwrap()
}

/// A unary call of `path` with an empty request and `timeout`.
fn call(
    ch: &Channel,
    path: &'static str,
    timeout: Duration,
) -> Result<grpc_sync::Response<Text>, Status> {
    ch.unary::<Text, Text>(path, Request::new(text("")).with_timeout(timeout))
}

#[test]
fn our_client_and_grpcio_through_nginx_to_our_servers() {
    let test = "our_client_and_grpcio_through_nginx_to_our_servers";
    let Some(binary) = require(NGINX, test) else {
        return;
    };
    let (seen_tx, seen) = unbounded();
    let (_a, port_a) = upstream("a", seen_tx.clone());
    let (_b, port_b) = upstream("b", seen_tx);
    let mut nginx = nginx_for(&binary, &[port_a, port_b]);
    let ch = direct(nginx.port);

    // All four kinds of call (the examples' route guide client and its checks).
    let db = common::route_guide::load_db().unwrap();
    let mut c = Checks::default();
    checks::route_guide(&mut c, &ch, &db);
    assert!(
        c.summary(),
        "route guide through nginx\n{}",
        nginx.daemon.output()
    );

    // Round robin over both upstreams.
    let mut who = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let r = call(&ch, "/test.Deploy/Who", WAIT).unwrap();
        who.insert(r.into_inner().s);
    }
    assert_eq!(who.into_iter().collect::<Vec<_>>(), ["a", "b"]);

    // Metadata both ways, trailers.
    let r = ch
        .unary::<Text, Text>(
            "/test.Deploy/Meta",
            Request::new(text("m"))
                .with_timeout(WAIT)
                .with_metadata("x-echo-one", "1")
                .with_metadata_bin("x-echo-data-bin", vec![0u8, 1, 2, 255]),
        )
        .unwrap();
    assert_eq!(r.initial_metadata().get("x-echo-one"), Some("1"));
    assert_eq!(
        r.trailing_metadata().get_bin("x-echo-data-bin").as_deref(),
        Some(&[0u8, 1, 2, 255][..])
    );

    // A status with details (grpc-status-details-bin) in a trailers-only response.
    let e = call(&ch, "/test.Deploy/Fail", WAIT).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(e.message(), "the name is empty");
    let details = e.error_details().expect("details decode");
    assert_eq!(
        details
            .bad_request()
            .map(|b| b.field_violations[0].field.as_str()),
        Some("name")
    );

    // A deadline: it reaches the server through nginx (grpc-timeout), and the call ends on
    // time.
    let start = Instant::now();
    let e = call(&ch, "/test.Deploy/Sleep", Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let left = seen
        .recv_timeout(WAIT)
        .expect("the Sleep call reached a server");
    assert!(
        left.is_some_and(|d| d <= Duration::from_millis(300)),
        "the server saw {left:?} left"
    );

    // grpcio's route guide client through the same nginx.
    let out = support::python::run_client("route_guide", nginx.port, None);
    out.assert_success("grpcio route guide client through nginx");

    // No upstream answers: nginx says 502, which is UNAVAILABLE.
    let dead = nginx_for(&binary, &[free_port()]);
    let e = call(&direct(dead.port), "/test.Deploy/Who", WAIT).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("502"), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// The opt-out

/// Run only as a child process of `the_opt_out_skips_and_says_so`.
#[test]
#[ignore = "a child process of the_opt_out_skips_and_says_so"]
fn child_requires_a_missing_program() {
    let missing = support::tools::Tool {
        program: "grpc-sync-test-missing-program",
        package: "grpc-sync-test-missing-package",
    };
    assert!(require(missing, "child_requires_a_missing_program").is_none());
}

#[test]
fn the_opt_out_skips_and_says_so() {
    let out = run_child(
        "child_requires_a_missing_program",
        &[(support::tools::SKIP_VAR, "1".to_string())],
    );
    assert!(out.success && out.stdout.contains("1 passed"), "{out}");
    assert!(
        out.stderr.contains(
            "SKIPPED child_requires_a_missing_program: grpc-sync-test-missing-program is not \
             installed (GRPC_SYNC_SKIP_SYSTEM_TESTS=1"
        ),
        "{out}"
    );
}
