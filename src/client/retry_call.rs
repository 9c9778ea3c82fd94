//! Acting on a retry policy (gRFC A6) for one call: the [`Retrier`] a [`ResponseReader`]
//! carries when its method has a retry policy, the request replay buffer a streaming call's
//! sender thread shares with it, and the cancel cell of a retried [`CallFuture`]. The policy's
//! arithmetic is in `retry.rs`; calls without a policy never get here.
//!
//! [`ResponseReader`]: super::ResponseReader
//! [`CallFuture`]: super::CallFuture

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::retry::{self, Attempts, CallBuffer, Pushback, RetryPolicy, Stop};
use super::{CallOptions, Channel};
use crate::h2::error::Reason;
use crate::metadata::MetadataMap;
use crate::status::{Code, Status};
use crate::transport::driver::{lock, StreamHandle};

/// Refused streams retried at most this many times in a row (the server never saw them, so
/// they do not count as attempts).
const TRANSPARENT_RETRIES: u32 = 5;

/// What a retry sends again.
pub(super) enum Replay {
    /// Unary and server-streaming calls: the one framed request (`None` once it outgrew the
    /// retry buffer), with its share of the buffer.
    Whole(Option<Bytes>, CallBuffer),
    /// Client- and bidi-streaming calls: the messages so far, shared with the sender thread.
    Stream(Arc<StreamReplay>),
    /// A streaming call whose first stream could not be opened: nothing was sent yet, so a
    /// retry only opens a stream. Replaced by `Stream` once one is open
    /// ([`Retrier::with_replay`]).
    Open,
}

/// What to do after an attempt failed.
enum Decision {
    /// Start a new attempt after this long.
    Retry(Duration),
    /// The call ends; the note says why it was not retried, when that helps.
    End(Option<String>),
}

/// One call's retry state, carried by its response reader.
pub(super) struct Retrier {
    channel: Channel,
    path: &'static str,
    /// The call's options as prepared (metadata, credentials), for the next attempts.
    opts: CallOptions,
    deadline: Option<Instant>,
    attempts: Attempts,
    replay: Replay,
    /// Transparent retries of refused streams in a row.
    transparent: u32,
    /// Response headers came (or the request outgrew the buffer): no more retries.
    committed: bool,
    /// The call's outcome was settled (reported, throttle told).
    pub(super) finished: bool,
    /// A retried future's cancel cell.
    cancel: Option<Arc<CancelCell>>,
}

impl Retrier {
    pub(super) fn new(
        channel: &Channel,
        path: &'static str,
        opts: &CallOptions,
        deadline: Option<Instant>,
        policy: RetryPolicy,
        replay: Replay,
    ) -> Retrier {
        Retrier {
            channel: channel.clone(),
            path,
            opts: opts.clone(),
            deadline,
            attempts: Attempts::new(policy),
            replay,
            transparent: 0,
            committed: false,
            finished: false,
            cancel: None,
        }
    }

    /// A retrier for a call whose whole request is `framed`, keeping a copy; `None` if it does
    /// not fit the retry buffer (the call is then not retried by policy, and keeps the
    /// transparent retries of refused streams every call has).
    pub(super) fn whole(
        channel: &Channel,
        path: &'static str,
        opts: &CallOptions,
        deadline: Option<Instant>,
        policy: RetryPolicy,
        framed: &[u8],
    ) -> Option<Retrier> {
        let shared = channel.inner.service_config.as_ref()?.retry.as_ref()?;
        let mut buffer = shared.call_buffer();
        if !buffer.add(framed.len()) {
            return None;
        }
        let replay = Replay::Whole(Some(Bytes::copy_from_slice(framed)), buffer);
        Some(Retrier::new(channel, path, opts, deadline, policy, replay))
    }

    pub(super) fn with_cancel(mut self, cell: Arc<CancelCell>) -> Retrier {
        self.cancel = Some(cell);
        self
    }

    /// Makes the call cancellable through `cell` (a retried future's).
    pub(super) fn set_cancel(&mut self, cell: Arc<CancelCell>) {
        self.cancel = Some(cell);
    }

