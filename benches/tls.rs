//! TLS against plaintext on 127.0.0.1: unary latency (one caller), server-streaming
//! throughput, and handshake cost (a new channel and its first call).
//!
//! Run: `cargo bench --bench tls` (about 10 s). `cargo bench --bench tls -- --quick` runs a
//! tenth of the iterations. Plain `std::time`; numbers are for comparing the two transports on
//! one machine, not absolute.

#[path = "../tests/support/certs.rs"]
#[allow(dead_code)]
mod certs;

use std::time::{Duration, Instant};

use grpc_sync::{
    Channel, ChannelCredentials, Request, ResponseStream, Server, ServerContext, ServerCredentials,
    Service,
};

#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
    #[prost(uint32, tag = "2")]
    count: u32,
}

const STREAM_MESSAGE: usize = 16 * 1024;

fn service() -> Service {
    Service::builder("bench.Tls")
        .unary("Echo", |m: Blob, _ctx: &ServerContext| Ok(m))
        .server_streaming_fn("Stream", |m: Blob, _ctx: &ServerContext| {
            let chunk = vec![7u8; STREAM_MESSAGE];
            let it: ResponseStream<'_, Blob> = Box::new((0..m.count).map(move |_| {
                Ok(Blob {
                    data: chunk.clone(),
                    count: 0,
                })
            }));
            Ok(it)
        })
        .into()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Unary round trips on one channel, one caller: (mean, p50, p99).
fn unary_latency(ch: &Channel, n: usize) -> (Duration, Duration, Duration) {
    let req = Blob {
        data: vec![1u8; 64],
        count: 0,
    };
    for _ in 0..n / 10 + 10 {
        ch.unary::<Blob, Blob>("/bench.Tls/Echo", Request::new(req.clone()))
            .expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        ch.unary::<Blob, Blob>("/bench.Tls/Echo", Request::new(req.clone()))
            .expect("call");
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

/// MiB/s of one server stream of `count` 16 KiB messages.
fn stream_throughput(ch: &Channel, count: u32, rounds: usize) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut bytes = 0usize;
        let stream = ch
            .server_streaming::<_, Blob>(
                "/bench.Tls/Stream",
                Request::new(Blob {
                    data: vec![],
                    count,
                }),
            )
            .expect("stream");
        for m in stream {
            bytes += m.expect("message").data.len();
        }
        let mib = bytes as f64 / (1024.0 * 1024.0);
        best = best.max(mib / t.elapsed().as_secs_f64());
    }
    best
}

/// Mean time to build a channel, connect (and handshake) and finish its first call.
fn first_call(make: &dyn Fn() -> Channel, n: usize) -> Duration {
    let req = Blob {
        data: vec![1u8; 64],
        count: 0,
    };
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        let ch = make();
        ch.unary::<Blob, Blob>("/bench.Tls/Echo", Request::new(req.clone()))
            .expect("first call");
        total += t.elapsed();
        ch.close();
    }
    total / n as u32
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let pki = certs::Pki::new();
    let server = Server::builder()
        .max_workers(4)
        .add_service(service())
        .build();
    let plain_port = server.add_insecure_port("127.0.0.1:0").expect("port");
    let creds = ServerCredentials::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
        .expect("server creds");
    let tls_port = server.add_secure_port("127.0.0.1:0", creds).expect("port");
    server.start().expect("start");
    let client_creds = ChannelCredentials::from_ca_pem(pki.ca.as_bytes()).expect("roots");
    let plain = move || Channel::insecure(&format!("127.0.0.1:{plain_port}")).expect("channel");
    let cc = client_creds.clone();
    let tls =
        move || Channel::secure(&format!("localhost:{tls_port}"), cc.clone()).expect("channel");

    let n = 5000 / scale;
    println!("unary latency, 1 caller, {n} calls, 64-byte messages (µs):");
    let (pm, p50, p99) = unary_latency(&plain(), n);
    println!(
        "  plaintext  mean {:7.1}  p50 {:7.1}  p99 {:7.1}",
        us(pm),
        us(p50),
        us(p99)
    );
    let (tm, t50, t99) = unary_latency(&tls(), n);
    println!(
        "  TLS        mean {:7.1}  p50 {:7.1}  p99 {:7.1}",
        us(tm),
        us(t50),
        us(t99)
    );
    println!(
        "  TLS/plaintext mean: {:.2}x",
        tm.as_secs_f64() / pm.as_secs_f64()
    );

    let count = (8192 / scale) as u32;
    let mib = count as usize * STREAM_MESSAGE / (1024 * 1024);
    println!("server streaming, {count} x 16 KiB messages ({mib} MiB), best of 3 (MiB/s):");
    let ps = stream_throughput(&plain(), count, 3);
    let ts = stream_throughput(&tls(), count, 3);
    println!("  plaintext  {ps:8.1}");
    println!("  TLS        {ts:8.1}");
    println!("  TLS/plaintext: {:.2}x", ts / ps);

    let k = 200 / scale;
    println!("new channel + first call, mean of {k} (µs):");
    let ph = first_call(&plain, k);
    let th = first_call(&tls, k);
    println!("  plaintext  {:8.1}", us(ph));
    println!(
        "  TLS        {:8.1}   (handshake cost about {:.1} µs)",
        us(th),
        us(th) - us(ph)
    );
    server.stop(None).wait();
}
