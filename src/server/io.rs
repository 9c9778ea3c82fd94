//! The server's I/O threads: each runs a readiness loop over non-blocking sockets.
//!
//! A loop owns its connections (a map of small structs, one fd each) and, on the first loop,
//! the listening sockets: accepting is part of the loop, and accepted connections are spread
//! over the loops in turn. Per round it waits on the poller until a socket is ready, another
//! thread asks for a connection's attention (output to write: see `transport::poll::Waker`) or
//! the nearest timer is due; then it reads, writes and serves timers, each connection telling
//! it what readiness and which instant it wants next.
//!
//! Handlers do not run here, with one exception: a quick unary handler whose request this
//! round completed runs on the loop's thread when a worker permit is free (no hand-off at all).
//! Meanwhile the loop itself (the [`IoLoop`] value) waits on a [`Seat`]; if the handler is
//! still running after about a millisecond, or is about to block, the watchdog moves the loop
//! to a spare thread, so the other connections never wait longer than that on one handler
//! (`server::handoff`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::server::conn::{Next, ServerConn};
use crate::server::dispatch::{queue_job, Job};
use crate::server::handoff::Seat;
use crate::server::ServerCore;
use crate::transport::driver::{lock, set_before_block, BeforeBlock};
use crate::transport::poll::{self, Inbox, Poller, Registration, Waker};
use crate::transport::socket::Socket;

/// Keys at or above this are listeners (`usize::MAX` itself is the poller's own).
const LISTENER_KEYS: usize = usize::MAX / 2;

/// How long accepting pauses after an error such as "too many open files".
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections accepted per listener event, at most, before the loop looks at the others.
const ACCEPT_BATCH: usize = 64;

/// A bound listening socket.
pub(crate) enum ListenSock {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

impl ListenSock {
    /// Accepts a connection, with its peer as gRPC prints it.
    fn accept(&self) -> io::Result<(Socket, String)> {
        match self {
            ListenSock::Tcp(l) => l.accept().map(|(s, a)| (Socket::Tcp(s), peer_name(a))),
            #[cfg(unix)]
            ListenSock::Unix(l) => l.accept().map(|(s, _)| {
                let peer = Socket::unix_peer(&s);
                (Socket::Unix(s), peer)
            }),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            ListenSock::Tcp(l) => l.set_nonblocking(true),
            #[cfg(unix)]
            ListenSock::Unix(l) => l.set_nonblocking(true),
        }
    }

