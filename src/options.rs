//! grpcio's channel arguments, by name: [`ServerBuilder::options`] and
//! [`ChannelBuilder::options`].
//!
//! Python code configures grpcio with `options=[(name, value), ...]` on both `grpc.server` and
//! `grpc.insecure_channel`; the same pairs work here:
//!
//! ```
//! use grpc_sync::{Channel, Server};
//! let options = [
//!     ("grpc.max_send_message_length", 100 << 20),
//!     ("grpc.max_receive_message_length", 100 << 20),
//! ];
//! let server = Server::builder().options(options)?.max_workers(4).build();
//! let channel = Channel::builder("localhost:50051")
//!     .options(options)?
//!     .option("grpc.primary_user_agent", "my-app/1.0")?
//!     .build()?;
//! # drop((server, channel));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Values are integers or strings ([`OptionValue`]), with the types grpcio gives them; a
//! list that mixes both is written with [`OptionValue`] (or `.into()`) on each value, or as
//! several [`option`](ServerBuilder::option) calls.
//!
//! [`KNOWN_OPTIONS`] lists every name accepted, with its type and what it does on each side:
//! the builder method it stands for, or nothing (accepted and ignored, with the reason).
//! grpcio also
//! ignores, without a word, the arguments that mean nothing on one side (a user agent on a
//! server); so do we.
//!
//! # Errors are returned by `options`, not `build`
//!
//! An unknown name (the error names the known ones closest to it), a value of the wrong type
//! (a string for `grpc.max_send_message_length`) or out of range (a negative size, a frame
//! size outside 16 384..=16 777 215) is an [`OptionsError`]. It is returned by `options` and
//! `option` themselves, rather than by `build`: [`ServerBuilder::build`] returns the server
//! itself and changing it would break every caller, and an error at the call that passed the
//! bad pair points at the mistake. Everything else about the builders is unchanged, and an
//! option and the builder method it stands for can be mixed: the later call wins.
//!
//! [`ServerBuilder::options`]: crate::ServerBuilder::options
//! [`ServerBuilder::option`]: crate::ServerBuilder::option
//! [`ServerBuilder::build`]: crate::ServerBuilder::build
//! [`ChannelBuilder::options`]: crate::ChannelBuilder::options

use std::fmt;
use std::time::Duration;

use crate::client::ChannelBuilder;
use crate::compression::CompressionEncoding;
use crate::h2::frame::{DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE};
use crate::server::ServerBuilder;

