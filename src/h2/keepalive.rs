//! Keepalive, ping policy and connection age/idleness: the connection's timers, as gRPC's
//! keepalive and server connection-management designs define them (gRFC A8, A9; grpc's
//! `doc/keepalive.md`), with grpcio's names and defaults.
//!
//! Sans-IO like the rest of [`h2`](super): [`Connection`](super::conn::Connection) feeds this
//! the times it is given (`recv`, `handle_timeout`) and asks it what to do; nothing here reads a
//! clock.
//!
//! - **Keepalive** (both roles): after [`KeepaliveConfig::time`] without receiving anything,
//!   send a PING; if nothing arrives within [`KeepaliveConfig::timeout`], the peer is gone
//!   (no FIN, no RST: a NAT or a balancer dropped it) and the connection fails. A client pings
//!   only while it has calls (unless `permit_without_calls`) and at most
//!   `max_pings_without_data` times without sending data or headers in between.
//! - **Ping enforcement** (server): a PING that comes sooner than
//!   `min_recv_ping_interval_without_data` after the previous one (or, with no call open and
//!   `permit_without_calls` off, sooner than two hours after it) is a strike; sending data or
//!   headers forgives them. More than `max_ping_strikes` strikes: GOAWAY ENHANCE_YOUR_CALM with
//!   debug data `too_many_pings`, as grpc-go and grpcio do.
//! - **Idleness** (both roles): no call for `max_connection_idle` starts a graceful GOAWAY (a
//!   client's channel then goes idle until its next call).
//! - **Age** (server): a connection older than `max_connection_age` (the driver applies the
//!   ±10 % jitter) starts a graceful GOAWAY; after `max_connection_age_grace` more, the
//!   connection is closed whatever is still running.

use std::time::{Duration, Instant};

