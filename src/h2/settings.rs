//! Connection configuration and the two sides' SETTINGS ([RFC 9113 §6.5]).
//!
//! [`Config`] is what the application chooses: the limits we advertise to the peer and the
//! defences we enforce. [`LocalSettings`] tracks what we have advertised and which of it the
//! peer has acknowledged (a setting binds the peer only once it has sent the ACK).
//! [`RemoteSettings`] holds the values the peer has sent us, which bind what we send.
//!
//! [RFC 9113 §6.5]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5

use std::collections::VecDeque;

use super::frame::{
    Settings, DEFAULT_HEADER_TABLE_SIZE, DEFAULT_INITIAL_WINDOW_SIZE, DEFAULT_MAX_FRAME_SIZE,
    MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
};

/// Tunables of one HTTP/2 connection: the settings we advertise and the limits we enforce.
///
/// Every limit has a default; build one with struct update syntax:
///
/// ```
/// use grpc_sync::h2::settings::Config;
/// let config = Config { max_concurrent_streams: 10, ..Config::default() };
/// assert_eq!(config.initial_window_size, 1 << 20);
/// ```
///
/// Out-of-range values are clamped by [`Config::normalized`] (which
/// [`Connection::new`](super::conn::Connection::new) applies) rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK dynamic table the peer's encoder may
    /// use when sending to us. Default 4096.
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce: streams the peer may have
    /// open at once. Streams beyond it are refused with RST_STREAM(REFUSED_STREAM).
    /// Default 100 (grpcio advertises no limit; a bound keeps one client from tying up the
    /// server).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: how much DATA the peer may send on each
    /// stream before we grant more. Default 1 MiB (larger than the RFC's 64 KiB so that bulk
    /// transfers are not limited to one window per round trip).
    pub initial_window_size: u32,
    /// The connection-level receive window. The RFC starts it at 65 535; if this is larger,
    /// a WINDOW_UPDATE on stream 0 right after our SETTINGS grows it. Default 4 MiB.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise: the largest frame payload we accept. A larger
    /// frame is a FRAME_SIZE_ERROR. Default 16 384, range 2^14..=2^24 − 1.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce: the largest decoded header list
    /// (names + values + 32 octets per field) we accept; a larger one is a stream error.
    /// Default 16 KiB.
    pub max_header_list_size: u32,
    /// The largest compressed header block (HEADERS plus its CONTINUATION frames) we buffer.
    /// Beyond it the connection is closed with ENHANCE_YOUR_CALM: a block must be decoded in
    /// full to keep HPACK in sync, so it cannot be skipped. `None` derives it as twice
    /// [`max_header_list_size`](Config::max_header_list_size) (a legitimate encoding is never
    /// longer than the list it encodes). See [`Config::header_block_limit`].
    pub max_header_block_size: Option<u32>,
    /// How many control frames we may queue in reaction to the peer (SETTINGS ACKs, PING ACKs,
    /// RST_STREAMs answering stream errors) before the application drains
    /// [`output`](super::conn::Connection::output). Beyond it the peer is flooding us: GOAWAY
    /// ENHANCE_YOUR_CALM. Default 1000.
    pub max_pending_control_frames: usize,
    /// Sustained rate of stream resets per second we tolerate, with a burst of the same size:
    /// RST_STREAMs the peer sends on streams it opened, plus stream errors the peer provokes.
    /// Beyond it (the "rapid reset" attack, CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM.
    /// Default 200.
    pub max_resets_per_second: u32,
    /// How many empty frames in a row we tolerate: DATA with no payload and no END_STREAM,
    /// HEADERS or CONTINUATION with an empty fragment and no END_HEADERS. They cost work and
    /// carry nothing (CVE-2019-9518). Any frame with content resets the count. Beyond it:
    /// GOAWAY ENHANCE_YOUR_CALM. Default 100.
    pub max_empty_frames: u32,
    /// How many recently closed streams we remember, to tell "frame on a stream we reset
    /// ourselves" (ignored) from "frame on a stream that ended" (STREAM_CLOSED). Older closed
    /// streams are forgotten; frames on them are treated as on any closed stream.
    /// Default 1024.
    pub closed_stream_memory: usize,
    /// How long the peer may take to acknowledge our SETTINGS, counted from the first input
    /// the connection sees (RFC 9113 §6.5.3). Past it: GOAWAY SETTINGS_TIMEOUT. `None`: no
    /// limit. Default 10 s. Only drivers that serve [`Connection::poll_timeout`] enforce it.
    ///
    /// [`Connection::poll_timeout`]: super::conn::Connection::poll_timeout
    pub settings_timeout: Option<std::time::Duration>,
    /// Keepalive, ping enforcement and connection age/idleness (see
    /// [`keepalive`](super::keepalive)). Default: all off but ping enforcement (a server
    /// builder turns on its 2 h keepalive itself).
    pub keepalive: super::keepalive::KeepaliveConfig,
    /// Grow the receive windows with the measured bandwidth-delay product, from
    /// [`initial_window_size`](Config::initial_window_size) up to 16 MiB (grpcio's
    /// `grpc.http2.bdp_probe`; default on; see [`bdp`](super::bdp)). Setting windows by hand
    /// through the builders turns it off.
    pub bdp_probe: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            header_table_size: DEFAULT_HEADER_TABLE_SIZE,
            max_concurrent_streams: 100,
            initial_window_size: 1 << 20,
            connection_window_size: 4 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 << 10,
            max_header_block_size: None,
            max_pending_control_frames: 1000,
            max_resets_per_second: 200,
            max_empty_frames: 100,
            closed_stream_memory: 1024,
            settings_timeout: Some(std::time::Duration::from_secs(10)),
            keepalive: super::keepalive::KeepaliveConfig::default(),
            bdp_probe: true,
        }
    }
}

