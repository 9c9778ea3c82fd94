//! A Greeter client that authenticates every call with a bearer token (grpcio's
//! `composite_channel_credentials(ssl_channel_credentials(ca), access_token_call_credentials(token))`),
//! and a client interceptor that prints each call's outcome and duration.
//!
//! Run, against a TLS Greeter server that checks `authorization: Bearer <token>`:
//!
//! ```sh
//! cargo run --example auth_client -- --addr localhost:50051 --ca ca.pem --token secret-token
//! ```
//!
//! Flags: `--addr HOST:PORT` (default `localhost:50051`), `--port P`, `--ca F` (the CA that
//! signed the server's certificate), `--server-name N` (verify the server as `N`, grpcio's
//! `grpc.ssl_target_name_override`), `--token T` (default `secret-token`), `--name NAME`, and
//! `--local` instead of `--ca` for a plaintext server on this machine (grpcio's
//! `local_channel_credentials`). Exits 1 if the server refuses the token.

mod common;

use grpc_sync::client::{CallEnd, ClientInterceptor};
use grpc_sync::{CallCredentials, Channel, ChannelCredentials, Code};

use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::HelloRequest;
use common::BoxError;

/// The flags.
struct Flags {
    addr: String,
    ca: Option<String>,
    server_name: Option<String>,
    token: String,
    name: String,
    local: bool,
}

const USAGE: &str =
    "usage: auth_client [--addr HOST:PORT | --port P] (--ca F [--server-name N] | --local)\n\
                     \x20                  [--token T] [--name NAME]";

fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
    let mut f = Flags {
        addr: format!("localhost:{}", common::DEFAULT_PORT),
        ca: None,
        server_name: None,
        token: "secret-token".into(),
        name: "auth".into(),
        local: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--addr" | "-a" => f.addr = value()?,
            "--port" | "-p" => f.addr = format!("localhost:{}", value()?),
            "--ca" => f.ca = Some(value()?),
            "--server-name" => f.server_name = Some(value()?),
            "--token" => f.token = value()?,
            "--name" => f.name = value()?,
            "--local" => f.local = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if f.ca.is_none() && !f.local {
        return Err(
            "--ca F is needed (the CA that signed the server's certificate), or --local \
                    for a plaintext server on this machine"
                .into(),
        );
    }
    Ok(f)
}

/// Prints every call's method, status and duration.
struct Report;

impl ClientInterceptor for Report {
    fn after_call(&self, end: &CallEnd<'_>) {
        println!(
            "{} -> {:?} in {:.1} ms",
            end.method(),
            end.status().code(),
            end.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn channel(f: &Flags) -> Result<Channel, BoxError> {
    let token = CallCredentials::access_token(&f.token);
    let channel = match &f.ca {
        Some(ca) => {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read {ca}: {e}"))?;
            let mut tls = ChannelCredentials::from_ca_pem(&pem)?;
            if let Some(name) = &f.server_name {
                tls = tls.with_server_name_override(name);
            }
            Channel::secure(&f.addr, tls.with_call_credentials(token))?
        }
        // Plaintext, but to loopback only: the one insecure channel call credentials may use.
        None => Channel::builder(&f.addr)
            .local()
            .call_credentials(token)
            .build()?,
    };
    Ok(channel.with_interceptor(Report))
}

fn main() -> Result<(), BoxError> {
    let flags = match parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(msg) => {
            eprintln!("error: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let client = GreeterClient::new(channel(&flags)?);
    match client.say_hello(HelloRequest {
        name: flags.name.clone(),
    }) {
        Ok(reply) => {
            println!("Greeter client received: {}", reply.message);
            Ok(())
        }
        Err(status) if status.code() == Code::Unauthenticated => {
            eprintln!("the server refused the token: {}", status.message());
            std::process::exit(1);
        }
        Err(status) => Err(status.into()),
    }
}
