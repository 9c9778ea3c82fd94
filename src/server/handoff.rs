//! Moving a connection's reading to another thread while its reader thread runs a handler.
//!
//! A unary request costs a thread hand-off when the reader gives it to a pool worker: a futex
//! wake and a context switch, as much CPU as the rest of the RPC. So when a worker permit is
//! free, the reader runs the handler itself and writes the response, then goes back to reading
//! (`server::conn`). While it runs the handler nobody reads the connection, which is harmless for
//! a quick handler and wrong for a slow one (pings, cancellations, deadlines and other streams
//! would wait for it). Before running it, the reader leaves its reading role on the
//! connection's [`Seat`]; when it is done it takes the role back. If the handler takes longer
//! than [`Handoff`]'s threshold, or is about to block on a stream, the role moves to another
//! thread instead (a spare one if any), and the reader thread becomes a spare once its handler
//! returns. This is the leader/follower pattern with the follower woken only when needed: the
//! common fast RPC costs no hand-off at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::transport::driver::{lock, BeforeBlock};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a spare thread waits for work before it exits.
const SPARE_IDLE: Duration = Duration::from_secs(5);
/// How long the watchdog keeps ticking after the last park before it sleeps until woken.
const WATCH_IDLE: Duration = Duration::from_millis(100);

/// A parked role that the watchdog may move to another thread.
trait Parked: Send + Sync {
    /// Takes the role if it is still parked under `epoch`; `None` if it was taken back.
    fn take_if(&self, epoch: u64) -> Option<Job>;
    /// The current epoch (changes on every park and unpark).
    fn epoch(&self) -> u64;
}

/// One server's watchdog and spare threads.
pub(crate) struct Handoff {
    /// A parked role older than this moves to another thread.
    threshold: Duration,
    reg: Mutex<Registry>,
    cv: Condvar,
    spares: Mutex<Vec<Arc<Spare>>>,
    max_spares: usize,
    stopped: AtomicBool,
    watchdog_started: AtomicBool,
    /// The watchdog thread could not be started.
    no_watchdog: AtomicBool,
}

#[derive(Default)]
struct Registry {
    /// Parks not yet known to be over: (seat, epoch, parked at).
    entries: Vec<(Weak<dyn Parked>, u64, Instant)>,
    /// The watchdog sleeps without a timeout: a park must wake it.
    sleeping: bool,
}

#[derive(Default)]
struct Spare {
    job: Mutex<Option<Job>>,
    cv: Condvar,
}

impl Handoff {
    /// `threshold`: how long a handler may hold its connection's reading; `max_spares`: idle
    /// threads kept. The threads this starts run handlers, so they get the default stack size,
    /// as the pool's workers do.
    pub fn new(threshold: Duration, max_spares: usize) -> Arc<Handoff> {
        Arc::new(Handoff {
            threshold,
            reg: Mutex::new(Registry::default()),
            cv: Condvar::new(),
            spares: Mutex::new(Vec::new()),
            max_spares,
            stopped: AtomicBool::new(false),
            watchdog_started: AtomicBool::new(false),
            no_watchdog: AtomicBool::new(false),
        })
    }

    fn register(self: &Arc<Self>, p: Weak<dyn Parked>, epoch: u64) {
        if !self.watchdog_started.swap(true, Ordering::AcqRel) {
            let h = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("grpc-handoff".into())
                .stack_size(64 * 1024)
                .spawn(move || watchdog(h));
            if spawned.is_err() {
                self.no_watchdog.store(true, Ordering::Release);
            }
        }
        if self.no_watchdog.load(Ordering::Acquire) {
            // Nobody would drain the registry: slow inline handlers keep their connection until
            // they return; blocking ones still hand off (before_block).
            return;
        }
        let mut g = lock(&self.reg);
        g.entries.push((p, epoch, Instant::now()));
        if g.sleeping {
            g.sleeping = false;
            self.cv.notify_one();
        }
    }

