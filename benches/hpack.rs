//! HPACK encode/decode throughput for typical gRPC header blocks.
//!
//! Run: `cargo bench --bench hpack` (about 5 s). Each scenario is calibrated to ~40 ms per
//! round and run for 15 rounds; the median round is reported as header fields per second,
//! block bytes per second and nanoseconds per block.
//!
//! "warm" = steady state on a long-lived connection (the dynamic table already holds the
//! repeated fields); "cold" = the first block on a new connection (literals, Huffman).
//!
//! With `HPACK_BENCH_CALLS=N` each scenario runs exactly N calls, untimed: for instruction
//! counts under `valgrind --tool=callgrind` (divide a function's count by N), and
//! `HPACK_BENCH_ONLY=text` runs only the scenarios whose label contains `text`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use grpc_sync::h2::hpack::{Decoder, Encoder, Header};

const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(40);

fn request() -> Vec<Header> {
    vec![
        Header::new(":method", "POST"),
        Header::new(":scheme", "http"),
        Header::new(":path", "/helloworld.Greeter/SayHello"),
        Header::new(":authority", "localhost:50051"),
        Header::new("content-type", "application/grpc"),
        Header::new("te", "trailers"),
        Header::new("user-agent", "grpc-sync/0.1"),
        Header::new("grpc-timeout", "1S"),
        Header::new("grpc-accept-encoding", "identity,gzip"),
    ]
}

fn response() -> Vec<Header> {
    vec![
        Header::new(":status", "200"),
        Header::new("content-type", "application/grpc"),
    ]
}

fn trailers() -> Vec<Header> {
    vec![
        Header::new("grpc-status", "0"),
        Header::new("grpc-message", ""),
    ]
}

/// Times `iter` (which processes `fields` header fields and `bytes` block bytes per call)
/// and prints the median round.
fn bench(label: &str, fields: usize, bytes: usize, mut iter: impl FnMut()) {
    if std::env::var("HPACK_BENCH_ONLY").is_ok_and(|only| !label.contains(&only)) {
        return;
    }
    if let Some(calls) = fixed_calls() {
        for _ in 0..calls {
            iter();
        }
        println!("{label:<34} {calls} calls ({fields} fields, {bytes} B/block)");
        return;
    }
    // Calibrate: how many calls fill one round.
    let mut n = 1usize;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            iter();
        }
        if start.elapsed() >= ROUND_TIME / 4 {
            let per_call = start.elapsed().as_secs_f64() / n as f64;
            n = ((ROUND_TIME.as_secs_f64() / per_call) as usize).max(1);
            break;
        }
        n *= 2;
    }
    let mut per_call: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                iter();
            }
            start.elapsed().as_secs_f64() / n as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let median = per_call[ROUNDS / 2];
    println!(
        "{label:<34} {:>7.1} M fields/s {:>8.1} MB/s {:>8.0} ns/block  ({fields} fields, {bytes} B/block)",
        fields as f64 / median / 1e6,
        bytes as f64 / median / 1e6,
        median * 1e9,
    );
}

/// `HPACK_BENCH_CALLS`, if set: run each scenario that many times, untimed.
fn fixed_calls() -> Option<usize> {
    std::env::var("HPACK_BENCH_CALLS").ok()?.parse().ok()
}

/// Steady-state encode of `blocks` (one call encodes each block once).
fn bench_encode_warm(label: &str, blocks: &[Vec<Header>]) {
    let mut e = Encoder::new();
    let mut dst = BytesMut::with_capacity(1024);
    for b in blocks {
        e.encode_headers(b, &mut dst);
    }
    dst.clear();
    for b in blocks {
        e.encode_headers(b, &mut dst);
    }
    let (fields, bytes) = (blocks.iter().map(Vec::len).sum(), dst.len());
    bench(label, fields, bytes, || {
        dst.clear();
        for b in blocks {
            e.encode_headers(black_box(b), &mut dst);
        }
        black_box(&dst);
    });
}

