//! Flow-control windows ([RFC 9113 §5.2], [§6.9]).
//!
//! Each direction of each stream, and of the connection as a whole, has a window: the number
//! of DATA payload octets (padding included) the sender may still send. [`SendWindow`] is
//! ours towards the peer: DATA we send consumes it, the peer's WINDOW_UPDATEs and
//! SETTINGS_INITIAL_WINDOW_SIZE changes move it. [`RecvWindow`] is the peer's towards us: DATA
//! we receive consumes it, and the application's consumption, batched, is announced back with
//! WINDOW_UPDATE.
//!
//! [RFC 9113 §5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-5.2
//! [§6.9]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9

use std::fmt;

use super::frame::MAX_WINDOW_SIZE;

/// A window would exceed 2^31 − 1, a FLOW_CONTROL_ERROR ([RFC 9113 §6.9.1]).
///
/// [RFC 9113 §6.9.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.1
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOverflow;

impl fmt::Display for WindowOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flow-control window above 2^31-1")
    }
}

impl std::error::Error for WindowOverflow {}

/// The peer sent more DATA than the window allowed, a FLOW_CONTROL_ERROR
/// ([RFC 9113 §6.9.1]).
///
/// [RFC 9113 §6.9.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.1
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowExceeded;

impl fmt::Display for WindowExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DATA beyond the flow-control window")
    }
}

impl std::error::Error for WindowExceeded {}

/// How much we may still send on a stream or the connection.
///
/// Kept as an `i64` because a lowered SETTINGS_INITIAL_WINDOW_SIZE can make a stream window
/// negative ([RFC 9113 §6.9.2]); nothing may be sent until WINDOW_UPDATEs bring it back above
/// zero.
///
/// [RFC 9113 §6.9.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.2
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow(i64);

impl SendWindow {
    /// Creates a window of `initial` octets.
    pub fn new(initial: u32) -> SendWindow {
        SendWindow(i64::from(initial))
    }

    /// Returns the current value, possibly negative.
    pub fn get(&self) -> i64 {
        self.0
    }

    /// Returns how many octets may be sent now (0 if the window is negative).
    pub fn available(&self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    /// Records `n` octets sent. `n` must not exceed [`available`](SendWindow::available).
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.0 -= n as i64;
    }

    /// Applies a WINDOW_UPDATE increment.
    ///
    /// # Errors
    ///
    /// [`WindowOverflow`] if the window would pass 2^31 − 1; the window is left unchanged.
    pub fn increase(&mut self, increment: u32) -> Result<(), WindowOverflow> {
        self.adjust(i64::from(increment))
    }

    /// Shifts the window by `delta` (a SETTINGS_INITIAL_WINDOW_SIZE change: new − old).
    ///
    /// # Errors
    ///
    /// [`WindowOverflow`] if the window would pass 2^31 − 1; the window is left unchanged.
    pub fn adjust(&mut self, delta: i64) -> Result<(), WindowOverflow> {
        let next = self.0 + delta;
        if next > i64::from(MAX_WINDOW_SIZE) {
            return Err(WindowOverflow);
        }
        self.0 = next;
        Ok(())
    }
}

/// How much the peer may still send us, and how much the application has consumed but we have
/// not yet announced.
///
/// Received DATA shrinks the window; [`release`](RecvWindow::release) records octets the
/// application has consumed; [`take_update`](RecvWindow::take_update) turns them into one
/// WINDOW_UPDATE once they reach half of the target window, so a stream of small frames costs
/// one update per half window rather than one per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    /// What the peer may still send before a WINDOW_UPDATE (may be negative after our
    /// INITIAL_WINDOW_SIZE shrinks).
    window: i64,
    /// The window size we aim to keep open: the threshold for batching is half of it.
    target: u32,
    /// Consumed by the application, not yet announced.
    pending: u32,
}

impl RecvWindow {
    /// Creates a window of `size` octets, which is also the target size.
    pub fn new(size: u32) -> RecvWindow {
        RecvWindow::with_target(size, size)
    }

    /// Creates a window currently at `window` octets, aiming for `target`.
    pub fn with_target(window: u32, target: u32) -> RecvWindow {
        RecvWindow {
            window: i64::from(window),
            target,
            pending: 0,
        }
    }

    /// Returns how much the peer may still send (possibly negative).
    pub fn get(&self) -> i64 {
        self.window
    }

    /// Returns the octets released but not yet announced.
    pub fn pending(&self) -> u32 {
        self.pending
    }