    /// Whether the reader should hold its report: a failure may still be retried.
    pub(super) fn live(&self) -> bool {
        !self.finished
    }

    /// Response headers arrived: the call is committed to this attempt; its buffered
    /// request is let go.
    pub(super) fn commit(&mut self) {
        if std::mem::replace(&mut self.committed, true) {
            return;
        }
        match &mut self.replay {
            Replay::Whole(kept, buffer) => {
                *kept = None;
                buffer.release();
            }
            Replay::Stream(r) => r.commit(),
            Replay::Open => {}
        }
    }

    /// The same call state (attempts made, throttle) with another replay: a streaming call
    /// whose first open failed gets its `Stream` replay once a stream is open.
    pub(super) fn with_replay(mut self, replay: Replay) -> Retrier {
        self.replay = replay;
        self
    }

    /// The stream of this call's first attempt, for a retried future's cancel.
    pub(super) fn attach(&self, handle: &StreamHandle) {
        if let Some(c) = &self.cancel {
            let mut st = lock(&c.state);
            if st.cancelled {
                handle.reset(Reason::CANCEL);
            }
            st.current = Some(handle.view());
        }
    }

    /// Settles a call that ended with OK: the throttle gets its token back.
    pub(super) fn succeeded(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.commit();
        if let Some(t) = self.throttle() {
            t.record_success();
        }
    }

    /// The call ended some other way (cancelled, aborted): no more attempts.
    pub(super) fn end(&mut self) {
        self.finished = true;
        self.commit();
    }

    fn throttle(&self) -> Option<&retry::Throttle> {
        self.channel
            .inner
            .service_config
            .as_ref()?
            .retry
            .as_ref()?
            .throttle
            .as_ref()
    }

    /// Why the request cannot be sent again, if it cannot.
    fn overflow(&self) -> Option<Stop> {
        match &self.replay {
            Replay::Whole(_, buffer) => buffer.overflow(),
            Replay::Stream(r) => r.overflow(),
            Replay::Open => None,
        }
    }

    fn decide(&mut self, s: &Status, refused: bool, trailers: Option<&MetadataMap>) -> Decision {
        let overflow = self.overflow();
        if refused && self.transparent < TRANSPARENT_RETRIES && overflow.is_none() {
            // A6 transparent retry: the server never saw it; not an attempt, not a failure.
            self.transparent += 1;
            return Decision::Retry(Duration::ZERO);
        }
        self.transparent = 0;
        let pushback = Pushback::from_trailers(trailers);
        let random = retry::random_fraction();
        let throttle = self
            .channel
            .inner
            .service_config
            .as_ref()
            .and_then(|c| c.retry.clone());
        let throttle = throttle.as_ref().and_then(|r| r.throttle.as_ref());
        if self.committed {
            // Still counted by the throttle; never retried.
            retry::record_failure(&self.attempts.policy(), s.code(), pushback, throttle);
            return Decision::End(None);
        }
        match self
            .attempts
            .after_failure(s.code(), pushback, throttle, random)
        {
            Ok(_) if overflow.is_some() => Decision::End(overflow.and_then(Stop::note)),
            Ok(delay) => Decision::Retry(delay),
            Err(Stop::NotRetryable) => Decision::End(None),
            Err(stop) => Decision::End(stop.note()),
        }
    }

    /// After an attempt failed with `s`: a new attempt's stream if the call is retried, else
    /// the call's final status (`s`, with a note on why it was not retried where that helps).
    pub(super) fn after_failure(
        &mut self,
        s: &Status,
        refused: bool,
        trailers: Option<&MetadataMap>,
    ) -> Result<StreamHandle, Status> {
        if self.finished {
            return Err(s.clone());
        }
        let (mut last, mut refused, mut trailers) = (s.clone(), refused, trailers);
        loop {
            let delay = match self.decide(&last, refused, trailers) {
                Decision::Retry(d) => d,
                Decision::End(note) => {
                    self.end();
                    return Err(match note {
                        Some(n) => with_note(&last, &n),
                        None => last,
                    });
                }
            };
            if let Err(e) = self.wait(delay, &last) {
                self.end();
                return Err(e);
            }
            match self.next_attempt() {
                Ok(h) => return Ok(h),
                // A new stream that could not be opened (no connection) is a failed attempt
                // too, as in gRPC: the policy decides again.
                Err(e) => (last, refused, trailers) = (e, false, None),
            }
        }
    }

