//! Client retries and hedging (gRFC A6): the policies' arithmetic (`Attempts`, `Hedges`), the
//! channel's retry throttle and the retry buffer's accounting. Sans-IO: no clock of its own
//! (the caller passes the time), no threads, no randomness of its own (the caller passes a
//! random fraction), so each rule is unit-tested here; `retry_call.rs` and `hedge.rs` act on it.
//!
//! An attempt that fails with one of the policy's `retryableStatusCodes` before the response
//! headers came is retried after a random back-off (or exactly the server's
//! `grpc-retry-pushback-ms`), while attempts remain, the throttle allows it and the request
//! still fits the retry buffer. A6: <https://github.com/grpc/proposal/blob/master/A6-client-retries.md>.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::metadata::MetadataMap;
use crate::status::Code;

/// A6's client-side cap on `maxAttempts`: larger values count as this.
pub(crate) const MAX_ATTEMPTS_CAP: u32 = 5;

/// The default per-call retry buffer (grpcio's `grpc.per_rpc_retry_buffer_size`).
pub(crate) const DEFAULT_PER_CALL_BUFFER: usize = 256 * 1024;

/// The retry buffer of a whole channel: its calls' buffered requests together.
pub(crate) const CHANNEL_BUFFER: usize = 16 * 1024 * 1024;

/// The trailer in which a server asks for a delay before the next attempt, or for none.
pub(crate) const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// The request header that tells the server how many attempts came before this one.
pub(crate) const PREVIOUS_ATTEMPTS_HEADER: &str = "grpc-previous-rpc-attempts";

/// The options of an attempt with `previous` attempts before it: the call's, plus
/// `grpc-previous-rpc-attempts` from the second attempt on.
pub(crate) fn attempt_options(opts: &super::CallOptions, previous: u32) -> super::CallOptions {
    let mut opts = opts.clone();
    if previous > 0 {
        // Not a reserved name; a decimal number is always a valid value.
        let _ = opts
            .metadata
            .insert(PREVIOUS_ATTEMPTS_HEADER, &previous.to_string());
    }
    opts
}

/// The channel's retry settings, from the builder (grpcio's `grpc.enable_retries` and
/// `grpc.per_rpc_retry_buffer_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryOptions {
    pub enabled: bool,
    pub per_call_buffer: usize,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            enabled: true,
            per_call_buffer: DEFAULT_PER_CALL_BUFFER,
        }
    }
}

/// A channel's retry state: its throttle (if the service config has `retryThrottling`) and
/// its retry buffer.
#[derive(Debug)]
pub(crate) struct ChannelRetry {
    pub throttle: Option<Throttle>,
    pub pool: std::sync::Arc<BufferPool>,
    pub per_call_buffer: usize,
}

impl ChannelRetry {
    pub fn new(options: RetryOptions, throttle: Option<ThrottleConfig>) -> ChannelRetry {
        ChannelRetry {
            throttle: throttle.map(Throttle::new),
            pool: std::sync::Arc::default(),
            per_call_buffer: options.per_call_buffer,
        }
    }

    /// A new call's share of the buffer.
    pub fn call_buffer(&self) -> CallBuffer {
        CallBuffer::new(self.pool.clone(), self.per_call_buffer, CHANNEL_BUFFER)
    }
}

/// A method config's `retryPolicy`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included: 2..=5.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub backoff_multiplier: f64,
    /// `retryableStatusCodes` as a bit set: bit `n` for code `n`.
    pub retryable: u32,
}

impl RetryPolicy {
    /// Whether `code` is one of the policy's `retryableStatusCodes`.
    pub fn retries(&self, code: Code) -> bool {
        self.retryable & (1 << code as u32) != 0
    }

    /// The back-off ceiling before retry `n` (1 for the first retry):
    /// `min(initialBackoff * backoffMultiplier^(n-1), maxBackoff)`.
    pub fn backoff_ceiling(&self, n: u32) -> Duration {
        let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(exp);
        let max = self.max_backoff.as_secs_f64();
        // A NaN or an overflow to infinity lands on the ceiling too.
        if secs.is_finite() && secs < max {
            Duration::from_secs_f64(secs.max(0.0))
        } else {
            self.max_backoff
        }
    }
}

