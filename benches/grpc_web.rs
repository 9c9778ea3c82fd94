//! gRPC-Web against gRPC on 127.0.0.1: the same unary call (64-byte messages, one caller),
//! over HTTP/1.1 keep-alive as a browser's `fetch` sends it, and over HTTP/2 with our
//! channel. The HTTP/1.1 client is a plain blocking socket (tests/support/web.rs), so the row
//! measures the server's side of gRPC-Web: the HTTP/1.1 parser and the bridge into the same
//! dispatch.
//!
//! Run: `cargo bench --bench grpc_web` (a few seconds); `-- --quick` runs a tenth of the
//! calls. Plain `std::time`; the numbers compare the two paths on one machine.

#[path = "../tests/support/web.rs"]
mod web;

use std::time::{Duration, Instant};

use grpc_sync::{Channel, GrpcWebConfig, Request, Server, ServerContext, Service};
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `call` `n` times after a warm-up: (mean, p50, p99).
fn measure(n: usize, mut call: impl FnMut()) -> (Duration, Duration, Duration) {
    for _ in 0..n / 10 + 10 {
        call();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call();
        samples.push(t.elapsed());
    }
    let total: Duration = samples.iter().sum();
    samples.sort();
    (
        total / n as u32,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 1000 } else { 10_000 };
    let server = Server::builder()
        .max_workers(4)
        .grpc_web(GrpcWebConfig::new())
        .add_service(
            Service::builder("bench.Web")
                .unary("Echo", |m: Blob, _ctx: &ServerContext| Ok(m))
                .build(),
        )
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").expect("port");
    server.start().expect("start");
    let msg = Blob {
        data: vec![1u8; 64],
    };

    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).expect("channel");
    let grpc = measure(n, || {
        ch.unary::<Blob, Blob>("/bench.Web/Echo", Request::new(msg.clone()))
            .expect("call");
    });

    let mut c = web::Http1::connect(port);
    let req = web::request("/bench.Web/Echo", &msg.encode_to_vec(), &[]);
    let http1 = measure(n, || {
        c.send(&req);
        let r = c.response(Duration::from_secs(10));
        assert_eq!(r.status, 200);
    });

    println!("unary latency, 1 caller, {n} calls, 64-byte messages (µs):");
    for (name, (mean, p50, p99)) in [
        ("gRPC (HTTP/2, Channel)            ", grpc),
        ("gRPC-Web (HTTP/1.1 keep-alive)    ", http1),
    ] {
        println!(
            "  {name} mean {:7.1}  p50 {:7.1}  p99 {:7.1}",
            us(mean),
            us(p50),
            us(p99)
        );
    }
    println!(
        "  gRPC-Web/gRPC mean: {:.2}x",
        http1.0.as_secs_f64() / grpc.0.as_secs_f64()
    );
    server.stop(None).wait();
}
