//! What a server interceptor costs: unary round trips (one caller, 64-byte messages) against
//! two servers in the same process, one without interceptors and one with a single no-op
//! interceptor (its start and end hooks both run), in alternating rounds.
//!
//! Run: `cargo bench --bench interceptors` (about 10 s); `-- --quick` runs a tenth of it.
//! Each trial starts both servers afresh and times adjacent pairs of short batches; it prints
//! each server's median batch latency and the median of the pairs' ratios, then the median
//! over trials. Plain `std::time`; the numbers compare the two servers on one machine, not
//! absolute.

use std::time::{Duration, Instant};

use grpc_sync::server::ServerInterceptor;
use grpc_sync::{Channel, Request, Server, ServerContext, Service};

#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

/// Lets every call through and ignores its end: the cost of the hooks themselves.
struct Noop;

impl ServerInterceptor for Noop {}

fn start(intercepted: bool) -> (Server, Channel) {
    let service = Service::builder("bench.Icpt").unary("Echo", |m: Blob, _: &ServerContext| Ok(m));
    let mut builder = Server::builder().max_workers(4).add_service(service);
    if intercepted {
        builder = builder.intercept(Noop);
    }
    let server = builder.build();
    let port = server.add_insecure_port("127.0.0.1:0").expect("port");
    server.start().expect("start");
    let ch = Channel::insecure(&format!("127.0.0.1:{port}")).expect("channel");
    (server, ch)
}

/// Mean time of `n` unary round trips.
fn round(ch: &Channel, n: usize) -> Duration {
    let req = Blob { data: vec![1; 64] };
    let t = Instant::now();
    for _ in 0..n {
        ch.unary::<Blob, Blob>("/bench.Icpt/Echo", Request::new(req.clone()))
            .expect("call");
    }
    t.elapsed() / n as u32
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|x, y| x.partial_cmp(y).expect("comparable"));
    v[v.len() / 2]
}

/// One trial: fresh servers and channels, then `pairs` adjacent pairs of `n`-call batches.
/// Returns the median batch latency of each server and the median of the pairs' ratios.
fn trial(pairs: usize, n: usize) -> (Duration, Duration, f64) {
    let (_plain_server, plain) = start(false);
    let (_icpt_server, icpt) = start(true);
    // Warm both: connections, the inline-handler timing, caches.
    round(&plain, 1000);
    round(&icpt, 1000);
    // Short batches in adjacent pairs: a shared machine's load drifts slower than a pair
    // lasts, so each pair's ratio compares like with like; the median drops the pairs a
    // burst of load hit.
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        // Alternate which goes first, so that neither always runs warmer.
        let (x, y) = if i % 2 == 0 {
            let x = round(&plain, n);
            (x, round(&icpt, n))
        } else {
            let y = round(&icpt, n);
            (round(&plain, n), y)
        };
        ratios.push(y.as_secs_f64() / x.as_secs_f64());
        a.push(x);
        b.push(y);
    }
    (median(a), median(b), median(ratios))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (trials, pairs, n) = if quick { (3, 11, 200) } else { (7, 41, 200) };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "unary latency, 1 caller, 64-byte messages: {trials} trials (fresh servers each) of \
         {pairs} pairs of {n}-call batches; medians (µs)"
    );
    println!("  trial   no interceptor   one no-op interceptor   ratio");
    let mut ratios = Vec::new();
    for t in 0..trials {
        let (a, b, r) = trial(pairs, n);
        println!("  {t:5}   {:14.1}   {:21.1}   {r:.3}x", us(a), us(b));
        ratios.push(r);
    }
    println!("with/without, median over trials: {:.3}x", median(ratios));
}