impl Config {
    /// Returns the limit on a buffered compressed header block, in octets.
    ///
    /// This is [`max_header_block_size`](Config::max_header_block_size) if set, else twice
    /// [`max_header_list_size`](Config::max_header_list_size), and never less than 1024.
    pub fn header_block_limit(&self) -> usize {
        let limit = self
            .max_header_block_size
            .unwrap_or_else(|| self.max_header_list_size.saturating_mul(2));
        (limit as usize).max(1024)
    }

    /// Returns a copy with every value clamped into the range the RFC allows.
    ///
    /// Window sizes are clamped to 2^31 − 1 (and the connection window to at least 65 535),
    /// the frame size to 2^14..=2^24 − 1, and the flood limits to at least 1.
    pub fn normalized(&self) -> Config {
        Config {
            initial_window_size: self.initial_window_size.min(MAX_WINDOW_SIZE),
            connection_window_size: self
                .connection_window_size
                .clamp(DEFAULT_INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE),
            max_frame_size: self
                .max_frame_size
                .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
            max_pending_control_frames: self.max_pending_control_frames.max(1),
            max_resets_per_second: self.max_resets_per_second.max(1),
            max_empty_frames: self.max_empty_frames.max(1),
            ..self.clone()
        }
    }

    /// Returns the SETTINGS frame that advertises this configuration.
    ///
    /// Values equal to the RFC's initial ones are still sent when they matter for clarity
    /// (MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE); a client also
    /// sends ENABLE_PUSH = 0 (we never accept server push).
    pub fn to_settings(&self, is_client: bool) -> Settings {
        Settings {
            ack: false,
            header_table_size: (self.header_table_size != DEFAULT_HEADER_TABLE_SIZE)
                .then_some(self.header_table_size),
            enable_push: is_client.then_some(false),
            max_concurrent_streams: Some(self.max_concurrent_streams),
            initial_window_size: Some(self.initial_window_size),
            max_frame_size: (self.max_frame_size != DEFAULT_MAX_FRAME_SIZE)
                .then_some(self.max_frame_size),
            max_header_list_size: Some(self.max_header_list_size),
        }
    }
}