    /// Records a DATA frame of `flow_len` octets (payload and padding) from the peer.
    ///
    /// # Errors
    ///
    /// [`WindowExceeded`] if the frame is larger than the window; the window is unchanged.
    pub fn receive(&mut self, flow_len: u32) -> Result<(), WindowExceeded> {
        let n = i64::from(flow_len);
        if n > self.window {
            return Err(WindowExceeded);
        }
        self.window -= n;
        Ok(())
    }

    /// Records `n` octets the application has consumed (or that we discard, such as padding).
    pub fn release(&mut self, n: u32) {
        self.pending = self.pending.saturating_add(n);
    }

    /// Returns the increment to announce in a WINDOW_UPDATE, if enough has been released.
    ///
    /// An update is due when the released octets reach half of the target window. As long as
    /// the application releases what it receives this never stalls the peer: whenever the
    /// peer's window is below half the target, more than half is either unconsumed by the
    /// application or already released.
    pub fn take_update(&mut self) -> Option<u32> {
        // Half the window, but at most 1 MiB: a window grown large by BDP probing refilled
        // only at half would leave the sender idle for much of each round trip.
        let threshold = (self.target / 2).min(1 << 20);
        if self.pending == 0 || self.pending < threshold {
            return None;
        }
        // Never announce more than the window can hold.
        let room = i64::from(MAX_WINDOW_SIZE) - self.window;
        let inc = i64::from(self.pending).min(room);
        if inc <= 0 {
            return None;
        }
        self.pending -= inc as u32;
        self.window += inc;
        Some(inc as u32)
    }

    /// Raises the target to `target` and opens the window by as much at once: the increment
    /// to announce in a WINDOW_UPDATE, if the target grew.
    pub fn grow(&mut self, target: u32) -> Option<u32> {
        if target <= self.target {
            return None;
        }
        let inc = target - self.target;
        self.target = target;
        self.window += i64::from(inc);
        Some(inc)
    }

    /// Shifts the window by `delta` (our INITIAL_WINDOW_SIZE changed: new − old) and sets the
    /// new target.
    pub fn adjust(&mut self, delta: i64, target: u32) {
        self.window += delta;
        self.target = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_consumes_and_grows() {
        let mut w = SendWindow::new(100);
        w.consume(60);
        assert_eq!(w.available(), 40);
        w.increase(10).unwrap();
        assert_eq!(w.available(), 50);
    }

    #[test]
    fn send_window_may_go_negative_after_settings_change() {
        let mut w = SendWindow::new(100);
        w.consume(100);
        w.adjust(-50).unwrap();
        assert_eq!(w.get(), -50);
        assert_eq!(w.available(), 0);
        w.increase(60).unwrap();
        assert_eq!(w.available(), 10);
    }

    #[test]
    fn send_window_past_max_is_overflow() {
        let mut w = SendWindow::new(MAX_WINDOW_SIZE);
        assert_eq!(w.increase(1), Err(WindowOverflow));
        assert_eq!(w.get(), i64::from(MAX_WINDOW_SIZE));
        let mut w = SendWindow::new(65_535);
        assert_eq!(w.increase(MAX_WINDOW_SIZE), Err(WindowOverflow));
        w.increase(MAX_WINDOW_SIZE - 65_535).unwrap();
    }

    #[test]
    fn recv_window_rejects_data_beyond_it() {
        let mut w = RecvWindow::new(10);
        w.receive(10).unwrap();
        assert_eq!(w.receive(1), Err(WindowExceeded));
        assert_eq!(w.get(), 0);
    }

    #[test]
    fn recv_window_batches_updates_at_half_the_target() {
        let mut w = RecvWindow::new(100);
        w.receive(80).unwrap();
        w.release(30);
        assert_eq!(w.take_update(), None);
        w.release(20);
        assert_eq!(w.take_update(), Some(50));
        assert_eq!(w.get(), 70);
        assert_eq!(w.pending(), 0);
        assert_eq!(w.take_update(), None);
    }

    #[test]
    fn a_large_window_is_refilled_every_mebibyte() {
        let mut w = RecvWindow::new(1 << 20);
        assert_eq!(w.grow(16 << 20), Some((16 << 20) - (1 << 20)));
        assert_eq!(w.get(), 16 << 20);
        w.receive(4 << 20).unwrap();
        w.release((1 << 20) - 1);
        assert_eq!(w.take_update(), None);
        w.release(1);
        assert_eq!(w.take_update(), Some(1 << 20));
        assert_eq!(w.grow(1 << 20), None, "never shrinks");
    }

    #[test]
    fn recv_window_update_never_overflows() {
        let mut w = RecvWindow::with_target(MAX_WINDOW_SIZE - 10, 100);
        w.release(80);
        assert_eq!(w.take_update(), Some(10));
        assert_eq!(w.get(), i64::from(MAX_WINDOW_SIZE));
        assert_eq!(w.pending(), 70);
    }
}
