//! A loopback TCP relay that delays every chunk by a fixed time in each direction: a long
//! link for flow-control benchmarks on a machine without netem (`scripts/bdp.sh`).
//!
//! - `delay_relay --to HOST:PORT [--delay-ms 10]`: listens on 127.0.0.1 (a free port, printed
//!   as `PORT <n>`) and relays every connection to HOST:PORT until killed.
//! - `delay_relay --raw --duration S [--delay-ms 10]`: the ceiling: bytes pushed as fast as
//!   TCP allows through the same relay to a sink for S seconds; prints one JSON line.
//!
//! Bandwidth is not limited (loopback), only delay: what limits a stream is then the window
//! in force per round trip (2 × delay), as on a long fat link. Loopback only.

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::bench::{self, Flags, Json};

/// Chunks in flight one way: (when they may be delivered, bytes).
type Line = Arc<(Mutex<(VecDeque<(Instant, Vec<u8>)>, bool)>, Condvar)>;

/// Moves bytes from `from` to `into`, each chunk `delay` later than it was read.
fn pipe(mut from: TcpStream, mut into: TcpStream, delay: Duration) {
    let line: Line = Arc::default();
    let l2 = line.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf).unwrap_or(0);
            let (m, cv) = &*l2;
            let mut g = m.lock().unwrap();
            if n == 0 {
                g.1 = true;
                cv.notify_all();
                return;
            }
            g.0.push_back((Instant::now() + delay, buf[..n].to_vec()));
            cv.notify_all();
        }
    });
    std::thread::spawn(move || loop {
        let (m, cv) = &*line;
        let mut g = m.lock().unwrap();
        while g.0.is_empty() && !g.1 {
            g = cv.wait(g).unwrap();
        }
        let Some((at, _)) = g.0.front() else {
            let _ = into.shutdown(std::net::Shutdown::Write);
            return;
        };
        let at = *at;
        let now = Instant::now();
        if at > now {
            // The chunk's delivery time: this wait is the simulated link.
            drop(cv.wait_timeout(g, at - now).unwrap());
            continue;
        }
        let (_, bytes) = g.0.pop_front().expect("checked");
        drop(g);
        if into.write_all(&bytes).is_err() {
            return;
        }
    });
}

/// Starts a relay to `to`; returns its port.
fn relay(to: SocketAddr, delay: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let Ok(s) = TcpStream::connect(to) else {
                continue;
            };
            let _ = c.set_nodelay(true);
            let _ = s.set_nodelay(true);
            pipe(
                c.try_clone().expect("clone"),
                s.try_clone().expect("clone"),
                delay,
            );
            pipe(s, c, delay);
        }
    });
    port
}

fn raw(delay: Duration, duration: Duration) -> i32 {
    let sink = TcpListener::bind("127.0.0.1:0").expect("bind");
    let to = sink.local_addr().expect("addr");
    let total = Arc::new(Mutex::new((0u64, None::<Instant>)));
    let t2 = total.clone();
    std::thread::spawn(move || {
        let (mut s, _) = sink.accept().expect("accept");
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let mut g = t2.lock().unwrap();
                    g.0 += n as u64;
                    g.1.get_or_insert_with(Instant::now);
                }
            }
        }
    });
    let port = relay(to, delay);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let chunk = vec![0xA5u8; 256 * 1024];
    let start = Instant::now();
    while start.elapsed() < duration {
        if c.write_all(&chunk).is_err() {
            break;
        }
    }
    let (bytes, first) = *total.lock().unwrap();
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{}",
        bench::json_line(&[
            ("bytes", Json::Int(bytes)),
            ("secs", Json::Float(secs)),
            (
                "mib_per_s",
                Json::Float(bytes as f64 / 1048576.0 / secs.max(1e-9))
            ),
        ])
    );
    0
}

fn main() {
    common::init_logging();
    let flags = Flags::from_env();
    flags.only(&["to", "delay-ms", "raw", "duration"]);
    let delay = Duration::from_millis(flags.num("delay-ms", 10));
    if flags.get("raw").is_some() {
        std::process::exit(raw(delay, flags.secs("duration", 5.0)));
    }
    let Some(to) = flags.get("to").and_then(|t| t.parse::<SocketAddr>().ok()) else {
        bench::die("usage: delay_relay --to HOST:PORT [--delay-ms 10] | --raw --duration S");
    };
    if !to.ip().is_loopback() {
        bench::die("delay_relay relays to loopback addresses only");
    }
    let port = relay(to, delay);
    println!("PORT {port}");
    loop {
        std::thread::park();
    }
}