    /// Finds a spare thread (or starts one), then runs what `take` gives on it. The role is
    /// taken only once a thread is sure: if none can be started, the role stays parked and its
    /// own thread resumes it when the handler returns. A spare that gets nothing (the role was
    /// taken back meanwhile) goes back to waiting.
    fn run_elsewhere(self: &Arc<Self>, take: impl FnOnce() -> Option<Job>) {
        let spare = lock(&self.spares).pop();
        let s = match spare {
            Some(s) => s,
            None => {
                let s = Arc::new(Spare::default());
                let (h, s2) = (self.clone(), s.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("grpc-conn".into())
                        .spawn(move || {
                            let job = wait_for_job(&s2, None);
                            if let Some(job) = job {
                                job();
                            }
                            h.become_spare();
                        });
                if spawned.is_err() {
                    return;
                }
                s
            }
        };
        let job = take().unwrap_or_else(|| Box::new(|| {}));
        *lock(&s.job) = Some(job);
        s.cv.notify_one();
    }

    /// Turns the calling thread into a spare: it runs the roles handed to it until it has been
    /// idle for a while, or the server stops.
    pub fn become_spare(self: &Arc<Self>) {
        let me = Arc::new(Spare::default());
        loop {
            {
                let mut sp = lock(&self.spares);
                if sp.len() >= self.max_spares || self.stopped.load(Ordering::Acquire) {
                    return;
                }
                sp.push(me.clone());
            }
            let job = match wait_for_job(&me, Some(SPARE_IDLE)) {
                Some(job) => job,
                None => {
                    let mut sp = lock(&self.spares);
                    if let Some(i) = sp.iter().position(|s| Arc::ptr_eq(s, &me)) {
                        sp.swap_remove(i);
                        return;
                    }
                    // Taken off the list by `run_elsewhere`: a job is on its way.
                    drop(sp);
                    match wait_for_job(&me, None) {
                        Some(job) => job,
                        None => return,
                    }
                }
            };
            job();
        }
    }

    /// Stops the watchdog and lets the spare threads exit.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        {
            let _g = lock(&self.reg);
            self.cv.notify_one();
        }
        let spares = std::mem::take(&mut *lock(&self.spares));
        for s in spares {
            *lock(&s.job) = Some(Box::new(|| {}));
            s.cv.notify_one();
        }
    }
}

/// Waits for a job on `s`, at most `idle` (`None`: until one comes).
fn wait_for_job(s: &Spare, idle: Option<Duration>) -> Option<Job> {
    let mut g = lock(&s.job);
    let deadline = idle.map(|d| Instant::now() + d);
    loop {
        if let Some(j) = g.take() {
            return Some(j);
        }
        match deadline {
            None => g = s.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                g =
                    s.cv.wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
        }
    }
}

