//! Hedged unary calls (gRFC A6 `hedgingPolicy`): several attempts of one call in flight at
//! once, the first to answer usefully wins. The schedule's arithmetic is `retry::Hedges`.
//!
//! All on the calling thread: each attempt's stream tells a shared [`Answers`] queue (from the
//! connection's reader thread) when its head came or it ended, and the caller waits on that
//! queue until the next attempt is due, the deadline passes or the call is cancelled. The
//! attempts may be on different connections (round_robin), which one stream's wait could not
//! cover. Once an attempt commits, it is read like any other call's stream and the others are
//! dropped (RST_STREAM CANCEL).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::retry::{self, Hedges, HedgingPolicy, Pushback};
use super::retry_call::CancelCell;
use super::{Channel, Prepared, Response, ResponseReader};
use crate::status::{Code, Status};
use crate::transport::driver::{self, lock, StreamHandle};

/// Refused streams (never seen by the server) sent again per call at most; they are not
/// attempts (A6 transparent retries).
const TRANSPARENT_RETRIES: u32 = 5;

/// Attempts that answered, by their number, and whether the call was cancelled.
#[derive(Default)]
struct Answers {
    state: Mutex<(Vec<u32>, bool)>,
    cv: Condvar,
}

impl Answers {
    fn push(&self, attempt: u32) {
        lock(&self.state).0.push(attempt);
        self.cv.notify_all();
    }

    fn cancel(&self) {
        lock(&self.state).1 = true;
        self.cv.notify_all();
    }

    /// Waits until some attempt answered, the call was cancelled (`Err`) or `until` passed
    /// (an empty list).
    fn wait(&self, until: Option<Instant>) -> Result<Vec<u32>, ()> {
        let mut st = lock(&self.state);
        loop {
            if st.1 {
                return Err(());
            }
            if !st.0.is_empty() {
                return Ok(std::mem::take(&mut st.0));
            }
            st = match until {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Vec::new());
                    }
                    self.cv
                        .wait_timeout(st, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
            };
        }
    }
}

/// What an attempt's first answer was.
enum Answer {
    /// Response headers, or a trailers-only OK: this attempt is the call's.
    Commit(Box<ResponseReader>),
    /// A status before headers, with the server's pushback.
    Failed(Status, Pushback),
    /// The server never saw it: it may go again, not counted as an attempt.
    Refused(Status),
}

/// One hedged unary call.
struct Hedged<'a> {
    channel: &'a Channel,
    path: &'static str,
    framed: &'a [u8],
    p: &'a Prepared,
    hedges: Hedges,
    answers: Arc<Answers>,
    /// Attempts in flight, by number (their `grpc-previous-rpc-attempts`).
    live: Vec<(u32, StreamHandle)>,
    transparent: u32,
    /// An attempt got response headers: the call's outcome is that attempt's.
    committed: bool,
}

/// Runs a unary call with `policy`: Ok(None) if the request does not fit the retry buffer
/// (the caller sends it as a plain call), else the call's outcome.
pub(super) fn unary(
    channel: &Channel,
    path: &'static str,
    framed: &[u8],
    p: &Prepared,
    policy: HedgingPolicy,
    cancel: Option<&CancelCell>,
) -> Option<Result<Response<Bytes>, Status>> {
    let shared = channel.retry_state()?;
    let mut buffer = shared.call_buffer();
    if !buffer.add(framed.len()) {
        return None;
    }
    let throttle = shared.throttle.as_ref();
    let answers = Arc::new(Answers::default());
    if let Some(c) = cancel {
        let a = answers.clone();
        c.on_cancel(Box::new(move || a.cancel()));
    }
    let mut call = Hedged {
        channel,
        path,
        framed,
        p,
        hedges: Hedges::new(policy, Instant::now()),
        answers,
        live: Vec::new(),
        transparent: 0,
        committed: false,
    };
    let res = call.run(throttle);
    // Whatever ended the call, no attempt outlives it.
    call.live.clear();
    drop(buffer);
    // Failures before headers were counted as they came; a committed attempt that failed
    // later still counts, as with retries.
    if let (Some(t), true) = (throttle, call.committed) {
        match &res {
            Ok(_) => t.record_success(),
            Err(s) if policy.non_fatal(s.code()) => t.record_failure(),
            Err(_) => {}
        }
    }
    Some(res)
}