/// The settings the peer has sent us ([RFC 9113 §6.5.2]); they bind what we send.
///
/// Before the peer's first SETTINGS frame every field holds the RFC's initial value.
///
/// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteSettings {
    /// HPACK dynamic table size the peer's decoder allows our encoder. Initially 4096.
    pub header_table_size: u32,
    /// Whether the peer accepts server push (only meaningful from a client). Initially true.
    pub enable_push: bool,
    /// How many streams we may have open towards the peer. Initially unlimited (`u32::MAX`).
    pub max_concurrent_streams: u32,
    /// Initial send window of every stream. Initially 65 535.
    pub initial_window_size: u32,
    /// Largest frame payload we may send. Initially 16 384.
    pub max_frame_size: u32,
    /// Largest header list the peer accepts (advisory). Initially unlimited (`u32::MAX`).
    pub max_header_list_size: u32,
}

impl Default for RemoteSettings {
    fn default() -> RemoteSettings {
        RemoteSettings {
            header_table_size: DEFAULT_HEADER_TABLE_SIZE,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: DEFAULT_INITIAL_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
        }
    }
}

impl RemoteSettings {
    /// Applies the settings present in `frame`, returning the previous values.
    pub fn apply(&mut self, frame: &Settings) -> RemoteSettings {
        let old = *self;
        if let Some(v) = frame.header_table_size {
            self.header_table_size = v;
        }
        if let Some(v) = frame.enable_push {
            self.enable_push = v;
        }
        if let Some(v) = frame.max_concurrent_streams {
            self.max_concurrent_streams = v;
        }
        if let Some(v) = frame.initial_window_size {
            self.initial_window_size = v;
        }
        if let Some(v) = frame.max_frame_size {
            self.max_frame_size = v;
        }
        if let Some(v) = frame.max_header_list_size {
            self.max_header_list_size = v;
        }
        old
    }
}

/// The settings we have advertised, and which of them the peer has acknowledged.
///
/// A SETTINGS frame binds the peer only once its ACK arrives ([RFC 9113 §6.5.3]). Until then
/// the peer may act on either the old or the new value, so for every limit we enforce the
/// more lenient of the two: a raised limit takes effect when we send it, a lowered one when it
/// is acknowledged. [`LocalSettings::enforced`] gives that view.
///
/// [RFC 9113 §6.5.3]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.3
#[derive(Debug, Clone)]
pub struct LocalSettings {
    acked: Values,
    pending: VecDeque<Settings>,
    enforced: Values,
}

/// One full set of the settings values that we enforce on the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values {
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK table the peer's encoder may use.
    pub header_table_size: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may open.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: the initial receive window of each stream.
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest payload we accept.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded header list we accept.
    pub max_header_list_size: u32,
}

impl Values {
    /// The RFC's initial values, in force before any SETTINGS frame.
    pub const INITIAL: Values = Values {
        header_table_size: DEFAULT_HEADER_TABLE_SIZE,
        max_concurrent_streams: u32::MAX,
        initial_window_size: DEFAULT_INITIAL_WINDOW_SIZE,
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: u32::MAX,
    };

    fn apply(&mut self, s: &Settings) {
        if let Some(v) = s.header_table_size {
            self.header_table_size = v;
        }
        if let Some(v) = s.max_concurrent_streams {
            self.max_concurrent_streams = v;
        }
        if let Some(v) = s.initial_window_size {
            self.initial_window_size = v;
        }
        if let Some(v) = s.max_frame_size {
            self.max_frame_size = v;
        }
        if let Some(v) = s.max_header_list_size {
            self.max_header_list_size = v;
        }
    }

    fn lenient(a: &Values, b: &Values) -> Values {
        Values {
            header_table_size: a.header_table_size.max(b.header_table_size),
            max_concurrent_streams: a.max_concurrent_streams.max(b.max_concurrent_streams),
            initial_window_size: a.initial_window_size.max(b.initial_window_size),
            max_frame_size: a.max_frame_size.max(b.max_frame_size),
            max_header_list_size: a.max_header_list_size.max(b.max_header_list_size),
        }
    }
}

impl Default for LocalSettings {
    fn default() -> LocalSettings {
        LocalSettings::new()
    }
}

