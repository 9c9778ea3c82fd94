//! Code shared by the example binaries and by `demo`.
//!
//! Every service lives in its own module here, holding both its server implementation and its
//! client routine, so that a standalone `*_server`/`*_client` pair and the all-in-one `demo`
//! run exactly the same code. The binaries stay thin: parse flags, build a server or a
//! channel, call into this module.
//!
//! Each binary compiles this module with `mod common;` and uses only part of it, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

pub mod access_log;
pub mod auth;
pub mod bench;
pub mod cal;
pub mod calculator;
pub mod checks;
pub mod compute;
pub mod contact;
pub mod format_data;
pub mod helloworld;
pub mod interop;
pub mod route_guide;
pub mod streams;
pub mod web_page;

/// Generated code (prost messages plus `<service>_server` / `<service>_client` modules), one
/// file per proto, produced by `grpc-sync-build` from `proto/` and checked in under
/// `examples/generated/`.
///
/// Generated code is not held to our clippy settings.
#[allow(clippy::all)]
pub mod pb {
    /// `proto/bench.proto` alone: it shares package `helloworld` with `helloworld.proto`, so
    /// it lives in a module of its own (the wire names are `helloworld.Streamer/...`).
    pub mod bench {
        include!("../generated/bench.rs");
    }
    pub mod calculator {
        include!("../generated/calculator.rs");
    }
    pub mod compute {
        include!("../generated/compute.rs");
    }
    pub mod contact {
        include!("../generated/contact.rs");
    }
    pub mod format_data {
        include!("../generated/format_data.rs");
    }
    pub mod grpc_testing {
        include!("../generated/grpc_testing.rs");
    }
    pub mod helloworld {
        include!("../generated/helloworld.rs");
    }
    pub mod route_guide {
        include!("../generated/route_guide.rs");
    }
    pub mod simple_cal {
        include!("../generated/simple_cal.rs");
    }
    pub mod streams {
        include!("../generated/streams.rs");
    }
}

use std::error::Error;

use grpc_sync::options::OptionValue;

/// Server reflection (both versions) over `set`, a generated module's `FILE_DESCRIPTOR_SET`.
///
/// Every example server offers it, so that grpcurl, grpcui or Postman can list and call its
/// methods without the `.proto` files: it costs nothing until asked, and a tutorial server is
/// where people explore.
pub fn reflection(set: &'static [u8]) -> [grpc_sync::Service; 2] {
    grpc_sync::reflection::ReflectionService::builder()
        .register_file_descriptor_set(set)
        .build()
        .expect("generated descriptor sets hold every import")
        .services()
}

use grpc_sync::health::{HealthReporter, ServingStatus};

/// A health reporter (`grpc.health.v1.Health`) that says SERVING for the whole server and
/// for each of `services`: the example servers register its `service()` by default, so
/// `health_probe` (and any gRPC health checker) can ask them.
pub fn serving_health(services: &[&str]) -> HealthReporter {
    let health = HealthReporter::new();
    for name in services {
        health.set(name, ServingStatus::Serving);
    }
    health
}

/// The error type of client routines: any RPC `Status` or local failure.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The port every example uses unless told otherwise, as in the gRPC tutorials.
pub const DEFAULT_PORT: u16 = 50051;

/// Command-line flags shared by all examples: `--port P`, `--addr HOST:PORT`,
/// `--option NAME=VALUE` (repeatable), and the TLS flags of the route guide pair (`--tls`,
/// `--cert`, `--key`, `--client-ca`, `--ca`, `--server-name`).
///
/// Hand-written so the examples need no argument-parsing dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--port P`: the port to listen on (servers) or to connect to (clients).
    pub port: u16,
    /// `--addr A`: a full address, overriding `--port`.
    pub addr: Option<String>,
    /// `--tls`: serve or connect with TLS.
    pub tls: bool,
    /// `--cert F`: PEM certificate chain (server; client for mutual TLS).
    pub cert: Option<String>,
    /// `--key F`: PEM private key for `--cert`.
    pub key: Option<String>,
    /// `--client-ca F` (server): require client certificates signed by this CA.
    pub client_ca: Option<String>,
    /// `--ca F` (client): trust this CA.
    pub ca: Option<String>,
    /// `--server-name N` (client): verify the server as `N` (grpcio's
    /// `grpc.ssl_target_name_override`).
    pub server_name: Option<String>,
    /// `--option NAME=VALUE`, repeatable: grpcio channel arguments for the server or the
    /// channel (see [`parse_option`]).
    pub options: Vec<(String, OptionValue)>,
    /// `--grpc-web` (route_guide_server): serve gRPC-Web too, and the page that uses it.
    pub grpc_web: bool,
    /// `--page-port P` (with `--grpc-web`): where the page is served (default 8080).
    pub page_port: u16,
}

