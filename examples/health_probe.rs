//! A health probe, like `grpc_health_probe`: asks a server's `grpc.health.v1.Health/Check`
//! and exits 0 if the answer is SERVING, 1 otherwise (saying why on stderr). Usable as a
//! container health check (`HEALTHCHECK CMD health_probe --addr localhost:50051`) or a
//! Kubernetes `exec` probe.
//!
//! Run: `cargo run --example health_probe -- --addr localhost:50051 [--service NAME]
//! [--timeout SECONDS]`. `--service` defaults to `""`, the server as a whole.

use std::process::ExitCode;
use std::time::Duration;

use grpc_sync::health::{HealthCheckRequest, HealthClient, ServingStatus};
use grpc_sync::{Channel, Request};

const USAGE: &str = "usage: health_probe [--addr HOST:PORT] [--service NAME] [--timeout SECONDS]";

struct Probe {
    addr: String,
    service: String,
    timeout: Duration,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Probe, String> {
    let mut probe = Probe {
        addr: "localhost:50051".to_string(),
        service: String::new(),
        timeout: Duration::from_secs(1),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => probe.addr = value()?,
            "--service" => probe.service = value()?,
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout {v}: not a positive number of seconds"))?;
                probe.timeout = Duration::from_secs_f64(secs);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(probe)
}

fn main() -> ExitCode {
    let probe = match parse(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let what = if probe.service.is_empty() {
        format!("server {}", probe.addr)
    } else {
        format!("service {:?} at {}", probe.service, probe.addr)
    };
    let channel = match Channel::insecure(&probe.addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{what}: bad address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let request = Request::new(HealthCheckRequest {
        service: probe.service.clone(),
    })
    .with_timeout(probe.timeout);
    match HealthClient::new(channel).check(request) {
        Ok(reply) if reply.status() == ServingStatus::Serving => {
            println!("status: SERVING");
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            eprintln!("{what}: status {}", reply.status());
            ExitCode::FAILURE
        }
        Err(status) => {
            eprintln!(
                "{what}: health check failed: {} ({})",
                status.code().as_str(),
                status.message()
            );
            ExitCode::FAILURE
        }
    }
}
