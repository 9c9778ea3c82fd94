//! The fixed pool of handler threads, and the statistics a person needs to size it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    busy: AtomicUsize,
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
    /// Handlers that panicked (answered with UNKNOWN).
    pub panicked: u64,
    /// Queue-wait histogram, bucket bounds in [`QUEUE_WAIT_BUCKETS_US`].
    pub queue_wait_histogram: Vec<u64>,
    /// Mean queue wait over all started handlers.
    pub mean_queue_wait: Duration,
}

/// Exactly `n` threads taking jobs from one FIFO channel.
pub(crate) struct Pool {
    tx: Mutex<Option<Sender<(Instant, Job)>>>,
    counters: Arc<Counters>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl Pool {
    /// Starts `workers` threads (at least one).
    pub fn new(workers: usize, name: &str) -> Pool {
        let workers = workers.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<(Instant, Job)>();
        let counters = Arc::new(Counters::default());
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx: Receiver<(Instant, Job)> = rx.clone();
            let c = counters.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker_loop(rx, c))
                .expect("spawning a worker thread");
            threads.push(t);
        }
        Pool {
            tx: Mutex::new(Some(tx)),
            counters,
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

    /// Stops taking jobs; workers finish what is queued and exit. `join` waits for them.
    pub fn shutdown(&self) {
        crate::transport::driver::lock(&self.tx).take();
    }

    /// Waits for every worker to exit (after [`Pool::shutdown`]).
    pub fn join(&self) {
        let threads = std::mem::take(&mut *crate::transport::driver::lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
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
            busy: c.busy.load(Ordering::Relaxed),
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

fn worker_loop(rx: Receiver<(Instant, Job)>, c: Arc<Counters>) {
    while let Ok((queued_at, job)) = rx.recv() {
        c.queued.fetch_sub(1, Ordering::Relaxed);
        let waited = queued_at.elapsed().as_micros() as u64;
        let bucket = QUEUE_WAIT_BUCKETS_US
            .iter()
            .position(|&b| waited <= b)
            .unwrap_or(QUEUE_WAIT_BUCKETS_US.len() - 1);
        c.wait_hist[bucket].fetch_add(1, Ordering::Relaxed);
        c.wait_total_us.fetch_add(waited, Ordering::Relaxed);
        c.started.fetch_add(1, Ordering::Relaxed);
        c.busy.fetch_add(1, Ordering::Relaxed);
        // Jobs answer their own RPC with UNKNOWN on panic; this catch only keeps the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            c.panicked.fetch_add(1, Ordering::Relaxed);
        }
        c.busy.fetch_sub(1, Ordering::Relaxed);
        c.finished.fetch_add(1, Ordering::Relaxed);
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
        pool.join();
        let s = pool.stats();
        assert_eq!((s.started, s.finished, s.busy, s.queued), (10, 10, 0, 0));
        assert_eq!(s.queue_wait_histogram.iter().sum::<u64>(), 10);
    }

    #[test]
    fn panicking_job_keeps_the_worker() {
        let pool = Pool::new(1, "t");
        let _ = pool.execute(Box::new(|| panic!("handler bug")));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = pool.execute(Box::new(move || tx.send(7).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        pool.shutdown();
        pool.join();
        assert_eq!(pool.stats().panicked, 1);
    }
}
