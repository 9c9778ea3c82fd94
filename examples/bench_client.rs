//! The benchmark client of issue 7's CLI contract. Each subcommand prints one JSON line and
//! exits non-zero on any error:
//!
//! - `unary --addr 127.0.0.1:P --concurrency N --duration S --warmup W`: N caller threads share
//!   ONE channel and call `SayHello` back to back; prints
//!   `{"rpcs","secs","rps","p50_us","p99_us","total_rpcs","cpu_s","errors"}` for the measured
//!   window (after the warm-up); `cpu_s` is this process's CPU time in that window.
//! - `stream --addr A --count N --size B --duration S [--window W]`: repeats
//!   `ServerStream(count, size)` until `duration` has passed; prints
//!   `{"msgs","bytes","secs","msgs_per_s","mib_per_s","cpu_s"}`. `--window`: fixed receive
//!   windows of W octets, BDP probing off.
//! - `check --addr A`: one `SayHello`; prints `{"message"}`.
//!
//! Run: `cargo run --release --example bench_client -- unary --addr 127.0.0.1:50051`

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use grpc_sync::options::OptionValue;
use grpc_sync::Channel;

use common::bench::{self, CallerStats, Flags, Json};
use common::pb::bench::streamer_client::StreamerClient;
use common::pb::bench::StreamRequest;
use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::HelloRequest;

/// `--option NAME=VALUE` (repeatable): grpcio channel arguments for the channel.
static OPTIONS: OnceLock<Vec<(String, OptionValue)>> = OnceLock::new();

fn main() {
    common::init_logging();
    let flags = Flags::from_env();
    let _ = OPTIONS.set(common::options_or_exit(flags.options()));
    let addr = flags.get("addr").unwrap_or("127.0.0.1:50051").to_string();
    let code = match flags.positional.first().map(String::as_str) {
        Some("unary") => {
            flags.only(&["addr", "concurrency", "duration", "warmup", "option"]);
            unary(
                &addr,
                flags.num("concurrency", 1),
                flags.secs("duration", 5.0),
                flags.secs("warmup", 1.0),
            )
        }
        Some("stream") => {
            flags.only(&["addr", "count", "size", "duration", "window", "option"]);
            stream(
                &addr,
                flags.num("count", 100_000),
                flags.num("size", 1024),
                flags.secs("duration", 5.0),
                flags.get("window").map(|_| flags.num("window", 65_535u32)),
            )
        }
        Some("check") => {
            flags.only(&["addr", "option"]);
            check(&addr)
        }
        _ => bench::die(bench::CLIENT_USAGE),
    };
    std::process::exit(code);
}

fn channel(addr: &str) -> Result<Channel, String> {
    channel_with(addr, None)
}

/// A channel with the `--option`s; `window`: fixed receive windows of that size (BDP probing
/// off).
fn channel_with(addr: &str, window: Option<u32>) -> Result<Channel, String> {
    let options = OPTIONS.get().cloned().unwrap_or_default();
    let mut b = Channel::builder(addr)
        .options(options)
        .map_err(|e| e.to_string())?;
    if let Some(w) = window {
        b = b.initial_window_size(w).initial_connection_window_size(w);
    }
    let channel = b.build().map_err(|s| format!("channel to {addr}: {s}"))?;
    channel
        .wait_for_ready(Duration::from_secs(5))
        .map_err(|s| format!("connect to {addr}: {s}"))?;
    Ok(channel)
}

fn fail(msg: &str) -> i32 {
    eprintln!("error: {msg}");
    1
}

fn unary(addr: &str, concurrency: usize, duration: Duration, warmup: Duration) -> i32 {
    let channel = match channel(addr) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let start = Instant::now();
    let window_start = start + warmup;
    let window_end = window_start + duration;
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let client = GreeterClient::new(channel.clone());
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stats = CallerStats::default();
                let request = HelloRequest {
                    name: "world".into(),
                };
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let result = client.say_hello(request.clone());
                    let t1 = Instant::now();
                    stats.total += 1;
                    match result {
                        Ok(reply) if reply.message == "Hello world" => {}
                        Ok(reply) => {
                            stats.errors += 1;
                            eprintln!("unexpected reply {:?}", reply.message);
                        }
                        Err(status) => {
                            stats.errors += 1;
                            if stats.errors <= 3 {
                                eprintln!("call failed: {status}");
                            }
                        }
                    }
                    if t1 >= window_start && t1 < window_end {
                        let us = (t1 - t0).as_micros().min(u128::from(u32::MAX)) as u32;
                        stats.latencies_us.push(us);
                    }
                }
                stats
            })
        })
        .collect();
    std::thread::sleep(window_start.saturating_duration_since(Instant::now()));
    let (w0, cpu0) = (Instant::now(), bench::self_cpu());
    std::thread::sleep(window_end.saturating_duration_since(Instant::now()));
    let (w1, cpu1) = (Instant::now(), bench::self_cpu());
    stop.store(true, Ordering::Relaxed);
    let mut stats = Vec::new();
    for caller in callers {
        match caller.join() {
            Ok(s) => stats.push(s),
            Err(_) => return fail("a caller thread panicked"),
        }
    }
    let (line, errors) = bench::unary_report(stats, w1 - w0, cpu1.saturating_sub(cpu0));
    println!("{line}");
    i32::from(errors > 0)
}

fn stream(addr: &str, count: u32, size: u32, duration: Duration, window: Option<u32>) -> i32 {
    let channel = match channel_with(addr, window) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let client = StreamerClient::new(channel);
    let (start, cpu0) = (Instant::now(), bench::self_cpu());
    let (mut msgs, mut bytes) = (0u64, 0u64);
    while start.elapsed() < duration {
        let replies = match client.server_stream(StreamRequest { count, size }) {
            Ok(r) => r,
            Err(status) => return fail(&format!("ServerStream: {status}")),
        };
        let mut got = 0u32;
        for reply in replies {
            match reply {
                Ok(reply) => {
                    got += 1;
                    bytes += reply.payload.len() as u64;
                }
                Err(status) => return fail(&format!("ServerStream: {status}")),
            }
        }
        if got != count {
            return fail(&format!("ServerStream: {got} replies, wanted {count}"));
        }
        msgs += u64::from(got);
    }
    let (elapsed, cpu) = (start.elapsed(), bench::self_cpu().saturating_sub(cpu0));
    println!("{}", bench::stream_report(msgs, bytes, elapsed, cpu));
    0
}

fn check(addr: &str) -> i32 {
    let channel = match channel(addr) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match GreeterClient::new(channel).say_hello(HelloRequest {
        name: "world".into(),
    }) {
        Ok(reply) => {
            println!(
                "{}",
                bench::json_line(&[("message", Json::Str(reply.message))])
            );
            0
        }
        Err(status) => fail(&format!("SayHello: {status}")),
    }
}
