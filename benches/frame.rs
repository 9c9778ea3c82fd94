//! Frame codec benchmark: decode and encode throughput of DATA frames (RFC 9113 §6.1).
//!
//! Run with `cargo bench --bench frame`; append `-- <filter>` to run only the cases whose name
//! contains it. A plain `main` timed with `Instant`: every case runs several rounds and prints
//! the median, in frames per second and payload GiB per second.
//!
//! Cases:
//! - decode, whole buffer: the receive buffer already holds every frame; measures `decode`
//!   alone (zero-copy, so the payload size hardly matters);
//! - decode, 64 KiB reads: bytes are appended to the receive buffer 64 KiB at a time, as a
//!   socket reader would, and decoded as they become complete; includes that copy-in;
//! - encode_data: DATA frames written into a send buffer that is flushed (cleared) every
//!   256 KiB, as a writer would; includes the payload copy.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use grpc_sync::h2::frame::{self, Frame, DEFAULT_MAX_FRAME_SIZE};

const ROUNDS: usize = 9;

/// One benchmark case: given a payload size, the median time and the frames it covered.
type Case = fn(usize) -> (Duration, usize);

/// Payload bytes that pass through the codec in one round of a case.
const BYTES_PER_ROUND: usize = 64 << 20;

fn main() {
    // `cargo bench --bench frame -- <filter>...` runs only the cases whose name contains a
    // filter; cargo's own `--bench` flag is ignored.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    println!(
        "frame codec benchmark: median of {ROUNDS} rounds, {} MiB of payload per round",
        BYTES_PER_ROUND >> 20
    );
    for size in [16_384, 128] {
        let cases: [(String, Case); 3] = [
            (
                format!("decode DATA {size:>5} B, whole buffer"),
                bench_decode_buffered,
            ),
            (
                format!("decode DATA {size:>5} B, 64 KiB reads"),
                bench_decode_reads,
            ),
            (format!("encode_data {size:>5} B"), bench_encode),
        ];
        for (name, case) in cases {
            if selected(&name) {
                report(&name, size, case(size));
            }
        }
    }
}

/// Times `ROUNDS` rounds of `f`, which returns the time it measured and the frames it handled.
fn rounds(mut f: impl FnMut() -> (Duration, usize)) -> (Duration, usize) {
    let _warm_up = f();
    let mut times = Vec::with_capacity(ROUNDS);
    let mut frames = 0;
    for _ in 0..ROUNDS {
        let (t, n) = f();
        times.push(t);
        frames = n;
    }
    times.sort();
    (times[ROUNDS / 2], frames)
}

fn report(name: &str, payload: usize, (time, frames): (Duration, usize)) {
    let secs = time.as_secs_f64();
    let fps = frames as f64 / secs;
    let gib = (frames * payload) as f64 / secs / f64::from(1u32 << 30);
    let ns = secs * 1e9 / frames as f64;
    println!(
        "{name:<36} {:>8.2} M frames/s {gib:>8.2} GiB/s {ns:>8.1} ns/frame",
        fps / 1e6
    );
}

/// A run of DATA frames with `size`-byte payloads, as the wire would carry them.
fn wire(size: usize, frames: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut buf = BytesMut::with_capacity(frames * (size + frame::FRAME_HEADER_LEN));
    for i in 0..frames {
        frame::encode_data(&mut buf, 1 + 2 * (i as u32 % 100), &payload, false);
    }
    buf.to_vec()
}

/// Decodes every frame in `buf`, returning how many there were.
fn decode_all(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(f) = frame::decode(buf, DEFAULT_MAX_FRAME_SIZE).expect("valid frames") {
        if let Frame::Data(d) = f {
            black_box(&d.payload);
        }
        n += 1;
    }
    n
}

fn bench_decode_buffered(size: usize) -> (Duration, usize) {
    // Decode a few MiB at a time so that the untimed refill stays cheap and cache-sized.
    let per_batch = ((4 << 20) / size).max(1);
    let batches = BYTES_PER_ROUND / (per_batch * size);
    let wire = wire(size, per_batch);
    rounds(|| {
        let mut total = Duration::ZERO;
        let mut frames = 0;
        for _ in 0..batches {
            let mut buf = BytesMut::from(&wire[..]);
            let start = Instant::now();
            frames += decode_all(&mut buf);
            total += start.elapsed();
        }
        (total, frames)
    })
}

fn bench_decode_reads(size: usize) -> (Duration, usize) {
    let frames = BYTES_PER_ROUND / size;
    let per_batch = ((4 << 20) / size).max(1);
    let wire = wire(size, per_batch);
    rounds(|| {
        let mut buf = BytesMut::with_capacity(128 << 10);
        let mut decoded = 0;
        let start = Instant::now();
        while decoded < frames {
            for read in wire.chunks(64 << 10) {
                buf.extend_from_slice(read);
                decoded += decode_all(&mut buf);
            }
        }
        (start.elapsed(), decoded)
    })
}

fn bench_encode(size: usize) -> (Duration, usize) {
    let frames = BYTES_PER_ROUND / size;
    let payload = vec![0x5a_u8; size];
    let flush_at = 256 << 10;
    rounds(|| {
        let mut dst = BytesMut::with_capacity(flush_at + size + frame::FRAME_HEADER_LEN);
        let start = Instant::now();
        for i in 0..frames {
            frame::encode_data(&mut dst, 1 + 2 * (i as u32 % 100), &payload, false);
            if dst.len() >= flush_at {
                black_box(&dst[..]);
                dst.clear();
            }
        }
        black_box(&dst);
        (start.elapsed(), frames)
    })
}
