//! Interop with Python grpcio, both ways, on 127.0.0.1:
//!
//! - grpcio clients (`tests/python/clients.py`) against our servers: the example services of
//!   `examples/common/` (route_guide, calculator, format_data) and a Greeter that adds the
//!   test hooks `clients.py` needs (`sleep:`, `abort:`, `x-echo-*` metadata);
//! - our clients against grpcio servers (`tests/python/servers.py`): the examples' client
//!   routines with the demo's checks, and helloworld calls for every feature (metadata both
//!   ways, deadlines, status codes and details, futures, 4 MiB messages, 100 concurrent calls
//!   from 8 threads on one channel).
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, which the first test to need
//! it provisions (`tests/support/provision.rs`).

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grpc_sync::metadata::MetadataValue;
use grpc_sync::{Channel, Code, MetadataMap, Request, Server, ServerContext, Status};

use common::checks::{self, Checks};
use common::pb::calculator::demo_server::DemoServer;
use common::pb::format_data::format_data_server::FormatDataServer;
use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::greeter_server::{self, GreeterServer};
use common::pb::helloworld::{HelloReply, HelloRequest};
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use support::python::{run_client, PythonServer};

const WAIT: Duration = Duration::from_secs(30);

/// The example Greeter plus the hooks of `tests/python/README.md`: echo `x-echo-*` metadata
/// (ASCII as initial, `-bin` as trailing), `sleep:<ms>`, `abort:<CODE>:<details>`.
struct HookedGreeter;

fn hooks(name: &str, ctx: &ServerContext) -> Result<(), Status> {
    let mut initial = MetadataMap::new();
    let mut trailing = MetadataMap::new();
    for (key, value) in ctx.metadata().iter() {
        if !key.starts_with("x-echo-") {
            continue;
        }
        match value {
            MetadataValue::Ascii(v) => initial.append(key, v)?,
            MetadataValue::Binary(v) => trailing.append_bin(key, v.clone())?,
        }
    }
    if !initial.is_empty() {
        ctx.send_initial_metadata(initial)?;
    }
    if !trailing.is_empty() {
        ctx.set_trailing_metadata(trailing);
    }
    if let Some(ms) = name.strip_prefix("sleep:") {
        let ms: u64 = ms.parse().unwrap_or(0);
        // Wait that long, or until the call ends (deadline, cancel).
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        // add_callback says false when the call is over already: no wait then.
        let registered = ctx.add_callback(move || {
            let _ = tx.send(());
        });
        if registered {
            let _ = rx.recv_timeout(Duration::from_millis(ms));
        }
    }
    if let Some(rest) = name.strip_prefix("abort:") {
        let (code, details) = rest.split_once(':').unwrap_or((rest, ""));
        let code = Code::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(Code::Unknown);
        return Err(Status::new(code, details));
    }
    Ok(())
}

impl greeter_server::Greeter for HookedGreeter {
    fn say_hello(&self, request: HelloRequest, ctx: &ServerContext) -> Result<HelloReply, Status> {
        hooks(&request.name, ctx)?;
        common::helloworld::Greeter.say_hello(request, ctx)
    }

    fn say_hello_again(
        &self,
        request: HelloRequest,
        ctx: &ServerContext,
    ) -> Result<HelloReply, Status> {
        hooks(&request.name, ctx)?;
        common::helloworld::Greeter.say_hello_again(request, ctx)
    }
}

/// Our server with the four services `clients.py` knows, on 127.0.0.1:0.
fn our_server() -> (Server, u16) {
    let db = common::route_guide::load_db().expect("route guide database");
    let server = Server::builder()
        .max_workers(10)
        .max_receive_message_length(8 << 20)
        .add_service(GreeterServer::new(HookedGreeter))
        .add_service(RouteGuideServer::new(
            common::route_guide::RouteGuideService::new(db),
        ))
        .add_service(DemoServer::new(common::calculator::DemoService::default()))
        .add_service(FormatDataServer::new(common::format_data::FormatData))
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    (server, port)
}

fn grpcio_client_passes(service: &str) {
    let (_server, port) = our_server();
    let out = run_client(service, port, None);
    out.assert_success(&format!("grpcio {service} client against our server"));
}

#[test]
fn grpcio_helloworld_client_against_our_server() {
    grpcio_client_passes("helloworld");
}

#[test]
fn grpcio_route_guide_client_against_our_server() {
    grpcio_client_passes("route_guide");
}

#[test]
fn grpcio_calculator_client_against_our_server() {
    grpcio_client_passes("calculator");
}

