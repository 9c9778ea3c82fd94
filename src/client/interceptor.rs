//! Client interceptors: code that runs around every call of a channel (grpcio's
//! `grpc.intercept_channel`).
//!
//! ```
//! use std::time::Duration;
//! use grpc_sync::client::{intercept_channel, CallEnd, ClientCallDetails, ClientInterceptor};
//! use grpc_sync::{Channel, Status};
//!
//! /// Tags every call and gives it a deadline if it has none.
//! struct Tag;
//!
//! impl ClientInterceptor for Tag {
//!     fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
//!         call.metadata_mut()
//!             .insert("x-client", "inventory/2")
//!             .map_err(|e| Status::internal(e.to_string()))?;
//!         if call.timeout().is_none() {
//!             call.set_timeout(Some(Duration::from_secs(5)));
//!         }
//!         Ok(())
//!     }
//!
//!     fn after_call(&self, end: &CallEnd<'_>) {
//!         eprintln!("{} {:?} in {:?}", end.method(), end.status().code(), end.elapsed());
//!     }
//! }
//!
//! let channel = Channel::insecure("localhost:50051")?;
//! // Generated stubs take the intercepted channel like any other.
//! let channel = intercept_channel(channel, [std::sync::Arc::new(Tag) as _]);
//! # drop(channel);
//! # Ok::<(), Status>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{CallCredentials, CallOptions, Channel};
use crate::metadata::MetadataMap;
use crate::status::Status;

/// The kind of a call, as its method was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStreaming,
    /// One request, a stream of responses.
    ServerStreaming,
    /// Streams both ways.
    BidiStreaming,
}

/// A call about to be sent, as an interceptor may change it: grpcio's `ClientCallDetails`.
///
/// Changes are seen by the interceptors after this one and then sent.
#[derive(Debug)]
pub struct ClientCallDetails<'a> {
    method: &'static str,
    kind: CallKind,
    options: &'a mut CallOptions,
}

impl ClientCallDetails<'_> {
    /// The method's path: `/package.Service/Method`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The kind of call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The request metadata so far.
    pub fn metadata(&self) -> &MetadataMap {
        &self.options.metadata
    }

    /// The request metadata, to add, change or remove entries.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.options.metadata
    }

    /// The call's timeout (its deadline, counted from when the interceptors are done).
    pub fn timeout(&self) -> Option<Duration> {
        self.options.timeout
    }

    /// Sets or removes the call's timeout.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.options.timeout = timeout;
    }

    /// Whether the call waits for a connection instead of failing fast.
    pub fn wait_for_ready(&self) -> bool {
        self.options.wait_for_ready
    }

    /// Sets `wait_for_ready`.
    pub fn set_wait_for_ready(&mut self, on: bool) {
        self.options.wait_for_ready = on;
    }

    /// The call's own call credentials (sent after the channel's).
    pub fn credentials(&self) -> Option<&CallCredentials> {
        self.options.credentials.as_ref()
    }

    /// Sets or removes the call's own call credentials.
    pub fn set_credentials(&mut self, credentials: Option<CallCredentials>) {
        self.options.credentials = credentials;
    }
}

/// How a call ended, as its interceptors are told.
#[derive(Debug)]
pub struct CallEnd<'a> {
    method: &'static str,
    kind: CallKind,
    status: &'a Status,
    elapsed: Duration,
}

impl CallEnd<'_> {
    /// The method's path: `/package.Service/Method`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The kind of call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The final status: code `Ok` for success, else the error the caller got (CANCELLED for
    /// a stream or future dropped or cancelled before its end).
    pub fn status(&self) -> &Status {
        self.status
    }

    /// The time from the start of the call (before the first interceptor) to its end.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