/// The value of one option: grpcio's channel arguments are integers or strings.
///
/// Built with `From` from the integer types, `bool` (0 or 1, as Python's `True`), `&str` and
/// `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// An integer (grpcio's `GRPC_ARG_INTEGER`, which is a C `int`).
    Int(i64),
    /// A string (`GRPC_ARG_STRING`).
    Str(String),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Int(n) => write!(f, "{n}"),
            OptionValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for OptionValue {
            fn from(n: $t) -> OptionValue {
                OptionValue::Int(n as i64)
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, u8, u16, u32);

impl From<usize> for OptionValue {
    /// Saturates at `i64::MAX` (every size is limited far below it anyway).
    fn from(n: usize) -> OptionValue {
        OptionValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<u64> for OptionValue {
    /// Saturates at `i64::MAX`.
    fn from(n: u64) -> OptionValue {
        OptionValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<bool> for OptionValue {
    fn from(b: bool) -> OptionValue {
        OptionValue::Int(i64::from(b))
    }
}

impl From<&str> for OptionValue {
    fn from(s: &str) -> OptionValue {
        OptionValue::Str(s.to_string())
    }
}

impl From<String> for OptionValue {
    fn from(s: String) -> OptionValue {
        OptionValue::Str(s)
    }
}

impl From<&String> for OptionValue {
    fn from(s: &String) -> OptionValue {
        OptionValue::Str(s.clone())
    }
}

/// The type grpcio gives an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An integer.
    Int,
    /// An integer read as a flag: 0 is false, anything else true (as grpcio reads it).
    Bool,
    /// A string.
    Str,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Int => "an integer",
            ValueKind::Bool => "an integer (0 or 1)",
            ValueKind::Str => "a string",
        })
    }
}

/// What an option does on one side (server or channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Sets what this builder method sets.
    Sets(&'static str),
    /// Accepted (its type is still checked) and ignored, for the reason given.
    Ignored(&'static str),
}

/// One grpcio option name this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownOption {
    /// grpcio's name, e.g. `grpc.max_send_message_length`.
    pub name: &'static str,
    /// The type of its value.
    pub kind: ValueKind,
    /// What it does given to [`ServerBuilder::options`](crate::ServerBuilder::options).
    pub server: Effect,
    /// What it does given to [`ChannelBuilder::options`](crate::ChannelBuilder::options).
    pub channel: Effect,
}

const fn opt(name: &'static str, kind: ValueKind, server: Effect, channel: Effect) -> KnownOption {
    KnownOption {
        name,
        kind,
        server,
        channel,
    }
}

use Effect::{Ignored, Sets};
use ValueKind::{Bool, Int, Str};

const CLIENT_ONLY: Effect = Ignored("a client setting (grpcio ignores it on servers too)");
const SERVER_ONLY: Effect = Ignored("a server setting (grpcio ignores it on channels too)");
const NO_SRV: Effect =
    Ignored("names are looked up with the system resolver (getaddrinfo): no SRV or c-ares");
const SERVICE_CONFIG_LOCAL: Effect =
    Ignored("the service config comes only from the channel (the resolver gives addresses)");
const NO_SHARED_SUBCHANNELS: Effect = Ignored("subchannels are never shared between channels");
const NO_TELEMETRY: Effect = Ignored("no census, channelz or stats plugins here");
const TCP_TUNING: Effect = Ignored("grpcio's TCP read/write tuning; sockets use kernel defaults");

/// Every option name accepted, in the order of the README's table.
///
/// Any other name is an [`OptionsError::Unknown`].
pub const KNOWN_OPTIONS: &[KnownOption] = &[
    // Message size limits.
    opt(
        "grpc.max_send_message_length",
        Int,
        Sets("ServerBuilder::max_send_message_length"),
        Sets("ChannelBuilder::max_send_message_length"),
    ),
    opt(
        "grpc.max_receive_message_length",
        Int,
        Sets("ServerBuilder::max_receive_message_length"),
        Sets("ChannelBuilder::max_receive_message_length"),
    ),
    opt(
        "grpc.max_message_length",
        Int,
        Sets("ServerBuilder::max_receive_message_length (deprecated alias)"),
        Sets("ChannelBuilder::max_receive_message_length (deprecated alias)"),
    ),
    // HTTP/2.
    opt(
        "grpc.max_concurrent_streams",
        Int,
        Sets("ServerBuilder::max_concurrent_streams"),
        Ignored("limits streams the peer opens, and servers open none"),
    ),
    opt(
        "grpc.http2.max_frame_size",
        Int,
        Sets("http2_config: Config::max_frame_size"),
        Sets("http2_config: Config::max_frame_size"),
    ),
    opt(
        "grpc.max_metadata_size",
        Int,
        Sets("http2_config: Config::max_header_list_size (unless grpc.absolute_max_metadata_size is given)"),
        Sets("http2_config: Config::max_header_list_size (unless grpc.absolute_max_metadata_size is given)"),
    ),
    opt(
        "grpc.absolute_max_metadata_size",
        Int,
        Sets("http2_config: Config::max_header_list_size"),
        Sets("http2_config: Config::max_header_list_size"),
    ),
    opt(
        "grpc.http2.hpack_table_size.decoder",
        Int,
        Sets("http2_config: Config::header_table_size"),
        Sets("http2_config: Config::header_table_size"),
    ),
    opt(
        "grpc.http2.lookahead_bytes",
        Int,
        Sets("initial_window_size (BDP probing off)"),
        Sets("initial_window_size (BDP probing off)"),
    ),
    opt(
        "grpc.http2.hpack_table_size.encoder",
        Int,
        Ignored("our encoder follows the table size the peer advertises"),
        Ignored("our encoder follows the table size the peer advertises"),
    ),
    opt(
        "grpc.http2.bdp_probe",
        Bool,
        Sets("bdp_probe"),
        Sets("bdp_probe"),
    ),
    opt(
        "grpc.http2.min_time_between_pings_ms",
        Int,
        Ignored("deprecated: it has no effect in grpcio either"),
        Ignored("deprecated: it has no effect in grpcio either"),
    ),
    opt(
        "grpc.http2.write_buffer_size",
        Int,
        Ignored("output is bounded by ServerBuilder::output_budget instead"),
        Ignored("requests are written by the calling thread; nothing is buffered ahead"),
    ),
    opt(
        "grpc.http2.true_binary",
        Bool,
        Ignored("binary metadata is always sent base64-encoded"),
        Ignored("binary metadata is always sent base64-encoded"),
    ),
    opt(
        "grpc.http2.initial_sequence_number",
        Int,
        SERVER_ONLY,
        Ignored("client streams always start at 1"),
    ),
    opt(
        "grpc.http2_scheme",
        Str,
        Ignored("only clients send :scheme"),
        Ignored(":scheme follows the transport (http, or https with TLS)"),
    ),
    // Keepalive and connection management.
    opt(
        "grpc.keepalive_time_ms",
        Int,
        Sets("keepalive_time"),
        Sets("keepalive_time"),
    ),
    opt(
        "grpc.keepalive_timeout_ms",
        Int,
        Sets("keepalive_timeout"),
        Sets("keepalive_timeout"),
    ),
    opt(
        "grpc.keepalive_permit_without_calls",
        Bool,
        Sets("keepalive_permit_without_calls"),
        Sets("keepalive_permit_without_calls"),
    ),
    opt(
        "grpc.http2.max_pings_without_data",
        Int,
        Ignored("it limits a client's pings; a server pings on its keepalive time"),
        Sets("max_pings_without_data"),
    ),
    opt(
        "grpc.http2.min_ping_interval_without_data_ms",
        Int,
        Sets("min_recv_ping_interval_without_data"),
        Ignored("ping enforcement is a server setting"),
    ),
    opt(
        "grpc.http2.max_ping_strikes",
        Int,
        Sets("max_ping_strikes"),
        Ignored("ping enforcement is a server setting"),
    ),
    opt(
        "grpc.max_connection_idle_ms",
        Int,
        Sets("max_connection_idle"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.max_connection_age_ms",
        Int,
        Sets("max_connection_age"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.max_connection_age_grace_ms",
        Int,
        Sets("max_connection_age_grace"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.client_idle_timeout_ms",
        Int,
        CLIENT_ONLY,
        Sets("client_idle_timeout"),
    ),
    // Channel identity and routing.
    opt(
        "grpc.primary_user_agent",
        Str,
        CLIENT_ONLY,
        Sets("ChannelBuilder::user_agent"),
    ),
    opt(
        "grpc.secondary_user_agent",
        Str,
        CLIENT_ONLY,
        Ignored("no suffix after grpc-sync/VERSION is supported; use grpc.primary_user_agent"),
    ),
    opt(
        "grpc.default_authority",
        Str,
        CLIENT_ONLY,
        Sets("ChannelBuilder::authority"),
    ),
    opt(
        "grpc.ssl_target_name_override",
        Str,
        CLIENT_ONLY,
        Sets("ChannelCredentials::with_server_name_override (TLS channels; ignored without TLS, as in grpcio)"),
    ),
    opt(
        "grpc.surface_user_agent",
        Bool,
        Ignored("handlers always see user-agent in their metadata, as grpcio's default"),
        CLIENT_ONLY,
    ),
    // Reconnection.
    opt(
        "grpc.initial_reconnect_backoff_ms",
        Int,
        CLIENT_ONLY,
        Sets("ChannelBuilder::backoff: BackoffConfig::initial"),
    ),
    opt(
        "grpc.max_reconnect_backoff_ms",
        Int,
        CLIENT_ONLY,
        Sets("ChannelBuilder::backoff: BackoffConfig::max"),
    ),
    opt(
        "grpc.min_reconnect_backoff_ms",
        Int,
        CLIENT_ONLY,
        Sets("ChannelBuilder::backoff: BackoffConfig::min_connect_timeout"),
    ),
    // Compression.
    opt(
        "grpc.default_compression_algorithm",
        Int,
        Sets("ServerBuilder::compression (0 none, 1 deflate, 2 gzip)"),
        Sets("ChannelBuilder::compression (0 none, 1 deflate, 2 gzip)"),
    ),
    opt(
        "grpc.default_compression_level",
        Int,
        Ignored("compression levels are not implemented: the algorithm's default level is used"),
        Ignored("compression levels are not implemented: the algorithm's default level is used"),
    ),
    opt(
        "grpc.compression_enabled_algorithms_bitset",
        Int,
        Ignored("gzip, deflate and identity are always accepted"),
        Ignored("gzip, deflate and identity are always accepted"),
    ),
    opt(
        "grpc.per_message_compression",
        Bool,
        Ignored("per-message compression is always available"),
        Ignored("per-message compression is always available"),
    ),
    opt(
        "grpc.per_message_decompression",
        Bool,
        Ignored("compressed messages are always decompressed"),
        Ignored("compressed messages are always decompressed"),
    ),
    // Server sockets and handshakes.
    opt(
        "grpc.server_handshake_timeout_ms",
        Int,
        Sets("ServerBuilder::handshake_timeout"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.so_reuseport",
        Bool,
        Ignored("SO_REUSEPORT is never set: every value behaves as grpcio's 0"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.expand_wildcard_addrs",
        Bool,
        Ignored("wildcard addresses are bound as given"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.max_allowed_incoming_connections",
        Int,
        Ignored("no connection limit is implemented; see ServerBuilder::max_concurrent_rpcs"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.server_max_unrequested_time_in_server",
        Int,
        Ignored("grpcio's completion-queue API only"),
        SERVER_ONLY,
    ),
    opt(
        "grpc.tcp_receive_buffer_size",
        Int,
        TCP_TUNING,
        TCP_TUNING,
    ),
    opt(
        "grpc.experimental.tcp_read_chunk_size",
        Int,
        TCP_TUNING,
        TCP_TUNING,
    ),
    opt(
        "grpc.experimental.tcp_min_read_chunk_size",
        Int,
        TCP_TUNING,
        TCP_TUNING,
    ),
    opt(
        "grpc.experimental.tcp_max_read_chunk_size",
        Int,
        TCP_TUNING,
        TCP_TUNING,
    ),
    opt(
        "grpc.experimental.tcp_tx_zerocopy_enabled",
        Bool,
        TCP_TUNING,
        TCP_TUNING,
    ),
    opt(
        "grpc.dscp",
        Int,
        Ignored("DSCP marking is not implemented"),
        Ignored("DSCP marking is not implemented"),
    ),
    opt(
        "grpc.optimization_target",
        Str,
        Ignored("one code path serves latency and throughput"),
        Ignored("one code path serves latency and throughput"),
    ),
    opt(
        "grpc.minimal_stack",
        Bool,
        Ignored("there are no optional filters"),
        Ignored("there are no optional filters"),
    ),
    // Telemetry.
    opt("grpc.census", Bool, NO_TELEMETRY, NO_TELEMETRY),
    opt("grpc.loadreporting", Bool, NO_TELEMETRY, NO_TELEMETRY),
    opt("grpc.enable_channelz", Bool, NO_TELEMETRY, NO_TELEMETRY),
    opt(
        "grpc.max_channel_trace_event_memory_per_node",
        Int,
        NO_TELEMETRY,
        NO_TELEMETRY,
    ),
    opt(
        "grpc.server_call_metric_recording",
        Bool,
        NO_TELEMETRY,
        NO_TELEMETRY,
    ),
    // Retries (the service config's retryPolicy).
    opt(
        "grpc.enable_retries",
        Bool,
        CLIENT_ONLY,
        Sets("ChannelBuilder::enable_retries"),
    ),
    opt(
        "grpc.per_rpc_retry_buffer_size",
        Int,
        CLIENT_ONLY,
        Sets("ChannelBuilder::per_rpc_retry_buffer_size"),
    ),
    opt(
        "grpc.service_config",
        Str,
        CLIENT_ONLY,
        Sets("ChannelBuilder::service_config"),
    ),
    opt(
        "grpc.service_config_disable_resolution",
        Bool,
        CLIENT_ONLY,
        SERVICE_CONFIG_LOCAL,
    ),
    opt(
        "grpc.lb_policy_name",
        Str,
        CLIENT_ONLY,
        Sets("ChannelBuilder::lb_policy"),
    ),
    opt(
        "grpc.dns_min_time_between_resolutions_ms",
        Int,
        CLIENT_ONLY,
        Sets("ChannelBuilder::min_time_between_resolutions"),
    ),
    opt("grpc.dns_enable_srv_queries", Bool, CLIENT_ONLY, NO_SRV),
    opt("grpc.dns_ares_query_timeout", Int, CLIENT_ONLY, NO_SRV),
    opt(
        "grpc.use_local_subchannel_pool",
        Bool,
        CLIENT_ONLY,
        NO_SHARED_SUBCHANNELS,
    ),
    opt(
        "grpc.inhibit_health_checking",
        Bool,
        CLIENT_ONLY,
        Sets("ChannelBuilder::inhibit_health_checking"),
    ),
    opt(
        "grpc.enable_http_proxy",
        Bool,
        CLIENT_ONLY,
        Sets("ChannelBuilder::enable_http_proxy"),
    ),
    opt(
        "grpc.http_proxy",
        Str,
        CLIENT_ONLY,
        Sets("ChannelBuilder::http_proxy"),
    ),
    opt(
        "grpc.happy_eyeballs_connection_attempt_delay_ms",
        Int,
        CLIENT_ONLY,
        Ignored("a target's addresses are tried one after another"),
    ),
];

/// Looks up `name` in [`KNOWN_OPTIONS`].
pub fn known(name: &str) -> Option<&'static KnownOption> {
    KNOWN_OPTIONS.iter().find(|o| o.name == name)
}

/// A bad option: returned by `options` / `option` on either builder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// No grpcio option has this name (that this crate knows of).
    Unknown {
        /// The name given.
        name: String,
        /// Known names close to it (by edit distance), closest first; may be empty.
        close: Vec<&'static str>,
    },
    /// The value has the wrong type (a string for an integer option, or the reverse).
    WrongType {
        /// The option.
        name: &'static str,
        /// The type it takes.
        expected: ValueKind,
        /// The value given.
        got: OptionValue,
    },
    /// The value has the right type but no meaning for this option.
    OutOfRange {
        /// The option.
        name: &'static str,
        /// The value given.
        value: i64,
        /// The values accepted, in words.
        allowed: &'static str,
    },
    /// A command-line `NAME=VALUE` with no `=` (from [`parse_flag`]).
    Malformed(String),
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::Unknown { name, close } => {
                write!(f, "unknown option {name:?}")?;
                match close.as_slice() {
                    [] => write!(
                        f,
                        " (grpc_sync::options::KNOWN_OPTIONS lists the {} names accepted)",
                        KNOWN_OPTIONS.len()
                    ),
                    [one] => write!(f, "; did you mean {one}?"),
                    many => write!(f, "; did you mean one of {}?", many.join(", ")),
                }
            }
            OptionsError::WrongType {
                name,
                expected,
                got,
            } => write!(f, "option {name} takes {expected}, not {got}"),
            OptionsError::OutOfRange {
                name,
                value,
                allowed,
            } => write!(f, "option {name} = {value} is out of range: {allowed}"),
            OptionsError::Malformed(text) => {
                write!(f, "option {text:?} is not of the form NAME=VALUE")
            }
        }
    }
}

impl std::error::Error for OptionsError {}

/// Parses a command-line `NAME=VALUE` (the examples' `--option`), typing the value as the
/// option `NAME` takes: `grpc.max_send_message_length=104857600` gives an integer,
/// `grpc.primary_user_agent=123` a string. A flag option also accepts `true` and `false`.
///
/// # Errors
/// [`OptionsError::Malformed`] without `=`, [`OptionsError::Unknown`] for an unknown name,
/// [`OptionsError::WrongType`] for an integer option whose value is not an integer.
pub fn parse_flag(text: &str) -> Result<(String, OptionValue), OptionsError> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(OptionsError::Malformed(text.to_string()));
    };
    let (name, value) = (name.trim(), value.trim());
    let option = known(name).ok_or_else(|| unknown(name))?;
    let parsed = match option.kind {
        ValueKind::Str => OptionValue::Str(value.to_string()),
        ValueKind::Bool if value.eq_ignore_ascii_case("true") => OptionValue::Int(1),
        ValueKind::Bool if value.eq_ignore_ascii_case("false") => OptionValue::Int(0),
        ValueKind::Int | ValueKind::Bool => match value.replace('_', "").parse::<i64>() {
            Ok(n) => OptionValue::Int(n),
            Err(_) => {
                return Err(OptionsError::WrongType {
                    name: option.name,
                    expected: option.kind,
                    got: OptionValue::Str(value.to_string()),
                })
            }
        },
    };
    Ok((name.to_string(), parsed))
}

fn unknown(name: &str) -> OptionsError {
    OptionsError::Unknown {
        name: name.to_string(),
        close: close_names(name),
    }
}

/// Known names within a few edits of `name` (also trying `name` with a `grpc.` prefix), closest
/// first, at most three.
fn close_names(name: &str) -> Vec<&'static str> {
    let prefixed = format!("grpc.{name}");
    let budget = (name.len() / 5).max(3);
    let mut scored: Vec<(usize, &'static str)> = KNOWN_OPTIONS
        .iter()
        .filter_map(|o| {
            let mut d = edit_distance(name, o.name);
            if !name.starts_with("grpc.") {
                d = d.min(edit_distance(&prefixed, o.name));
            }
            (d <= budget).then_some((d, o.name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A connection timer given in milliseconds, where grpcio reads `INT_MAX` as "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Off (grpcio's `INT_MAX`, 2 147 483 647 ms, or more).
    Never,
    /// After this long.
    After(Duration),
}

impl Timer {
    /// The duration, `None` for never.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Timer::Never => None,
            Timer::After(d) => Some(d),
        }
    }
}

/// A validated option, as the builders apply it.
#[derive(Debug, Clone, PartialEq)]
enum Setting {
    MaxSend(usize),
    MaxRecv(usize),
    MaxConcurrentStreams(u32),
    MaxFrameSize(u32),
    MaxMetadataSize {
        absolute: bool,
        bytes: u32,
    },
    HpackDecoderTable(u32),
    StreamWindow(u32),
    UserAgent(String),
    Authority(String),
    SslTargetNameOverride(String),
    InitialBackoff(Duration),
    MaxBackoff(Duration),
    MinConnectTimeout(Duration),
    Compression(CompressionEncoding),
    HandshakeTimeout(Duration),
    KeepaliveTime(Timer),
    KeepaliveTimeout(Duration),
    PermitWithoutCalls(bool),
    MaxPingsWithoutData(u32),
    MinRecvPingInterval(Duration),
    MaxPingStrikes(u32),
    MaxConnectionIdle(Timer),
    MaxConnectionAge(Timer),
    MaxConnectionAgeGrace(Timer),
    ClientIdleTimeout(Timer),
    BdpProbe(bool),
    HttpProxy(String),
    EnableHttpProxy(bool),
    ServiceConfig(String),
    LbPolicy(String),
    MinResolutionInterval(Duration),
    InhibitHealthChecking(bool),
    EnableRetries(bool),
    RetryBuffer(usize),
    /// Accepted, type-checked, no effect.
    Ignored,
}

/// Which builder an option is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Channel,
}

const NON_NEGATIVE: &str = "0 or more";
const SIZE: &str = "0 or more, or -1 for unlimited";

/// Checks `value` against `name`'s type and range and says what it sets on `side`.
fn validate(name: &str, value: OptionValue, side: Side) -> Result<Setting, OptionsError> {
    let option = known(name).ok_or_else(|| unknown(name))?;
    let name = option.name;
    let effect = match side {
        Side::Server => option.server,
        Side::Channel => option.channel,
    };
    let wrong = |got: OptionValue| OptionsError::WrongType {
        name,
        expected: option.kind,
        got,
    };
    let range = |value: i64, allowed: &'static str| OptionsError::OutOfRange {
        name,
        value,
        allowed,
    };
    // Type first: an ignored option with a value of the wrong type is still a mistake.
    let (int, text) = match (option.kind, value) {
        (ValueKind::Str, OptionValue::Str(s)) => (0, s),
        (ValueKind::Int | ValueKind::Bool, OptionValue::Int(n)) => (n, String::new()),
        (_, got) => return Err(wrong(got)),
    };
    if let Effect::Ignored(_) = effect {
        return Ok(Setting::Ignored);
    }
    let size = || match int {
        -1 => Ok(usize::MAX),
        n => usize::try_from(n).map_err(|_| range(n, SIZE)),
    };
    let u32_in = |lo: u32, hi: u32, allowed: &'static str| match u32::try_from(int) {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(range(int, allowed)),
    };
    let millis = || match u64::try_from(int) {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => Err(range(int, "0 or more milliseconds")),
    };
    let timer = || {
        millis().map(|d| {
            if int >= i64::from(i32::MAX) {
                Timer::Never
            } else {
                Timer::After(d)
            }
        })
    };
    let setting = match name {
        "grpc.max_send_message_length" => Setting::MaxSend(size()?),
        "grpc.max_receive_message_length" | "grpc.max_message_length" => Setting::MaxRecv(size()?),
        "grpc.max_concurrent_streams" => {
            Setting::MaxConcurrentStreams(u32_in(0, u32::MAX, NON_NEGATIVE)?)
        }
        "grpc.http2.max_frame_size" => Setting::MaxFrameSize(u32_in(
            DEFAULT_MAX_FRAME_SIZE,
            MAX_MAX_FRAME_SIZE,
            "16384..=16777215 (RFC 9113 §6.5.2)",
        )?),
        "grpc.max_metadata_size" | "grpc.absolute_max_metadata_size" => Setting::MaxMetadataSize {
            absolute: name == "grpc.absolute_max_metadata_size",
            bytes: u32_in(0, u32::MAX, NON_NEGATIVE)?,
        },
        "grpc.http2.hpack_table_size.decoder" => {
            Setting::HpackDecoderTable(u32_in(0, u32::MAX, NON_NEGATIVE)?)
        }
        "grpc.http2.lookahead_bytes" => {
            Setting::StreamWindow(u32_in(0, MAX_WINDOW_SIZE, "0..=2147483647")?)
        }
        "grpc.primary_user_agent" => Setting::UserAgent(text),
        "grpc.default_authority" => Setting::Authority(text),
        "grpc.ssl_target_name_override" => Setting::SslTargetNameOverride(text),
        "grpc.initial_reconnect_backoff_ms" => Setting::InitialBackoff(millis()?),
        "grpc.max_reconnect_backoff_ms" => Setting::MaxBackoff(millis()?),
        "grpc.min_reconnect_backoff_ms" => Setting::MinConnectTimeout(millis()?),
        "grpc.default_compression_algorithm" => Setting::Compression(match int {
            0 => CompressionEncoding::Identity,
            1 => CompressionEncoding::Deflate,
            2 => CompressionEncoding::Gzip,
            n => return Err(range(n, "0 (none), 1 (deflate) or 2 (gzip)")),
        }),
        "grpc.server_handshake_timeout_ms" => Setting::HandshakeTimeout(millis()?),
        "grpc.keepalive_time_ms" => Setting::KeepaliveTime(timer()?),
        "grpc.keepalive_timeout_ms" => Setting::KeepaliveTimeout(millis()?),
        "grpc.keepalive_permit_without_calls" => Setting::PermitWithoutCalls(int != 0),
        "grpc.http2.max_pings_without_data" => {
            Setting::MaxPingsWithoutData(u32_in(0, u32::MAX, NON_NEGATIVE)?)
        }
        "grpc.http2.min_ping_interval_without_data_ms" => Setting::MinRecvPingInterval(millis()?),
        "grpc.http2.max_ping_strikes" => {
            Setting::MaxPingStrikes(u32_in(0, u32::MAX, NON_NEGATIVE)?)
        }
        "grpc.max_connection_idle_ms" => Setting::MaxConnectionIdle(timer()?),
        "grpc.max_connection_age_ms" => Setting::MaxConnectionAge(timer()?),
        "grpc.max_connection_age_grace_ms" => Setting::MaxConnectionAgeGrace(timer()?),
        "grpc.http2.bdp_probe" => Setting::BdpProbe(int != 0),
        "grpc.http_proxy" => Setting::HttpProxy(text),
        "grpc.enable_http_proxy" => Setting::EnableHttpProxy(int != 0),
        "grpc.service_config" => Setting::ServiceConfig(text),
        "grpc.lb_policy_name" => Setting::LbPolicy(text),
        "grpc.dns_min_time_between_resolutions_ms" => Setting::MinResolutionInterval(millis()?),
        "grpc.inhibit_health_checking" => Setting::InhibitHealthChecking(int != 0),
        "grpc.enable_retries" => Setting::EnableRetries(int != 0),
        "grpc.per_rpc_retry_buffer_size" => {
            Setting::RetryBuffer(usize::try_from(int).map_err(|_| range(int, NON_NEGATIVE))?)
        }
        "grpc.client_idle_timeout_ms" => Setting::ClientIdleTimeout(match timer()? {
            // grpcio's minimum.
            Timer::After(d) => Timer::After(d.max(Duration::from_secs(1))),
            Timer::Never => Timer::Never,
        }),
        // A table entry whose effect is not Ignored but has no arm here: a bug, caught by the
        // unit tests (every name is applied there); treat it as ignored rather than panic.
        _ => Setting::Ignored,
    };
    Ok(setting)
}

/// Applies a metadata-size option to `h2`: the absolute (hard) limit wins over the soft one
/// whatever their order, since our limit is a hard one.
fn apply_metadata_size(
    h2: &mut crate::h2::settings::Config,
    absolute_given: &mut bool,
    absolute: bool,
    bytes: u32,
) {
    if absolute {
        *absolute_given = true;
        h2.max_header_list_size = bytes;
    } else if !*absolute_given {
        h2.max_header_list_size = bytes;
    }
}

impl ServerBuilder {
    /// Applies grpcio channel arguments, as `grpc.server(..., options=[...])` takes them:
    /// `(name, value)` pairs such as `("grpc.max_receive_message_length", 100 << 20)`.
    ///
    /// [`KNOWN_OPTIONS`] lists the names and what each does; names that mean nothing on a
    /// server (a user agent) are accepted and ignored, as grpcio does.
    ///
    /// ```
    /// let server = grpc_sync::Server::builder()
    ///     .options([("grpc.max_send_message_length", 100 << 20), ("grpc.so_reuseport", 0)])?
    ///     .build();
    /// # drop(server);
    /// # Ok::<(), grpc_sync::options::OptionsError>(())
    /// ```
    ///
    /// # Errors
    /// [`OptionsError`] for an unknown name (naming the known ones close to it), a value of
    /// the wrong type, or out of range; the builder is dropped (see the
    /// [module docs](crate::options) for why the error comes here rather than from `build`).
    pub fn options<N, V>(
        mut self,
        options: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, OptionsError>
    where
        N: AsRef<str>,
        V: Into<OptionValue>,
    {
        for (name, value) in options {
            self = self.option(name.as_ref(), value)?;
        }
        Ok(self)
    }

    /// Applies one grpcio channel argument; see [`options`](ServerBuilder::options).
    ///
    /// # Errors
    /// As [`options`](ServerBuilder::options).
    pub fn option(self, name: &str, value: impl Into<OptionValue>) -> Result<Self, OptionsError> {
        let setting = validate(name, value.into(), Side::Server)?;
        let mut b = self;
        b = match setting {
            Setting::KeepaliveTime(t) => {
                b.config.h2.keepalive.time = t.duration();
                b
            }
            Setting::KeepaliveTimeout(d) => b.keepalive_timeout(d),
            Setting::PermitWithoutCalls(on) => b.keepalive_permit_without_calls(on),
            Setting::MinRecvPingInterval(d) => b.min_recv_ping_interval_without_data(d),
            Setting::MaxPingStrikes(n) => b.max_ping_strikes(n),
            Setting::MaxConnectionIdle(t) => {
                b.config.h2.keepalive.max_connection_idle = t.duration();
                b
            }
            Setting::MaxConnectionAge(t) => {
                b.config.h2.keepalive.max_connection_age = t.duration();
                b
            }
            Setting::MaxConnectionAgeGrace(t) => {
                b.config.h2.keepalive.max_connection_age_grace = t.duration();
                b
            }
            Setting::BdpProbe(on) => b.bdp_probe(on),
            Setting::MaxSend(n) => b.max_send_message_length(n),
            Setting::MaxRecv(n) => b.max_receive_message_length(n),
            Setting::MaxConcurrentStreams(n) => b.max_concurrent_streams(n),
            Setting::Compression(e) => b.compression(e),
            Setting::HandshakeTimeout(d) => b.handshake_timeout(d),
            Setting::MaxFrameSize(n) => {
                b.config.h2.max_frame_size = n;
                b
            }
            Setting::MaxMetadataSize { absolute, bytes } => {
                let config = &mut b.config;
                apply_metadata_size(
                    &mut config.h2,
                    &mut config.absolute_metadata_size_given,
                    absolute,
                    bytes,
                );
                b
            }
            Setting::HpackDecoderTable(n) => {
                b.config.h2.header_table_size = n;
                b
            }
            Setting::StreamWindow(n) => b.initial_window_size(n),
            // Client settings: the table says they are ignored on servers.
            _ => b,
        };
        Ok(b)
    }
}

impl ChannelBuilder {
    /// Applies grpcio channel arguments, as `grpc.insecure_channel(target, options=[...])`
    /// takes them: `(name, value)` pairs such as `("grpc.primary_user_agent", "app/1.0")`.
    ///
    /// [`KNOWN_OPTIONS`] lists the names and what each does; names that mean nothing on a
    /// channel (`grpc.max_connection_age_ms`) are accepted and ignored, as grpcio does.
    /// `grpc.ssl_target_name_override` applies to the credentials given with
    /// [`tls`](ChannelBuilder::tls), before or after this call.
    ///
    /// ```
    /// let channel = grpc_sync::Channel::builder("localhost:50051")
    ///     .options([("grpc.max_receive_message_length", 100 << 20)])?
    ///     .options([("grpc.default_authority", "example.com")])?
    ///     .build()?;
    /// # drop(channel);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`OptionsError`] for an unknown name (naming the known ones close to it), a value of
    /// the wrong type, or out of range.
    pub fn options<N, V>(
        mut self,
        options: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, OptionsError>
    where
        N: AsRef<str>,
        V: Into<OptionValue>,
    {
        for (name, value) in options {
            self = self.option(name.as_ref(), value)?;
        }
        Ok(self)
    }

    /// Applies one grpcio channel argument; see [`options`](ChannelBuilder::options).
    ///
    /// # Errors
    /// As [`options`](ChannelBuilder::options).
    pub fn option(self, name: &str, value: impl Into<OptionValue>) -> Result<Self, OptionsError> {
        let setting = validate(name, value.into(), Side::Channel)?;
        let mut b = self;
        b = match setting {
            Setting::KeepaliveTime(t) => {
                b.h2.keepalive.time = t.duration();
                b
            }
            Setting::KeepaliveTimeout(d) => b.keepalive_timeout(d),
            Setting::PermitWithoutCalls(on) => b.keepalive_permit_without_calls(on),
            Setting::MaxPingsWithoutData(n) => b.max_pings_without_data(n),
            Setting::ClientIdleTimeout(t) => b.idle_timeout(t.duration()),
            Setting::BdpProbe(on) => b.bdp_probe(on),
            Setting::MaxSend(n) => b.max_send_message_length(n),
            Setting::MaxRecv(n) => b.max_receive_message_length(n),
            Setting::Compression(e) => b.compression(e),
            Setting::UserAgent(ua) => b.user_agent(&ua),
            Setting::HttpProxy(url) => b.http_proxy(&url),
            Setting::EnableHttpProxy(on) => b.enable_http_proxy(on),
            Setting::ServiceConfig(json) => b.service_config(&json),
            Setting::LbPolicy(name) => b.lb_policy(&name),
            Setting::MinResolutionInterval(d) => b.min_time_between_resolutions(d),
            Setting::InhibitHealthChecking(on) => b.inhibit_health_checking(on),
            Setting::EnableRetries(on) => b.enable_retries(on),
            Setting::RetryBuffer(n) => b.per_rpc_retry_buffer_size(n),
            Setting::Authority(a) => b.authority(&a),
            Setting::SslTargetNameOverride(name) => {
                b.ssl_target_name_override = Some(name);
                b
            }
            Setting::InitialBackoff(d) => {
                b.backoff.initial = d;
                b
            }
            Setting::MaxBackoff(d) => {
                b.backoff.max = d;
                b
            }
            Setting::MinConnectTimeout(d) => {
                b.backoff.min_connect_timeout = d;
                b
            }
            Setting::MaxFrameSize(n) => {
                b.h2.max_frame_size = n;
                b
            }
            Setting::MaxMetadataSize { absolute, bytes } => {
                apply_metadata_size(
                    &mut b.h2,
                    &mut b.absolute_metadata_size_given,
                    absolute,
                    bytes,
                );
                b
            }
            Setting::HpackDecoderTable(n) => {
                b.h2.header_table_size = n;
                b
            }
            Setting::StreamWindow(n) => b.initial_window_size(n),
            // Server settings: the table says they are ignored on channels.
            _ => b,
        };
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, Server};

    /// A value of the right type for `option` that differs from every default.
    fn sample(option: &KnownOption) -> OptionValue {
        match (option.kind, option.name) {
            (ValueKind::Str, _) => OptionValue::from("sample.example"),
            (_, "grpc.default_compression_algorithm") => OptionValue::Int(2),
            // On by default: off is the change.
            (_, "grpc.http2.bdp_probe" | "grpc.enable_http_proxy" | "grpc.enable_retries") => {
                OptionValue::Int(0)
            }
            (ValueKind::Bool, _) => OptionValue::Int(1),
            (ValueKind::Int, _) => OptionValue::Int(32_768),
        }
    }

    fn server_state(b: &ServerBuilder) -> String {
        format!("{:?}", b.config)
    }

    fn channel_state(b: &ChannelBuilder) -> String {
        format!("{b:?}")
    }

    #[test]
    fn every_name_is_parsed_and_applied_or_ignored_as_the_table_says() {
        for option in KNOWN_OPTIONS {
            let value = sample(option);
            let before = Server::builder();
            let after = Server::builder()
                .option(option.name, value.clone())
                .unwrap_or_else(|e| panic!("server {}: {e}", option.name));
            let changed = server_state(&before) != server_state(&after);
            match option.server {
                Effect::Sets(_) => assert!(changed, "server {}", option.name),
                Effect::Ignored(_) => assert!(!changed, "server {}", option.name),
            }

            let before = Channel::builder("localhost:1");
            let after = Channel::builder("localhost:1")
                .option(option.name, value.clone())
                .unwrap_or_else(|e| panic!("channel {}: {e}", option.name));
            let changed = channel_state(&before) != channel_state(&after);
            match option.channel {
                Effect::Sets(_) => assert!(changed, "channel {}", option.name),
                Effect::Ignored(_) => assert!(!changed, "channel {}", option.name),
            }

            // The other type is refused, ignored options included.
            let wrong = match value {
                OptionValue::Int(_) => OptionValue::from("1"),
                OptionValue::Str(_) => OptionValue::Int(1),
            };
            let err = Server::builder()
                .option(option.name, wrong.clone())
                .unwrap_err();
            assert!(
                matches!(&err, OptionsError::WrongType { name, .. } if *name == option.name),
                "{err}"
            );
            assert!(Channel::builder("x:1").option(option.name, wrong).is_err());
        }
    }

    #[test]
    fn names_are_unique_and_all_grpc_names() {
        for (i, o) in KNOWN_OPTIONS.iter().enumerate() {
            assert!(o.name.starts_with("grpc."), "{}", o.name);
            assert!(
                KNOWN_OPTIONS[..i].iter().all(|p| p.name != o.name),
                "{} twice",
                o.name
            );
        }
    }

    #[test]
    fn message_sizes_and_http2_settings_land_in_the_config() {
        let b = Server::builder()
            .options([
                ("grpc.max_send_message_length", 100 << 20),
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_concurrent_streams", 7),
                ("grpc.http2.max_frame_size", 1 << 20),
                ("grpc.http2.hpack_table_size.decoder", 0),
                ("grpc.http2.lookahead_bytes", 65_535),
                ("grpc.server_handshake_timeout_ms", 1500),
                ("grpc.default_compression_algorithm", 1),
            ])
            .unwrap();
        assert_eq!(b.config.max_send_message_length, 100 << 20);
        assert_eq!(b.config.max_receive_message_length, usize::MAX);
        assert_eq!(b.config.h2.max_concurrent_streams, 7);
        assert_eq!(b.config.h2.max_frame_size, 1 << 20);
        assert_eq!(b.config.h2.header_table_size, 0);
        assert_eq!(b.config.h2.initial_window_size, 65_535);
        assert_eq!(b.config.handshake_timeout, Duration::from_millis(1500));
        assert_eq!(b.config.compression, Some(CompressionEncoding::Deflate));
        // 0 is "no compression": the server default stays uncompressed.
        let b = Server::builder()
            .option("grpc.default_compression_algorithm", 0)
            .unwrap();
        assert_eq!(b.config.compression, None);

        let c = Channel::builder("localhost:1")
            .options([
                ("grpc.max_send_message_length", 5usize << 20),
                ("grpc.max_message_length", 6 << 20),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 300),
            ])
            .unwrap()
            .option("grpc.primary_user_agent", "app/1.0")
            .unwrap()
            .option("grpc.default_authority", "example.com")
            .unwrap()
            .option("grpc.default_compression_algorithm", 2)
            .unwrap();
        assert_eq!(c.max_send, 5 << 20);
        assert_eq!(c.max_recv, 6 << 20);
        assert_eq!(c.backoff.initial, Duration::from_millis(100));
        assert_eq!(c.backoff.min_connect_timeout, Duration::from_millis(200));
        assert_eq!(c.backoff.max, Duration::from_millis(300));
        assert!(
            c.user_agent.starts_with("app/1.0 grpc-sync/"),
            "{}",
            c.user_agent
        );
        assert_eq!(c.authority.as_deref(), Some("example.com"));
        assert_eq!(c.compression, Some(CompressionEncoding::Gzip));
    }

    #[test]
    fn the_absolute_metadata_limit_wins_in_either_order() {
        let b = Server::builder()
            .options([
                ("grpc.absolute_max_metadata_size", 20_000),
                ("grpc.max_metadata_size", 10_000),
            ])
            .unwrap();
        assert_eq!(b.config.h2.max_header_list_size, 20_000);
        let c = Channel::builder("x:1")
            .options([
                ("grpc.max_metadata_size", 10_000),
                ("grpc.absolute_max_metadata_size", 30_000),
            ])
            .unwrap();
        assert_eq!(c.h2.max_header_list_size, 30_000);
        let c = Channel::builder("x:1")
            .option("grpc.max_metadata_size", 10_000)
            .unwrap();
        assert_eq!(c.h2.max_header_list_size, 10_000);
    }

    #[test]
    fn connection_options_are_applied_with_grpcio_meanings() {
        let b = Server::builder()
            .options([
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_timeout_ms", 1_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 300_000),
                ("grpc.http2.max_ping_strikes", 3),
                ("grpc.max_connection_idle_ms", i32::MAX),
                ("grpc.max_connection_age_ms", 1_000),
                ("grpc.max_connection_age_grace_ms", 2_000),
                ("grpc.http2.bdp_probe", 0),
                // Client-only: ignored on a server.
                ("grpc.client_idle_timeout_ms", 5_000),
            ])
            .unwrap();
        let ms = Duration::from_millis;
        let k = &b.config.h2.keepalive;
        assert_eq!(k.time, Some(ms(10_000)));
        assert_eq!(k.timeout, ms(1_000));
        assert!(k.permit_without_calls);
        assert_eq!(k.min_recv_ping_interval_without_data, ms(300_000));
        assert_eq!(k.max_ping_strikes, 3);
        assert_eq!(k.max_connection_idle, None, "INT_MAX is never");
        assert_eq!(k.max_connection_age, Some(ms(1_000)));
        assert_eq!(k.max_connection_age_grace, Some(ms(2_000)));
        assert!(!b.config.h2.bdp_probe);
        let c = Channel::builder("x:1")
            .options([
                ("grpc.keepalive_time_ms", 100),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.client_idle_timeout_ms", 10),
                ("grpc.max_connection_age_ms", 1_000),
                ("grpc.http2.lookahead_bytes", 65_535),
            ])
            .unwrap();
        let k = &c.h2.keepalive;
        assert_eq!(k.time, Some(ms(100)));
        assert_eq!(k.max_pings_without_data, 0);
        // grpcio's minimum idle timeout is 1 s.
        assert_eq!(k.max_connection_idle, Some(ms(1_000)));
        assert_eq!(k.max_connection_age, None, "a server setting");
        assert_eq!(c.h2.initial_window_size, 65_535);
        assert!(!c.h2.bdp_probe, "fixed windows turn probing off");
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let err = Server::builder()
            .option("grpc.max_send_mesage_length", 1)
            .unwrap_err();
        assert_eq!(
            err,
            OptionsError::Unknown {
                name: "grpc.max_send_mesage_length".into(),
                close: vec!["grpc.max_send_message_length"],
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown option \"grpc.max_send_mesage_length\"; did you mean \
             grpc.max_send_message_length?"
        );
        // Without the prefix.
        let err = Channel::builder("x:1")
            .option("max_receive_message_length", 1)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean grpc.max_receive_message_length"),
            "{err}"
        );
        // Nothing close: the message points at the list.
        let err = Server::builder().option("frobnicate", 1).unwrap_err();
        assert!(err.to_string().contains("KNOWN_OPTIONS"), "{err}");
        // Several close ones, closest first.
        let close = close_names("grpc.keepalive_time");
        assert_eq!(close.first(), Some(&"grpc.keepalive_time_ms"));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_option() {
        let cases: [(&str, OptionValue, &str); 7] = [
            (
                "grpc.max_send_message_length",
                "100".into(),
                "option grpc.max_send_message_length takes an integer, not \"100\"",
            ),
            (
                "grpc.primary_user_agent",
                5.into(),
                "option grpc.primary_user_agent takes a string, not 5",
            ),
            (
                "grpc.max_receive_message_length",
                (-2).into(),
                "option grpc.max_receive_message_length = -2 is out of range: \
                 0 or more, or -1 for unlimited",
            ),
            (
                "grpc.http2.max_frame_size",
                100.into(),
                "option grpc.http2.max_frame_size = 100 is out of range: \
                 16384..=16777215 (RFC 9113 §6.5.2)",
            ),
            (
                "grpc.default_compression_algorithm",
                3.into(),
                "option grpc.default_compression_algorithm = 3 is out of range: \
                 0 (none), 1 (deflate) or 2 (gzip)",
            ),
            (
                "grpc.keepalive_time_ms",
                (-1).into(),
                "option grpc.keepalive_time_ms = -1 is out of range: 0 or more milliseconds",
            ),
            (
                "grpc.max_concurrent_streams",
                (1i64 << 40).into(),
                "option grpc.max_concurrent_streams = 1099511627776 is out of range: 0 or more",
            ),
        ];
        for (name, value, message) in cases {
            let err = Server::builder().option(name, value).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn ssl_target_name_override_reaches_the_credentials_at_build() {
        let c = Channel::builder("x:1")
            .option("grpc.ssl_target_name_override", "foo.test.google.fr")
            .unwrap();
        assert_eq!(
            c.ssl_target_name_override.as_deref(),
            Some("foo.test.google.fr")
        );
        // Without TLS it is ignored, as in grpcio: the channel builds.
        assert!(c.build().is_ok());
    }

    #[test]
    fn flags_are_typed_by_the_option() {
        assert_eq!(
            parse_flag("grpc.max_send_message_length=104_857_600").unwrap(),
            (
                "grpc.max_send_message_length".to_string(),
                OptionValue::Int(100 << 20)
            )
        );
        assert_eq!(
            parse_flag("grpc.primary_user_agent=123").unwrap().1,
            OptionValue::Str("123".into())
        );
        assert_eq!(
            parse_flag("grpc.so_reuseport=false").unwrap().1,
            OptionValue::Int(0)
        );
        assert!(matches!(
            parse_flag("grpc.max_send_message_length=lots"),
            Err(OptionsError::WrongType { .. })
        ));
        assert!(matches!(
            parse_flag("grpc.nope=1"),
            Err(OptionsError::Unknown { .. })
        ));
        assert_eq!(
            parse_flag("grpc.so_reuseport").unwrap_err().to_string(),
            "option \"grpc.so_reuseport\" is not of the form NAME=VALUE"
        );
    }

    #[test]
    fn value_conversions() {
        assert_eq!(OptionValue::from(7u32), OptionValue::Int(7));
        assert_eq!(OptionValue::from(usize::MAX), OptionValue::Int(i64::MAX));
        assert_eq!(OptionValue::from(true), OptionValue::Int(1));
        assert_eq!(OptionValue::from(String::from("a")), OptionValue::from("a"));
    }

    #[test]
    fn the_readme_table_lists_every_name() {
        let readme = include_str!("../README.md");
        for o in KNOWN_OPTIONS {
            assert!(
                readme.contains(&format!("`{}`", o.name)),
                "README lacks {}",
                o.name
            );
        }
    }
}
