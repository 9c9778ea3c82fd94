//! `CallFuture`: a call in flight, the Rust twin of grpcio's `stub.Method.future(req)`.
//!
//! No thread is spent per future: the response is read by whichever thread asks for the
//! result, and done-callbacks run on the connection's reader thread when the server finishes.
//! The exception is a unary call whose method has a retry policy: its attempts and back-offs
//! run on a thread of their own, which also runs the done-callbacks.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::retry_call::CancelCell;
use crate::status::Status;
use crate::transport::driver::{lock, StreamHandle};

type Completion<T> = Box<dyn FnOnce(Option<Instant>) -> Result<T, Status> + Send>;

struct Inner<T> {
    /// Reads the response to the end; run once, by the first thread that needs the result.
    pending: Mutex<Option<Completion<T>>>,
    outcome: Mutex<Option<Result<T, Status>>>,
    /// A non-owning view of the call's stream: for `is_done`, `cancel` and callbacks.
    probe: Option<StreamHandle>,
    /// A call running on a thread of its own (a unary call with a retry policy).
    spawned: Option<Arc<Spawned<T>>>,
}

/// What a future's own thread shares with it.
struct Spawned<T> {
    result: Mutex<Option<Result<T, Status>>>,
    done: Condvar,
    callbacks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    cancel: Arc<CancelCell>,
}

impl<T: Clone> Spawned<T> {
    /// Sets the outcome (unless a cancel already did), wakes the waiters and runs the
    /// callbacks.
    fn complete(&self, outcome: Result<T, Status>) {
        {
            let mut r = lock(&self.result);
            if r.is_none() {
                *r = Some(outcome);
            }
        }
        self.done.notify_all();
        let callbacks = std::mem::take(&mut *lock(&self.callbacks));
        for f in callbacks {
            f();
        }
    }

    fn wait(&self, deadline: Option<Instant>) -> Option<Result<T, Status>> {
        let mut r = lock(&self.result);
        loop {
            if let Some(o) = r.as_ref() {
                return Some(o.clone());
            }
            r = match deadline {
                None => self.done.wait(r).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.done
                        .wait_timeout(r, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
            };
        }
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Every clone is gone before the result was read: cancel, as for other futures.
        if let Some(sp) = &self.spawned {
            if lock(&sp.result).is_none() {
                sp.cancel.cancel();
            }
        }
    }
}

/// A call whose result will be available later.
///
/// Clones share the call. Dropping every clone before the result is read cancels the call.
pub struct CallFuture<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for CallFuture<T> {
    fn clone(&self) -> Self {
        CallFuture {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFuture")
            .field("done", &lock(&self.inner.outcome).is_some())
            .finish()
    }
}

impl<T: Clone + Send + 'static> CallFuture<T> {
    pub(crate) fn pending(probe: StreamHandle, completion: Completion<T>) -> CallFuture<T> {
        CallFuture {
            inner: Arc::new(Inner {
                pending: Mutex::new(Some(completion)),
                outcome: Mutex::new(None),
                probe: Some(probe),
                spawned: None,
            }),
        }
    }

    /// A future whose call `run` makes on a thread of its own; `cancel` stops it.
    pub(crate) fn spawned(
        cancel: Arc<CancelCell>,
        run: impl FnOnce() -> Result<T, Status> + Send + 'static,
    ) -> CallFuture<T> {
        let sp = Arc::new(Spawned {
            result: Mutex::new(None),
            done: Condvar::new(),
            callbacks: Mutex::new(Vec::new()),
            cancel,
        });
        let shared = sp.clone();
        let started = std::thread::Builder::new()
            .name("grpc-retrying-call".into())
            .spawn(move || shared.complete(run()));
        if let Err(e) = started {
            sp.complete(Err(Status::unavailable(format!(
                "could not start the call's thread: {e}"
            ))));
        }
        CallFuture {
            inner: Arc::new(Inner {
                pending: Mutex::new(None),
                outcome: Mutex::new(None),
                probe: None,
                spawned: Some(sp),
            }),
        }
    }

