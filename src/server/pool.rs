//! The fixed pool of handler threads, and the statistics a person needs to size it.
//!
//! `max_workers` bounds the handlers running at once, wherever they run: a pool thread takes a
//! permit before it runs a job, and a connection's reader thread may run a unary handler in
//! place (no hand-off) only if it gets a permit without waiting (`Pool::try_inline`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// A unit of work: one RPC's handler, run to completion on a worker.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Upper bounds (µs) of the queue-wait histogram buckets; the last bucket is open-ended.
pub const QUEUE_WAIT_BUCKETS_US: [u64; 12] = [
    10,
    50,
    100,
    500,
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    u64::MAX,
];

/// Counters shared by the pool's threads.
#[derive(Default)]
pub(crate) struct Counters {
    queued: AtomicUsize,
    started: AtomicU64,
    finished: AtomicU64,
    panicked: AtomicU64,
    wait_hist: [AtomicU64; QUEUE_WAIT_BUCKETS_US.len()],
    wait_total_us: AtomicU64,
}

/// A snapshot of the worker pool, from [`Server::pool_stats`](crate::server::Server::pool_stats).
///
/// `queue_wait_histogram[i]` counts RPCs that waited for a worker at most
/// `QUEUE_WAIT_BUCKETS_US[i]` microseconds (and more than the previous bound). A queue that is
/// often non-empty, or waits in the upper buckets, mean the pool is too small for the load;
/// workers rarely busy mean it is larger than needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads in the pool (`max_workers`).
    pub workers: usize,
    /// Workers running a handler right now.
    pub busy: usize,
    /// RPCs waiting for a free worker right now.
    pub queued: usize,
    /// Handlers started since the server started.
    pub started: u64,
    /// Handlers finished (including panicked ones).
    pub finished: u64,
    /// Handlers (or interceptors) that panicked (answered with UNKNOWN).
    pub panicked: u64,
    /// Queue-wait histogram, bucket bounds in [`QUEUE_WAIT_BUCKETS_US`].
    pub queue_wait_histogram: Vec<u64>,
    /// Mean queue wait over all started handlers.
    pub mean_queue_wait: Duration,
}

/// A counting semaphore: one permit per worker. Waiting is rare (only while reader threads
/// hold permits for inline handlers), so the fast paths are one atomic operation and the wake-up
/// costs a syscall only when somebody waits.
struct Permits {
    available: AtomicUsize,
    waiters: AtomicUsize,
    m: Mutex<()>,
    cv: Condvar,
}