    /// Waits `delay` before the next attempt, unless it would start past the deadline
    /// (DEADLINE_EXCEEDED now) or the call is cancelled first.
    fn wait(&self, delay: Duration, last: &Status) -> Result<(), Status> {
        if let Some(d) = self.deadline {
            if Instant::now() + delay >= d {
                return Err(Status::deadline_exceeded(format!(
                    "Deadline Exceeded: the call's deadline comes before its next attempt \
                     (the last one failed with {}: {})",
                    last.code(),
                    last.message()
                )));
            }
        }
        match &self.cancel {
            Some(c) => c.sleep(delay),
            None => {
                std::thread::sleep(delay);
                Ok(())
            }
        }
    }

    /// Starts the next attempt, sending the request again.
    fn next_attempt(&mut self) -> Result<StreamHandle, Status> {
        let opts = retry::attempt_options(&self.opts, self.attempts.made() - 1);
        let handle = match &self.replay {
            Replay::Whole(Some(framed), _) => {
                self.channel
                    .open(self.path, &opts, self.deadline, Some(framed))?
            }
            Replay::Whole(None, _) => {
                return Err(Status::internal("retry without the request (a bug)"))
            }
            Replay::Stream(r) => r.restart(
                || self.channel.open(self.path, &opts, self.deadline, None),
                self.deadline,
            )?,
            Replay::Open => self.channel.open(self.path, &opts, self.deadline, None)?,
        };
        if let Some(c) = &self.cancel {
            let mut st = lock(&c.state);
            if st.cancelled {
                handle.reset(Reason::CANCEL);
            }
            st.current = Some(handle.view());
        }
        Ok(handle)
    }
}

impl Drop for Retrier {
    fn drop(&mut self) {
        // The sender thread must not wait for an attempt that will never come.
        if let Replay::Stream(r) = &self.replay {
            r.finish();
        }
    }
}

/// `s` with `note` after its message, keeping its details and metadata.
fn with_note(s: &Status, note: &str) -> Status {
    Status::new(s.code(), format!("{} {note}", s.message()))
        .with_details(s.details().clone())
        .with_metadata(s.metadata().clone())
}

/// A streaming call's request messages kept for a replay, shared by the call's sender thread
/// and its response reader.
pub(super) struct StreamReplay {
    state: Mutex<ReplayState>,
    cv: Condvar,
}

struct ReplayState {
    /// The current attempt's stream (a view).
    view: StreamHandle,
    /// Counts attempts started: the sender knows whether its message made it into a replay.
    generation: u64,
    messages: Vec<Bytes>,
    buffer: CallBuffer,
    /// The request iterator is done: a replay ends the stream too.
    ended: bool,
    committed: bool,
    /// The call is over: the sender stops.
    done: bool,
}

impl StreamReplay {
    pub(super) fn new(view: StreamHandle, buffer: CallBuffer) -> Arc<StreamReplay> {
        Arc::new(StreamReplay {
            state: Mutex::new(ReplayState {
                view,
                generation: 0,
                messages: Vec::new(),
                buffer,
                ended: false,
                committed: false,
                done: false,
            }),
            cv: Condvar::new(),
        })
    }

    /// Sends one framed message on the current attempt, keeping it for a replay while it
    /// fits. False once the call is over (the sender stops pulling requests).
    pub(super) fn send(&self, framed: &[u8], deadline: Option<Instant>) -> bool {
        let (view, generation) = {
            let mut st = lock(&self.state);
            if st.done {
                return false;
            }
            if st.committed {
                // Still counted, for the status message of a stream that outgrew the buffer.
                st.buffer.count(framed.len());
            } else {
                if st.buffer.add(framed.len()) {
                    st.messages.push(Bytes::copy_from_slice(framed));
                } else {
                    // Outgrew the buffer: this attempt is the last.
                    st.commit();
                }
            }
            (st.view.view(), st.generation)
        };
        if view.send_stream_message(framed, deadline).is_ok() {
            return true;
        }
        self.wait_next(generation, deadline)
    }

