//! Many idle connections against one server: what each costs it, and whether it still answers.
//!
//! Opens `--count` h2c connections to `--addr` (loopback only), finishes the HTTP/2 SETTINGS
//! exchange on each (client preface + empty SETTINGS, the server's SETTINGS, our ACK of it, its
//! ACK of ours), keeps them all open and idle, makes `--calls` real unary calls
//! (`helloworld.Greeter/SayHello`, which both `bench_server` and tonic's `compare/` server offer)
//! on a separate channel, then closes them all. With `--pid`, reads the server's RSS, thread
//! count and open descriptors from `/proc` before, while open, and after the close (once its
//! descriptor count is back near where it started).
//!
//! Prints a summary, then one JSON line (the last line of stdout):
//! `{"count","established","secs","conns_per_s","rss_before_kib","rss_open_kib",
//! "rss_closed_kib","kib_per_conn","threads_before","threads_open","threads_closed",
//! "fds_before","fds_open","fds_closed","still_open","unary_p50_us","unary_max_us",
//! "unary_us","release_secs","error"}` (`null` for what was not measured). Exits 1 if a
//! connection or a call failed, after reporting what it got.
//!
//! One thread drives every handshake: non-blocking sockets and `poll(2)` over the (at most
//! `--inflight`) connections still handshaking; established ones are not polled. It raises its
//! own open-files limit to the hard limit first. Every wait has a deadline (`--timeout`, per
//! phase).
//!
//! Run: `cargo run --release --example conn_flood -- --addr 127.0.0.1:50051 --pid PID --count 5000`
//! (`scripts/flood.sh` runs it against grpc-sync's and tonic's bench servers).

mod common;

#[cfg(unix)]
fn main() {
    common::init_logging();
    std::process::exit(flood::run());
}

#[cfg(not(unix))]
fn main() {
    eprintln!("error: conn_flood needs a Unix system (non-blocking sockets through rustix, /proc)");
    std::process::exit(2);
}

#[cfg(unix)]
mod flood {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
    use std::time::{Duration, Instant};

    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    use rustix::process::{getrlimit, Resource};

    use grpc_sync::{Channel, Request, Response};

    use crate::common;
    use crate::common::bench::{die, json_line, quantile, Flags, Json};
    use crate::common::pb::helloworld::greeter_client::SAY_HELLO_PATH;
    use crate::common::pb::helloworld::{HelloReply, HelloRequest};

    const USAGE: &str = "usage: conn_flood --addr HOST:PORT [--count N] [--pid PID] [--timeout S] \
        [--inflight N] [--calls N]\n  \
        --addr HOST:PORT  the server (loopback only)\n  \
        --count N         idle connections to open (default 1000)\n  \
        --pid PID         the server's process: RSS, threads and fds from /proc/PID\n  \
        --timeout S       bound of each phase: opening, each call, the release (default 60)\n  \
        --inflight N      handshakes under way at once (default 100)\n  \
        --calls N         unary calls made while all are open (default 5)\n  \
        --option N=V      a grpcio channel argument for the calls' channel (repeatable)";

    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /// HTTP/2 frame types and the flag we look at.
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const ACK: u8 = 0x1;
    /// A frame with no payload: 24-bit length 0, type, flags, stream 0.
    fn empty_frame(kind: u8, flags: u8) -> [u8; 9] {
        [0, 0, 0, kind, flags, 0, 0, 0, 0]
    }
    /// No server sends a larger frame during the handshake (the default SETTINGS_MAX_FRAME_SIZE
    /// is 16 KiB); past this, the bytes are not HTTP/2.
    const MAX_FRAME: usize = 1 << 20;
    /// How many distinct errors the report spells out.
    const MAX_ERRORS_SHOWN: usize = 3;

