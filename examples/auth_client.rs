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
//! `grpc.ssl_target_name_override`), `--token T` (default `secret-token`), `--name NAME`,
//! `--option NAME=VALUE`, and `--local` instead of `--ca` for a plaintext server on this
//! machine (grpcio's `local_channel_credentials`). Exits 1 if the server refuses the token.

mod common;

use grpc_sync::client::{CallEnd, ClientInterceptor};
use grpc_sync::{CallCredentials, Channel, ChannelCredentials, Code};

use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::HelloRequest;
use common::BoxError;

/// This example's own flags; the rest (`--addr`, `--port`, `--ca`, `--server-name`,
/// `--option`) are the common ones.
struct Flags {
    args: common::Args,
    token: String,
    name: String,
    local: bool,
}

const USAGE: &str =
    "usage: auth_client [--addr HOST:PORT | --port P] (--ca F [--server-name N] | --local)\n\
                     \x20                  [--token T] [--name NAME] [--option NAME=VALUE]...";

/// `Ok(None)` for `--help`.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Flags>, String> {
    let (mut token, mut name, mut local) = ("secret-token".to_string(), "auth".to_string(), false);
    let mut common_args = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--token" => &mut token,
            "--name" => &mut name,
            "--local" => {
                local = true;
                continue;
            }
            _ => {
                common_args.push(arg);
                continue;
            }
        };
        *slot = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
    }
    let Some(args) = common::Args::parse_from(common_args)? else {
        return Ok(None);
    };
    if args.ca.is_none() && !local {
        return Err(
            "--ca F is needed (the CA that signed the server's certificate), or --local \
                    for a plaintext server on this machine"
                .into(),
        );
    }
    Ok(Some(Flags {
        args,
        token,
        name,
        local,
    }))
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
    let builder = Channel::builder(&f.args.target()).options(f.args.options.clone())?;
    let channel = match &f.args.ca {
        Some(ca) if !f.local => {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read {ca}: {e}"))?;
            let mut tls = ChannelCredentials::from_ca_pem(&pem)?;
            if let Some(name) = &f.args.server_name {
                tls = tls.with_server_name_override(name);
            }
            builder.tls(tls.with_call_credentials(token)).build()?
        }
        // Plaintext, but to loopback only: the one insecure channel call credentials may use.
        _ => builder.local().call_credentials(token).build()?,
    };
    Ok(channel.with_interceptor(Report))
}

fn main() -> Result<(), BoxError> {
    let flags = match parse(std::env::args().skip(1)) {
        Ok(Some(f)) => f,
        Ok(None) => {
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
