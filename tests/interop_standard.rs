//! The standard services against grpcio's own (`tests/python/standard.py`), both ways:
//!
//! - grpcio-health-checking's stub (`Check`, `List`, `Watch`) against our health service:
//!   statuses, NOT_FOUND, changes seen in order, NOT_SERVING seen when the server stops;
//! - our health client against grpcio's `HealthServicer`;
//! - rich error details: ours read by grpcio-status's `rpc_status.from_call`, and
//!   `rpc_status.to_status` read by our `Status::error_details`.
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, which the first test to need
//! it provisions (`tests/support/provision.rs`).

mod support;

use std::time::Duration;

use bytes::Bytes;
use grpc_sync::error_details::{
    BadRequest, ErrorDetails, ErrorInfo, FieldViolation, ProtoDuration, RetryInfo,
};
use grpc_sync::health::{
    HealthCheckRequest, HealthClient, HealthListRequest, HealthReporter, ServingStatus,
};
use grpc_sync::{Channel, Code, Request, Server, ServerContext, Service, Status};
use support::python::{run_script, PythonServer, CLIENT_DEADLINE};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// What both sides send from `test.Rich/Fail` (the same as `rich_status()` in standard.py).
fn rich_details() -> ErrorDetails {
    let mut info = ErrorInfo {
        reason: "EMPTY_NAME".into(),
        domain: "grpc-sync.test".into(),
        metadata: Default::default(),
    };
    info.metadata.insert("k".into(), "v".into());
    ErrorDetails::new()
        .with(BadRequest {
            field_violations: vec![FieldViolation::new("name", "must not be empty")],
        })
        .with(info)
        .with(RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: 2,
                nanos: 500,
            }),
        })
}

fn parse_status(s: &str) -> Option<ServingStatus> {
    ServingStatus::from_str_name(s)
}

/// What our server did for the test: `Stop` once the client asked it to stop.
enum Event {
    Stop,
    Client(support::provision::Output),
}

#[test]
fn grpcio_health_stub_against_our_server() {
    let health = HealthReporter::new();
    health.set("routeguide.RouteGuide", ServingStatus::Serving);
    let (tx, rx) = crossbeam_channel::unbounded::<Event>();
    let control = {
        let (health, tx) = (health.clone(), tx.clone());
        // "name=STATUS" sets a status; "stop" has the test stop the server.
        Service::builder("test.Control")
            .unary_raw("Do", move |body: Bytes, _: &ServerContext| {
                let body = String::from_utf8_lossy(&body).into_owned();
                if body == "stop" {
                    let _ = tx.send(Event::Stop);
                    return Ok(Bytes::new());
                }
                let (name, status) = body
                    .split_once('=')
                    .ok_or_else(|| Status::invalid_argument("name=STATUS"))?;
                let status = parse_status(status)
                    .ok_or_else(|| Status::invalid_argument("unknown status"))?;
                health.set(name, status);
                Ok(Bytes::new())
            })
            .build()
    };
    let server = Server::builder()
        .max_workers(4)
        .add_service(health.service())
        .add_service(control)
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();

    let client = std::thread::spawn(move || {
        let out = run_script(
            "standard.py",
            &["--client", "health", "--port", &port.to_string()],
        );
        let _ = tx.send(Event::Client(out));
    });
    let mut stopped = None;
    let out = loop {
        match rx.recv_timeout(CLIENT_DEADLINE + WAIT) {
            Ok(Event::Stop) => stopped = Some(server.stop(Some(Duration::from_secs(1)))),
            Ok(Event::Client(out)) => break out,
            Err(e) => panic!("standard.py --client health did not finish: {e}"),
        }
    };
    client.join().unwrap();
    println!("{}", out.stdout);
    out.assert_success("grpcio health stub against our server");
    assert!(stopped.is_some(), "the client asked the server to stop");
}

#[test]
fn our_health_client_against_grpcio_health_servicer() {
    let py = PythonServer::start_script::<&str>("standard.py", "standard", &[]);
    let channel = Channel::insecure(&py.addr()).unwrap();
    let client = HealthClient::new(channel);
    let req = |s: &str| {
        Request::new(HealthCheckRequest {
            service: s.to_string(),
        })
        .with_timeout(WAIT)
    };
    assert_eq!(
        client.check(req("")).unwrap().status(),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check(req("routeguide.RouteGuide")).unwrap().status(),
        ServingStatus::Serving
    );
    assert_eq!(
        client.check(req("sick.Svc")).unwrap().status(),
        ServingStatus::NotServing
    );
    let err = client.check(req("no.Such")).unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let mut watch = client.watch(req("sick.Svc")).unwrap();
    let first = watch.next().expect("a status").expect("no error");
    assert_eq!(first.status(), ServingStatus::NotServing);
    let mut unknown = client.watch(req("no.Such")).unwrap();
    let first = unknown.next().expect("a status").expect("no error");
    assert_eq!(first.status(), ServingStatus::ServiceUnknown);

    // grpcio-health-checking 1.85's HealthServicer does not implement List (its generated
    // base class answers UNIMPLEMENTED); a later one that does must list all three.
    match client.list(Request::new(HealthListRequest {}).with_timeout(WAIT)) {
        Ok(list) => {
            assert_eq!(list.statuses.len(), 3, "{list:?}");
            assert_eq!(
                list.statuses["sick.Svc"].status(),
                ServingStatus::NotServing
            );
        }
        Err(e) => assert_eq!(e.code(), Code::Unimplemented, "{e:?}"),
    }
}

#[test]
fn grpcio_status_reads_our_rich_details() {
    let svc = Service::builder("test.Rich")
        .unary(
            "Fail",
            |_: Empty, _: &ServerContext| -> Result<Empty, Status> {
                Err(Status::with_error_details(
                    Code::InvalidArgument,
                    "bad request",
                    rich_details(),
                ))
            },
        )
        .build();
    let server = Server::builder().add_service(svc).build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    let out = run_script(
        "standard.py",
        &["--client", "rich", "--port", &port.to_string()],
    );
    println!("{}", out.stdout);
    out.assert_success("grpcio-status from_call against our rich details");
}

#[test]
fn we_read_grpcio_status_rich_details() {
    let py = PythonServer::start_script::<&str>("standard.py", "standard", &[]);
    let channel = Channel::insecure(&py.addr()).unwrap();
    let err = channel
        .unary::<_, Empty>("/test.Rich/Fail", Request::new(Empty {}).with_timeout(WAIT))
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(err.message(), "bad request");
    let rpc = err.rpc_status().unwrap().expect("a google.rpc.Status");
    assert_eq!(rpc.code, Code::InvalidArgument as i32);
    assert_eq!(err.error_details().unwrap(), rich_details());
}