/// Code that runs around every call of a channel: grpcio's client interceptors, as two hooks.
///
/// [`before_call`](Self::before_call) runs on the calling thread before anything is sent: it
/// may change the request metadata, the timeout, `wait_for_ready` and the call credentials,
/// or fail the call. [`after_call`](Self::after_call) runs exactly once per call whose
/// `before_call` ran (including a call that `before_call` failed), when the call ends: a unary
/// or client-streaming call when its result is known; a response stream when it ends, fails,
/// is cancelled or dropped; a [`CallFuture`](crate::CallFuture) when its result is read, or it
/// is cancelled or dropped.
///
/// Interceptors run in the order given to [`intercept_channel`] for `before_call`, and in the
/// reverse order for `after_call`, as nested wrappers would. A panic in `before_call` fails the
/// call with UNKNOWN; a panic in `after_call` is caught and ignored (it may run on a
/// connection's reader thread, which must not die).
///
/// `after_call` may run on another thread than the call (for instance, a future's done
/// callback reading the result): keep it short and never make a call on the same channel
/// from it.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Runs before the call is sent; an `Err` fails the call with that status, before any
    /// byte goes to the server (and before later interceptors run).
    ///
    /// # Errors
    /// The status the call fails with.
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        let _ = call;
        Ok(())
    }

    /// Runs once when the call has ended.
    fn after_call(&self, end: &CallEnd<'_>) {
        let _ = end;
    }
}

impl<T: ClientInterceptor + ?Sized> ClientInterceptor for Arc<T> {
    fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
        (**self).before_call(call)
    }

    fn after_call(&self, end: &CallEnd<'_>) {
        (**self).after_call(end)
    }
}

/// A channel's interceptors, outermost first.
pub(crate) type Interceptors = Arc<[Arc<dyn ClientInterceptor>]>;

/// `channel` with `interceptors` around its calls (grpcio's `grpc.intercept_channel`).
///
/// The result shares `channel`'s connection; stubs made from it see the interceptors on every
/// call, of every kind. The first interceptor is the outermost: its `before_call` runs first
/// and its `after_call` last. If `channel` already had interceptors, the new ones wrap them
/// (they run before them), as `intercept_channel(intercept_channel(ch, a), b)` does in grpcio.
///
/// ```
/// use std::sync::Arc;
/// use grpc_sync::client::{intercept_channel, ClientInterceptor};
/// struct Noop;
/// impl ClientInterceptor for Noop {}
/// let ch = grpc_sync::Channel::insecure("localhost:50051").unwrap();
/// let ch = intercept_channel(ch, [Arc::new(Noop) as Arc<dyn ClientInterceptor>]);
/// # drop(ch);
/// ```
pub fn intercept_channel(
    channel: Channel,
    interceptors: impl IntoIterator<Item = Arc<dyn ClientInterceptor>>,
) -> Channel {
    let mut list: Vec<Arc<dyn ClientInterceptor>> = interceptors.into_iter().collect();
    if list.is_empty() {
        return channel;
    }
    if let Some(old) = &channel.interceptors {
        list.extend(old.iter().cloned());
    }
    Channel {
        inner: channel.inner,
        interceptors: Some(list.into()),
    }
}

impl Channel {
    /// This channel with `interceptor` around its calls: `intercept_channel(self,
    /// [Arc::new(interceptor)])`. It wraps the interceptors the channel already had, so its
    /// `before_call` runs before theirs.
    ///
    /// ```
    /// use grpc_sync::client::{CallEnd, ClientInterceptor};
    /// struct Log;
    /// impl ClientInterceptor for Log {
    ///     fn after_call(&self, end: &CallEnd<'_>) {
    ///         println!("{} -> {:?}", end.method(), end.status().code());
    ///     }
    /// }
    /// let ch = grpc_sync::Channel::insecure("localhost:50051").unwrap().with_interceptor(Log);
    /// # drop(ch);
    /// ```
    pub fn with_interceptor(self, interceptor: impl ClientInterceptor) -> Channel {
        intercept_channel(self, [Arc::new(interceptor) as Arc<dyn ClientInterceptor>])
    }
}

/// One call's interceptors: reports its end to those whose `before_call` ran, exactly once
/// (when dropped unreported: as cancelled).
pub(crate) struct CallGuard {
    interceptors: Interceptors,
    /// How many interceptors' `before_call` ran.
    started: usize,
    method: &'static str,
    kind: CallKind,
    start: Instant,
    done: bool,
}