    pub fn run() -> i32 {
        let flags = Flags::from_env();
        if flags.get("help").is_some() {
            println!("{USAGE}");
            return 0;
        }
        if !flags.positional.is_empty() {
            die(&format!(
                "unexpected argument {:?}\n{USAGE}",
                flags.positional[0]
            ));
        }
        flags.only(&[
            "addr", "count", "pid", "timeout", "inflight", "calls", "help", "option",
        ]);
        let options = common::options_or_exit(flags.options());
        let Some(target) = flags.get("addr") else {
            die(&format!("--addr HOST:PORT is required\n{USAGE}"))
        };
        let addr = resolve_loopback(target);
        let count: usize = flags.num("count", 1000);
        let pid: Option<u32> = flags.get("pid").map(|_| flags.num("pid", 0));
        let timeout = flags.secs("timeout", 60.0);
        let inflight: usize = flags.num::<usize>("inflight", 100).max(1);
        let calls: usize = flags.num::<usize>("calls", 5).max(1);

        common::raise_fd_limit();
        let limit = getrlimit(Resource::Nofile).current;
        if let Some(limit) = limit {
            // Ours: one per connection, plus the channel, stdio, /proc reads and some slack.
            let need = count as u64 + 64;
            if limit < need {
                die(&format!(
                    "this process may open {limit} files, --count {count} needs about {need}: \
                     raise the hard limit (ulimit -Hn, as root) or lower --count"
                ));
            }
        }

        let server = pid.map(|pid| {
            let s = Proc(pid);
            if let Err(e) = s.sample() {
                die(&format!("--pid {pid}: {e}"));
            }
            s
        });
        let sample = |when: &str| -> Option<Sample> {
            let server = server.as_ref()?;
            match server.sample() {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("warning: server sample {when}: {e}");
                    None
                }
            }
        };

        let before = sample("before");
        let flood = open_all(addr, count, inflight, timeout);
        let open = sample("while open");
        let unary = if flood.conns.is_empty() {
            Err("skipped: no connection was established".to_string())
        } else {
            unary_calls(target, calls, timeout, options)
        };
        let still_open = count_still_open(&flood.conns);
        let established = flood.conns.len();
        drop(flood.conns);
        let (closed, release) = wait_for_release(server.as_ref(), before.as_ref(), timeout);

