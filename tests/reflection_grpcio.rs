//! Server reflection interop with Python's grpcio-reflection, both ways:
//!
//! - grpcio-reflection's `ProtoReflectionDescriptorDatabase` against our server
//!   (`tests/python/reflection_client.py`): every service and method of the helloworld and route
//!   guide protos is found, a descriptor pool is built from what we send, and calls made with
//!   message classes from that pool alone succeed;
//! - our [`ReflectionClient`] against grpcio's reflection server (`servers.py --reflection`,
//!   `grpc_reflection.v1alpha.reflection.enable_server_reflection`).
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, provisioned from
//! `tests/python/requirements.txt` by the first test that needs it.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use grpc_sync::reflection::{ReflectionClient, ReflectionService, V1ALPHA_SERVICE_NAME};
use grpc_sync::{Channel, Code, Server};

use common::pb::helloworld::greeter_server::GreeterServer;
use common::pb::route_guide::route_guide_server::RouteGuideServer;
use support::python::{run_script, PythonServer};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn grpcio_reflection_builds_a_working_pool_from_our_server() {
    let db = common::route_guide::load_db().expect("route guide database");
    let reflection = ReflectionService::builder()
        .register_file_descriptor_set(common::pb::helloworld::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(common::pb::route_guide::FILE_DESCRIPTOR_SET)
        .build()
        .unwrap();
    let server = Server::builder()
        .add_service(GreeterServer::new(common::helloworld::Greeter))
        .add_service(RouteGuideServer::new(
            common::route_guide::RouteGuideService::new(db),
        ))
        .add_services(reflection.services())
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let out = run_script("reflection_client.py", &["--port", &port.to_string()]);
    println!("{}", out.stdout);
    out.assert_success("grpcio-reflection against our server");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
}

#[test]
fn our_reflection_client_against_grpcio_reflection() {
    let server = PythonServer::start_script("servers.py", "all", &["--reflection"]);
    let channel = Channel::insecure(&server.addr()).unwrap();
    let client = ReflectionClient::v1alpha(channel.clone()).with_timeout(WAIT);

    let services = client.list_services().unwrap();
    for name in [
        "helloworld.Greeter",
        "routeguide.RouteGuide",
        "Demo",
        V1ALPHA_SERVICE_NAME,
    ] {
        assert!(
            services.iter().any(|s| s == name),
            "{name} not in {services:?}"
        );
    }
    let files = client
        .file_containing_symbol("routeguide.RouteGuide")
        .unwrap();
    assert_eq!(files[0].name(), "route_guide.proto");
    let methods: Vec<&str> = files[0].service[0]
        .method
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(
        methods,
        ["GetFeature", "ListFeatures", "RecordRoute", "RouteChat"]
    );
    for symbol in ["helloworld.HelloRequest", "routeguide.Point.latitude"] {
        let files = client
            .file_containing_symbol(symbol)
            .unwrap_or_else(|e| panic!("{symbol}: {e}\n{}", server.output()));
        assert!(files[0].name().ends_with(".proto"), "{symbol}");
    }
    // Methods are not symbols to grpcio (its upb descriptor pool does not index them), though
    // reflection.proto names `<package>.<service>[.<method>]` and grpc-go and we answer them.
    let err = client
        .file_containing_symbol("helloworld.Greeter.SayHello")
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let files = client.file_by_filename("helloworld.proto").unwrap();
    assert_eq!(files[0].package(), "helloworld");
    let err = client.file_by_filename("nope.proto").unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = client.file_containing_symbol("no.Such").unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");

    // grpcio-reflection serves only v1alpha.
    let err = ReflectionClient::new(channel)
        .with_timeout(WAIT)
        .list_services()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
}