impl CallGuard {
    /// Runs the `before_call` hooks in order on `options`; stops at the first that fails.
    pub(crate) fn start(
        interceptors: &Interceptors,
        method: &'static str,
        kind: CallKind,
        options: &mut CallOptions,
    ) -> (CallGuard, Result<(), Status>) {
        let mut guard = CallGuard {
            interceptors: interceptors.clone(),
            started: 0,
            method,
            kind,
            start: Instant::now(),
            done: false,
        };
        let mut details = ClientCallDetails {
            method,
            kind,
            options,
        };
        for i in interceptors.iter() {
            guard.started += 1;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                i.before_call(&mut details)
            }));
            let r = r.unwrap_or_else(|p| {
                Err(Status::unknown(format!(
                    "a client interceptor panicked: {}",
                    crate::status::panic_message(p.as_ref())
                )))
            });
            if r.is_err() {
                return (guard, r);
            }
        }
        (guard, Ok(()))
    }

    /// Tells the interceptors the call ended with `status` (once; later calls do nothing).
    pub(crate) fn finish(&mut self, status: &Status) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let end = CallEnd {
            method: self.method,
            kind: self.kind,
            status,
            elapsed: self.start.elapsed(),
        };
        for i in self.interceptors[..self.started].iter().rev() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| i.after_call(&end)));
        }
    }

    /// [`finish`](Self::finish) with the outcome of a call.
    pub(crate) fn finish_with<T>(&mut self, outcome: &Result<T, Status>) {
        match outcome {
            Ok(_) => self.finish(&Status::ok("")),
            Err(s) => self.finish(s),
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            self.finish(&Status::cancelled("Locally cancelled by application!"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Log(Arc<Mutex<Vec<String>>>, &'static str, bool);

    impl ClientInterceptor for Log {
        fn before_call(&self, call: &mut ClientCallDetails<'_>) -> Result<(), Status> {
            self.0.lock().unwrap().push(format!("{} before", self.1));
            call.metadata_mut().append("x-seen", self.1).unwrap();
            if self.2 {
                return Err(Status::permission_denied(self.1));
            }
            Ok(())
        }
        fn after_call(&self, end: &CallEnd<'_>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} after {:?}", self.1, end.status().code()));
        }
    }

    fn list(log: &Arc<Mutex<Vec<String>>>, fail_b: bool) -> Interceptors {
        let a: Arc<dyn ClientInterceptor> = Arc::new(Log(log.clone(), "a", false));
        let b: Arc<dyn ClientInterceptor> = Arc::new(Log(log.clone(), "b", fail_b));
        let c: Arc<dyn ClientInterceptor> = Arc::new(Log(log.clone(), "c", false));
        Arc::from([a, b, c])
    }

    #[test]
    fn hooks_run_in_order_then_in_reverse_once() {
        let log = Arc::default();
        let mut opts = CallOptions::new();
        let (mut g, r) = CallGuard::start(&list(&log, false), "/s.S/M", CallKind::Unary, &mut opts);
        r.unwrap();
        assert_eq!(
            opts.metadata.get_all("x-seen").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        g.finish(&Status::ok(""));
        g.finish(&Status::internal("again"));
        drop(g);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a before",
                "b before",
                "c before",
                "c after Ok",
                "b after Ok",
                "a after Ok"
            ]
        );
    }

    #[test]
    fn a_failing_hook_stops_the_rest_and_those_started_see_the_end() {
        let log = Arc::default();
        let mut opts = CallOptions::new();
        let (g, r) = CallGuard::start(&list(&log, true), "/s.S/M", CallKind::Unary, &mut opts);
        assert_eq!(r.unwrap_err().code(), crate::Code::PermissionDenied);
        drop(g);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a before",
                "b before",
                "b after Cancelled",
                "a after Cancelled"
            ]
        );
    }
}