    /// Ends the request stream (END_STREAM on the current attempt and on any replay).
    pub(super) fn end(&self, deadline: Option<Instant>) {
        let view = {
            let mut st = lock(&self.state);
            st.ended = true;
            st.view.view()
        };
        // On a failure the next attempt, if any, ends its stream in its replay.
        let _ = view.send_data(&[], true, deadline);
    }

    /// The sender failed (an encoding error, a panic): no retry may replay a stream that
    /// stops short; the current attempt is reset.
    pub(super) fn fail(&self) {
        let view = {
            let mut st = lock(&self.state);
            st.commit();
            st.view.view()
        };
        self.cv.notify_all();
        view.reset(Reason::CANCEL);
    }

    /// After a send failed on attempt `generation`: waits until a later attempt has started
    /// (its replay sent everything kept, this message included: true) or the call can have
    /// none (false).
    fn wait_next(&self, generation: u64, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.generation != generation {
                return !st.done;
            }
            if st.committed || st.done {
                return false;
            }
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.cv
                        .wait_timeout(st, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
            };
        }
    }

    /// Opens the next attempt with `open` and sends it every message kept (and END_STREAM if
    /// the requests are done), all under the lock so that the sender's next message follows
    /// them.
    fn restart(
        &self,
        open: impl FnOnce() -> Result<StreamHandle, Status>,
        deadline: Option<Instant>,
    ) -> Result<StreamHandle, Status> {
        let mut st = lock(&self.state);
        let handle = open()?;
        for m in &st.messages {
            // A failure shows when the reader reads this attempt.
            if handle.send_data(m, false, deadline).is_err() {
                break;
            }
        }
        if st.ended {
            let _ = handle.send_data(&[], true, deadline);
        }
        st.view = handle.view();
        st.generation += 1;
        drop(st);
        self.cv.notify_all();
        Ok(handle)
    }

    fn commit(&self) {
        lock(&self.state).commit();
        self.cv.notify_all();
    }

    fn finish(&self) {
        lock(&self.state).done = true;
        self.cv.notify_all();
    }

    fn overflow(&self) -> Option<Stop> {
        lock(&self.state).buffer.overflow()
    }
}

impl ReplayState {
    fn commit(&mut self) {
        self.committed = true;
        self.messages = Vec::new();
        self.buffer.release();
    }
}

/// How a retried [`CallFuture`](super::CallFuture) is cancelled: the flag, and the current
/// attempt's stream to reset; a back-off waits on it so that a cancel ends the wait.
#[derive(Default)]
pub(crate) struct CancelCell {
    state: Mutex<CancelState>,
    cv: Condvar,
}

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    current: Option<StreamHandle>,
    /// Run on cancel: a hedged call's wake-up (it has several attempts, not one `current`).
    on_cancel: Option<Box<dyn FnOnce() + Send>>,
}

impl CancelCell {
    /// Cancels the call: resets the current attempt, and no other starts.
    pub(crate) fn cancel(&self) {
        let (current, hook) = {
            let mut st = lock(&self.state);
            st.cancelled = true;
            (
                st.current.as_ref().map(StreamHandle::view),
                st.on_cancel.take(),
            )
        };
        self.cv.notify_all();
        if let Some(h) = current {
            h.reset(Reason::CANCEL);
        }
        if let Some(f) = hook {
            f();
        }
    }

    /// Runs `f` when the call is cancelled (at once if it already was).
    pub(super) fn on_cancel(&self, f: Box<dyn FnOnce() + Send>) {
        let mut st = lock(&self.state);
        if st.cancelled {
            drop(st);
            f();
        } else {
            st.on_cancel = Some(f);
        }
    }

    /// Waits `d` unless cancelled first (then CANCELLED).
    fn sleep(&self, d: Duration) -> Result<(), Status> {
        let until = Instant::now() + d;
        let mut st = lock(&self.state);
        loop {
            if st.cancelled {
                return Err(Status::new(
                    Code::Cancelled,
                    "Locally cancelled by application!",
                ));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            st = self
                .cv
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