/// Steady-state decode of the blocks a warm encoder produces for `blocks`.
fn bench_decode_warm(label: &str, blocks: &[Vec<Header>]) {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let mut out = Vec::with_capacity(16);
    for b in blocks {
        let mut dst = BytesMut::new();
        e.encode_headers(b, &mut dst);
        d.decode(&dst, 16 << 10, |h| out.push(h)).unwrap();
    }
    let wire: Vec<BytesMut> = blocks
        .iter()
        .map(|b| {
            let mut dst = BytesMut::new();
            e.encode_headers(b, &mut dst);
            dst
        })
        .collect();
    let (fields, bytes) = (
        blocks.iter().map(Vec::len).sum(),
        wire.iter().map(|w| w.len()).sum(),
    );
    bench(label, fields, bytes, || {
        for w in &wire {
            out.clear();
            d.decode(black_box(w), 16 << 10, |h| out.push(h)).unwrap();
        }
        black_box(&out);
    });
}

/// First-block encode: a new encoder per call.
fn bench_encode_cold(label: &str, blocks: &[Vec<Header>]) {
    let mut dst = BytesMut::with_capacity(1024);
    let mut e = Encoder::new();
    for b in blocks {
        e.encode_headers(b, &mut dst);
    }
    let (fields, bytes) = (blocks.iter().map(Vec::len).sum(), dst.len());
    bench(label, fields, bytes, || {
        let mut e = Encoder::new();
        dst.clear();
        for b in blocks {
            e.encode_headers(black_box(b), &mut dst);
        }
        black_box(&dst);
    });
}

/// First-block decode: a new decoder per call.
fn bench_decode_cold(label: &str, blocks: &[Vec<Header>]) {
    let mut e = Encoder::new();
    let wire: Vec<BytesMut> = blocks
        .iter()
        .map(|b| {
            let mut dst = BytesMut::new();
            e.encode_headers(b, &mut dst);
            dst
        })
        .collect();
    let mut out = Vec::with_capacity(16);
    let (fields, bytes) = (
        blocks.iter().map(Vec::len).sum(),
        wire.iter().map(|w| w.len()).sum(),
    );
    bench(label, fields, bytes, || {
        let mut d = Decoder::new(4096);
        for w in &wire {
            out.clear();
            d.decode(black_box(w), 16 << 10, |h| out.push(h)).unwrap();
        }
        black_box(&out);
    });
}

/// A (name, value) pair to encode.
type Field = (&'static [u8], &'static [u8]);

/// Steady-state decode of a request as nghttp2 (h2load, curl) encodes it: `:path` and
/// `content-length` as Huffman/plain literals without indexing, the rest indexed.
fn bench_decode_nghttp2_warm(label: &str) {
    // (index these?, fields)
    let runs: [(bool, &[Field]); 4] = [
        (
            true,
            &[
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":authority", b"127.0.0.1:50051"),
            ],
        ),
        (false, &[(b":path", b"/helloworld.Greeter/SayHello")]),
        (
            true,
            &[
                (b"user-agent", b"h2load nghttp2/1.43.0"),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
            ],
        ),
        (false, &[(b"content-length", b"12")]),
    ];
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let mut wire = BytesMut::new();
    let mut out = Vec::with_capacity(16);
    // The first block fills both tables; the second is the steady state.
    for _ in 0..2 {
        wire.clear();
        for (index, fields) in runs {
            e.set_indexing(index);
            e.encode(fields.iter().copied(), &mut wire);
        }
        out.clear();
        d.decode(&wire, 16 << 10, |h| out.push(h)).unwrap();
    }
    let fields = out.len();
    bench(label, fields, wire.len(), || {
        out.clear();
        d.decode(black_box(&wire), 16 << 10, |h| out.push(h))
            .unwrap();
        black_box(&out);
    });
}

fn main() {
    // `cargo test --benches` runs this binary with no "--bench": keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("hpack bench: run with `cargo bench --bench hpack`");
        return;
    }
    let start = Instant::now();
    let req = [request()];
    let resp = [response(), trailers()];
    println!(
        "HPACK, median of {ROUNDS} rounds of ~{} ms",
        ROUND_TIME.as_millis()
    );
    bench_encode_warm("encode request (warm)", &req);
    bench_decode_warm("decode request (warm)", &req);
    bench_decode_nghttp2_warm("decode nghttp2 request (warm)");
    bench_encode_warm("encode response+trailers (warm)", &resp);
    bench_decode_warm("decode response+trailers (warm)", &resp);
    bench_encode_cold("encode request (cold)", &req);
    bench_decode_cold("decode request (cold)", &req);
    bench_encode_cold("encode response+trailers (cold)", &resp);
    bench_decode_cold("decode response+trailers (cold)", &resp);
    println!("total {:.1} s", start.elapsed().as_secs_f64());
}
