//! The service config's methodConfig against our server on 127.0.0.1:0: a config timeout, a
//! per-method request and response size limit, waitForReady, the `grpc.service_config` option,
//! and a malformed config refused at build.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use grpc_sync::{Channel, Code, ConnectivityState, Request, Server, ServerContext, Service};
use support::msg::{num, text, Num, Text};

const WAIT: Duration = Duration::from_secs(10);

fn service(events: Sender<String>) -> Service {
    let ev = events.clone();
    Service::builder("test.Cfg")
        .unary("Echo", move |m: Text, _ctx: &ServerContext| {
            let _ = ev.send(format!("echo {}", m.s.len()));
            Ok(m)
        })
        .unary("Big", |m: Num, _ctx: &ServerContext| {
            Ok(text(&"x".repeat(m.n as usize)))
        })
        .unary("Slow", move |_m: Num, ctx: &ServerContext| {
            // Answers only once the call is dead (its deadline), bounded by WAIT.
            let (tx, rx) = bounded::<()>(1);
            // add_callback says false when the call is over already: no wait then.
            let registered = ctx.add_callback(move || {
                let _ = tx.send(());
            });
            let _ = events.send("slow started".into());
            if registered {
                let _ = rx.recv_timeout(WAIT);
            }
            Ok(num(0))
        })
        .build()
}

fn start_on(addr: &str) -> (Server, u16, Receiver<String>) {
    let (tx, rx) = unbounded();
    let server = Server::builder().add_service(service(tx)).build();
    let port = server.add_insecure_port(addr).unwrap();
    server.start().unwrap();
    (server, port, rx)
}

fn channel(port: u16, config: &str) -> Channel {
    Channel::builder(&format!("127.0.0.1:{port}"))
        .service_config(config)
        .build()
        .unwrap()
}

#[test]
fn a_config_timeout_ends_a_slow_call() {
    let (_s, port, rx) = start_on("127.0.0.1:0");
    let ch = channel(
        port,
        r#"{"methodConfig": [{"name": [{"service": "test.Cfg", "method": "Slow"}],
                              "timeout": "0.2s"}]}"#,
    );
    // No timeout of its own, and a longer one: the config's (the shorter) applies to both.
    for req in [
        Request::new(num(1)),
        Request::new(num(1)).with_timeout(WAIT),
    ] {
        let e = ch.unary::<_, Num>("/test.Cfg/Slow", req).unwrap_err();
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "slow started");
    }
    // Other methods have no deadline from the config.
    let r: Text = ch
        .unary("/test.Cfg/Echo", Request::new(text("hi")))
        .unwrap()
        .into_inner();
    assert_eq!(r.s, "hi");
}

#[test]
fn per_method_size_limits() {
    let (_s, port, rx) = start_on("127.0.0.1:0");
    let ch = channel(
        port,
        r#"{"methodConfig": [
            {"name": [{"service": "test.Cfg", "method": "Echo"}], "maxRequestMessageBytes": 100},
            {"name": [{"service": "test.Cfg", "method": "Big"}], "maxResponseMessageBytes": "100"}
        ]}"#,
    );
    let e = ch
        .unary::<_, Text>("/test.Cfg/Echo", Request::new(text(&"x".repeat(200))))
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    // Nothing was sent: the server's first Echo is the small one that follows.
    let r: Text = ch
        .unary("/test.Cfg/Echo", Request::new(text("small")))
        .unwrap()
        .into_inner();
    assert_eq!(r.s, "small");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "echo 5");

    let e = ch
        .unary::<_, Text>("/test.Cfg/Big", Request::new(num(200)))
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let r: Text = ch
        .unary("/test.Cfg/Big", Request::new(num(50)))
        .unwrap()
        .into_inner();
    assert_eq!(r.s.len(), 50);
}

#[test]
fn wait_for_ready_from_the_config_waits_for_a_server_started_later() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // waitForReady for the whole service, but not for Big (the more specific entry wins).
    let ch = channel(
        port,
        r#"{"methodConfig": [
            {"name": [{"service": "test.Cfg"}], "waitForReady": true, "timeout": "10s"},
            {"name": [{"service": "test.Cfg", "method": "Big"}], "waitForReady": false}
        ]}"#,
    );
    assert_eq!(ch.state(true), ConnectivityState::TransientFailure);
    // In back-off: a call without waitForReady fails fast.
    let e = ch
        .unary::<_, Text>("/test.Cfg/Big", Request::new(num(1)).with_timeout(WAIT))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // The config's waitForReady carries a call through the back-off to the server.
    let (started_tx, started_rx) = bounded(1);
    let caller = std::thread::spawn(move || {
        let _ = started_tx.send(());
        ch.unary::<_, Text>("/test.Cfg/Echo", Request::new(text("late")))
    });
    started_rx.recv_timeout(WAIT).unwrap();
    let (_s, _, rx) = start_on(&format!("127.0.0.1:{port}"));
    let r = caller.join().unwrap().unwrap().into_inner();
    assert_eq!(r.s, "late");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "echo 4");
}

#[test]
fn the_calls_own_wait_for_ready_wins() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = channel(
        port,
        r#"{"methodConfig": [{"name": [{}], "waitForReady": true}]}"#,
    );
    assert_eq!(ch.state(true), ConnectivityState::TransientFailure);
    let e = ch
        .unary::<_, Text>(
            "/test.Cfg/Echo",
            Request::new(text("x"))
                .wait_for_ready(false)
                .with_timeout(WAIT),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
}

#[test]
fn the_grpc_service_config_option_sets_it() {
    let (_s, port, _rx) = start_on("127.0.0.1:0");
    let ch = Channel::builder(&format!("127.0.0.1:{port}"))
        .options([(
            "grpc.service_config",
            r#"{"methodConfig": [{"name": [{"service": "test.Cfg"}], "timeout": "0.2s"}]}"#,
        )])
        .unwrap()
        .build()
        .unwrap();
    let e = ch
        .unary::<_, Num>("/test.Cfg/Slow", Request::new(num(1)))
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
}

#[test]
fn a_malformed_config_fails_the_build_naming_the_field() {
    let e = Channel::builder("127.0.0.1:1")
        .service_config(r#"{"methodConfig": [{"name": [{}], "timeout": "abc"}]}"#)
        .build()
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        r#"invalid service config: methodConfig[0].timeout: "abc" is not a duration like "1.5s""#
    );
    let e = Channel::builder("127.0.0.1:1")
        .options([("grpc.service_config", "not json")])
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("invalid service config: not valid JSON"),
        "{e}"
    );
}