/// The watchdog: every threshold, moves the roles parked longer than that to other threads.
/// Ticks only while parks happen; after [`WATCH_IDLE`] without any it sleeps until the next.
fn watchdog(h: Weak<Handoff>) {
    let mut last_active = Instant::now();
    loop {
        let Some(h) = h.upgrade() else { return };
        if h.stopped.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let entries = std::mem::take(&mut lock(&h.reg).entries);
        let mut keep = Vec::new();
        for (w, epoch, at) in entries {
            let Some(p) = w.upgrade() else { continue };
            if p.epoch() != epoch {
                continue; // taken back already
            }
            if now.duration_since(at) < h.threshold {
                keep.push((w, epoch, at));
                continue;
            }
            h.run_elsewhere(|| p.take_if(epoch));
        }
        let mut g = lock(&h.reg);
        if !keep.is_empty() || !g.entries.is_empty() {
            last_active = now;
        }
        g.entries.append(&mut keep);
        if h.stopped.load(Ordering::Acquire) {
            return;
        }
        let tick = if now.duration_since(last_active) > WATCH_IDLE {
            g.sleeping = true;
            None
        } else {
            Some(h.threshold)
        };
        // `h` stays alive across the wait; `shutdown` wakes it.
        match tick {
            Some(t) => drop(h.cv.wait_timeout(g, t).unwrap_or_else(|e| e.into_inner())),
            None => drop(h.cv.wait(g).unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// Where a connection's reading role waits while its reader thread runs a handler.
pub(crate) struct Seat<R: Send + 'static> {
    role: Mutex<Option<R>>,
    epoch: AtomicU64,
    handoff: Arc<Handoff>,
    /// Continues reading with the role on the thread it runs on.
    resume: fn(R),
    me: Weak<Seat<R>>,
}

impl<R: Send + 'static> Seat<R> {
    pub fn new(handoff: Arc<Handoff>, resume: fn(R)) -> Arc<Seat<R>> {
        Arc::new_cyclic(|me| Seat {
            role: Mutex::new(None),
            epoch: AtomicU64::new(0),
            handoff,
            resume,
            me: me.clone(),
        })
    }

    /// Leaves the role here (the watchdog may move it on).
    pub fn park(&self, role: R) {
        let epoch = {
            let mut g = lock(&self.role);
            *g = Some(role);
            self.epoch.fetch_add(1, Ordering::AcqRel) + 1
        };
        let me: Weak<dyn Parked> = self.me.clone();
        self.handoff.register(me, epoch);
    }

    /// Whether the role is still here (not moved to another thread).
    pub fn is_parked(&self) -> bool {
        lock(&self.role).is_some()
    }

    /// Takes the role back; `None` if it moved to another thread meanwhile.
    pub fn unpark(&self) -> Option<R> {
        let mut g = lock(&self.role);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        g.take()
    }

    fn take_job(&self, g: &mut Option<R>) -> Option<Job> {
        let role = g.take()?;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let resume = self.resume;
        Some(Box::new(move || resume(role)))
    }
}

impl<R: Send + 'static> Parked for Seat<R> {
    fn take_if(&self, epoch: u64) -> Option<Job> {
        let mut g = lock(&self.role);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return None;
        }
        self.take_job(&mut g)
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

impl<R: Send + 'static> BeforeBlock for Seat<R> {
    fn before_block(&self) {
        self.handoff.run_elsewhere(|| {
            let mut g = lock(&self.role);
            self.take_job(&mut g)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, Sender};

    fn report(tx: Sender<(u32, String)>) {
        let name = std::thread::current().name().unwrap_or("").to_string();
        let _ = tx.send((7, name));
    }

    #[test]
    fn a_role_taken_back_in_time_stays_on_its_thread() {
        let h = Handoff::new(Duration::from_secs(10), 4);
        let seat: Arc<Seat<Sender<(u32, String)>>> = Seat::new(h.clone(), report);
        let (tx, rx) = bounded(1);
        seat.park(tx);
        let back = seat.unpark().expect("still parked");
        report(back);
        assert_eq!(rx.recv().unwrap().0, 7);
        h.shutdown();
    }

    #[test]
    fn a_role_parked_too_long_moves_to_another_thread() {
        let h = Handoff::new(Duration::from_millis(1), 4);
        let seat: Arc<Seat<Sender<(u32, String)>>> = Seat::new(h.clone(), report);
        let (tx, rx) = bounded(1);
        seat.park(tx);
        // Nobody takes it back: the watchdog hands it to a new thread.
        let (n, thread) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((n, thread.as_str()), (7, "grpc-conn"));
        assert!(seat.unpark().is_none());
        h.shutdown();
    }

    #[test]
    fn blocking_moves_the_role_at_once() {
        let h = Handoff::new(Duration::from_secs(3600), 4);
        let seat: Arc<Seat<Sender<(u32, String)>>> = Seat::new(h.clone(), report);
        let (tx, rx) = bounded(1);
        seat.park(tx);
        seat.before_block();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap().0, 7);
        assert!(seat.unpark().is_none());
        h.shutdown();
    }

    #[test]
    fn spares_are_reused() {
        let h = Handoff::new(Duration::from_secs(3600), 4);
        let (tx, rx) = bounded::<String>(1);
        let h2 = h.clone();
        // A thread that becomes a spare, then gets two roles in a row.
        let t = std::thread::Builder::new()
            .name("spare-under-test".into())
            .spawn(move || h2.become_spare())
            .unwrap();
        for _ in 0..2 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while lock(&h.spares).is_empty() {
                assert!(Instant::now() < deadline, "spare never idle");
                std::thread::yield_now();
            }
            let tx = tx.clone();
            h.run_elsewhere(move || {
                Some(Box::new(move || {
                    let _ = tx.send(std::thread::current().name().unwrap_or("").to_string());
                }))
            });
            let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, "spare-under-test");
        }
        h.shutdown();
        t.join().unwrap();
    }
}
