//! Server interceptors against Python grpcio: a grpcio client with bearer-token call
//! credentials (`grpc.access_token_call_credentials` composed with
//! `grpc.ssl_channel_credentials`, `tests/python/auth_client.py`) calls our TLS server, whose
//! interceptor (the `auth_server` example's, `examples/common/auth.rs`) checks
//! `authorization: Bearer <token>`: the right token gets through and the handler knows the
//! user; no token or a wrong one is UNAUTHENTICATED.
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, provisioned from
//! `tests/python/requirements.txt` by the first test that needs it.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use crossbeam_channel::unbounded;
use grpc_sync::server::CallStart;
use grpc_sync::{Server, ServerCredentials, Status};

use common::auth::{AuthGreeter, BearerAuth};
use common::pb::helloworld::greeter_server::GreeterServer;
use support::certs::Pki;
use support::python::run_script;

#[test]
fn grpcio_access_token_credentials_reach_our_auth_interceptor() {
    let pki = Pki::new();
    let dir = pki.write("py-bearer");
    // The interceptor sees the TLS session as well as the metadata: record what it says.
    let (tls_tx, tls_seen) = unbounded::<String>();
    let server = Server::builder()
        .intercept(move |call: &mut CallStart<'_>| {
            let security = call
                .auth_context()
                .map(|a| a.transport_security_type().to_string());
            let _ = tls_tx.send(security.unwrap_or_else(|| "insecure".into()));
            Ok::<(), Status>(())
        })
        .intercept(BearerAuth::new("tok", "py-user"))
        .add_service(GreeterServer::new(AuthGreeter))
        .build();
    let creds =
        ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let port = server.add_secure_port("127.0.0.1:0", creds).unwrap();
    server.start().unwrap();

    let out = run_script(
        "auth_client.py",
        &[
            "--port",
            &port.to_string(),
            "--ca",
            &dir.arg("ca.pem"),
            "--server-name",
            "localhost",
            "--token",
            "tok",
        ],
    );
    out.assert_success("grpcio bearer-token client against our auth interceptor");
    assert!(
        out.stdout
            .contains("REPLY hello czl (authenticated as py-user)"),
        "{out}"
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("ok ") && l.contains("UNAUTHENTICATED"))
            .count(),
        2,
        "{out}"
    );
    // The interceptors saw the three calls, each on its TLS session.
    let seen: Vec<String> = tls_seen.try_iter().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|s| s == "ssl"), "{seen:?}");
}