    fn name(&self) -> String {
        match self {
            ListenSock::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            #[cfg(unix)]
            ListenSock::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix:".into()),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for ListenSock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            ListenSock::Tcp(l) => l.as_fd(),
            ListenSock::Unix(l) => l.as_fd(),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for ListenSock {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            ListenSock::Tcp(l) => l.as_raw_fd(),
            ListenSock::Unix(l) => l.as_raw_fd(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for ListenSock {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        match self {
            ListenSock::Tcp(l) => l.as_socket(),
        }
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsRawSocket for ListenSock {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        match self {
            ListenSock::Tcp(l) => l.as_raw_socket(),
        }
    }
}

/// `ipv4:127.0.0.1:53412` / `ipv6:[::1]:53412`, as gRPC prints peers.
fn peer_name(a: std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(a) => format!("ipv4:{a}"),
        std::net::SocketAddr::V6(a) => format!("ipv6:{a}"),
    }
}

/// A connection accepted by one loop for another.
type Accepted = (Socket, String, Option<Arc<rustls::ServerConfig>>);

/// A listening socket and the TLS configuration of its port.
pub(crate) struct Listener {
    pub sock: ListenSock,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What other threads hand one loop.
struct LoopHandle {
    inbox: Arc<Inbox>,
    /// Connections accepted by another loop for this one.
    accepted: Mutex<Vec<Accepted>>,
    /// Listeners added while the server runs (first loop only).
    listeners: Mutex<Vec<Listener>>,
}

/// All the I/O loops of a server.
pub(crate) struct IoLoops {
    handles: Vec<Arc<LoopHandle>>,
    /// Loops still running, for the stopper to wait on.
    alive: Mutex<usize>,
    gone: Condvar,
    /// Set by the stopper once every connection is closed: the loops end.
    exit: std::sync::atomic::AtomicBool,
}

impl IoLoops {
    /// Starts `n` loop threads; `listeners` go to the first.
    pub fn start(
        core: &Arc<ServerCore>,
        n: usize,
        listeners: Vec<Listener>,
    ) -> io::Result<Arc<IoLoops>> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            handles.push(Arc::new(LoopHandle {
                inbox: Inbox::new(Arc::new(Poller::new()?)),
                accepted: Mutex::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
            }));
        }
        let loops = Arc::new(IoLoops {
            handles,
            alive: Mutex::new(0),
            gone: Condvar::new(),
            exit: std::sync::atomic::AtomicBool::new(false),
        });
        lock(&loops.handles[0].listeners).extend(listeners);
        for i in 0..n {
            let lp = Box::new(IoLoop {
                index: i,
                core: core.clone(),
                loops: loops.clone(),
                me: loops.handles[i].clone(),
                seat: Seat::new(core.handoff.clone(), resume),
                conns: Vec::new(),
                free: Vec::new(),
                listeners: Vec::new(),
                timers: BinaryHeap::new(),
                events: poll::events(),
                ready: Vec::new(),
                scratch: vec![0u8; 64 * 1024],
                woken: Vec::new(),
                jobs: Vec::new(),
                batch: Arc::new(Mutex::new(VecDeque::new())),
                turn: 0,
                busy: false,
            });
            *lock(&loops.alive) += 1;
            let handoff = core.handoff.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("grpc-io-{i}"))
                .spawn(move || {
                    if run(lp) == End::Orphaned {
                        // The loop moved to another thread while this one ran a handler: this
                        // one now waits to take over a loop from another.
                        handoff.become_spare();
                    }
                });
            if let Err(e) = spawned {
                *lock(&loops.alive) -= 1;
                return Err(e);
            }
        }
        loops.handles[0].inbox.poller.notify();
        Ok(loops)
    }

    /// Hands a new listener to the first loop (a port added while the server runs).
    pub fn add_listener(&self, l: Listener) {
        lock(&self.handles[0].listeners).push(l);
        self.handles[0].inbox.poller.notify();
    }

    /// Wakes every loop (the server is stopping: they close their listeners).
    pub fn wake_all(&self) {
        for h in &self.handles {
            h.inbox.poller.notify();
        }
    }

    /// Ends the loops (every connection they still have is closed) and waits for them, at
    /// most until `deadline`.
    pub fn exit(&self, deadline: Instant) {
        self.exit.store(true, Ordering::Release);
        crate::logging::flush_suppressed();
        self.wake_all();
        let mut alive = lock(&self.alive);
        while *alive > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            alive = self
                .gone
                .wait_timeout(alive, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

struct Entry {
    conn: ServerConn,
    reg: Registration<Socket>,
    waker: Arc<Waker>,
    /// The earliest instant this connection has in the timer heap.
    scheduled: Option<Instant>,
}

struct Listening {
    reg: Registration<ListenSock>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Accepting paused after an error, until then.
    paused_until: Option<Instant>,
    /// The error was reported already (once per listener, not once per attempt).
    reported: bool,
}

/// One I/O loop: a value, so that it can move to another thread while the thread that ran
/// it runs an inline handler.
pub(crate) struct IoLoop {
    index: usize,
    core: Arc<ServerCore>,
    loops: Arc<IoLoops>,
    me: Arc<LoopHandle>,
    seat: Arc<Seat<Box<IoLoop>>>,
    conns: Vec<Option<Entry>>,
    free: Vec<usize>,
    listeners: Vec<Listening>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    events: polling::Events,
    /// This round's events, copied out of `events`.
    ready: Vec<(usize, bool, bool)>,
    /// Read buffer shared by the loop's connections.
    scratch: Vec<u8>,
    woken: Vec<usize>,
    /// Unary handlers to run inline after this round.
    jobs: Vec<Job>,
    /// The handlers of the round being run inline, not started yet. Shared with the thread
    /// that runs them: if the loop moves to another thread meanwhile, it hands what is left
    /// to the pool, so they do not wait behind a handler that blocked.
    batch: Arc<Mutex<VecDeque<Job>>>,
    /// The loop that gets the next accepted connection.
    turn: usize,
    /// The last inbox round had connections to write for.
    busy: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server stopped.
    Ended,
    /// This thread ran a handler for long enough that the loop moved to another thread.
    Orphaned,
}

/// Continues a loop on a spare thread (the role moved here from a thread running a handler).
/// If it moves on again, this thread just goes back to being a spare.
fn resume(lp: Box<IoLoop>) {
    // The thread running this round's handlers is stuck in one of them: the rest go to the
    // pool now rather than wait for it.
    let left: Vec<Job> = lock(&lp.batch).drain(..).collect();
    for job in left {
        queue_job(&lp.core, job);
    }
    let _ = run(lp);
}

fn run(mut lp: Box<IoLoop>) -> End {
    loop {
        if lp.loops.exit.load(Ordering::Acquire) {
            lp.shutdown();
            return End::Ended;
        }
        let timeout = lp
            .timers
            .peek()
            .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
        let poller = lp.me.inbox.poller.clone();
        if let Err(e) = poller.wait(&mut lp.events, timeout) {
            log::error!("grpc-sync: I/O loop {}: poll failed: {e}", lp.index);
        }
        let now = Instant::now();
        lp.ready.clear();
        let IoLoop { events, ready, .. } = &mut *lp;
        ready.extend(events.iter().map(|e| (e.key, e.readable, e.writable)));
        for i in 0..lp.ready.len() {
            let (key, readable, writable) = lp.ready[i];
            if key >= LISTENER_KEYS {
                lp.accept(key - LISTENER_KEYS, now);
            } else {
                lp.conn_event(key, readable, writable, now);
            }
        }
        lp.inbox(now);
        lp.timers_due(now);
        if lp.jobs.is_empty() {
            continue;
        }
        match run_inline(lp) {
            Some(back) => lp = back,
            None => {
                return End::Orphaned;
            }
        }
    }
}

/// Runs this round's quick unary handlers on this thread, each with a worker permit, the
/// loop parked on its seat meanwhile. `None` if the loop moved to another thread (the rest of
/// the handlers then go to the pool).
///
/// The loop is parked once for the whole round (the watchdog's millisecond counts from then):
/// a park and an unpark per handler cost as much as a small handler.
fn run_inline(mut lp: Box<IoLoop>) -> Option<Box<IoLoop>> {
    let core = lp.core.clone();
    let batch = lp.batch.clone();
    lock(&batch).extend(lp.jobs.drain(..));
    let seat = lp.seat.clone();
    seat.park(lp);
    set_before_block(Some(seat.clone() as Arc<dyn BeforeBlock>));
    let mut moved = false;
    loop {
        // Taken one at a time: the loop, if it moves, takes the ones not started.
        let Some(job) = lock(&batch).pop_front() else {
            break;
        };
        let Some(permit) = core.pool.try_inline() else {
            queue_job(&core, job);
            continue;
        };
        permit.run(job);
        if !seat.is_parked() {
            // The loop went to another thread, and gave the rest to the pool.
            moved = true;
            break;
        }
    }
    set_before_block(None);
    if moved {
        return None;
    }
    seat.unpark()
}

impl IoLoop {
    fn conn_event(&mut self, key: usize, readable: bool, writable: bool, now: Instant) {
        let Some(Some(e)) = self.conns.get_mut(key) else {
            return;
        };
        let mut next = Next::Continue;
        if writable {
            next = e.conn.on_writable(now);
        }
        if readable && next == Next::Continue {
            next = e.conn.on_readable(&mut self.scratch, now);
        }
        self.settle(key, next);
    }

    /// After anything happened to a connection: drop it if it is over, else update its
    /// interest and timer, and collect its inline handlers.
    fn settle(&mut self, key: usize, next: Next) {
        let Some(Some(e)) = self.conns.get_mut(key) else {
            return;
        };
        e.conn.take_inline(&mut self.jobs);
        if next == Next::Close {
            self.conns[key] = None;
            self.free.push(key);
            return;
        }
        let wants = e.conn.wants();
        if e.reg.set_interest(wants.read, wants.write).is_err() {
            e.conn.close();
            self.conns[key] = None;
            self.free.push(key);
            return;
        }
        if let Some(t) = wants.timer {
            if !matches!(e.scheduled, Some(s) if s <= t) {
                e.scheduled = Some(t);
                self.timers.push(Reverse((t, key)));
            }
        }
    }

    /// Connections other threads asked about, accepted connections from other loops, and
    /// listeners.
    fn inbox(&mut self, now: Instant) {
        self.me.inbox.take(&mut self.woken);
        if self.woken.is_empty() {
            self.busy = false;
        } else if std::mem::replace(&mut self.busy, true) {
            // Asked to write again right after the last round: a producer (a stream's
            // handler) is running ahead of the writes. Letting it queue what it has ready
            // first turns many small writes into a few large ones.
            std::thread::yield_now();
            self.me.inbox.take_more(&mut self.woken);
        }
        let woken = std::mem::take(&mut self.woken);
        for &key in &woken {
            let Some(Some(e)) = self.conns.get_mut(key) else {
                continue;
            };
            e.waker.clear();
            let next = e.conn.on_writable(now);
            self.settle(key, next);
        }
        self.woken = woken;
        self.woken.clear();
        let accepted = std::mem::take(&mut *lock(&self.me.accepted));
        for (sock, peer, tls) in accepted {
            self.add_conn(sock, peer, tls, now);
        }
        let stopping = self.core.stopping.load(Ordering::Acquire);
        if stopping {
            // Stop accepting: the listening sockets close here.
            self.listeners.clear();
            lock(&self.me.listeners).clear();
            return;
        }
        let new = std::mem::take(&mut *lock(&self.me.listeners));
        for l in new {
            let key = LISTENER_KEYS + self.listeners.len();
            let name = l.sock.name();
            let reg = l.sock.set_nonblocking().and_then(|_| {
                Registration::new(
                    self.me.inbox.poller.clone(),
                    Arc::new(l.sock),
                    key,
                    true,
                    false,
                )
            });
            match reg {
                Ok(reg) => self.listeners.push(Listening {
                    reg,
                    tls: l.tls,
                    paused_until: None,
                    reported: false,
                }),
                Err(e) => log::error!("grpc-sync: cannot poll the listener {name}: {e}"),
            }
        }
    }

    fn accept(&mut self, j: usize, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = self.listeners.get_mut(j) else {
                return;
            };
            match l.reg.sock().accept() {
                Ok((sock, peer)) => {
                    let tls = l.tls.clone();
                    if let Err(e) = sock.set_nonblocking() {
                        log::warn!("grpc-sync: dropping an accepted connection: {e}");
                        continue;
                    }
                    let n = self.loops.handles.len();
                    let target = self.turn % n;
                    self.turn = self.turn.wrapping_add(1);
                    if target == self.index {
                        self.add_conn(sock, peer, tls, now);
                    } else {
                        let h = &self.loops.handles[target];
                        lock(&h.accepted).push((sock, peer, tls));
                        h.inbox.poller.notify();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: keep serving the connections we have,
                    // and try again after a pause instead of spinning on a ready listener.
                    if !l.reported {
                        l.reported = true;
                        log::warn!(
                            "grpc-sync: accepting on {} failed: {e}; pausing accepts for {:?} \
                             at a time while this lasts (raise the open-files limit?)",
                            l.reg.sock().name(),
                            ACCEPT_BACKOFF
                        );
                    }
                    let _ = l.reg.set_interest(false, false);
                    let until = now + ACCEPT_BACKOFF;
                    l.paused_until = Some(until);
                    self.timers.push(Reverse((until, LISTENER_KEYS + j)));
                    return;
                }
            }
        }
    }

    fn add_conn(
        &mut self,
        sock: Socket,
        peer: String,
        tls: Option<Arc<rustls::ServerConfig>>,
        now: Instant,
    ) {
        let key = match self.free.pop() {
            Some(k) => k,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let sock = Arc::new(sock);
        let id = self.core.next_conn.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(Waker::new(self.me.inbox.clone(), key));
        let conn = match ServerConn::new(
            self.core.clone(),
            sock.clone(),
            peer,
            id,
            waker.clone(),
            tls.as_ref(),
            now,
        ) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("grpc-sync: cannot start TLS on an accepted connection: {e}");
                self.free.push(key);
                return;
            }
        };
        let reg = match Registration::new(self.me.inbox.poller.clone(), sock, key, true, false) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("grpc-sync: cannot poll an accepted connection: {e}");
                self.free.push(key);
                return;
            }
        };
        self.conns[key] = Some(Entry {
            conn,
            reg,
            waker,
            scheduled: None,
        });
        self.settle(key, Next::Continue);
    }

    fn timers_due(&mut self, now: Instant) {
        while let Some(&Reverse((t, key))) = self.timers.peek() {
            if t > now {
                return;
            }
            self.timers.pop();
            if key >= LISTENER_KEYS {
                if let Some(l) = self.listeners.get_mut(key - LISTENER_KEYS) {
                    if l.paused_until.is_some_and(|u| u <= now) {
                        l.paused_until = None;
                        let _ = l.reg.set_interest(true, false);
                    }
                }
                continue;
            }
            let Some(Some(e)) = self.conns.get_mut(key) else {
                continue;
            };
            if e.scheduled != Some(t) {
                continue; // superseded by an earlier one
            }
            e.scheduled = None;
            let next = e.conn.handle_timeout(now);
            self.settle(key, next);
        }
    }

    /// The server stopped: every connection still here is closed.
    fn shutdown(&mut self) {
        for e in self.conns.iter_mut().filter_map(|e| e.take()) {
            let mut e = e;
            e.conn.close();
        }
        self.listeners.clear();
        let mut alive = lock(&self.loops.alive);
        *alive -= 1;
        self.loops.gone.notify_all();
    }
}
