//! Detached response streams: a server-streaming call whose messages are sent from any
//! thread after its handler has returned, so an open stream that waits for events holds no
//! worker.
//!
//! An ordinary streaming handler returns an iterator that its worker drains: the worker is
//! busy until the stream ends, which suits streams that compute their messages. A stream fed
//! by events (health `Watch`, notifications) would hold a worker per subscriber while nothing
//! happens. Instead its handler ([`DetachedStreamingHandler`]) takes a [`ResponseSink`],
//! stores it where the events come from, and returns: the worker goes back to the pool. The
//! producers call [`ResponseSink::try_send`], which never blocks, and end the call with
//! [`ResponseSink::finish`] (or by dropping the sink). Cancellation, deadlines and lost
//! connections reach the sink's owner through
//! [`ServerContext::add_callback`](crate::ServerContext::add_callback) on
//! [`ResponseSink::context`].
//!
//! [`DetachedStreamingHandler`]: crate::server::DetachedStreamingHandler

use std::marker::PhantomData;

use prost::Message;

use crate::server::context::ServerContext;
use crate::server::interceptor::Ending;
use crate::status::{Code, Status};

/// A running detached call: its context and what ends its accounting (the RPC count the
/// server's graceful stop waits on, the connection's count of streaming calls). Dropping it
/// finishes the call (with OK, or UNKNOWN when the drop comes from a panic), then drops the
/// context (its stream), then ends that accounting, in the order a worker call does.
pub(crate) struct DetachedCall {
    ctx: ServerContext,
    finished: bool,
    /// The interceptors' end hooks, when the server has interceptors.
    ending: Option<Ending>,
    /// The status the call ended with, if it was sent (kept for the end hooks).
    status: Option<Status>,
    /// Messages sent.
    sent: u64,
    /// Declared after `ctx`: fields drop in order, so this runs once the stream is let go.
    _done: OnDrop,
}

/// Runs its closure when dropped.
struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl DetachedCall {
    pub(crate) fn new(
        ctx: ServerContext,
        done: Box<dyn FnOnce() + Send>,
        ending: Option<Ending>,
    ) -> DetachedCall {
        DetachedCall {
            ctx,
            finished: false,
            ending,
            status: None,
            sent: 0,
            _done: OnDrop(Some(done)),
        }
    }

    /// Sends the trailers with `status` (a no-op if the call already ended).
    pub(crate) fn finish(&mut self, status: Status) {
        if !self.finished {
            self.finished = true;
            let sent = self.ctx.finish(None, status);
            if self.ending.is_some() {
                self.status = sent;
            }
        }
    }
}

impl Drop for DetachedCall {
    fn drop(&mut self) {
        let status = if std::thread::panicking() {
            if !self.finished {
                crate::logging::log_limited!(
                    crate::logging::HANDLER_PANIC,
                    "grpc-sync: the handler of {} panicked (the client got UNKNOWN)",
                    self.ctx.method()
                );
            }
            Status::unknown("Exception calling application: the handler panicked")
        } else {
            Status::new(Code::Ok, "")
        };
        self.finish(status);
        if let Some(ending) = self.ending.take() {
            ending.run(&self.ctx, self.status.take(), self.sent);
        }
    }
}

/// Why [`ResponseSink::try_send`] sent nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrySendError {
    /// The client's flow-control window or the connection's output budget cannot take the
    /// message now: the client is not reading. Try later, or end the call.
    Full,
    /// The call is over (cancelled, reset, past its deadline, connection lost, or already
    /// finished); the status says why.
    Closed(Status),
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full => f.write_str("the client is not taking messages now"),
            TrySendError::Closed(s) => write!(f, "the call is over: {s}"),
        }
    }
}

impl std::error::Error for TrySendError {}

/// The response side of a detached server-streaming call: send messages from any thread,
/// without blocking, then finish.
///
/// Dropping the sink ends the call with OK. It is `Send`, so it can live in a shared
/// registry of subscribers; see the health service (`grpc_sync::health`) for one.
pub struct ResponseSink<T> {
    call: DetachedCall,
    _t: PhantomData<fn(&T)>,
}

impl<T: Message> ResponseSink<T> {
    pub(crate) fn new(call: DetachedCall) -> ResponseSink<T> {
        ResponseSink {
            call,
            _t: PhantomData,
        }
    }

    /// Sends one message now if the client's window and the connection's output budget take
    /// it whole (and the response head first, if not sent yet). Never blocks.
    ///
    /// Detached streams suit small messages (statuses, notifications): a message larger than
    /// the client's window (64 KiB unless it grew) is `Full` however fast the client reads.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when the message would have to wait (nothing was sent);
    /// [`TrySendError::Closed`] once the call is over, or when the message is over the send
    /// limit (the call is then ended with that status).
    pub fn try_send(&mut self, msg: &T) -> Result<(), TrySendError> {
        if self.call.finished {
            return Err(TrySendError::Closed(Status::failed_precondition(
                "the call was finished",
            )));
        }
        match self.call.ctx.try_send_message(msg) {
            Ok(true) => {
                self.call.sent += 1;
                Ok(())
            }
            Ok(false) => Err(TrySendError::Full),
            Err(status) => {
                if status.code() == Code::ResourceExhausted {
                    // Over the send limit: the stream is still healthy, end it with that.
                    self.call.finish(status.clone());
                }
                Err(TrySendError::Closed(status))
            }
        }
    }

    /// Ends the call with `status` (OK for a stream that ended normally).
    pub fn finish(mut self, status: Status) {
        self.call.finish(status);
    }

    /// Whether the call is still open: not finished, cancelled, reset, past its deadline or
    /// cut off with its connection.
    pub fn is_active(&self) -> bool {
        !self.call.finished && self.call.ctx.is_active()
    }

    /// The call's context: metadata, peer, deadline, and
    /// [`add_callback`](ServerContext::add_callback) to hear when the call ends.
    pub fn context(&self) -> &ServerContext {
        &self.call.ctx
    }
}

impl<T> std::fmt::Debug for ResponseSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSink")
            .field("method", &self.call.ctx.method())
            .field("finished", &self.call.finished)
            .finish_non_exhaustive()
    }
}