/// The top-level `retryThrottling`, validated: counted in thousandths of a token, since
/// `tokenRatio` has three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThrottleConfig {
    /// `maxTokens` × 1000 (1..=1000 tokens).
    pub max_milli: u32,
    /// `tokenRatio` × 1000 (> 0).
    pub ratio_milli: u32,
}

/// A channel's retry throttle (A6 "Throttling Retry Attempts"): a token bucket that starts
/// full; a failed attempt takes a token, a success gives back `tokenRatio`; retries go only
/// while more than half the tokens are left. Lock-free.
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    milli: AtomicU32,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            milli: AtomicU32::new(config.max_milli),
        }
    }

    /// Whether a retry may go now: tokens above `maxTokens / 2`.
    pub fn allows(&self) -> bool {
        // tokens > max/2  ⇔  2 × tokens > max, in thousandths without rounding.
        u64::from(self.milli.load(Ordering::Relaxed)) * 2 > u64::from(self.config.max_milli)
    }

    /// A failed attempt (a retryable code, or a pushback saying not to retry) takes a token.
    pub fn record_failure(&self) {
        let _ = self
            .milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(1000))
            });
    }

    /// A successful call gives back `tokenRatio`, up to `maxTokens`.
    pub fn record_success(&self) {
        let (max, ratio) = (self.config.max_milli, self.config.ratio_milli);
        let _ = self
            .milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(ratio).min(max))
            });
    }

    /// The tokens left, in thousandths (for tests).
    #[cfg(test)]
    fn milli(&self) -> u32 {
        self.milli.load(Ordering::Relaxed)
    }
}

/// What the server's `grpc-retry-pushback-ms` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushback {
    /// Absent: the policy's back-off applies.
    None,
    /// Retry after exactly this long (and start the back-off over after it).
    After(Duration),
    /// Negative or unparsable: do not retry.
    Stop,
}

impl Pushback {
    /// Reads the pushback from an attempt's trailers.
    pub fn from_trailers(trailers: Option<&MetadataMap>) -> Pushback {
        match trailers.and_then(|t| t.get(PUSHBACK_HEADER)) {
            None => Pushback::None,
            Some(v) => Pushback::parse(v),
        }
    }

    /// A6: an ASCII signed 32-bit integer of milliseconds; negative or unparsable means stop.
    pub fn parse(value: &str) -> Pushback {
        match value.trim().parse::<i32>() {
            Ok(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
            _ => Pushback::Stop,
        }
    }
}

/// Why a failed attempt is not retried, for the status message where it helps the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Not a retryable code: nothing to say.
    NotRetryable,
    /// Every attempt was used.
    Exhausted,
    /// The server said not to retry.
    Pushback,
    /// The throttle holds retries back.
    Throttled,
    /// The request did not fit the retry buffer: `sent` bytes against a `limit`.
    OverBuffer { sent: usize, limit: usize },
}

impl Stop {
    /// A note to append to the final status message, if this one deserves it.
    pub fn note(self) -> Option<String> {
        let kib = |n: usize| n.div_ceil(1024);
        match self {
            Stop::OverBuffer { sent, limit } => Some(format!(
                "(not retried: the {} KiB sent exceed the {} KiB retry buffer)",
                kib(sent),
                kib(limit)
            )),
            Stop::Throttled => Some("(not retried: retries are throttled)".into()),
            _ => None,
        }
    }
}

/// The retry state of one call: how many attempts were made and the back-off exponent.
#[derive(Debug, Clone)]
pub(crate) struct Attempts {
    policy: RetryPolicy,
    /// Attempts made so far (the first included).
    made: u32,
    /// The exponent of the next back-off: reset by a pushback.
    backoff_n: u32,
}

impl Attempts {
    /// A call's first attempt is under way.
    pub fn new(policy: RetryPolicy) -> Attempts {
        Attempts {
            policy,
            made: 1,
            backoff_n: 1,
        }
    }

