//! tonic's equivalent of `examples/bench_client.rs`: same subcommands, flags and JSON lines.
//! `--concurrency N` runs N tasks sharing one `Channel`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grpc_sync_compare::bench::{self, CallerStats, Flags, Json};
use grpc_sync_compare::pb::greeter_client::GreeterClient;
use grpc_sync_compare::pb::streamer_client::StreamerClient;
use grpc_sync_compare::pb::{HelloRequest, StreamRequest};
use tonic::transport::{Channel, Endpoint};

fn main() {
    let flags = Flags::from_env();
    let addr = flags.get("addr").unwrap_or("127.0.0.1:50051").to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        match flags.positional.first().map(String::as_str) {
            Some("unary") => {
                flags.only(&["addr", "concurrency", "duration", "warmup"]);
                unary(
                    &addr,
                    flags.num("concurrency", 1),
                    flags.secs("duration", 5.0),
                    flags.secs("warmup", 1.0),
                )
                .await
            }
            Some("stream") => {
                flags.only(&["addr", "count", "size", "duration"]);
                stream(
                    &addr,
                    flags.num("count", 100_000),
                    flags.num("size", 1024),
                    flags.secs("duration", 5.0),
                )
                .await
            }
            Some("check") => {
                flags.only(&["addr"]);
                check(&addr).await
            }
            _ => bench::die(bench::CLIENT_USAGE),
        }
    });
    drop(runtime);
    std::process::exit(code);
}

async fn channel(addr: &str) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    endpoint
        .connect()
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))
}

fn fail(msg: &str) -> i32 {
    eprintln!("error: {msg}");
    1
}

async fn unary(addr: &str, concurrency: usize, duration: Duration, warmup: Duration) -> i32 {
    let channel = match channel(addr).await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let start = Instant::now();
    let window_start = start + warmup;
    let window_end = window_start + duration;
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let mut client = GreeterClient::new(channel.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut stats = CallerStats::default();
                let request = HelloRequest {
                    name: "world".into(),
                };
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let result = client.say_hello(request.clone()).await;
                    let t1 = Instant::now();
                    stats.total += 1;
                    match result {
                        Ok(reply) if reply.get_ref().message == "Hello world" => {}
                        Ok(reply) => {
                            stats.errors += 1;
                            eprintln!("unexpected reply {:?}", reply.get_ref().message);
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
    tokio::time::sleep(window_start.saturating_duration_since(Instant::now())).await;
    let (w0, cpu0) = (Instant::now(), bench::self_cpu());
    tokio::time::sleep(window_end.saturating_duration_since(Instant::now())).await;
    let (w1, cpu1) = (Instant::now(), bench::self_cpu());
    stop.store(true, Ordering::Relaxed);
    let mut stats = Vec::new();
    for caller in callers {
        match caller.await {
            Ok(s) => stats.push(s),
            Err(_) => return fail("a caller task panicked"),
        }
    }
    let (line, errors) = bench::unary_report(stats, w1 - w0, cpu1.saturating_sub(cpu0));
    println!("{line}");
    i32::from(errors > 0)
}

async fn stream(addr: &str, count: u32, size: u32, duration: Duration) -> i32 {
    let channel = match channel(addr).await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let mut client = StreamerClient::new(channel).max_decoding_message_size(64 << 20);
    let (start, cpu0) = (Instant::now(), bench::self_cpu());
    let (mut msgs, mut bytes) = (0u64, 0u64);
    while start.elapsed() < duration {
        let mut replies = match client.server_stream(StreamRequest { count, size }).await {
            Ok(r) => r.into_inner(),
            Err(status) => return fail(&format!("ServerStream: {status}")),
        };
        let mut got = 0u32;
        loop {
            match replies.message().await {
                Ok(Some(reply)) => {
                    got += 1;
                    bytes += reply.payload.len() as u64;
                }
                Ok(None) => break,
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

async fn check(addr: &str) -> i32 {
    let channel = match channel(addr).await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    match GreeterClient::new(channel)
        .say_hello(HelloRequest {
            name: "world".into(),
        })
        .await
    {
        Ok(reply) => {
            let message = reply.into_inner().message;
            println!("{}", bench::json_line(&[("message", Json::Str(message))]));
            0
        }
        Err(status) => fail(&format!("SayHello: {status}")),
    }
}
