//! Runtime-agnostic helpers of the benchmark binaries: flag parsing, CPU time, percentiles and
//! the one-line JSON reports of the bench CLI contract (issue 7).
//!
//! This file uses only `std`, so the tonic side of the comparison (`compare/`) includes the very
//! same code with `#[path]`: both clients measure and report identically.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

/// Flags of the form `--name value` or `--name=value`, plus positional words. `--option` may
/// repeat: its values are kept in order ([`Flags::options`]).
#[derive(Debug, Default)]
pub struct Flags {
    /// Words that are not flags (e.g. the subcommand), in order.
    pub positional: Vec<String>,
    values: HashMap<String, String>,
    options: Vec<String>,
}

impl Flags {
    /// Parses the process's arguments (without the program name).
    pub fn from_env() -> Flags {
        match Flags::parse(std::env::args().skip(1)) {
            Ok(flags) => flags,
            Err(msg) => die(&msg),
        }
    }

    /// Parses `args`: `--flag value`, `--flag=value`, or a bare `--switch`; anything else is
    /// positional.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let (name, value) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    // A flag followed by another flag (or by nothing) is a switch.
                    None => match args.peek() {
                        Some(v) if !v.starts_with("--") => {
                            (name.to_string(), args.next().unwrap_or_default())
                        }
                        _ => (name.to_string(), "true".to_string()),
                    },
                };
                if name == "option" {
                    flags.options.push(value);
                } else {
                    flags.values.insert(name, value);
                }
            } else {
                flags.positional.push(arg);
            }
        }
        Ok(flags)
    }

    /// Every `--option NAME=VALUE` given, unparsed (the grpc-sync binaries parse them with
    /// `common::parse_option`; this file stays free of grpc-sync for the tonic side).
    pub fn options(&self) -> &[String] {
        &self.options
    }

    /// The raw value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `--name` parsed as `T`, or `default`; exits with a message on a bad value.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(&format!("bad value {v:?} for --{name}"))),
        }
    }

    /// `--name` as a duration in (fractional) seconds.
    pub fn secs(&self, name: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.num(name, default))
    }

    /// Rejects flags outside `known`.
    pub fn only(&self, known: &[&str]) {
        if !self.options.is_empty() && !known.contains(&"option") {
            die(&format!(
                "unknown flag --option (known: {})",
                known.join(", ")
            ));
        }
        for name in self.values.keys() {
            if !known.contains(&name.as_str()) {
                die(&format!(
                    "unknown flag --{name} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
}

/// Prints `msg` on stderr and exits with status 2.
pub fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// CPU time (user + system) of process `pid` ("self" for this one), from `/proc/<pid>/stat`.
///
/// The kernel reports clock ticks, which are 1/100 s on every Linux configuration we run on
/// (`USER_HZ`); the resolution is 10 ms, fine for windows of seconds.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// This process's CPU time; zero if `/proc` is unavailable.
pub fn self_cpu() -> Duration {
    cpu_time("self").unwrap_or_default()
}

/// The `q`-quantile (0..=1) of sorted samples, by nearest rank; 0 when empty.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A JSON value of the reports: numbers and strings are all they need.
pub enum Json {
    /// An integer.
    Int(u64),
    /// A float, printed with 3 decimals.
    Float(f64),
    /// A string, escaped.
    Str(String),
}

/// One JSON object on one line, fields in the given order.
pub fn json_line(fields: &[(&str, Json)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(key));
        out.push(':');
        match value {
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Float(x) if x.is_finite() => out.push_str(&format!("{x:.3}")),
            Json::Float(_) => out.push_str("null"),
            Json::Str(s) => out.push_str(&json_string(s)),
        }
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the unary load loop of one caller measured.
#[derive(Debug, Default)]
pub struct CallerStats {
    /// Latencies (µs) of calls that completed inside the measured window.
    pub latencies_us: Vec<u32>,
    /// Calls completed, warm-up included.
    pub total: u64,
    /// Failed calls, warm-up included.
    pub errors: u64,
}

/// The report of `unary`: merges the callers' samples and prints the contract's JSON line.
pub fn unary_report(callers: Vec<CallerStats>, window: Duration, cpu: Duration) -> (String, u64) {
    let mut all: Vec<u32> = Vec::new();
    let (mut total, mut errors) = (0, 0);
    for c in callers {
        all.extend_from_slice(&c.latencies_us);
        total += c.total;
        errors += c.errors;
    }
    all.sort_unstable();
    let secs = window.as_secs_f64();
    let rpcs = all.len() as u64;
    let line = json_line(&[
        ("rpcs", Json::Int(rpcs)),
        ("secs", Json::Float(secs)),
        ("rps", Json::Float(rpcs as f64 / secs)),
        ("p50_us", Json::Int(quantile(&all, 0.50).into())),
        ("p99_us", Json::Int(quantile(&all, 0.99).into())),
        ("total_rpcs", Json::Int(total)),
        ("cpu_s", Json::Float(cpu.as_secs_f64())),
        ("errors", Json::Int(errors)),
    ]);
    (line, errors)
}

/// The report of `stream`.
pub fn stream_report(msgs: u64, bytes: u64, elapsed: Duration, cpu: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    json_line(&[
        ("msgs", Json::Int(msgs)),
        ("bytes", Json::Int(bytes)),
        ("secs", Json::Float(secs)),
        ("msgs_per_s", Json::Float(msgs as f64 / secs)),
        (
            "mib_per_s",
            Json::Float(bytes as f64 / secs / (1024.0 * 1024.0)),
        ),
        ("cpu_s", Json::Float(cpu.as_secs_f64())),
    ])
}

/// The usage text shared by both bench clients.
pub const CLIENT_USAGE: &str = "usage:\n  \
    bench_client unary --addr 127.0.0.1:P [--concurrency N] [--duration S] [--warmup W]\n  \
    bench_client stream --addr A [--count N] [--size B] [--duration S] [--window W]\n  \
    bench_client check --addr A";
