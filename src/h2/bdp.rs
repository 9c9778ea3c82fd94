//! BDP-driven flow control: receive windows that grow with the measured bandwidth-delay
//! product, as grpc-go and gRPC's C core do (grpcio's `grpc.http2.bdp_probe`, on by default).
//!
//! With fixed windows one stream moves at most one window per round trip: 1 MiB over a 20 ms
//! link is 50 MiB/s whatever the link could carry. So when DATA arrives and no probe is out,
//! the connection sends a PING and counts the DATA octets received until its ACK: that is what
//! the peer could send in one round trip with the windows in force. While that sample keeps up
//! with two thirds of the window (the window, not the link, was the limit) and the bandwidth it
//! implies is the best seen, the windows grow to twice the sample, up to a cap (16 MiB).
//!
//! Probes ride on DATA the peer sent, so they never go to an idle connection, and a peer's
//! ping enforcement (grpc-go, grpcio: strikes only for pings while nothing flows) does not
//! count them: the peer has just sent data.
//!
//! Sans-IO: the connection passes the times it is given.

use std::time::{Duration, Instant};

/// The payload of our BDP probes.
pub const BDP_PING_PAYLOAD: [u8; 8] = *b"h2-bdp\0\0";

/// The largest window the estimate may set by default (16 MiB, as grpc-go's).
pub const DEFAULT_BDP_CAP: u32 = 16 << 20;

/// How much more bandwidth than at the last growth a sample must show for the window to
/// grow again.
const GROWTH_PAYOFF: f64 = 1.25;

/// The pause between probes to begin with, how much it lengthens after two ACKs that did
/// not grow the window, and its limit (gRPC's C core: 100 ms, 100-200 ms, 10 s).
const FIRST_DELAY: Duration = Duration::from_millis(100);
const DELAY_STEP: Duration = Duration::from_millis(150);
const MAX_DELAY: Duration = Duration::from_secs(10);

/// The estimator.
#[derive(Debug)]
pub(crate) struct Bdp {
    /// The window in force (stream and connection targets).
    window: u32,
    cap: u32,
    /// When the probe out now was sent.
    sent_at: Option<Instant>,
    /// DATA octets received since then.
    sample: u64,
    /// Smoothed round trip, in seconds.
    rtt: f64,
    /// The best bandwidth seen, in octets per second.
    bw_max: f64,
    /// The bandwidth of the sample that last grew the window (0 before any growth).
    bw_grown: f64,
    /// No probe before this instant: probes space out while the estimate stays put, so a
    /// connection of small requests does not pay a PING and its ACK per request.
    next_at: Option<Instant>,
    /// The pause after an ACK before the next probe (halves when the window grows, lengthens
    /// while it does not, as in gRPC's C core).
    delay: Duration,
    /// ACKs in a row that did not grow the window.
    stable: u32,
}

impl Bdp {
    pub fn new(window: u32, cap: u32) -> Bdp {
        Bdp {
            window,
            cap: cap.max(window),
            sent_at: None,
            sample: 0,
            rtt: 0.0,
            bw_max: 0.0,
            bw_grown: 0.0,
            next_at: None,
            delay: FIRST_DELAY,
            stable: 0,
        }
    }

    /// `n` DATA octets arrived at `now`. True if a probe should go out now.
    pub fn on_data(&mut self, now: Instant, n: usize) -> bool {
        if self.window >= self.cap {
            return false;
        }
        match self.sent_at {
            Some(_) => {
                self.sample += n as u64;
                false
            }
            None if self.next_at.is_some_and(|t| now < t) => false,
            None => {
                self.sent_at = Some(now);
                self.sample = n as u64;
                true
            }
        }
    }