    /// The policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Attempts made so far, the current one included: the next attempt's
    /// `grpc-previous-rpc-attempts`.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// Decides after an attempt failed with `code` before any response headers (the call is
    /// not committed otherwise): `Ok(delay)` to retry after `delay`, counting the new attempt,
    /// or why not. Records the failure in the throttle when A6 counts it. `random` is
    /// uniform in `[0, 1)`.
    pub fn after_failure(
        &mut self,
        code: Code,
        pushback: Pushback,
        throttle: Option<&Throttle>,
        random: f64,
    ) -> Result<Duration, Stop> {
        if !record_failure(&self.policy, code, pushback, throttle) {
            return Err(Stop::NotRetryable);
        }
        if pushback == Pushback::Stop {
            return Err(Stop::Pushback);
        }
        if self.made >= self.policy.max_attempts {
            return Err(Stop::Exhausted);
        }
        if throttle.is_some_and(|t| !t.allows()) {
            return Err(Stop::Throttled);
        }
        self.made += 1;
        let delay = match pushback {
            Pushback::After(d) => {
                self.backoff_n = 1;
                d
            }
            _ => {
                let ceiling = self.policy.backoff_ceiling(self.backoff_n);
                self.backoff_n = self.backoff_n.saturating_add(1);
                ceiling.mul_f64(random.clamp(0.0, 1.0))
            }
        };
        Ok(delay)
    }
}

/// Tells the throttle about an attempt that failed with `code`, if A6 counts it: only
/// retryable codes and "do not retry" pushbacks are failures. Returns whether `code` is
/// retryable.
pub(crate) fn record_failure(
    policy: &RetryPolicy,
    code: Code,
    pushback: Pushback,
    throttle: Option<&Throttle>,
) -> bool {
    let retryable = policy.retries(code);
    if retryable || pushback == Pushback::Stop {
        if let Some(t) = throttle {
            t.record_failure();
        }
    }
    retryable
}

/// A method config's `hedgingPolicy`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HedgingPolicy {
    /// Attempts in all, the first included: 2..=5.
    pub max_attempts: u32,
    /// The time between two attempts' starts (may be zero: all at once).
    pub delay: Duration,
    /// `nonFatalStatusCodes` as a bit set: bit `n` for code `n`.
    pub non_fatal: u32,
}

impl HedgingPolicy {
    /// Whether `code` is one of the policy's `nonFatalStatusCodes`.
    pub fn non_fatal(&self, code: Code) -> bool {
        self.non_fatal & (1 << code as u32) != 0
    }
}

/// When a hedged call starts its attempts (A6 "Hedging Policy"): the first at once, then one
/// every `hedgingDelay` while none has committed; a non-fatal failure starts the next at once,
/// a pushback of `n` ms starts it after `n` ms (the following ones `hedgingDelay` later
/// again), a "do not retry" pushback starts no more. Sans-IO: the caller passes the clock.
#[derive(Debug, Clone)]
pub(crate) struct Hedges {
    policy: HedgingPolicy,
    /// Attempts started so far.
    started: u32,
    /// When the next attempt starts; `None` once no more may.
    next: Option<Instant>,
}

impl Hedges {
    /// A call whose first attempt is due `now`.
    pub fn new(policy: HedgingPolicy, now: Instant) -> Hedges {
        Hedges {
            policy,
            started: 0,
            next: Some(now),
        }
    }

    /// Attempts started so far.
    pub fn started(&self) -> u32 {
        self.started
    }

    /// When the next attempt is due, if one may still start.
    pub fn next_at(&self) -> Option<Instant> {
        self.next
            .filter(|_| self.started < self.policy.max_attempts)
    }

    /// Whether an attempt is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next_at().is_some_and(|t| t <= now)
    }

    /// Counts an attempt started at `now` and schedules the next; returns the attempts
    /// before it (its `grpc-previous-rpc-attempts`).
    pub fn start(&mut self, now: Instant) -> u32 {
        let previous = self.started;
        self.started += 1;
        self.next = Some(now + self.policy.delay);
        previous
    }

    /// No more attempts start (the throttle holds them back).
    pub fn stop(&mut self) {
        self.next = None;
    }

    /// After an attempt failed with `code` before response headers, at `now`: true if the
    /// failure is non-fatal (the call goes on with its other attempts and the next ones),
    /// false if the call ends with it. Tells the throttle about failures A6 counts.
    pub fn after_failure(
        &mut self,
        code: Code,
        pushback: Pushback,
        throttle: Option<&Throttle>,
        now: Instant,
    ) -> bool {
        let non_fatal = self.policy.non_fatal(code);
        if non_fatal || pushback == Pushback::Stop {
            if let Some(t) = throttle {
                t.record_failure();
            }
        }
        if !non_fatal {
            return false;
        }
        match pushback {
            Pushback::Stop => self.next = None,
            Pushback::After(d) => self.next = self.next.map(|_| now + d),
            Pushback::None => self.next = self.next.map(|_| now),
        }
        true
    }
}

