//! Call credentials against Python grpcio: our client, over TLS, calls a grpcio server whose
//! `grpc.ServerInterceptor` wants `authorization: Bearer tok` (`tests/python/token_server.py`)
//! and aborts with UNAUTHENTICATED otherwise.
//!
//! grpcio comes from `GRPC_SYNC_PYTHON`, else from `target/pyenv`, provisioned by the first
//! test that needs it.

mod support;

use grpc_sync::{CallCredentials, Channel, ChannelCredentials, Code, Request, Status, Streaming};
use support::certs::Pki;
use support::python::PythonServer;

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    s: String,
}

/// What the server saw in `authorization`.
fn echo(ch: &Channel, req: Request<Text>) -> Result<String, Status> {
    ch.unary::<_, Text>("/test.Auth/Echo", req)
        .map(|r| r.into_inner().s)
}

fn channel(pki: &Pki, port: u16, creds: Option<CallCredentials>) -> Channel {
    let tls = ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).unwrap();
    let target = format!("localhost:{port}");
    match creds {
        Some(c) => Channel::secure(&target, tls.with_call_credentials(c)).unwrap(),
        None => Channel::secure(&target, tls).unwrap(),
    }
}

#[test]
fn access_token_against_a_grpcio_server_interceptor() {
    let pki = Pki::new();
    let dir = pki.write("py-token-server");
    let server = PythonServer::start_script(
        "token_server.py",
        "auth",
        &[
            "--cert",
            &dir.arg("server.pem"),
            "--key",
            &dir.arg("server.key"),
            "--token",
            "tok",
        ],
    );
    let port = server.port();
    let req = || Request::new(Text { s: "hi".into() });

    // The right token, channel-wide: accepted, and grpcio saw exactly the header.
    let good = channel(&pki, port, Some(CallCredentials::access_token("tok")));
    let seen = echo(&good, req()).unwrap_or_else(|e| panic!("{e}\n{}", server.output()));
    assert_eq!(seen, "Bearer tok");
    let stream: Streaming<Text> = good.server_streaming("/test.Auth/Count", req()).unwrap();
    assert_eq!(stream.map(|m| m.unwrap().s).collect::<Vec<_>>(), ["hi"; 3]);

    // A wrong token: UNAUTHENTICATED with the interceptor's message.
    let bad = channel(&pki, port, Some(CallCredentials::access_token("nope")));
    let e = echo(&bad, req()).unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert_eq!(e.message(), "missing or wrong bearer token");
    let mut stream: Streaming<Text> = bad.server_streaming("/test.Auth/Count", req()).unwrap();
    assert_eq!(
        stream.next().unwrap().unwrap_err().code(),
        Code::Unauthenticated
    );

    // No token at all, then the right one on that call alone (grpcio's `credentials=`).
    let none = channel(&pki, port, None);
    assert_eq!(
        echo(&none, req()).unwrap_err().code(),
        Code::Unauthenticated
    );
    let per_call = req().with_credentials(CallCredentials::access_token("tok"));
    assert_eq!(echo(&none, per_call).unwrap(), "Bearer tok");
}