        let mut errors = flood.errors;
        if let Err(e) = &unary {
            errors.push(format!("unary calls: {e}"));
        }
        if still_open < established {
            errors.push(format!(
                "{} of {established} connections were closed by the server while idle",
                established - still_open
            ));
        }
        let report = Report {
            target,
            pid,
            count,
            inflight,
            established,
            secs: flood.secs,
            before,
            open,
            closed,
            release,
            unary: unary.unwrap_or_default(),
            still_open,
            errors,
        };
        report.print();
        i32::from(!report.errors.is_empty())
    }

    /// `HOST:PORT` resolved to its first address; dies unless it is a loopback one.
    fn resolve_loopback(target: &str) -> SocketAddr {
        let addr = match target.to_socket_addrs() {
            Ok(mut addrs) => addrs.next(),
            Err(e) => die(&format!("--addr {target:?}: {e}")),
        };
        let Some(addr) = addr else {
            die(&format!("--addr {target:?}: no address"))
        };
        if !addr.ip().is_loopback() {
            die(&format!(
                "--addr {target:?} is {addr}: conn_flood only targets loopback addresses"
            ));
        }
        addr
    }

    /// A sample of the server process from `/proc`.
    #[derive(Debug, Clone, Copy)]
    struct Sample {
        rss_kib: u64,
        threads: u64,
        fds: u64,
    }

    /// One number of a [`Sample`].
    type SampleField = fn(&Sample) -> u64;

    /// The server process: `/proc/PID`.
    struct Proc(u32);

    impl Proc {
        fn sample(&self) -> Result<Sample, String> {
            let path = format!("/proc/{}/status", self.0);
            let status = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {path}: {e} (is the server running?)"))?;
            let field = |name: &str| -> Result<u64, String> {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("no {name} line in {path}"))
            };
            let fd_dir = format!("/proc/{}/fd", self.0);
            let fds = std::fs::read_dir(&fd_dir)
                .map_err(|e| format!("cannot list {fd_dir}: {e}"))?
                .count() as u64;
            Ok(Sample {
                rss_kib: field("VmRSS:")?,
                threads: field("Threads:")?,
                fds,
            })
        }
    }

    /// What the opening phase left: the established connections and what went wrong.
    struct Flood {
        conns: Vec<TcpStream>,
        /// From the first connect to the last finished handshake.
        secs: f64,
        errors: Vec<String>,
    }

    /// One connection on its way to being established.
    struct Handshake {
        index: usize,
        sock: TcpStream,
        connected: bool,
        out: Vec<u8>,
        written: usize,
        inbuf: Vec<u8>,
        got_settings: bool,
        got_ack: bool,
    }

    enum Step {
        Pending,
        Done,
        Failed(String),
    }

    impl Handshake {
        /// A non-blocking socket with its connect under way.
        fn start(index: usize, addr: SocketAddr) -> Result<Handshake, String> {
            let family = if addr.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let fd = rustix::net::socket_with(
                family,
                SocketType::STREAM,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| format!("socket: {}", io::Error::from(e)))?;
            let connected = match rustix::net::connect(&fd, &addr) {
                Ok(()) => true,
                Err(rustix::io::Errno::INPROGRESS) => false,
                Err(rustix::io::Errno::AGAIN) => {
                    return Err("connect: no free local port (ephemeral ports exhausted)".into())
                }
                Err(e) => return Err(format!("connect to {addr}: {}", io::Error::from(e))),
            };
            let mut h = Handshake {
                index,
                sock: TcpStream::from(fd),
                connected: false,
                out: Vec::with_capacity(PREFACE.len() + 18),
                written: 0,
                inbuf: Vec::new(),
                got_settings: false,
                got_ack: false,
            };
            if connected {
                h.on_connected();
            }
            Ok(h)
        }

        fn on_connected(&mut self) {
            self.connected = true;
            self.out.extend_from_slice(PREFACE);
            self.out.extend_from_slice(&empty_frame(SETTINGS, 0));
        }

        fn interest(&self) -> PollFlags {
            if !self.connected || self.written < self.out.len() {
                PollFlags::OUT | PollFlags::IN
            } else {
                PollFlags::IN
            }
        }

        /// Moves the handshake on after `poll` reported `events`.
        fn advance(&mut self, events: PollFlags) -> Step {
            if !self.connected {
                match rustix::net::sockopt::socket_error(&self.sock) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Step::Failed(format!("connect: {}", io::Error::from(e))),
                    Err(e) => return Step::Failed(format!("SO_ERROR: {}", io::Error::from(e))),
                }
                if !events.intersects(PollFlags::OUT | PollFlags::ERR | PollFlags::HUP) {
                    return Step::Pending;
                }
                self.on_connected();
            }
            if let Err(e) = self.flush() {
                return Step::Failed(e);
            }
            let mut buf = [0u8; 4096];
            loop {
                match (&self.sock).read(&mut buf) {
                    Ok(0) => {
                        return Step::Failed(format!(
                            "the server closed the connection during the handshake ({})",
                            self.progress()
                        ))
                    }
                    Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Step::Failed(format!("read: {e} ({})", self.progress())),
                }
            }
            if let Err(e) = self.parse() {
                return Step::Failed(e);
            }
            if let Err(e) = self.flush() {
                return Step::Failed(e);
            }
            if self.got_settings && self.got_ack && self.written == self.out.len() {
                Step::Done
            } else {
                Step::Pending
            }
        }

        fn flush(&mut self) -> Result<(), String> {
            while self.written < self.out.len() {
                match (&self.sock).write(&self.out[self.written..]) {
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("write: {e} ({})", self.progress())),
                }
            }
            Ok(())
        }

        /// Handles the whole frames in `inbuf`: SETTINGS (answered with an ACK), the ACK of
        /// ours, GOAWAY (an error); anything else is skipped.
        fn parse(&mut self) -> Result<(), String> {
            let mut at = 0;
            while self.inbuf.len() - at >= 9 {
                let h = &self.inbuf[at..at + 9];
                let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let (kind, flags) = (h[3], h[4]);
                if len > MAX_FRAME {
                    return Err(format!(
                        "a {len}-byte frame from the server: not HTTP/2? (it began {:?})",
                        String::from_utf8_lossy(&self.inbuf[..self.inbuf.len().min(24)])
                    ));
                }
                if self.inbuf.len() - at - 9 < len {
                    break;
                }
                let payload = &self.inbuf[at + 9..at + 9 + len];
                match kind {
                    SETTINGS if flags & ACK != 0 => self.got_ack = true,
                    SETTINGS => {
                        self.got_settings = true;
                        self.out.extend_from_slice(&empty_frame(SETTINGS, ACK));
                    }
                    GOAWAY => {
                        let code = payload
                            .get(4..8)
                            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                        let debug = String::from_utf8_lossy(payload.get(8..).unwrap_or_default());
                        return Err(format!(
                            "GOAWAY from the server during the handshake (error code {code:?}, {debug:?})"
                        ));
                    }
                    _ => {}
                }
                at += 9 + len;
            }
            self.inbuf.drain(..at);
            Ok(())
        }

        fn progress(&self) -> &'static str {
            match (self.got_settings, self.got_ack) {
                (false, _) => "before the server's SETTINGS",
                (true, false) => "after the server's SETTINGS, before its ACK of ours",
                (true, true) => "after both SETTINGS",
            }
        }
    }

    /// Opens `count` connections, at most `inflight` handshaking at once. Stops opening new
    /// ones at the first failure; gives up on those still handshaking after `timeout`.
    fn open_all(addr: SocketAddr, count: usize, inflight: usize, timeout: Duration) -> Flood {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut conns = Vec::with_capacity(count);
        let mut pending: Vec<Handshake> = Vec::with_capacity(inflight.min(count));
        let mut errors: Vec<String> = Vec::new();
        // (connection index, what went wrong), in the order seen.
        let mut failures: Vec<(usize, String)> = Vec::new();
        let mut opened = 0usize;
        let mut last_done = start;
        let mut next_progress = start + Duration::from_secs(2);
        loop {
            while failures.is_empty() && opened < count && pending.len() < inflight {
                match Handshake::start(opened, addr) {
                    Ok(h) => pending.push(h),
                    Err(e) => failures.push((opened, e)),
                }
                opened += 1;
            }
            if pending.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                let oldest = pending.iter().min_by_key(|h| h.index);
                if let Some(h) = oldest {
                    errors.push(format!(
                        "{} handshakes still unfinished after {timeout:?} ({} established); \
                         the oldest, connection #{}, is {}",
                        pending.len(),
                        conns.len(),
                        h.index,
                        if h.connected {
                            h.progress()
                        } else {
                            "still connecting"
                        }
                    ));
                }
                break;
            }
            if now >= next_progress {
                eprintln!(
                    "conn_flood: {}/{count} established after {:.1} s",
                    conns.len(),
                    (now - start).as_secs_f64()
                );
                next_progress = now + Duration::from_secs(2);
            }
            let wait = deadline.min(next_progress) - now;
            let ready: Vec<PollFlags> = {
                let mut fds: Vec<PollFd<'_>> = pending
                    .iter()
                    .map(|h| PollFd::new(&h.sock, h.interest()))
                    .collect();
                let wait = Timespec::try_from(wait).unwrap_or(Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                });
                match poll(&mut fds, Some(&wait)) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        errors.push(format!("poll: {}", io::Error::from(e)));
                        break;
                    }
                }
                fds.iter().map(PollFd::revents).collect()
            };
            // Back to front, so that swap_remove leaves the indices still to visit in place.
            for i in (0..pending.len()).rev() {
                if ready[i].is_empty() {
                    continue;
                }
                match pending[i].advance(ready[i]) {
                    Step::Pending => {}
                    Step::Done => {
                        conns.push(pending.swap_remove(i).sock);
                        last_done = Instant::now();
                    }
                    Step::Failed(e) => failures.push((pending.swap_remove(i).index, e)),
                }
            }
        }
        let failed = failures.len();
        failures.sort_by_key(|(index, _)| *index);
        let shown = failures.into_iter().take(MAX_ERRORS_SHOWN);
        let shown: Vec<String> = shown
            .map(|(i, e)| format!("connection #{i}: {e}"))
            .collect();
        errors.splice(0..0, shown);
        if failed > MAX_ERRORS_SHOWN {
            errors.push(format!("{failed} connections failed in all"));
        }
        if failed > 0 && opened < count {
            errors.push(format!(
                "stopped opening at the first failure: {} of {count} never tried",
                count - opened
            ));
        }
        Flood {
            conns,
            secs: (last_done - start).as_secs_f64(),
            errors,
        }
    }

    /// Latencies (µs) of `calls` unary calls on a fresh channel (connected first, not timed).
    fn unary_calls(
        target: &str,
        calls: usize,
        timeout: Duration,
        options: Vec<(String, grpc_sync::options::OptionValue)>,
    ) -> Result<Vec<u32>, String> {
        let channel = Channel::builder(target)
            .options(options)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|s| format!("channel to {target}: {s}"))?;
        channel
            .wait_for_ready(timeout)
            .map_err(|s| format!("connect to {target}: {s}"))?;
        let mut latencies = Vec::with_capacity(calls);
        for i in 0..calls {
            let request = Request::new(HelloRequest {
                name: "flood".into(),
            })
            .with_timeout(timeout);
            let t0 = Instant::now();
            let reply: Response<HelloReply> = channel
                .unary(SAY_HELLO_PATH, request)
                .map_err(|s| format!("SayHello #{i}: {s}"))?;
            let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            let message = reply.into_inner().message;
            if message != "Hello flood" {
                return Err(format!("SayHello #{i}: unexpected reply {message:?}"));
            }
            latencies.push(us);
        }
        channel.close();
        Ok(latencies)
    }

    /// How many of the established connections the server has not closed: reads what each
    /// has pending (without blocking) and looks for end of stream or a reset.
    fn count_still_open(conns: &[TcpStream]) -> usize {
        let mut buf = [0u8; 4096];
        let mut open = |mut sock: &TcpStream| loop {
            match sock.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        };
        conns.iter().filter(|sock| open(sock)).count()
    }

    /// After the close: waits (up to `timeout`) for the server to let the connections go, then
    /// samples it. Back means its descriptor count is within [`SLACK`] of the count before the
    /// flood, and so is its thread count or that has not changed for [`QUIET`] (a server may
    /// keep spare threads). Returns the sample and how long the server took (`None`: not
    /// measured, or not back in time).
    fn wait_for_release(
        server: Option<&Proc>,
        before: Option<&Sample>,
        timeout: Duration,
    ) -> (Option<Sample>, Option<f64>) {
        /// A server may keep a few descriptors or threads it made for the first connection (an
        /// epoll instance, a spare thread...).
        const SLACK: u64 = 8;
        const QUIET: Duration = Duration::from_millis(500);
        let (Some(server), Some(before)) = (server, before) else {
            return (None, None);
        };
        let start = Instant::now();
        let mut last: Option<(Sample, Instant)> = None;
        loop {
            let sample = match server.sample() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: server sample after close: {e}");
                    return (None, None);
                }
            };
            let now = Instant::now();
            let changed = match last {
                Some((prev, at)) if prev.fds == sample.fds && prev.threads == sample.threads => at,
                _ => now,
            };
            last = Some((sample, changed));
            if sample.fds <= before.fds + SLACK {
                if sample.threads <= before.threads + SLACK {
                    return (Some(sample), Some((now - start).as_secs_f64()));
                }
                if now - changed >= QUIET {
                    return (Some(sample), Some((changed - start).as_secs_f64()));
                }
            }
            if now - start >= timeout {
                eprintln!(
                    "warning: {timeout:?} after the close the server still has {} descriptors \
                     and {} threads ({} and {} before the flood)",
                    sample.fds, sample.threads, before.fds, before.threads
                );
                return (Some(sample), None);
            }
            // No event to wait on for another process's descriptors and threads: look again
            // shortly (the deadline above bounds the loop).
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    struct Report<'a> {
        target: &'a str,
        pid: Option<u32>,
        count: usize,
        inflight: usize,
        established: usize,
        secs: f64,
        before: Option<Sample>,
        open: Option<Sample>,
        closed: Option<Sample>,
        release: Option<f64>,
        unary: Vec<u32>,
        still_open: usize,
        errors: Vec<String>,
    }

    impl Report<'_> {
        fn conns_per_s(&self) -> f64 {
            if self.established > 0 && self.secs > 0.0 {
                self.established as f64 / self.secs
            } else {
                f64::NAN
            }
        }

        /// Server-side growth per established connection: (before, open) → (open − before) / n.
        fn per_conn(&self, f: impl Fn(&Sample) -> u64) -> Option<f64> {
            let (b, o) = (self.before.as_ref()?, self.open.as_ref()?);
            (self.established > 0).then(|| (f(o) as f64 - f(b) as f64) / self.established as f64)
        }

        fn print(&self) {
            let mut sorted = self.unary.clone();
            sorted.sort_unstable();
            let (p50, max) = (quantile(&sorted, 0.5), sorted.last().copied());
            let server = match self.pid {
                Some(pid) => format!(" (pid {pid})"),
                None => String::new(),
            };
            println!(
                "conn_flood → {}{server}: {} connections, {} handshakes at once",
                self.target, self.count, self.inflight
            );
            if self.established > 0 {
                println!(
                    "  established  {}/{} in {:.3} s = {:.0} conn/s",
                    self.established,
                    self.count,
                    self.secs,
                    self.conns_per_s()
                );
            } else {
                println!("  established  none of {}", self.count);
            }
            if self.before.is_some() {
                let cell = |s: &Option<Sample>, f: SampleField| match s {
                    Some(s) => f(s).to_string(),
                    None => "-".into(),
                };
                println!(
                    "  server       {:>12} {:>12} {:>12}",
                    "before", "all open", "after close"
                );
                let rows: [(&str, SampleField); 3] = [
                    ("RSS KiB", |s| s.rss_kib),
                    ("threads", |s| s.threads),
                    ("fds", |s| s.fds),
                ];
                for (name, f) in rows {
                    println!(
                        "  {name:<12} {:>12} {:>12} {:>12}",
                        cell(&self.before, f),
                        cell(&self.open, f),
                        cell(&self.closed, f)
                    );
                }
                let fmt = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}"));
                println!(
                    "  per conn     {} KiB RSS, {} threads, {} fds",
                    fmt(self.per_conn(|s| s.rss_kib)),
                    fmt(self.per_conn(|s| s.threads)),
                    fmt(self.per_conn(|s| s.fds))
                );
                match self.release {
                    Some(secs) => println!("  released     {secs:.3} s after the close"),
                    None => println!("  released     not within the timeout"),
                }
            } else {
                println!("  (no --pid: the server's RSS, threads and fds were not read)");
            }
            if sorted.is_empty() {
                println!("  unary        no call succeeded");
            } else {
                println!(
                    "  unary        {} calls while all were open: p50 {p50} µs, max {} µs ({:?})",
                    self.unary.len(),
                    max.unwrap_or(0),
                    self.unary
                );
            }
            println!(
                "  still open   {}/{} just before the close",
                self.still_open, self.established
            );
            for e in &self.errors {
                println!("  error        {e}");
            }
            let int = |x: Option<u64>| x.map_or(Json::Float(f64::NAN), Json::Int);
            let float = |x: Option<f64>| Json::Float(x.unwrap_or(f64::NAN));
            let unary_us = self
                .unary
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{}",
                json_line(&[
                    ("count", Json::Int(self.count as u64)),
                    ("established", Json::Int(self.established as u64)),
                    ("secs", Json::Float(self.secs)),
                    ("conns_per_s", Json::Float(self.conns_per_s())),
                    ("rss_before_kib", int(self.before.map(|s| s.rss_kib))),
                    ("rss_open_kib", int(self.open.map(|s| s.rss_kib))),
                    ("rss_closed_kib", int(self.closed.map(|s| s.rss_kib))),
                    ("kib_per_conn", float(self.per_conn(|s| s.rss_kib))),
                    ("threads_before", int(self.before.map(|s| s.threads))),
                    ("threads_open", int(self.open.map(|s| s.threads))),
                    ("threads_closed", int(self.closed.map(|s| s.threads))),
                    ("fds_before", int(self.before.map(|s| s.fds))),
                    ("fds_open", int(self.open.map(|s| s.fds))),
                    ("fds_closed", int(self.closed.map(|s| s.fds))),
                    ("still_open", Json::Int(self.still_open as u64)),
                    (
                        "unary_p50_us",
                        int((!sorted.is_empty()).then_some(p50.into()))
                    ),
                    ("unary_max_us", int(max.map(u64::from))),
                    ("unary_us", Json::Str(unary_us)),
                    ("release_secs", float(self.release)),
                    ("error", Json::Str(self.errors.join("; "))),
                ])
            );
        }
    }
}