/// The retry buffer shared by a channel's calls (A6 "Memory Management").
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    used: AtomicUsize,
}

impl BufferPool {
    fn take(&self, n: usize, limit: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// One call's share of the retry buffer: the bytes of request it keeps for a replay. Past
/// the call's limit or the channel's, the call commits (no more retries); dropping it (or
/// [`release`](CallBuffer::release)) gives the bytes back to the channel.
#[derive(Debug)]
pub(crate) struct CallBuffer {
    pool: std::sync::Arc<BufferPool>,
    per_call: usize,
    channel_limit: usize,
    held: usize,
    /// Request bytes sent in all, kept or not (for the status message).
    sent: usize,
    over: bool,
}

impl CallBuffer {
    pub fn new(
        pool: std::sync::Arc<BufferPool>,
        per_call: usize,
        channel_limit: usize,
    ) -> CallBuffer {
        CallBuffer {
            pool,
            per_call,
            channel_limit,
            held: 0,
            sent: 0,
            over: false,
        }
    }

    /// Accounts for `n` more bytes of request: true if they fit (keep them), false once the
    /// call is over either limit (then nothing more is kept and the call may not retry).
    pub fn add(&mut self, n: usize) -> bool {
        self.sent = self.sent.saturating_add(n);
        if self.over {
            return false;
        }
        let fits = self.held + n <= self.per_call && self.pool.take(n, self.channel_limit);
        if fits {
            self.held += n;
        } else {
            self.over = true;
            self.release();
        }
        fits
    }

    /// Counts `n` bytes sent without keeping them (the call committed).
    pub fn count(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n);
    }

    /// Whether the request outgrew the buffer, and why the call then may not retry.
    pub fn overflow(&self) -> Option<Stop> {
        self.over.then_some(Stop::OverBuffer {
            sent: self.sent,
            limit: self.per_call,
        })
    }

    /// Gives the bytes held back to the channel (the call committed or ended).
    pub fn release(&mut self) {
        self.pool.give(std::mem::take(&mut self.held));
    }
}

impl Drop for CallBuffer {
    fn drop(&mut self) {
        self.release();
    }
}

/// A uniform random fraction in `[0, 1)` for back-off jitter, from std's per-process random
/// hash keys and the clock (no random-number crate for this).
pub(crate) fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            backoff_multiplier: 2.0,
            retryable: 1 << Code::Unavailable as u32,
        }
    }

    #[test]
    fn backoff_grows_to_its_ceiling_and_is_jittered_below_it() {
        let p = policy(5);
        let ms = |n| p.backoff_ceiling(n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(60)],
            [100, 200, 400, 800, 1000, 1000]
        );
        let mut a = Attempts::new(p);
        let d = a.after_failure(Code::Unavailable, Pushback::None, None, 0.5);
        assert_eq!(d, Ok(Duration::from_millis(50)));
        let d = a.after_failure(Code::Unavailable, Pushback::None, None, 0.999);
        assert!(d.unwrap() < Duration::from_millis(200));
        let d = a.after_failure(Code::Unavailable, Pushback::None, None, 0.0);
        assert_eq!(d, Ok(Duration::ZERO));
        assert_eq!(a.made(), 4);
        let huge = RetryPolicy {
            backoff_multiplier: 1e300,
            ..p
        };
        assert_eq!(huge.backoff_ceiling(4), p.max_backoff);
    }

    #[test]
    fn attempts_stop_at_max_attempts() {
        let mut a = Attempts::new(policy(3));
        assert!(a
            .after_failure(Code::Unavailable, Pushback::None, None, 0.1)
            .is_ok());
        assert!(a
            .after_failure(Code::Unavailable, Pushback::None, None, 0.1)
            .is_ok());
        assert_eq!(a.made(), 3);
        assert_eq!(
            a.after_failure(Code::Unavailable, Pushback::None, None, 0.1),
            Err(Stop::Exhausted)
        );
    }

    #[test]
    fn only_retryable_codes_retry() {
        let mut a = Attempts::new(policy(5));
        assert_eq!(
            a.after_failure(Code::Internal, Pushback::None, None, 0.1),
            Err(Stop::NotRetryable)
        );
        assert_eq!(
            a.after_failure(Code::Internal, Pushback::After(Duration::ZERO), None, 0.1),
            Err(Stop::NotRetryable)
        );
    }

    #[test]
    fn pushback_sets_the_delay_and_restarts_the_backoff() {
        assert_eq!(
            Pushback::parse("300"),
            Pushback::After(Duration::from_millis(300))
        );
        assert_eq!(Pushback::parse("0"), Pushback::After(Duration::ZERO));
        for stop in ["-1", "abc", "", "1.5", "99999999999"] {
            assert_eq!(Pushback::parse(stop), Pushback::Stop, "{stop:?}");
        }
        let mut a = Attempts::new(policy(5));
        let _ = a.after_failure(Code::Unavailable, Pushback::None, None, 0.999);
        let _ = a.after_failure(Code::Unavailable, Pushback::None, None, 0.999);
        let d = a.after_failure(
            Code::Unavailable,
            Pushback::After(Duration::from_millis(300)),
            None,
            0.0,
        );
        assert_eq!(d, Ok(Duration::from_millis(300)));
        // Back to the initial back-off after a pushback.
        let d = a.after_failure(Code::Unavailable, Pushback::None, None, 0.999);
        assert!(d.unwrap() < Duration::from_millis(100));
        let mut a = Attempts::new(policy(5));
        assert_eq!(
            a.after_failure(Code::Unavailable, Pushback::Stop, None, 0.1),
            Err(Stop::Pushback)
        );
    }

    #[test]
    fn pushback_from_trailers() {
        let mut t = MetadataMap::new();
        assert_eq!(Pushback::from_trailers(None), Pushback::None);
        assert_eq!(Pushback::from_trailers(Some(&t)), Pushback::None);
        t.insert(PUSHBACK_HEADER, "25").unwrap();
        assert_eq!(
            Pushback::from_trailers(Some(&t)),
            Pushback::After(Duration::from_millis(25))
        );
    }

    #[test]
    fn the_throttle_stops_retries_at_half_its_tokens_and_refills() {
        // maxTokens 10, tokenRatio 0.1.
        let t = Throttle::new(ThrottleConfig {
            max_milli: 10_000,
            ratio_milli: 100,
        });
        assert!(t.allows());
        for _ in 0..4 {
            t.record_failure();
        }
        assert_eq!(t.milli(), 6000);
        assert!(t.allows());
        t.record_failure();
        assert_eq!(t.milli(), 5000);
        assert!(!t.allows(), "5 tokens is not above 10 / 2");
        t.record_success();
        assert!(t.allows(), "5.1 tokens is");
        for _ in 0..100 {
            t.record_success();
        }
        assert_eq!(t.milli(), 10_000, "capped at maxTokens");
        for _ in 0..20 {
            t.record_failure();
        }
        assert_eq!(t.milli(), 0, "never below zero");
        // The throttle counts failures in `after_failure` and stops retries there.
        let t = Throttle::new(ThrottleConfig {
            max_milli: 3000,
            ratio_milli: 1000,
        });
        let mut a = Attempts::new(policy(5));
        assert!(a
            .after_failure(Code::Unavailable, Pushback::None, Some(&t), 0.1)
            .is_ok());
        assert_eq!(
            a.after_failure(Code::Unavailable, Pushback::None, Some(&t), 0.1),
            Err(Stop::Throttled)
        );
        // A non-retryable failure takes no token; a "do not retry" pushback does.
        let before = t.milli();
        let _ = a.after_failure(Code::Internal, Pushback::None, Some(&t), 0.1);
        assert_eq!(t.milli(), before);
        let _ = a.after_failure(Code::Internal, Pushback::Stop, Some(&t), 0.1);
        assert_eq!(t.milli(), before - 1000);
    }

    #[test]
    fn the_buffer_commits_past_the_call_or_the_channel_limit() {
        let pool = Arc::new(BufferPool::default());
        let mut a = CallBuffer::new(pool.clone(), 100, 150);
        assert!(a.add(60));
        assert!(a.add(40));
        assert_eq!(a.overflow(), None);
        assert!(!a.add(1), "over the call's 100");
        assert!(!a.add(1), "stays over");
        assert_eq!(
            a.overflow(),
            Some(Stop::OverBuffer {
                sent: 102,
                limit: 100
            })
        );
        assert_eq!(pool.used.load(Ordering::Relaxed), 0, "given back on commit");
        let mut b = CallBuffer::new(pool.clone(), 100, 150);
        let mut c = CallBuffer::new(pool.clone(), 100, 150);
        assert!(b.add(100));
        assert!(!c.add(60), "over the channel's 150");
        drop(b);
        assert_eq!(pool.used.load(Ordering::Relaxed), 0);
        assert_eq!(
            Stop::OverBuffer {
                sent: 300 * 1024,
                limit: 256 * 1024
            }
            .note()
            .unwrap(),
            "(not retried: the 300 KiB sent exceed the 256 KiB retry buffer)"
        );
    }

    fn hedging(max_attempts: u32, delay_ms: u64) -> HedgingPolicy {
        HedgingPolicy {
            max_attempts,
            delay: Duration::from_millis(delay_ms),
            non_fatal: 1 << Code::Unavailable as u32,
        }
    }

    #[test]
    fn hedges_start_every_delay_up_to_max_attempts() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = Hedges::new(hedging(3, 100), t0);
        assert!(h.due(t0));
        assert_eq!(h.start(t0), 0);
        assert!(!h.due(ms(99)));
        assert_eq!(h.next_at(), Some(ms(100)));
        assert_eq!(h.start(ms(100)), 1);
        assert_eq!(h.start(ms(200)), 2);
        assert_eq!(h.next_at(), None, "maxAttempts reached");
        assert!(!h.due(ms(10_000)));
        assert_eq!(h.started(), 3);
    }

    #[test]
    fn a_non_fatal_failure_starts_the_next_hedge_at_once_and_a_fatal_one_ends() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = Hedges::new(hedging(4, 1000), t0);
        h.start(t0);
        assert!(h.after_failure(Code::Unavailable, Pushback::None, None, ms(10)));
        assert_eq!(h.next_at(), Some(ms(10)));
        h.start(ms(10));
        assert_eq!(h.next_at(), Some(ms(1010)), "then hedgingDelay again");
        let d = Pushback::After(Duration::from_millis(300));
        assert!(h.after_failure(Code::Unavailable, d, None, ms(20)));
        assert_eq!(h.next_at(), Some(ms(320)));
        assert!(!h.after_failure(Code::Internal, Pushback::None, None, ms(30)));
        assert!(h.after_failure(Code::Unavailable, Pushback::Stop, None, ms(40)));
        assert_eq!(h.next_at(), None, "the server said no more");
        // A pushback does not restart hedges that were stopped.
        assert!(h.after_failure(Code::Unavailable, d, None, ms(50)));
        assert_eq!(h.next_at(), None);
    }

    #[test]
    fn hedging_failures_count_in_the_throttle() {
        let t = Throttle::new(ThrottleConfig {
            max_milli: 10_000,
            ratio_milli: 1000,
        });
        let now = Instant::now();
        let mut h = Hedges::new(hedging(5, 0), now);
        h.after_failure(Code::Unavailable, Pushback::None, Some(&t), now);
        assert_eq!(t.milli(), 9000);
        h.after_failure(Code::Internal, Pushback::None, Some(&t), now);
        assert_eq!(t.milli(), 9000, "a fatal code is not a throttle failure");
        h.after_failure(Code::Internal, Pushback::Stop, Some(&t), now);
        assert_eq!(t.milli(), 8000, "a stop pushback is");
    }

    #[test]
    fn random_fractions_are_in_range() {
        for _ in 0..100 {
            let r = random_fraction();
            assert!((0.0..1.0).contains(&r), "{r}");
        }
    }
}