#[test]
fn grpcio_format_data_client_against_our_server() {
    grpcio_client_passes("format_data");
}

fn python_channel(server: &PythonServer) -> Channel {
    Channel::builder(&format!("127.0.0.1:{}", server.port()))
        .max_receive_message_length(8 << 20)
        .build()
        .unwrap()
}

/// The examples' client routines against grpcio: the same checks the demo makes against us.
#[test]
fn example_clients_against_grpcio_servers() {
    let server = PythonServer::start("all");
    let channel = python_channel(&server);
    let db = common::route_guide::load_db().unwrap();
    let mut c = Checks::default();
    checks::helloworld(&mut c, &channel);
    checks::route_guide(&mut c, &channel, &db);
    checks::calculator(&mut c, &channel);
    checks::format_data(&mut c, &channel);
    assert!(c.summary(), "server output:\n{}", server.output());
}

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

#[test]
fn our_client_metadata_travels_both_ways_with_grpcio() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let resp = client
        .say_hello_with_call(
            Request::new(hello("md"))
                .with_metadata("x-echo-one", "1")
                .with_metadata("x-echo-one", "2")
                .with_metadata_bin("x-echo-data-bin", vec![0u8, 159, 255])
                .with_timeout(WAIT),
        )
        .unwrap();
    assert_eq!(resp.get_ref().message, "hello md");
    let all: Vec<&str> = resp.initial_metadata().get_all("x-echo-one").collect();
    assert_eq!(all, ["1", "2"]);
    assert_eq!(
        resp.trailing_metadata()
            .get_bin("x-echo-data-bin")
            .as_deref(),
        Some(&[0u8, 159, 255][..])
    );
}

#[test]
fn our_client_deadline_against_a_slow_grpcio_server() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let t0 = Instant::now();
    let e = client
        .say_hello(Request::new(hello("sleep:5000")).with_timeout(Duration::from_millis(300)))
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    // The channel still works.
    assert_eq!(
        client.say_hello(hello("after")).unwrap().message,
        "hello after"
    );
}

#[test]
fn our_client_sees_grpcio_status_codes_and_details() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let details = "100% broken\tbadly ✓ 中文";
    let e = client
        .say_hello(hello(&format!("abort:PERMISSION_DENIED:{details}")))
        .unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::PermissionDenied, details));
    let e = client.say_hello(hello("abort:NOT_FOUND:gone")).unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::NotFound, "gone"));
    // Unknown method and service, without codegen.
    let channel = python_channel(&server);
    for path in [
        "/helloworld.Greeter/Nope",
        "/helloworld.NoSuchService/SayHello",
    ] {
        let e = channel
            .unary::<_, HelloReply>(path, Request::new(hello("x")))
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{path}: {e}");
    }
}

#[test]
fn our_client_future_against_grpcio() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let f = client.say_hello_future(Request::new(hello("f")).with_metadata("x-echo-k", "v"));
    let resp = f.result().unwrap();
    assert_eq!(resp.get_ref().message, "hello f");
    assert_eq!(resp.initial_metadata().get("x-echo-k"), Some("v"));
    assert!(f.is_done());
    let slow = client.say_hello_future(Request::new(hello("sleep:20000")).with_timeout(WAIT));
    assert!(slow.cancel());
    assert_eq!(slow.result().unwrap_err().code(), Code::Cancelled);
}

#[test]
fn our_client_sends_and_receives_4_mib_messages_with_grpcio() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let name = "n".repeat((4 << 20) - 100);
    let reply = client
        .say_hello(Request::new(hello(&name)).with_timeout(WAIT))
        .unwrap();
    assert_eq!(reply.message.len(), name.len() + "hello ".len());
    // Past our receive limit: RESOURCE_EXHAUSTED, from our side.
    let small = GreeterClient::new(
        Channel::builder(&format!("127.0.0.1:{}", server.port()))
            .max_receive_message_length(1 << 20)
            .build()
            .unwrap(),
    );
    let e = small
        .say_hello(Request::new(hello(&name)).with_timeout(WAIT))
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
}

#[test]
fn our_client_makes_100_concurrent_calls_from_8_threads_to_grpcio() {
    let server = PythonServer::start("helloworld");
    let client = GreeterClient::new(python_channel(&server));
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 100 {
                    return;
                }
                let reply = client
                    .say_hello(Request::new(hello(&format!("c{i}"))).with_timeout(WAIT))
                    .unwrap();
                assert_eq!(reply.message, format!("hello c{i}"));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
