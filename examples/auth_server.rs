//! A TLS Greeter server that wants a bearer token on every call: a server interceptor
//! (`common/auth.rs`) checks `authorization: Bearer <token>` before any handler runs, answers
//! UNAUTHENTICATED without it, and tells the handlers who called (`ctx.extensions()`).
//!
//! Run: `cargo run --release --example auth_server` serves on port 50051 with the token
//! `secret-token` for user `alice`, and a throwaway CA and `localhost` certificate made at
//! start (it prints where the CA certificate is, for clients to trust). Flags: `--port P`
//! (or `--addr HOST:PORT`), `--token T`, `--user U`, `--cert server.pem --key server.key`,
//! `--option NAME=VALUE`.
//!
//! A grpcio client sends the token with call credentials (bearer tokens need TLS):
//!
//! ```python
//! creds = grpc.composite_channel_credentials(
//!     grpc.ssl_channel_credentials(open(ca_pem, "rb").read()),
//!     grpc.access_token_call_credentials("secret-token"))
//! with grpc.secure_channel("localhost:50051", creds) as channel: ...
//! ```
//!
//! Health checks need no token; reflection does (`grpcurl -H 'authorization: Bearer …'`).

mod common;

#[path = "../tests/support/certs.rs"]
#[allow(dead_code)]
mod certs;

use grpc_sync::options::OptionValue;
use grpc_sync::{Server, ServerCredentials};

use common::auth::{AuthGreeter, BearerAuth, DEFAULT_TOKEN, DEFAULT_USER};
use common::bench::{die, Flags};
use common::pb::helloworld::greeter_server::{GreeterServer, SERVICE_NAME};
use common::BoxError;

fn main() -> Result<(), BoxError> {
    let flags = Flags::from_env();
    flags.only(&["port", "addr", "token", "user", "cert", "key", "option"]);
    let options = common::options_or_exit(flags.options());
    let addr = match flags.get("addr") {
        Some(a) => a.to_string(),
        None => format!("[::]:{}", flags.num("port", common::DEFAULT_PORT)),
    };
    let token = flags.get("token").unwrap_or(DEFAULT_TOKEN);
    let user = flags.get("user").unwrap_or(DEFAULT_USER);
    // Kept until the server ends: it removes the throwaway certificates when dropped.
    let mut throwaway = None;
    let creds = match (flags.get("cert"), flags.get("key")) {
        (Some(cert), Some(key)) => {
            ServerCredentials::from_pem(&common::read(cert)?, &common::read(key)?)?
        }
        (None, None) => {
            let pki = certs::Pki::new();
            let dir = pki.write("auth-server");
            println!(
                "made a throwaway CA for this run; clients trust {}",
                dir.arg("ca.pem")
            );
            throwaway = Some(dir);
            ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())?
        }
        _ => die("--cert and --key go together"),
    };
    let server = build(token, user, &options)?;
    let port = server.add_secure_port(&addr, creds)?;
    server.start()?;
    println!(
        "auth server listening on port {port} (TLS); calls need `authorization: Bearer <token>`"
    );
    server.wait_for_termination(None);
    drop(throwaway);
    Ok(())
}

/// The server: the Greeter behind the bearer-token interceptor, with reflection and health.
fn build(token: &str, user: &str, options: &[(String, OptionValue)]) -> Result<Server, BoxError> {
    let health = common::serving_health(&[SERVICE_NAME]);
    Ok(Server::builder()
        .max_workers(10)
        // Before every handler of every service: no token, no call.
        .intercept(BearerAuth::new(token, user))
        .add_service(GreeterServer::new(AuthGreeter))
        .add_services(common::reflection(
            common::pb::helloworld::FILE_DESCRIPTOR_SET,
        ))
        .add_service(health.service())
        .options(options.iter().cloned())?
        .build())
}

/// The example's server against our client over TLS (the example is built with
/// `test = true`): the right token gets through and the handler knows the user; no token or
/// a wrong one is UNAUTHENTICATED; health checks stay open.
#[test]
fn bearer_tokens_are_checked_and_the_user_reaches_the_handler() {
    use common::pb::helloworld::greeter_client::GreeterClient;
    use common::pb::helloworld::HelloRequest;
    use grpc_sync::health::{HealthCheckRequest, HealthClient, ServingStatus};
    use grpc_sync::{Channel, ChannelCredentials, Code, Request};

    let pki = certs::Pki::new();
    let server = build("tok", "bob", &[]).unwrap();
    let creds =
        ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let port = server.add_secure_port("127.0.0.1:0", creds).unwrap();
    server.start().unwrap();
    let roots = ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();
    let channel = Channel::secure(&format!("localhost:{port}"), roots).unwrap();
    let client = GreeterClient::new(channel.clone());
    let hello = || HelloRequest { name: "czl".into() };

    let reply = client
        .say_hello(Request::new(hello()).with_metadata("authorization", "Bearer tok"))
        .unwrap();
    assert_eq!(reply.message, "hello czl (authenticated as bob)");
    for (what, value) in [
        ("no token", None),
        ("a wrong token", Some("Bearer nope")),
        ("another scheme", Some("Basic dG9r")),
    ] {
        let mut req = Request::new(hello());
        if let Some(v) = value {
            req = req.with_metadata("authorization", v);
        }
        let e = client.say_hello(req).unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{what}: {e}");
    }
    let health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: SERVICE_NAME.into(),
        })
        .unwrap();
    assert_eq!(status.status, ServingStatus::Serving as i32);
}