impl Hedged<'_> {
    fn run(&mut self, throttle: Option<&retry::Throttle>) -> Result<Response<Bytes>, Status> {
        let deadline = self.p.deadline;
        let mut last: Option<Status> = None;
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Status::deadline_exceeded(match &last {
                    Some(s) => format!(
                        "Deadline Exceeded (hedged call; an attempt failed with {}: {})",
                        s.code(),
                        s.message()
                    ),
                    None => "Deadline Exceeded".to_string(),
                }));
            }
            while self.hedges.due(now) {
                if self.hedges.started() > 0 && throttle.is_some_and(|t| !t.allows()) {
                    // A6: only the first attempt goes while the throttle holds hedges back.
                    self.hedges.stop();
                    break;
                }
                let n = self.hedges.start(now);
                if let Err(s) = self.open(n) {
                    // No stream (no connection): a failed attempt like any other.
                    if let Some(end) = self.failed(s, Pushback::None, &mut last, throttle) {
                        return end;
                    }
                }
            }
            if self.live.is_empty() && self.hedges.next_at().is_none() {
                return Err(last.unwrap_or_else(|| {
                    Status::unavailable("no hedged attempt could be sent (throttled)")
                }));
            }
            let until = match (self.hedges.next_at(), deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            driver::before_block();
            let Ok(ready) = self.answers.wait(until) else {
                return Err(Status::new(
                    Code::Cancelled,
                    "Locally cancelled by application!",
                ));
            };
            for n in ready {
                let Some(i) = self.live.iter().position(|(m, _)| *m == n) else {
                    continue;
                };
                let (_, handle) = self.live.swap_remove(i);
                let (s, pushback) = match classify(handle, self.p) {
                    Answer::Commit(mut reader) => {
                        self.committed = true;
                        self.live.clear();
                        return reader.read_unary();
                    }
                    Answer::Failed(s, pushback) => (s, pushback),
                    Answer::Refused(_) if self.transparent < TRANSPARENT_RETRIES => {
                        self.transparent += 1;
                        match self.open(n) {
                            Ok(()) => continue,
                            Err(e) => (e, Pushback::None),
                        }
                    }
                    Answer::Refused(s) => (s, Pushback::None),
                };
                if let Some(end) = self.failed(s, pushback, &mut last, throttle) {
                    return end;
                }
            }
        }
    }

    /// An attempt failed with `s` before headers: `Some` outcome if that ends the call (a
    /// fatal code), else the call goes on with `s` as its latest failure.
    fn failed(
        &mut self,
        s: Status,
        pushback: Pushback,
        last: &mut Option<Status>,
        throttle: Option<&retry::Throttle>,
    ) -> Option<Result<Response<Bytes>, Status>> {
        if self
            .hedges
            .after_failure(s.code(), pushback, throttle, Instant::now())
        {
            *last = Some(s);
            None
        } else {
            Some(Err(s))
        }
    }

    /// Opens attempt `n` (the attempts before it: its `grpc-previous-rpc-attempts`).
    fn open(&mut self, n: u32) -> Result<(), Status> {
        let opts = retry::attempt_options(&self.p.opts, n);
        let handle = self
            .channel
            .open(self.path, &opts, self.p.deadline, Some(self.framed))?;
        let answers = self.answers.clone();
        handle.on_answer(Box::new(move || answers.push(n)));
        self.live.push((n, handle));
        Ok(())
    }
}

/// Reads what an attempt answered (its head is there, or it ended).
fn classify(handle: StreamHandle, p: &Prepared) -> Answer {
    let mut reader = Box::new(ResponseReader::new(handle, p.max_recv, p.deadline));
    let failed = match reader.read_head() {
        Err(s) => s,
        Ok(()) => match &reader.status {
            // Trailers-only with an error.
            Some(s) if s.code() != Code::Ok => s.clone(),
            _ => return Answer::Commit(reader),
        },
    };
    if reader.refused {
        return Answer::Refused(failed);
    }
    Answer::Failed(failed, Pushback::from_trailers(reader.trailing.as_ref()))
}