impl Args {
    /// Parses the process's arguments; prints usage and exits on `--help` or a bad flag.
    pub fn parse() -> Args {
        let program = std::env::args().next().unwrap_or_else(|| "example".into());
        match Args::parse_from(std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{}", usage(&program));
                std::process::exit(0);
            }
            Err(msg) => {
                eprintln!("error: {msg}\n{}", usage(&program));
                std::process::exit(2);
            }
        }
    }

    /// Parses flags from `args` (without the program name). `Ok(None)` means `--help`.
    pub fn parse_from(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            port: DEFAULT_PORT,
            addr: None,
            tls: false,
            cert: None,
            key: None,
            client_ca: None,
            ca: None,
            server_name: None,
            options: Vec::new(),
            grpc_web: false,
            page_port: 8080,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            // Accept both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--port" | "-p" => {
                    let v = value()?;
                    parsed.port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
                }
                "--addr" | "-a" => parsed.addr = Some(value()?),
                "--tls" => parsed.tls = true,
                "--cert" => parsed.cert = Some(value()?),
                "--key" => parsed.key = Some(value()?),
                "--client-ca" => parsed.client_ca = Some(value()?),
                "--ca" => parsed.ca = Some(value()?),
                "--server-name" => parsed.server_name = Some(value()?),
                "--option" | "-o" => parsed.options.push(parse_option(&value()?)?),
                "--grpc-web" => parsed.grpc_web = true,
                "--page-port" => {
                    let v = value()?;
                    parsed.page_port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
                }
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(parsed))
    }

    /// The server's TLS credentials from `--cert`, `--key` and `--client-ca`; `None` without
    /// `--tls`.
    ///
    /// # Errors
    /// A missing flag, an unreadable file or unusable PEM, in words.
    pub fn server_credentials(&self) -> Result<Option<grpc_sync::ServerCredentials>, BoxError> {
        if !self.tls {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err("--tls needs --cert F and --key F".into());
        };
        let mut creds = grpc_sync::ServerCredentials::from_pem(&read(cert)?, &read(key)?)?;
        if let Some(ca) = &self.client_ca {
            creds = creds.with_client_ca(&read(ca)?, grpc_sync::ClientAuth::RequireAndVerify)?;
        }
        Ok(Some(creds))
    }

    /// The channel for `--tls` (with `--ca`, optional `--server-name`, `--cert`/`--key`) or
    /// an insecure one.
    ///
    /// # Errors
    /// A missing flag, an unreadable file or unusable PEM, in words.
    pub fn channel(&self) -> Result<grpc_sync::Channel, BoxError> {
        self.channel_with(std::iter::empty::<(&str, OptionValue)>())
    }

    /// As [`channel`](Args::channel), with the example's own grpcio options `first` (the seed's
    /// `options=[...]`) applied before the `--option`s, which win.
    ///
    /// # Errors
    /// As [`channel`](Args::channel), and a bad option.
    pub fn channel_with<N: AsRef<str>, V: Into<OptionValue>>(
        &self,
        first: impl IntoIterator<Item = (N, V)>,
    ) -> Result<grpc_sync::Channel, BoxError> {
        let builder = grpc_sync::Channel::builder(&self.target())
            .options(first)?
            .options(self.options.clone())?;
        if !self.tls {
            return Ok(builder.build()?);
        }
        let Some(ca) = &self.ca else {
            return Err("--tls needs --ca F (the CA that signed the server's certificate)".into());
        };
        let mut creds = grpc_sync::ChannelCredentials::from_ca_pem(&read(ca)?)?;
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                creds = creds.with_client_identity(&read(cert)?, &read(key)?)?;
            }
            (None, None) => {}
            _ => return Err("--cert and --key go together".into()),
        }
        if let Some(name) = &self.server_name {
            creds = creds.with_server_name_override(name);
        }
        Ok(builder.tls(creds).build()?)
    }

    /// The address a server listens on: `--addr`, else `[::]:PORT` as in the tutorials.
    pub fn listen_addr(&self) -> String {
        self.addr
            .clone()
            .unwrap_or_else(|| format!("[::]:{}", self.port))
    }

    /// The target a client connects to: `--addr`, else `localhost:PORT`.
    pub fn target(&self) -> String {
        self.addr
            .clone()
            .unwrap_or_else(|| format!("localhost:{}", self.port))
    }
}

/// The bytes of the file at `path`, or an error that names it.
pub fn read(path: &str) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}").into())
}

