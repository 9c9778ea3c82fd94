//! The OS readiness poller (epoll, kqueue or IOCP, through the `polling` crate), and the one
//! place in the crate with `unsafe` code.
//!
//! `polling::Poller::add` is an `unsafe fn`: the poller keeps the raw descriptor, so the socket
//! must be deleted from the poller before it is closed, or a later socket that reuses the
//! number would be reported under the old key. [`Registration`] keeps that promise by
//! construction: it holds its own `Arc` of the socket (so the descriptor cannot close while it
//! exists) and deletes it from the poller when dropped.
#![allow(unsafe_code)]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, Events, PollMode};

/// Something the poller can watch: a socket (TCP or Unix, stream or listener).
#[cfg(unix)]
pub(crate) trait Source: std::os::fd::AsFd + std::os::fd::AsRawFd + Send + Sync {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd + std::os::fd::AsRawFd + Send + Sync> Source for T {}
/// Something the poller can watch: a socket.
#[cfg(windows)]
pub(crate) trait Source:
    std::os::windows::io::AsSocket + std::os::windows::io::AsRawSocket + Send + Sync
{
}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket + std::os::windows::io::AsRawSocket + Send + Sync> Source
    for T
{
}

/// One I/O loop's poller. Level-triggered: a socket is reported for as long as it is ready and
/// its interest is on, so a loop may leave bytes unread for fairness and see them next round.
pub(crate) struct Poller {
    inner: polling::Poller,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            inner: polling::Poller::new()?,
        })
    }

    /// Waits for readiness events (or [`notify`](Self::notify), or `timeout`); `events` is
    /// cleared first.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        match self.inner.wait(events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            r => r,
        }
    }

    /// Wakes a thread blocked in [`wait`](Self::wait), from any thread.
    pub fn notify(&self) {
        let _ = self.inner.notify();
    }
}

/// A socket registered with a poller under a key; deregistered when dropped.
pub(crate) struct Registration<S: Source> {
    poller: Arc<Poller>,
    sock: Arc<S>,
    key: usize,
    read: bool,
    write: bool,
}

impl<S: Source> Registration<S> {
    /// Registers `sock` (already non-blocking) for the given interest.
    pub fn new(
        poller: Arc<Poller>,
        sock: Arc<S>,
        key: usize,
        read: bool,
        write: bool,
    ) -> io::Result<Registration<S>> {
        let ev = Event::new(key, read, write);
        // SAFETY: `polling` requires the source to be deleted from the poller before it is
        // closed. The registration holds an `Arc` of the socket, so the descriptor stays open
        // at least as long as the registration, and `Drop` deletes it first.
        #[cfg(unix)]
        unsafe {
            poller
                .inner
                .add_with_mode(sock.as_raw_fd(), ev, PollMode::Level)?;
        }
        // SAFETY: as above.
        #[cfg(windows)]
        unsafe {
            poller
                .inner
                .add_with_mode(sock.as_raw_socket(), ev, PollMode::Level)?;
        }
        Ok(Registration {
            poller,
            sock,
            key,
            read,
            write,
        })
    }

    /// The socket.
    pub fn sock(&self) -> &Arc<S> {
        &self.sock
    }

    /// Changes the interest, with a system call only if it differs from the current one.
    pub fn set_interest(&mut self, read: bool, write: bool) -> io::Result<()> {
        if (read, write) == (self.read, self.write) {
            return Ok(());
        }
        self.poller.inner.modify_with_mode(
            &*self.sock,
            Event::new(self.key, read, write),
            PollMode::Level,
        )?;
        self.read = read;
        self.write = write;
        Ok(())
    }
}

impl<S: Source> Drop for Registration<S> {
    fn drop(&mut self) {
        let _ = self.poller.inner.delete(&*self.sock);
    }
}

/// A fresh event buffer for [`Poller::wait`].
pub(crate) fn events() -> Events {
    Events::with_capacity(std::num::NonZeroUsize::new(1024).expect("non-zero"))
}

/// Wakes an I/O loop about one of its connections, from any thread: the connection has
/// output to write (a handler's response, a stream message) or its socket backlog changed.
///
/// Lock-free when a wake-up is already pending for the connection, so a fast stream costs one
/// atomic swap per message; otherwise a push on the loop's inbox and a poller notify.
pub(crate) struct Waker {
    inbox: Arc<Inbox>,
    key: usize,
    pending: std::sync::atomic::AtomicBool,
}

/// The messages other threads leave for one I/O loop, and its poller to wake it with.
pub(crate) struct Inbox {
    pub poller: Arc<Poller>,
    queue: std::sync::Mutex<Vec<usize>>,
}

impl Inbox {
    pub fn new(poller: Arc<Poller>) -> Arc<Inbox> {
        Arc::new(Inbox {
            poller,
            queue: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Takes the keys of the connections that asked for attention (`into` must be empty).
    pub fn take(&self, into: &mut Vec<usize>) {
        let mut q = crate::transport::driver::lock(&self.queue);
        std::mem::swap(&mut *q, into);
    }

    /// Adds the keys that asked since the last [`take`](Self::take) to `into`.
    pub fn take_more(&self, into: &mut Vec<usize>) {
        let mut q = crate::transport::driver::lock(&self.queue);
        into.append(&mut q);
    }
}

impl Waker {
    pub fn new(inbox: Arc<Inbox>, key: usize) -> Waker {
        Waker {
            inbox,
            key,
            pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Asks the loop to look at this connection.
    pub fn wake(&self) {
        use std::sync::atomic::Ordering;
        if self.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        crate::transport::driver::lock(&self.inbox.queue).push(self.key);
        self.inbox.poller.notify();
    }

    /// Called by the loop before it looks: a wake-up after this gets another look.
    pub fn clear(&self) {
        self.pending
            .store(false, std::sync::atomic::Ordering::Release);
    }
}