    pub(crate) fn ready(outcome: Result<T, Status>) -> CallFuture<T> {
        CallFuture {
            inner: Arc::new(Inner {
                pending: Mutex::new(None),
                outcome: Mutex::new(Some(outcome)),
                probe: None,
                spawned: None,
            }),
        }
    }

    fn complete(&self, deadline: Option<Instant>) -> Option<Result<T, Status>> {
        if let Some(sp) = &self.inner.spawned {
            return sp.wait(deadline);
        }
        if let Some(o) = lock(&self.inner.outcome).as_ref() {
            return Some(o.clone());
        }
        let mut pending = lock(&self.inner.pending);
        // Another thread may have completed it while we waited for `pending`.
        if let Some(o) = lock(&self.inner.outcome).as_ref() {
            return Some(o.clone());
        }
        if let Some(d) = deadline {
            if !self.wait_finished(d) {
                return None;
            }
        }
        let f = pending.take()?;
        let o = f(None);
        *lock(&self.inner.outcome) = Some(o.clone());
        Some(o)
    }

    fn wait_finished(&self, deadline: Instant) -> bool {
        let Some(p) = &self.inner.probe else {
            return true;
        };
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        p.on_finished(Box::new(move || {
            let _ = tx.send(());
        }));
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Blocks until the call ends and returns its outcome (grpcio's `future.result()`).
    /// May be called any number of times, from any clone.
    pub fn result(&self) -> Result<T, Status> {
        self.complete(None)
            .unwrap_or_else(|| Err(Status::internal("the call's result was lost")))
    }

    /// Waits at most `timeout` for the call to end: `None` if it is still running (grpcio
    /// raises `FutureTimeoutError` there; the call goes on).
    pub fn result_timeout(&self, timeout: Duration) -> Option<Result<T, Status>> {
        self.complete(Some(Instant::now() + timeout))
    }

    /// Whether the call has ended (the result is ready without blocking).
    pub fn is_done(&self) -> bool {
        if let Some(sp) = &self.inner.spawned {
            return lock(&sp.result).is_some();
        }
        if lock(&self.inner.outcome).is_some() {
            return true;
        }
        match &self.inner.probe {
            Some(p) => p.is_finished(),
            None => true,
        }
    }

    /// Cancels the call (RST_STREAM CANCEL); the result becomes CANCELLED. Returns false if
    /// the call had already ended.
    pub fn cancel(&self) -> bool {
        if self.is_done() {
            return false;
        }
        if let Some(sp) = &self.inner.spawned {
            {
                let mut r = lock(&sp.result);
                if r.is_none() {
                    *r = Some(Err(Status::cancelled("Locally cancelled by application!")));
                }
            }
            sp.done.notify_all();
            sp.cancel.cancel();
            return true;
        }
        if let Some(p) = &self.inner.probe {
            p.reset(crate::h2::error::Reason::CANCEL);
        }
        let mut o = lock(&self.inner.outcome);
        if o.is_none() {
            *o = Some(Err(Status::cancelled("Locally cancelled by application!")));
        }
        drop(o);
        // The reading will never run: dropping it now tells the call's interceptors it
        // ended. (A thread that holds it is reading, and sees the reset.)
        if let Ok(mut pending) = self.inner.pending.try_lock() {
            drop(pending.take());
        }
        true
    }

    /// Runs `f` once the call has ended (at once, on this thread, if it already has).
    ///
    /// Callbacks run on the connection's reader thread: keep them short and never wait in them
    /// for another call on the same channel.
    pub fn add_done_callback(&self, f: impl FnOnce(&CallFuture<T>) + Send + 'static) {
        let me = self.clone();
        if let Some(sp) = &self.inner.spawned {
            let mut callbacks = lock(&sp.callbacks);
            if lock(&sp.result).is_none() {
                callbacks.push(Box::new(move || f(&me)));
                return;
            }
            drop(callbacks);
            f(&me);
            return;
        }
        match &self.inner.probe {
            Some(p) if lock(&self.inner.outcome).is_none() => {
                p.on_finished(Box::new(move || f(&me)));
            }
            _ => f(&me),
        }
    }
}