/// How long a client may go without calls between two PINGs before each counts as a strike,
/// when the server does not permit pings without calls (grpc-go's and the C core's choice).
const PING_WITHOUT_CALLS_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// The keepalive and connection-management settings of a connection.
///
/// ```
/// use std::time::Duration;
/// use grpc_sync::h2::keepalive::KeepaliveConfig;
/// let k = KeepaliveConfig { time: Some(Duration::from_secs(10)), ..KeepaliveConfig::default() };
/// assert_eq!(k.timeout, Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Send a keepalive PING after this long without receiving anything (grpcio's
    /// `grpc.keepalive_time_ms`). `None`: never (the client's default; servers use 2 h).
    pub time: Option<Duration>,
    /// How long to wait for anything from the peer after a keepalive PING before the
    /// connection is declared dead (`grpc.keepalive_timeout_ms`, default 20 s).
    pub timeout: Duration,
    /// Client: send keepalive PINGs even with no call open (`grpc.keepalive_permit_without_calls`,
    /// default false). Server: accept PINGs from a client with no call open as often as
    /// `min_recv_ping_interval_without_data` (default false: such pings are strikes unless two
    /// hours apart).
    pub permit_without_calls: bool,
    /// Client: keepalive PINGs sent without any data or headers sent in between, at most
    /// (`grpc.http2.max_pings_without_data`, default 2; 0 is no limit).
    pub max_pings_without_data: u32,
    /// Server: PINGs sooner than this after the previous one are strikes
    /// (`grpc.http2.min_recv_ping_interval_without_data_ms`, default 5 min).
    pub min_recv_ping_interval_without_data: Duration,
    /// Server: strikes tolerated; one more is GOAWAY ENHANCE_YOUR_CALM `too_many_pings`
    /// (`grpc.http2.max_ping_strikes`, default 2; 0 is no limit).
    pub max_ping_strikes: u32,
    /// A connection without calls for this long is closed gracefully: a server's
    /// `grpc.max_connection_idle_ms` (default off), a client's `grpc.client_idle_timeout_ms`
    /// (the channel then goes IDLE and the next call reconnects; the channel builder's
    /// default is 30 min, as grpcio's).
    pub max_connection_idle: Option<Duration>,
    /// Server: a connection older than this is closed gracefully (`grpc.max_connection_age_ms`,
    /// default off). The driver adds the ±10 % jitter that keeps a fleet of clients from
    /// reconnecting at once.
    pub max_connection_age: Option<Duration>,
    /// Server: how long calls may go on after the age GOAWAY before the connection is closed
    /// anyway (`grpc.max_connection_age_grace_ms`, default `None`: no limit).
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for KeepaliveConfig {
    fn default() -> KeepaliveConfig {
        KeepaliveConfig {
            time: None,
            timeout: Duration::from_secs(20),
            permit_without_calls: false,
            max_pings_without_data: 2,
            min_recv_ping_interval_without_data: Duration::from_secs(5 * 60),
            max_ping_strikes: 2,
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

/// What the connection must do now (from [`Keepalive::due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a keepalive PING (its payload is [`KEEPALIVE_PING_PAYLOAD`]).
    Ping,
    /// The keepalive PING went unanswered: the peer is gone.
    Dead,
    /// Start a graceful GOAWAY: idle for too long (`"max_idle"`) or too old (`"max_age"`).
    GoAway(&'static str),
    /// The age grace ran out: close now.
    Close,
}

/// The payload of our keepalive PINGs.
pub const KEEPALIVE_PING_PAYLOAD: [u8; 8] = *b"h2-alive";

/// The timers' state.
#[derive(Debug)]
pub(crate) struct Keepalive {
    config: KeepaliveConfig,
    server: bool,
    /// When the connection first saw the clock (its birth, for the age).
    born: Option<Instant>,
    /// The last time anything was received.
    last_recv: Option<Instant>,
    /// A keepalive PING is out: the peer must say something by then.
    ping_deadline: Option<Instant>,
    /// Keepalive PINGs sent since we last sent data or headers.
    pings_without_data: u32,
    /// Server: when the previous PING arrived, and the strikes so far.
    last_ping_recv: Option<Instant>,
    strikes: u32,
    /// Server: we sent data or headers since the last PING (strikes are forgiven).
    sent_since_ping: bool,
    /// Since when the connection has had no call (`None` while calls are open).
    idle_since: Option<Instant>,
    /// No call is open but the time that happened is not known yet: ask for the clock now.
    idle_unstamped: bool,
    /// The graceful GOAWAY for age or idleness was started; the grace runs out then.
    going_away: bool,
    grace_deadline: Option<Instant>,
}

impl Keepalive {
    pub fn new(config: KeepaliveConfig, server: bool) -> Keepalive {
        Keepalive {
            config,
            server,
            born: None,
            last_recv: None,
            ping_deadline: None,
            pings_without_data: 0,
            last_ping_recv: None,
            strikes: 0,
            sent_since_ping: false,
            idle_since: None,
            idle_unstamped: false,
            going_away: false,
            grace_deadline: None,
        }
    }

    /// The clock at an input or a timer; `active` is the number of open streams.
    pub fn observe(&mut self, now: Instant, active: usize) {
        self.born.get_or_insert(now);
        if active > 0 {
            self.idle_since = None;
            self.idle_unstamped = false;
        } else if self.idle_since.is_none() {
            self.idle_since = Some(now);
            self.idle_unstamped = false;
        }
    }

    /// Something arrived from the peer: it is alive.
    pub fn on_recv(&mut self, now: Instant) {
        self.last_recv = Some(now);
        self.ping_deadline = None;
    }

    /// The number of open streams changed without a clock (a command closed the last one).
    pub fn on_streams_changed(&mut self, active: usize) {
        if active == 0 && self.idle_since.is_none() && self.config.max_connection_idle.is_some() {
            self.idle_unstamped = true;
        }
    }

    /// We sent data or headers.
    pub fn on_data_sent(&mut self) {
        self.pings_without_data = 0;
        self.sent_since_ping = true;
    }

    /// A PING from the peer (server role): false if it was one strike too many.
    pub fn on_ping_received(&mut self, now: Instant, active: usize) -> bool {
        if !self.server {
            return true;
        }
        let last = self.last_ping_recv.replace(now);
        if std::mem::take(&mut self.sent_since_ping) {
            self.strikes = 0;
            return true;
        }
        let min = if active == 0 && !self.config.permit_without_calls {
            PING_WITHOUT_CALLS_INTERVAL
        } else {
            self.config.min_recv_ping_interval_without_data
        };
        if last.is_some_and(|l| now < l + min) {
            self.strikes += 1;
        }
        self.config.max_ping_strikes == 0 || self.strikes <= self.config.max_ping_strikes
    }

    fn may_ping(&self, active: usize) -> bool {
        if self.config.time.is_none() || self.going_away {
            return false;
        }
        if self.server {
            return true;
        }
        (active > 0 || self.config.permit_without_calls)
            && (self.config.max_pings_without_data == 0
                || self.pings_without_data < self.config.max_pings_without_data)
    }

    /// When [`due`](Self::due) next has something to do. A past instant (the last one seen)
    /// means "now": the connection went idle by a command and needs the clock to stamp it.
    pub fn poll_timeout(&self, active: usize) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if let Some(d) = self.ping_deadline {
            at(Some(d));
        } else if self.may_ping(active) {
            let since = self.last_recv.or(self.born);
            at(since.zip(self.config.time).map(|(s, t)| s + t));
        }
        if !self.going_away {
            if self.idle_unstamped {
                at(self.last_recv.or(self.born));
            }
            at(self
                .idle_since
                .zip(self.config.max_connection_idle)
                .map(|(s, t)| s + t));
        }
        if self.server && !self.going_away {
            at(self
                .born
                .zip(self.config.max_connection_age)
                .map(|(b, a)| b + a));
        }
        at(self.grace_deadline);
        next
    }

    /// What is due at `now` (the caller acts on it; call again until `None`).
    pub fn due(&mut self, now: Instant, active: usize) -> Option<Due> {
        self.observe(now, active);
        if self.grace_deadline.is_some_and(|d| d <= now) {
            self.grace_deadline = None;
            return Some(Due::Close);
        }
        if let Some(d) = self.ping_deadline {
            if d <= now {
                self.ping_deadline = None;
                return Some(Due::Dead);
            }
        } else if self.may_ping(active) {
            let since = self.last_recv.or(self.born).unwrap_or(now);
            let time = self.config.time.unwrap_or(Duration::MAX);
            if since.checked_add(time).is_some_and(|t| t <= now) {
                self.ping_deadline = Some(now + self.config.timeout);
                self.pings_without_data += 1;
                return Some(Due::Ping);
            }
        }
        if !self.going_away {
            let idle = self
                .idle_since
                .zip(self.config.max_connection_idle)
                .is_some_and(|(s, t)| s + t <= now);
            let old = self.server
                && self
                    .born
                    .zip(self.config.max_connection_age)
                    .is_some_and(|(b, a)| b + a <= now);
            if idle || old {
                self.going_away = true;
                if old {
                    self.grace_deadline = self.config.max_connection_age_grace.map(|g| now + g);
                }
                return Some(Due::GoAway(if old { "max_age" } else { "max_idle" }));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_client_pings_after_idle_time_and_declares_the_peer_dead_after_the_timeout() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(
            KeepaliveConfig {
                time: Some(secs(10)),
                timeout: secs(2),
                ..KeepaliveConfig::default()
            },
            false,
        );
        k.on_recv(t0);
        assert_eq!(k.poll_timeout(0), None, "no calls, no pings");
        assert_eq!(k.poll_timeout(1), Some(t0 + secs(10)));
        assert_eq!(k.due(t0 + secs(9), 1), None);
        assert_eq!(k.due(t0 + secs(10), 1), Some(Due::Ping));
        assert_eq!(k.poll_timeout(1), Some(t0 + secs(12)));
        // An answer in time: alive, and the next ping is another idle period away.
        k.on_recv(t0 + secs(11));
        assert_eq!(k.poll_timeout(1), Some(t0 + secs(21)));
        assert_eq!(k.due(t0 + secs(21), 1), Some(Due::Ping));
        assert_eq!(k.due(t0 + secs(23), 1), Some(Due::Dead));
    }

    #[test]
    fn a_client_stops_pinging_after_max_pings_without_data() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(
            KeepaliveConfig {
                time: Some(secs(1)),
                permit_without_calls: true,
                ..KeepaliveConfig::default()
            },
            false,
        );
        k.on_recv(t0);
        assert_eq!(k.due(t0 + secs(1), 0), Some(Due::Ping));
        k.on_recv(t0 + secs(1));
        assert_eq!(k.due(t0 + secs(2), 0), Some(Due::Ping));
        k.on_recv(t0 + secs(2));
        assert_eq!(k.poll_timeout(0), None, "two pings without data: no third");
        k.on_data_sent();
        assert_eq!(k.due(t0 + secs(3), 0), Some(Due::Ping));
    }

    #[test]
    fn the_server_strikes_frequent_pings_and_forgives_after_data() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(KeepaliveConfig::default(), true);
        // No calls, pings 100 ms apart: the first is fine, three more are the strikes.
        assert!(k.on_ping_received(t0, 0));
        assert!(k.on_ping_received(t0 + Duration::from_millis(100), 0));
        assert!(k.on_ping_received(t0 + Duration::from_millis(200), 0));
        assert!(!k.on_ping_received(t0 + Duration::from_millis(300), 0));
        let mut k = Keepalive::new(KeepaliveConfig::default(), true);
        assert!(k.on_ping_received(t0, 1));
        assert!(k.on_ping_received(t0 + secs(1), 1));
        assert!(k.on_ping_received(t0 + secs(2), 1));
        k.on_data_sent();
        assert!(k.on_ping_received(t0 + secs(3), 1), "data sent: forgiven");
        assert!(
            k.on_ping_received(t0 + secs(400), 1),
            "slower than 5 min apart"
        );
    }

    #[test]
    fn idle_and_age_start_a_graceful_goaway_and_the_grace_ends_the_connection() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(
            KeepaliveConfig {
                max_connection_idle: Some(secs(5)),
                ..KeepaliveConfig::default()
            },
            true,
        );
        k.observe(t0, 0);
        assert_eq!(k.poll_timeout(0), Some(t0 + secs(5)));
        k.observe(t0 + secs(3), 1);
        assert_eq!(k.poll_timeout(1), None, "a call open: not idle");
        k.on_streams_changed(0);
        assert_eq!(
            k.poll_timeout(0),
            Some(t0),
            "idle by a command: stamp it now"
        );
        assert_eq!(k.due(t0 + secs(4), 0), None);
        assert_eq!(k.due(t0 + secs(9), 0), Some(Due::GoAway("max_idle")));
        assert_eq!(k.due(t0 + secs(99), 0), None, "once");

        let mut k = Keepalive::new(
            KeepaliveConfig {
                max_connection_age: Some(secs(10)),
                max_connection_age_grace: Some(secs(1)),
                ..KeepaliveConfig::default()
            },
            true,
        );
        k.observe(t0, 3);
        assert_eq!(k.poll_timeout(3), Some(t0 + secs(10)));
        assert_eq!(k.due(t0 + secs(10), 3), Some(Due::GoAway("max_age")));
        assert_eq!(k.poll_timeout(3), Some(t0 + secs(11)));
        assert_eq!(k.due(t0 + secs(11), 3), Some(Due::Close));
    }

    #[test]
    fn the_server_pings_an_idle_client_whatever_its_calls() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(
            KeepaliveConfig {
                time: Some(secs(7200)),
                ..KeepaliveConfig::default()
            },
            true,
        );
        k.on_recv(t0);
        assert_eq!(k.due(t0 + secs(7200), 0), Some(Due::Ping));
        assert_eq!(k.due(t0 + secs(7220), 0), Some(Due::Dead));
    }
}