impl LocalSettings {
    /// Starts from the RFC's initial values, nothing sent yet.
    pub fn new() -> LocalSettings {
        LocalSettings {
            acked: Values::INITIAL,
            pending: VecDeque::new(),
            enforced: Values::INITIAL,
        }
    }

    /// Records that `frame` was sent and awaits its ACK.
    pub fn sent(&mut self, frame: Settings) {
        self.pending.push_back(frame);
        self.recompute();
    }

    /// Records the peer's ACK of our oldest unacknowledged SETTINGS and returns the values in
    /// force before and after it, or `None` if nothing was pending (an unsolicited ACK).
    pub fn acked(&mut self) -> Option<(Values, Values)> {
        let frame = self.pending.pop_front()?;
        let before = self.enforced;
        self.acked.apply(&frame);
        self.recompute();
        Some((before, self.enforced))
    }

    /// Returns the values the peer has acknowledged.
    pub fn acknowledged(&self) -> &Values {
        &self.acked
    }

    /// Returns the values we enforce now: for each setting the most lenient of the
    /// acknowledged value and every value still awaiting an ACK.
    pub fn enforced(&self) -> &Values {
        &self.enforced
    }

    /// Returns how many SETTINGS frames await the peer's ACK.
    pub fn pending_acks(&self) -> usize {
        self.pending.len()
    }

    fn recompute(&mut self) {
        let mut enforced = self.acked;
        let mut cur = self.acked;
        for frame in &self.pending {
            cur.apply(frame);
            enforced = Values::lenient(&enforced, &cur);
        }
        self.enforced = enforced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = Config::default();
        assert_eq!(c.header_table_size, 4096);
        assert_eq!(c.max_concurrent_streams, 100);
        assert_eq!(c.initial_window_size, 1 << 20);
        assert_eq!(c.connection_window_size, 4 << 20);
        assert_eq!(c.max_frame_size, 16_384);
        assert_eq!(c.max_header_list_size, 16_384);
        assert_eq!(c.header_block_limit(), 32_768);
    }

    #[test]
    fn normalized_clamps_out_of_range_values() {
        let c = Config {
            initial_window_size: u32::MAX,
            connection_window_size: 10,
            max_frame_size: 1,
            max_resets_per_second: 0,
            ..Config::default()
        }
        .normalized();
        assert_eq!(c.initial_window_size, MAX_WINDOW_SIZE);
        assert_eq!(c.connection_window_size, 65_535);
        assert_eq!(c.max_frame_size, 16_384);
        assert_eq!(c.max_resets_per_second, 1);
    }

    #[test]
    fn client_settings_disable_push() {
        let s = Config::default().to_settings(true);
        assert_eq!(s.enable_push, Some(false));
        assert_eq!(s.initial_window_size, Some(1 << 20));
        assert_eq!(Config::default().to_settings(false).enable_push, None);
    }

    #[test]
    fn raised_limit_applies_at_once_lowered_limit_on_ack() {
        let mut local = LocalSettings::new();
        local.sent(Settings {
            initial_window_size: Some(1 << 20),
            header_table_size: Some(1024),
            ..Settings::default()
        });
        assert_eq!(local.enforced().initial_window_size, 1 << 20);
        assert_eq!(local.enforced().header_table_size, 4096);
        assert_eq!(local.pending_acks(), 1);
        let (before, after) = local.acked().unwrap();
        assert_eq!(before.header_table_size, 4096);
        assert_eq!(after.header_table_size, 1024);
        assert_eq!(after.initial_window_size, 1 << 20);
        assert!(local.acked().is_none());
    }

    #[test]
    fn remote_settings_apply_returns_old_values() {
        let mut r = RemoteSettings::default();
        let old = r.apply(&Settings {
            max_concurrent_streams: Some(5),
            ..Settings::default()
        });
        assert_eq!(old.max_concurrent_streams, u32::MAX);
        assert_eq!(r.max_concurrent_streams, 5);
        assert_eq!(r.initial_window_size, 65_535);
    }
}