/// Parses one `--option NAME=VALUE` of any example binary: a grpcio channel argument such as
/// `grpc.max_receive_message_length=104857600` or `grpc.primary_user_agent=demo/1`, its value
/// typed by the option (`grpc_sync::options::parse_flag`). Every flag parser of the examples
/// (`Args`, the bench binaries' `Flags`, the interop flags) goes through here.
///
/// # Errors
/// The message of the [`OptionsError`]: no `=`, an unknown name (with the close ones), an
/// integer option given a non-integer.
pub fn parse_option(text: &str) -> Result<(String, OptionValue), String> {
    grpc_sync::options::parse_flag(text).map_err(|e| format!("--option: {e}"))
}

/// Parses every `--option` value in `texts` (see [`parse_option`]); exits with status 2 and
/// the message on a bad one, for binaries whose flag parser only collects the strings.
pub fn options_or_exit(texts: &[String]) -> Vec<(String, OptionValue)> {
    texts
        .iter()
        .map(|t| parse_option(t))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        })
}

fn usage(program: &str) -> String {
    format!(
        "usage: {program} [--port P] [--addr HOST:PORT] [--option NAME=VALUE]... [--tls ...]\n  \
         --port P          port to listen on / connect to (default {DEFAULT_PORT})\n  \
         --addr HOST:PORT  full address, overrides --port\n  \
         --option N=V      a grpcio channel argument (repeatable), e.g.\n                    \
         --option grpc.max_receive_message_length=104857600\n  \
         --tls             use TLS (route guide): servers take --cert F --key F [--client-ca F],\n                    \
         clients take --ca F [--server-name N] [--cert F --key F]\n  \
         --grpc-web        (route_guide_server) serve gRPC-Web too, and its page on\n                    \
         http://127.0.0.1:--page-port (default 8080; build it with scripts/web-build.sh)"
    )
}

/// Starts a logger for the library's log lines (`env_logger`): `RUST_LOG=grpc_sync=debug`
/// shows connections opening and closing and peers' protocol errors; without `RUST_LOG`, the
/// warnings and errors (failed TLS handshakes, GOAWAYs with an error code, handler panics).
/// Lines go to stderr. Does nothing if a logger is already set (a test that captures them).
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("warn");
    let _ = env_logger::Builder::from_env(env).try_init();
}

/// Raises this process's soft limit on open files (`RLIMIT_NOFILE`) to its hard limit, as Go's
/// runtime does at start: a server holds one descriptor per connection, and the usual soft limit
/// (often 1024) would refuse connections long before memory or threads run out.
///
/// Silently does nothing where that is not allowed or the hard limit is unlimited (which the
/// kernel would refuse as a soft limit); compiles to nothing off Unix.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum {
            if limit.current.is_some_and(|soft| soft < hard) {
                limit.current = Some(hard);
                // Not allowed (a sandbox, say): keep the limit we have.
                let _ = setrlimit(Resource::Nofile, limit);
            }
        }
    }
}

/// A small deterministic pseudo-random generator (SplitMix64).
///
/// The seeds use Python's `random`; the examples want reproducible runs (so `demo` can check
/// results) and no `rand` dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`, like Python's `random.randint(lo, hi)`.
    pub fn randint(&mut self, lo: i32, hi: i32) -> i32 {
        assert!(lo <= hi, "randint: empty range");
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        // The modulo bias is irrelevant for spans this small next to 2^64.
        (i64::from(lo) + (self.next_u64() % span) as i64) as i32
    }

    /// A float in `[0, 1)`, like Python's `random.random()`.
    pub fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..len`, like `random.randrange(len)`.
    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "index: empty range");
        (self.next_u64() % len as u64) as usize
    }
}

/// The error a streaming call failed with before its first message.
///
/// A runtime may report an early failure either from the call itself or as the stream's first
/// item; this accepts both. `None` if a message came first or the stream ended cleanly.
pub fn first_error<T, I>(result: Result<I, grpc_sync::Status>) -> Option<grpc_sync::Status>
where
    I: Iterator<Item = Result<T, grpc_sync::Status>>,
{
    match result {
        Err(status) => Some(status),
        Ok(mut stream) => match stream.next() {
            Some(Err(status)) => Some(status),
            _ => None,
        },
    }
}

/// Formats a status the way grpcio's `'{}:{}'.format(e.code(), e.details())` prints it,
/// e.g. `StatusCode.INVALID_ARGUMENT:cannot divide by 0`.
pub fn python_status(status: &grpc_sync::Status) -> String {
    format!("StatusCode.{}:{}", status.code().as_str(), status.message())
}
