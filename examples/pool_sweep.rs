//! Thread-pool sizing experiment (issue 7): sweeps `max_workers` × handler work × client
//! concurrency against an in-process server on 127.0.0.1 and records throughput, p50/p99
//! latency and the server's `pool_stats()` (queue wait, busy workers).
//!
//! Run: `cargo run --release --example pool_sweep` (about 2 minutes; `--quick` for a few
//! seconds). Flags: `--point S` (measured seconds per point, default 0.3), `--warmup S`
//! (default 0.1), `--out DIR` (default `target/pool_sweep`), `--option NAME=VALUE` (grpcio
//! channel arguments for the servers and channels, repeatable). Writes `pool_sweep.csv` and
//! `pool_sweep.svg` there and prints the table.
//!
//! Client and server share this process and the machine's cores, so the CPU-bound rows show
//! both competing for CPU — as they would on a real host running more than one thing.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grpc_sync::{Channel, PoolStats, Server, ServerContext, Status};

use common::bench::{quantile, Flags};
use common::pb::helloworld::greeter_client::GreeterClient;
use common::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use common::pb::helloworld::{HelloReply, HelloRequest};

/// What each handler does before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Nothing: the RPC machinery alone.
    None,
    /// 100 µs of CPU (a spin loop).
    Cpu100us,
    /// A 1 ms blocking sleep (a database or a downstream call).
    Sleep1ms,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::None => "none",
            Work::Cpu100us => "cpu_100us",
            Work::Sleep1ms => "sleep_1ms",
        }
    }
}

struct Handler(Work);