    /// The probe's ACK arrived at `now`: the new window, if it should grow.
    pub fn on_ack(&mut self, now: Instant) -> Option<u32> {
        let sent = self.sent_at.take()?;
        let rtt = now.saturating_duration_since(sent).as_secs_f64().max(1e-6);
        // A smoothed round trip that follows the newest samples closely.
        self.rtt = if self.rtt == 0.0 {
            rtt
        } else {
            self.rtt + (rtt - self.rtt) * 0.9
        };
        let bw = self.sample as f64 / self.rtt;
        if bw > self.bw_max {
            self.bw_max = bw;
        }
        let limited = self.sample as f64 >= f64::from(self.window) * 2.0 / 3.0;
        // A larger window must have bought more bandwidth, or the window was not what held
        // the flow back. On loopback the "round trip" is mostly the queue of DATA ahead of
        // the ACK, so every sample fills the window whatever its size; bigger windows there
        // only mean more bytes in flight through the caches (measured: 16 MiB windows moved
        // 0.89x of 1 MiB ones). Over a real delay each doubling nearly doubles the rate.
        let paid_off = self.bw_grown == 0.0 || bw >= self.bw_grown * GROWTH_PAYOFF;
        if limited && paid_off && bw >= self.bw_max && self.window < self.cap {
            let grown = (self.sample.saturating_mul(2)).min(u64::from(self.cap)) as u32;
            if grown > self.window {
                self.window = grown;
                self.bw_grown = bw;
                self.delay /= 2;
                self.stable = 0;
                self.next_at = Some(now + self.delay);
                return Some(grown);
            }
        }
        self.stable += 1;
        if self.stable >= 2 && self.delay < MAX_DELAY {
            self.delay = (self.delay + DELAY_STEP).min(MAX_DELAY);
            self.stable = 0;
        }
        self.next_at = Some(now + self.delay);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_limited_flow_grows_the_window_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Bdp::new(64 << 10, 1 << 20);
        assert!(b.on_data(t0, 16 << 10), "first DATA sends a probe");
        assert!(!b.on_data(t0, 48 << 10), "one probe at a time");
        // The whole window came within the round trip: grow to twice the sample.
        assert_eq!(b.on_ack(t0 + Duration::from_millis(20)), Some(128 << 10));
        let mut t = t0 + Duration::from_millis(20);
        let mut window = 128 << 10;
        while window < (1 << 20) {
            assert!(!b.on_data(t, 1), "no probe right after an ACK");
            t += b.delay;
            assert!(b.on_data(t, window as usize));
            t += Duration::from_millis(20);
            window = b.on_ack(t).expect("keeps growing while window-limited");
        }
        assert_eq!(window, 1 << 20, "capped");
        assert!(!b.on_data(t, 1000), "no probes at the cap");
    }

    #[test]
    fn a_window_that_buys_no_bandwidth_stops_growing() {
        // Loopback: the probe's round trip grows with the window (the queue ahead of the
        // ACK), so the bandwidth stays the same while every sample fills the window.
        let t0 = Instant::now();
        let mut b = Bdp::new(1 << 20, 16 << 20);
        let rate = 2e9; // octets per second, whatever the window
        let mut t = t0;
        let mut window: u32 = 1 << 20;
        let mut growths = 0;
        for _ in 0..20 {
            t += b.delay;
            assert!(b.on_data(t, window as usize));
            t += Duration::from_secs_f64(f64::from(window) / rate);
            if let Some(w) = b.on_ack(t) {
                window = w;
                growths += 1;
            }
        }
        assert_eq!(growths, 1, "one growth to learn it bought nothing");
        assert_eq!(window, 2 << 20);
    }

    #[test]
    fn probes_space_out_while_the_window_stays_put() {
        // Small requests, one every millisecond for a minute, each answered at once.
        let t0 = Instant::now();
        let mut b = Bdp::new(1 << 20, 16 << 20);
        let mut probes = 0;
        for ms in 0..60_000 {
            let t = t0 + Duration::from_millis(ms);
            if b.on_data(t, 100) {
                probes += 1;
                assert_eq!(b.on_ack(t + Duration::from_micros(100)), None);
            }
        }
        // 100 ms apart at first, lengthening by 150 ms every two probes (up to 10 s): about
        // 40 in the minute instead of 60,000.
        assert!((20..60).contains(&probes), "{probes} probes");
        assert!(b.delay > Duration::from_secs(2), "{:?}", b.delay);
    }

    #[test]
    fn a_flow_below_the_window_does_not_grow_it() {
        let t0 = Instant::now();
        let mut b = Bdp::new(1 << 20, 16 << 20);
        assert!(b.on_data(t0, 1000));
        assert_eq!(b.on_ack(t0 + Duration::from_millis(1)), None);
        assert_eq!(
            b.on_ack(t0 + Duration::from_millis(2)),
            None,
            "no probe out"
        );
    }
}
