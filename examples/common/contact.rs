//! Contact (seed 001's two-way messaging over ordinary RPCs).
//!
//! gRPC is request/response, so for the server to "call" the client, the client opens a
//! server stream (`getTask`) that the server feeds from a task queue, and acknowledges each
//! task on a client stream (`tellResult`). Meanwhile the client talks to the server the
//! usual way on a bidi stream (`sendStatus`) from another thread.
//!
//! The Chinese strings are the seed's (its text is damaged in places; the few lost
//! characters are restored from context).

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use grpc_sync::{Channel, ResponseStream, ServerContext, Status, Streaming};

use super::pb::contact as pb;
use super::pb::contact::contact_client::ContactClient;
use super::pb::contact::contact_server;
use super::{BoxError, Rng};

/// How often a `getTask` stream waiting for work wakes up to see whether its call is over.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// The task queue, shared by every `getTask` stream (each reads it from the start, as in the
/// seed).
#[derive(Debug)]
struct Queue {
    tasks: Vec<pb::ServerMsg>,
    rng: Rng,
}

/// The service.
#[derive(Debug)]
pub struct ContactService {
    queue: Mutex<Queue>,
    new_tasks: Condvar,
    refill_pause: Duration,
    results: Mutex<Vec<String>>,
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ContactService {
    /// A service whose `getTask` makes a batch of 10 random tasks whenever its queue has been
    /// drained for `refill_pause` (the seed sleeps 40 s between batches); `seed` fixes them.
    pub fn new(refill_pause: Duration, seed: u64) -> ContactService {
        ContactService {
            queue: Mutex::new(Queue {
                tasks: Vec::new(),
                rng: Rng::new(seed),
            }),
            new_tasks: Condvar::new(),
            refill_pause,
            results: Mutex::new(Vec::new()),
        }
    }

    /// Queues a task for the clients listening on `getTask`.
    pub fn push_task(&self, task: impl Into<String>) {
        lock(&self.queue)
            .tasks
            .push(pb::ServerMsg { task: task.into() });
        self.new_tasks.notify_all();
    }

    /// The acknowledgements received on `tellResult` so far.
    pub fn results(&self) -> Vec<String> {
        lock(&self.results).clone()
    }
}

impl contact_server::Contact for ContactService {
    fn send_status<'a>(
        &'a self,
        requests: Streaming<pb::ClientMsg>,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::Result>, Status> {
        Ok(Box::new(requests.map(|note| {
            note.map(|note| pb::Result {
                ret: format!("服务端接收到消息:{}", note.msg),
            })
        })))
    }

    fn get_task<'a>(
        &'a self,
        _request: pb::Empty,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::ServerMsg>, Status> {
        println!("服务端已经收到客户端上线通知，开始发送任务给客户端");
        let mut last_index = 0;
        let mut batches = 0;
        let mut idle_since: Option<Instant> = None;
        Ok(Box::new(std::iter::from_fn(move || {
            let mut queue = lock(&self.queue);
            loop {
                if !ctx.is_active() {
                    return None;
                }
                if let Some(task) = queue.tasks.get(last_index).cloned() {
                    last_index += 1;
                    idle_since = None;
                    println!("服务端发送给了客户端任务：{}##########", task.task);
                    return Some(Ok(task));
                }
                let now = Instant::now();
                let since = *idle_since.get_or_insert(now);
                if batches == 0 || now >= since + self.refill_pause {
                    // Nothing to send: make work, as the seed does.
                    println!("服务端开始发送任务给客户端了。。。。。。");
                    for _ in 0..10 {
                        let num = queue.rng.randint(100, 200);
                        queue.tasks.push(pb::ServerMsg {
                            task: format!("任务:{num}"),
                        });
                    }
                    batches += 1;
                    idle_since = None;
                    continue;
                }
                // Wait for pushed tasks, but wake regularly: a cancelled call sends no signal.
                let wait = (since + self.refill_pause - now).min(CANCEL_CHECK);
                queue = self
                    .new_tasks
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        })))
    }

    fn tell_result(
        &self,
        requests: Streaming<pb::Result>,
        _ctx: &ServerContext,
    ) -> Result<pb::Empty, Status> {
        for response in requests {
            let response = response?;
            println!("我已经知道客户端接收到我发过去的任务:{}", response.ret);
            lock(&self.results).push(response.ret);
        }
        Ok(pb::Empty {})
    }
}

/// How many tasks the client takes from `getTask` before hanging up.
pub const TASKS: usize = 10;
/// How many messages the client sends on `sendStatus`.
pub const STATUS_MESSAGES: usize = 15;

/// Everything the client saw, for `demo` to check.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// The messages sent on `sendStatus`, and the replies.
    pub status_sent: Vec<String>,
    pub status_replies: Vec<String>,
    /// The tasks received on `getTask` (each acknowledged on `tellResult`).
    pub tasks: Vec<String>,
}

/// The client talking to the server: 15 random messages on `sendStatus`.
fn send_status(client: &ContactClient, seed: u64) -> Result<(Vec<String>, Vec<String>), Status> {
    let mut rng = Rng::new(seed);
    let sent: Vec<String> = (0..STATUS_MESSAGES)
        .map(|_| format!("数据:{}", rng.randint(1, 20)))
        .collect();
    let mut replies = Vec::new();
    for reply in client.send_status(sent.clone().into_iter().map(|msg| pb::ClientMsg { msg }))? {
        let reply = reply?;
        println!("{}", reply.ret);
        replies.push(reply.ret);
    }
    Ok((sent, replies))
}

/// The seed's client, one round: `sendStatus` on a thread, while the tasks from `getTask`
/// are acknowledged on `tellResult` as they arrive. `seed` fixes the random data.
pub fn run_client(channel: &Channel, seed: u64) -> Result<ClientReport, BoxError> {
    let client = ContactClient::new(channel.clone());

    let status_client = client.clone();
    let status = thread::spawn(move || send_status(&status_client, seed));

    // The acknowledgements are made lazily from the task stream: the runtime pulls one,
    // which waits for the next task. After TASKS tasks the iterator ends, which closes
    // `tellResult` and drops (cancels) `getTask`.
    let (task_tx, task_rx) = mpsc::channel();
    let acks = client
        .get_task(pb::Empty {})?
        .take(TASKS)
        .map_while(move |task| match task {
            Ok(task) => {
                println!("客户端已经收到服务端任务：{}", task.task);
                let ret = format!("客户端接收到任务:{}", task.task);
                // The receiver outlives the call.
                let _ = task_tx.send(task.task);
                Some(pb::Result { ret })
            }
            Err(e) => {
                println!("err:{e}");
                None
            }
        });
    client.tell_result(acks)?;
    // tellResult answered, so its request iterator (and every send) is finished.
    let tasks: Vec<String> = task_rx.try_iter().collect();

    let (status_sent, status_replies) = status
        .join()
        .map_err(|_| BoxError::from("the sendStatus thread panicked"))??;

    Ok(ClientReport {
        status_sent,
        status_replies,
        tasks,
    })
}
