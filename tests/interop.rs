//! The gRPC interop suite (`grpc.testing.TestService`) in three directions:
//!
//! - our client against our server (every case, one test each);
//! - our client against a grpcio server (`tests/python/interop_server.py`);
//! - a grpcio client (`tests/python/interop_client.py`) against our server.
//!
//! The cases and the server are `examples/common/interop.rs`, the same code as the
//! `interop_client` and `interop_server` examples. Servers listen on 127.0.0.1, port 0.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::sync::OnceLock;

use grpc_sync::{Channel, CompressionEncoding, Server};

use common::interop::{self, CaseOptions};
use support::python::{self, PythonServer};

/// Our interop server, shared by the tests of this binary.
fn our_server_port() -> u16 {
    static PORT: OnceLock<(Server, u16)> = OnceLock::new();
    PORT.get_or_init(|| {
        let server = Server::builder()
            .max_workers(16)
            .add_service(interop::service())
            .build();
        let port = server.add_insecure_port("127.0.0.1:0").unwrap();
        server.start().unwrap();
        (server, port)
    })
    .1
}

fn channel_to(port: u16) -> Channel {
    Channel::insecure(&format!("127.0.0.1:{port}")).unwrap()
}

fn run(channel: &Channel, case: &str, opts: CaseOptions) {
    match interop::run_case_with(channel, case, opts) {
        Ok(what) => println!("PASS {case}: {what}"),
        Err(why) => panic!("FAIL {case}: {why}"),
    }
}

macro_rules! ours_to_ours {
    ($($case:ident),* $(,)?) => {
        mod ours_to_ours {
            $(
                #[test]
                fn $case() {
                    let channel = super::channel_to(super::our_server_port());
                    super::run(&channel, stringify!($case), super::CaseOptions::default());
                }
            )*

            /// The list above is the whole suite.
            #[test]
            fn covers_every_case() {
                let mut listed = vec![$(stringify!($case)),*];
                let mut all = super::interop::CASES.to_vec();
                listed.sort_unstable();
                all.sort_unstable();
                assert_eq!(listed, all);
            }
        }
    };
}

ours_to_ours!(
    empty_unary,
    large_unary,
    client_streaming,
    server_streaming,
    ping_pong,
    empty_stream,
    cancel_after_begin,
    cancel_after_first_response,
    timeout_on_sleeping_server,
    status_code_and_message,
    special_status_message,
    custom_metadata,
    unimplemented_method,
    unimplemented_service,
    client_compressed_unary,
    server_compressed_unary,
    client_compressed_streaming,
    server_compressed_streaming,
);

/// The cases that must pass both ways against grpcio: all of them.
const GRPCIO_CASES: [&str; 18] = interop::CASES;

#[test]
fn unknown_case_is_reported() {
    let channel = channel_to(our_server_port());
    let err = interop::run_case(&channel, "no_such_case").unwrap_err();
    assert!(err.contains("unknown test case"), "{err}");
}

#[test]
fn our_client_against_grpcio_server() {
    let server = PythonServer::start_interop();
    let channel = channel_to(server.port());
    // grpcio cannot tell a handler whether a request arrived compressed, so its server cannot
    // answer the client_compressed_* probes; everything else is checked, compressed flags of
    // its responses included.
    let opts = CaseOptions {
        compression_probe: false,
    };
    let mut failures = Vec::new();
    for case in GRPCIO_CASES {
        match interop::run_case_with(&channel, case, opts) {
            Ok(what) => println!("PASS {case}: {what}"),
            Err(why) => failures.push(format!("FAIL {case}: {why}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- grpcio server output ---\n{}",
        failures.join("\n"),
        server.output()
    );
}

#[test]
fn our_client_compresses_for_grpcio_with_every_coding() {
    let server = PythonServer::start_interop();
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
        let channel = Channel::builder(&server.addr())
            .compression(enc)
            .build()
            .unwrap();
        for case in [
            "large_unary",
            "client_streaming",
            "ping_pong",
            "custom_metadata",
        ] {
            match interop::run_case(&channel, case) {
                Ok(what) => println!("PASS {case} ({enc}): {what}"),
                Err(why) => panic!("FAIL {case} ({enc}): {why}\n{}", server.output()),
            }
        }
    }
}

#[test]
fn grpcio_client_against_our_server() {
    let out = python::run_interop_client(our_server_port(), Some(&GRPCIO_CASES.join(",")));
    out.assert_success("interop_client.py against our interop server");
    for case in GRPCIO_CASES {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok {case}: "))),
            "{case} did not pass\n{out}"
        );
    }
    assert!(out.failures().is_empty(), "{out}");
}

#[test]
fn channel_and_server_default_compression_ours_to_ours() {
    let server = Server::builder()
        .compression(CompressionEncoding::Deflate)
        .add_service(interop::service())
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
        let channel = Channel::builder(&format!("127.0.0.1:{port}"))
            .compression(enc)
            .build()
            .unwrap();
        for case in interop::CASES {
            run(&channel, case, CaseOptions::default());
        }
    }
    server.stop(None).wait();
}

/// Every case over TLS, with the flags `interop_server`/`interop_client` parse
/// (`--use_tls --tls_cert_file --tls_key_file`, `--use_tls --use_test_ca --ca_file
/// --server_host_override`), against test certificates made now.
#[test]
fn every_case_over_tls_with_the_binaries_flags() {
    let pki = support::certs::Pki::new();
    let dir = pki.write("interop-tls");
    let server_args = interop::ServerArgs::parse_from([
        "--use_tls=true".to_string(),
        format!("--tls_cert_file={}", dir.arg("server.pem")),
        format!("--tls_key_file={}", dir.arg("server.key")),
    ])
    .unwrap()
    .unwrap();
    let server = Server::builder().add_service(interop::service()).build();
    let port = server
        .add_secure_port("127.0.0.1:0", server_args.credentials().unwrap().unwrap())
        .unwrap();
    server.start().unwrap();
    let client_args = interop::ClientArgs::parse_from([
        "--server_host=127.0.0.1".to_string(),
        format!("--server_port={port}"),
        "--server_host_override=localhost".to_string(),
        "--use_tls=true".to_string(),
        "--use_test_ca=true".to_string(),
        format!("--ca_file={}", dir.arg("ca.pem")),
    ])
    .unwrap()
    .unwrap();
    let channel = Channel::builder(&client_args.target())
        .tls(client_args.credentials().unwrap().unwrap())
        .build()
        .unwrap();
    for case in interop::CASES {
        run(&channel, case, CaseOptions::default());
    }
    // Without the certificate files the binaries refuse clearly.
    let bare = interop::ServerArgs::parse_from(["--use_tls=true".to_string()])
        .unwrap()
        .unwrap();
    assert!(bare.credentials().unwrap_err().contains("--tls_cert_file"));
    server.stop(None).wait();
}