impl Greeter for Handler {
    fn say_hello(&self, request: HelloRequest, _ctx: &ServerContext) -> Result<HelloReply, Status> {
        match self.0 {
            Work::None => {}
            Work::Cpu100us => {
                let t = Instant::now();
                let mut x = 0u64;
                while t.elapsed() < Duration::from_micros(100) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            Work::Sleep1ms => std::thread::sleep(Duration::from_millis(1)),
        }
        Ok(HelloReply {
            message: format!("Hello {}", request.name),
        })
    }
}

/// One measured point of the sweep.
struct Point {
    workers: usize,
    work: Work,
    concurrency: usize,
    rps: f64,
    p50_us: u32,
    p99_us: u32,
    errors: u64,
    mean_busy: f64,
    max_queued: usize,
    mean_queue_wait_us: f64,
    /// Share of the point's RPCs that waited more than 100 µs for a worker.
    waited_over_100us: f64,
}

fn main() {
    common::init_logging();
    let flags = Flags::from_env();
    flags.only(&["point", "warmup", "out", "quick", "option"]);
    // `--option NAME=VALUE` (repeatable): grpcio channel arguments for every server and channel.
    let options = common::options_or_exit(flags.options());
    let quick = flags.positional.iter().any(|a| a == "quick") || flags.get("quick").is_some();
    let point = flags.secs("point", if quick { 0.05 } else { 0.3 });
    let warmup = flags.secs("warmup", if quick { 0.02 } else { 0.1 });
    let out = flags.get("out").unwrap_or("target/pool_sweep").to_string();
    let (workers, concurrencies): (&[usize], &[usize]) = if quick {
        (&[1, 4, 16], &[1, 16])
    } else {
        (&[1, 2, 4, 8, 16, 32, 64], &[1, 16, 64])
    };
    let works = [Work::None, Work::Cpu100us, Work::Sleep1ms];

    let mut points = Vec::new();
    println!(
        "{:>7} {:>9} {:>4} {:>9} {:>7} {:>7} {:>6} {:>6} {:>8} {:>7}",
        "workers", "work", "conc", "rps", "p50_us", "p99_us", "busy", "queued", "wait_us", ">100us"
    );
    for &work in &works {
        for &w in workers {
            let server = Server::builder()
                .max_workers(w)
                .add_service(GreeterServer::new(Handler(work)))
                .options(options.clone())
                .unwrap_or_else(|e| common::bench::die(&e.to_string()))
                .build();
            let port = server
                .add_insecure_port("127.0.0.1:0")
                .unwrap_or_else(|e| common::bench::die(&format!("bind: {e}")));
            server
                .start()
                .unwrap_or_else(|e| common::bench::die(&format!("start: {e}")));
            let channel = Channel::builder(&format!("127.0.0.1:{port}"))
                .options(options.clone())
                .unwrap_or_else(|e| common::bench::die(&e.to_string()))
                .build()
                .unwrap_or_else(|e| common::bench::die(&format!("channel: {e}")));
            for &c in concurrencies {
                let p = run_point(&server, &channel, w, work, c, warmup, point);
                println!(
                    "{:>7} {:>9} {:>4} {:>9.0} {:>7} {:>7} {:>6.1} {:>6} {:>8.0} {:>6.1}%",
                    p.workers,
                    p.work.name(),
                    p.concurrency,
                    p.rps,
                    p.p50_us,
                    p.p99_us,
                    p.mean_busy,
                    p.max_queued,
                    p.mean_queue_wait_us,
                    p.waited_over_100us * 100.0
                );
                points.push(p);
            }
            channel.close();
            server.stop(None).wait();
        }
    }
    if let Err(e) = write_outputs(&out, &points, workers, concurrencies) {
        common::bench::die(&format!("writing {out}: {e}"));
    }
    println!("wrote {out}/pool_sweep.csv and {out}/pool_sweep.svg");
    if points.iter().any(|p| p.errors > 0) {
        eprintln!("error: some calls failed");
        std::process::exit(1);
    }
}

fn run_point(
    server: &Server,
    channel: &Channel,
    workers: usize,
    work: Work,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Point {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (window_start, window_end) = (start + warmup, start + warmup + duration);
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = GreeterClient::new(channel.clone());
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let ok = client.say_hello(HelloRequest { name: "w".into() }).is_ok();
                    let t1 = Instant::now();
                    errors += u64::from(!ok);
                    if t1 >= window_start && t1 < window_end {
                        lat.push((t1 - t0).as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(window_start.saturating_duration_since(Instant::now()));
    let before = server.pool_stats();
    let t0 = Instant::now();
    // Sample the pool every millisecond during the window.
    let (mut busy_sum, mut samples, mut max_queued) = (0usize, 0usize, 0usize);
    while Instant::now() < window_end {
        let s = server.pool_stats();
        busy_sum += s.busy;
        samples += 1;
        max_queued = max_queued.max(s.queued);
        std::thread::sleep(Duration::from_millis(1));
    }
    let after = server.pool_stats();
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for c in callers {
        let (lat, e) = c.join().expect("caller thread");
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let (mean_wait, over_100) = wait_stats(&before, &after);
    Point {
        workers,
        work,
        concurrency,
        rps: all.len() as f64 / secs,
        p50_us: quantile(&all, 0.5),
        p99_us: quantile(&all, 0.99),
        errors,
        mean_busy: busy_sum as f64 / samples.max(1) as f64,
        max_queued,
        mean_queue_wait_us: mean_wait,
        waited_over_100us: over_100,
    }
}

/// Mean queue wait (µs, from the histogram's bucket bounds) and the share of RPCs that waited
/// more than 100 µs, over the handlers started between two snapshots.
fn wait_stats(before: &PoolStats, after: &PoolStats) -> (f64, f64) {
    let started = after.started.saturating_sub(before.started);
    if started == 0 {
        return (0.0, 0.0);
    }
    let total_before = before.mean_queue_wait.as_secs_f64() * before.started as f64;
    let total_after = after.mean_queue_wait.as_secs_f64() * after.started as f64;
    let mean_us = (total_after - total_before).max(0.0) / started as f64 * 1e6;
    // The pool's histogram buckets end at 10, 50, 100, 500, ... µs: from the fourth bucket on,
    // the RPC waited more than 100 µs.
    let over: u64 = (3..after.queue_wait_histogram.len())
        .map(|i| {
            after.queue_wait_histogram[i]
                .saturating_sub(before.queue_wait_histogram.get(i).copied().unwrap_or(0))
        })
        .sum();
    (mean_us, over as f64 / started as f64)
}

fn write_outputs(
    dir: &str,
    points: &[Point],
    workers: &[usize],
    concurrencies: &[usize],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from(
        "max_workers,work,concurrency,rps,p50_us,p99_us,errors,mean_busy_workers,max_queued,\
         mean_queue_wait_us,share_waited_over_100us\n",
    );
    for p in points {
        let _ = writeln!(
            csv,
            "{},{},{},{:.1},{},{},{},{:.2},{},{:.1},{:.4}",
            p.workers,
            p.work.name(),
            p.concurrency,
            p.rps,
            p.p50_us,
            p.p99_us,
            p.errors,
            p.mean_busy,
            p.max_queued,
            p.mean_queue_wait_us,
            p.waited_over_100us
        );
    }
    std::fs::write(format!("{dir}/pool_sweep.csv"), csv)?;
    std::fs::write(
        format!("{dir}/pool_sweep.svg"),
        svg(points, workers, concurrencies),
    )
}

/// Two rows of three panels (one per handler work): throughput, then p99 latency, against
/// `max_workers` on a log2 axis, one line per client concurrency.
fn svg(points: &[Point], workers: &[usize], concurrencies: &[usize]) -> String {
    const PW: f64 = 300.0;
    const PH: f64 = 200.0;
    const ML: f64 = 70.0;
    const MT: f64 = 40.0;
    const GAP_X: f64 = 90.0;
    const GAP_Y: f64 = 80.0;
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let works = [Work::None, Work::Cpu100us, Work::Sleep1ms];
    let width = ML + 3.0 * (PW + GAP_X);
    let height = MT + 2.0 * (PH + GAP_Y) + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let wmax = *workers.last().unwrap_or(&1) as f64;
    let x_of = |w: usize, x0: f64| {
        if wmax <= 1.0 {
            x0 + PW / 2.0
        } else {
            x0 + (w as f64).log2() / wmax.log2() * PW
        }
    };
    for (row, metric) in ["throughput (RPC/s)", "p99 latency (µs, log)"]
        .iter()
        .enumerate()
    {
        for (col, &work) in works.iter().enumerate() {
            let x0 = ML + col as f64 * (PW + GAP_X);
            let y0 = MT + row as f64 * (PH + GAP_Y);
            let pts: Vec<&Point> = points.iter().filter(|p| p.work == work).collect();
            let value = |p: &Point| {
                if row == 0 {
                    p.rps
                } else {
                    f64::from(p.p99_us.max(1)).log10()
                }
            };
            let vmax = pts.iter().map(|p| value(p)).fold(0.0f64, f64::max);
            let vmax = if vmax <= 0.0 { 1.0 } else { vmax * 1.1 };
            let y_of = |v: f64| y0 + PH - v / vmax * PH;
            let _ = writeln!(
                s,
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{PW}\" height=\"{PH}\" fill=\"none\" stroke=\"#888\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{} — {metric}</text>",
                x0 + PW / 2.0,
                y0 - 8.0,
                work.name()
            );
            for &w in workers {
                let x = x_of(w, x0);
                let _ = writeln!(
                    s,
                    "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{}\" stroke=\"#eee\"/>\
                     <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{w}</text>",
                    y0 + PH,
                    y0 + PH + 14.0
                );
            }
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">max_workers</text>",
                x0 + PW / 2.0,
                y0 + PH + 28.0
            );
            for i in 0..=4 {
                let v = vmax * f64::from(i) / 4.0;
                let label = if row == 0 {
                    format!("{v:.0}")
                } else {
                    format!("{:.0}", 10f64.powf(v))
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>",
                    x0 - 4.0,
                    y_of(v) + 4.0
                );
            }
            for (ci, &c) in concurrencies.iter().enumerate() {
                let color = colors[ci % colors.len()];
                let path: Vec<String> = pts
                    .iter()
                    .filter(|p| p.concurrency == c)
                    .map(|p| format!("{:.1},{:.1}", x_of(p.workers, x0), y_of(value(p))))
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                    path.join(" ")
                );
            }
        }
    }
    for (ci, &c) in concurrencies.iter().enumerate() {
        let x = ML + ci as f64 * 140.0;
        let y = height - 12.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{y}\">{c} client callers</text>",
            y - 6.0,
            colors[ci % colors.len()],
            x + 18.0
        );
    }
    s.push_str("</svg>\n");
    s
}
