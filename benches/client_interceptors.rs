//! What a client interceptor costs: unary round trips on 127.0.0.1 with one no-op interceptor
//! against none, in the same run, interleaved in rounds so that drift on a shared machine hits
//! both alike; and, for scale, with an access token on a local channel.
//!
//! Run: `cargo bench --bench client_interceptors` (about 10 s). `-- --quick` runs a tenth of
//! the iterations. Plain `std::time`; the ratio is the number to read.

use std::time::{Duration, Instant};

use grpc_sync::client::ClientInterceptor;
use grpc_sync::{CallCredentials, Channel, Request, Server, ServerContext, Service};

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

/// Does nothing in either hook: what is measured is the machinery around it.
struct Noop;

impl ClientInterceptor for Noop {}

/// Median time of one unary call over `n` calls on `ch`.
fn median_call(ch: &Channel, n: usize) -> Duration {
    let req = Msg {
        data: vec![1u8; 64],
    };
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        ch.unary::<Msg, Msg>("/bench.I/Echo", Request::new(req.clone()))
            .expect("call");
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 500 } else { 5000 };
    let rounds = 7;
    let server = Server::builder()
        .max_workers(4)
        .add_service(
            Service::builder("bench.I")
                .unary("Echo", |m: Msg, _ctx: &ServerContext| Ok(m))
                .build(),
        )
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").expect("port");
    server.start().expect("start");
    let target = format!("127.0.0.1:{port}");
    let plain = Channel::insecure(&target).expect("channel");
    // The same connection, with the interceptor.
    let intercepted = plain.clone().with_interceptor(Noop);
    let token = Channel::builder(&target)
        .local()
        .call_credentials(CallCredentials::access_token("bench-token"))
        .build()
        .expect("channel");
    for ch in [&plain, &intercepted, &token] {
        median_call(ch, n / 10 + 10);
    }

    let (mut none, mut one, mut tok) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(median_call(&plain, n).as_secs_f64() * 1e6);
        one.push(median_call(&intercepted, n).as_secs_f64() * 1e6);
        tok.push(median_call(&token, n).as_secs_f64() * 1e6);
    }
    let ratios: Vec<f64> = none.iter().zip(&one).map(|(a, b)| b / a).collect();
    println!("unary latency, 1 caller, 64-byte messages: median of {n} calls, median of {rounds} rounds (µs):");
    println!("  no interceptor          {:7.1}", median(none.clone()));
    println!("  one no-op interceptor   {:7.1}", median(one));
    println!("  access token (local)    {:7.1}", median(tok));
    println!(
        "  one interceptor / none: {:.3}x (rounds: {})",
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    server.stop(None).wait();
}