impl Permits {
    fn new(n: usize) -> Permits {
        Permits {
            available: AtomicUsize::new(n),
            waiters: AtomicUsize::new(0),
            m: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    fn try_acquire(&self) -> bool {
        let mut n = self.available.load(Ordering::SeqCst);
        while n > 0 {
            match self
                .available
                .compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    fn acquire(&self) {
        if self.try_acquire() {
            return;
        }
        let mut g = crate::transport::driver::lock(&self.m);
        // Counted before the retry: a release that the retry misses sees us and notifies.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        while !self.try_acquire() {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    fn release(&self) {
        self.available.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = crate::transport::driver::lock(&self.m);
            self.cv.notify_all();
        }
    }

    /// Waits until all `n` permits are back (every handler finished), or `deadline`.
    fn wait_all(&self, n: usize, deadline: Instant) {
        let mut g = crate::transport::driver::lock(&self.m);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        while self.available.load(Ordering::SeqCst) < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Exactly `n` threads taking jobs from one FIFO channel, and `n` permits shared with the
/// reader threads that run unary handlers in place.
pub(crate) struct Pool {
    tx: Mutex<Option<Sender<(Instant, Job)>>>,
    counters: Arc<Counters>,
    permits: Arc<Permits>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl Pool {
    /// Starts `workers` threads (at least one).
    pub fn new(workers: usize, name: &str) -> Pool {
        let workers = workers.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<(Instant, Job)>();
        let counters = Arc::new(Counters::default());
        let permits = Arc::new(Permits::new(workers));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx: Receiver<(Instant, Job)> = rx.clone();
            let (c, p) = (counters.clone(), permits.clone());
            let t = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker_loop(rx, c, p))
                .expect("spawning a worker thread");
            threads.push(t);
        }
        Pool {
            tx: Mutex::new(Some(tx)),
            counters,
            permits,
            threads: Mutex::new(threads),
            workers,
        }
    }

    /// Queues a job; returns it back if the pool has been shut down.
    pub fn execute(&self, job: Job) -> Result<(), Job> {
        let guard = crate::transport::driver::lock(&self.tx);
        match guard.as_ref() {
            Some(tx) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                tx.send((Instant::now(), job)).map_err(|e| {
                    self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    e.into_inner().1
                })
            }
            None => Err(job),
        }
    }

    /// A worker permit for running a handler on the calling thread, if one is free right now
    /// (otherwise queue the job with [`Pool::execute`]).
    pub fn try_inline(&self) -> Option<InlinePermit<'_>> {
        // Not `then_some`: building the permit eagerly would release one on drop.
        if self.permits.try_acquire() {
            Some(InlinePermit { pool: self })
        } else {
            None
        }
    }

    /// Stops taking jobs; workers finish what is queued and exit. `join` waits for them.
    pub fn shutdown(&self) {
        crate::transport::driver::lock(&self.tx).take();
    }

    /// Waits for every worker to exit (after [`Pool::shutdown`]), then up to `inline_grace` for
    /// handlers still running on reader threads.
    pub fn join(&self, inline_grace: Duration) {
        let threads = std::mem::take(&mut *crate::transport::driver::lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
        self.permits
            .wait_all(self.workers, Instant::now() + inline_grace);
    }

    /// Counts a handler panic that the job caught itself (to answer its RPC with UNKNOWN).
    pub fn record_panic(&self) {
        self.counters.panicked.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        let started = c.started.load(Ordering::Relaxed);
        let total = c.wait_total_us.load(Ordering::Relaxed);
        PoolStats {
            workers: self.workers,
            busy: self
                .workers
                .saturating_sub(self.permits.available.load(Ordering::Relaxed)),
            queued: c.queued.load(Ordering::Relaxed),
            started,
            finished: c.finished.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            queue_wait_histogram: c
                .wait_hist
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            mean_queue_wait: Duration::from_micros(total.checked_div(started).unwrap_or(0)),
        }
    }
}

/// A worker permit held by a thread outside the pool (see [`Pool::try_inline`]).
pub(crate) struct InlinePermit<'a> {
    pool: &'a Pool,
}

impl InlinePermit<'_> {
    /// Runs `job` here, counted as a handler of the pool; the permit returns when it ends.
    pub fn run(self, job: Job) {
        let c = &self.pool.counters;
        c.wait_hist[0].fetch_add(1, Ordering::Relaxed);
        c.started.fetch_add(1, Ordering::Relaxed);
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            c.panicked.fetch_add(1, Ordering::Relaxed);
        }
        c.finished.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for InlinePermit<'_> {
    fn drop(&mut self) {
        self.pool.permits.release();
    }
}

fn worker_loop(rx: Receiver<(Instant, Job)>, c: Arc<Counters>, permits: Arc<Permits>) {
    while let Ok((queued_at, job)) = rx.recv() {
        permits.acquire();
        c.queued.fetch_sub(1, Ordering::Relaxed);
        let waited = queued_at.elapsed().as_micros() as u64;
        let bucket = QUEUE_WAIT_BUCKETS_US
            .iter()
            .position(|&b| waited <= b)
            .unwrap_or(QUEUE_WAIT_BUCKETS_US.len() - 1);
        c.wait_hist[bucket].fetch_add(1, Ordering::Relaxed);
        c.wait_total_us.fetch_add(waited, Ordering::Relaxed);
        c.started.fetch_add(1, Ordering::Relaxed);
        // Jobs answer their own RPC with UNKNOWN on panic; this catch only keeps the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            c.panicked.fetch_add(1, Ordering::Relaxed);
        }
        c.finished.fetch_add(1, Ordering::Relaxed);
        permits.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pool_runs_jobs_in_fifo_order_on_one_worker() {
        let pool = Pool::new(1, "t");
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..10 {
            let tx = tx.clone();
            pool.execute(Box::new(move || tx.send(i).unwrap()))
                .unwrap_or_else(|_| panic!("pool closed"));
        }
        let got: Vec<i32> = (0..10)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        pool.shutdown();
        pool.join(Duration::from_secs(5));
        let s = pool.stats();
        assert_eq!((s.started, s.finished, s.busy, s.queued), (10, 10, 0, 0));
        assert_eq!(s.queue_wait_histogram.iter().sum::<u64>(), 10);
    }

    #[test]
    fn inline_jobs_share_the_workers_permits() {
        let pool = Arc::new(Pool::new(1, "t"));
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let p2 = pool.clone();
        let inline = std::thread::spawn(move || {
            let Some(permit) = p2.try_inline() else {
                return false;
            };
            permit.run(Box::new(move || {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
            }));
            true
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(pool.stats().busy, 1);
        // The only permit is taken: a second inline attempt is refused, a queued job waits.
        assert!(pool.try_inline().is_none());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = pool.execute(Box::new(move || tx.send(1).unwrap()));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        release_tx.send(()).unwrap();
        assert!(inline.join().unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        pool.shutdown();
        pool.join(Duration::from_secs(5));
        let s = pool.stats();
        assert_eq!((s.started, s.finished, s.busy, s.queued), (2, 2, 0, 0));
    }

    #[test]
    fn panicking_job_keeps_the_worker() {
        let pool = Pool::new(1, "t");
        let _ = pool.execute(Box::new(|| panic!("handler bug")));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = pool.execute(Box::new(move || tx.send(7).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        pool.shutdown();
        pool.join(Duration::from_secs(5));
        assert_eq!(pool.stats().panicked, 1);
    }
}
