//! demo (seed 003, package `test`): `hellojlc` with a map field, and the three streaming
//! shapes the seed walks through.
//!
//! - `TestClientRecvStream`: the server streams while `ctx.is_active()`; the client reads a few
//!   messages and drops the stream, which cancels the call and ends the server's loop. Data
//!   `"close"` makes the server cancel the call itself, as in the seed.
//! - `TestClientSendStream`: the server stops reading at index 10 (its 11th message) and
//!   answers `"ok"` while the client still has messages to send.
//! - `TestTwoWayStream`: one answer per message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use grpc_sync::{Channel, ResponseStream, ServerContext, Status, Streaming};

use super::pb::streams as pb;
use super::pb::streams::demo_client::DemoClient;
use super::pb::streams::demo_server;
use super::pb::streams::hellojlc_req::HellojlcReqNumberValue;
use super::{first_error, python_status, BoxError, Rng};

/// What the server observed, for `demo` to check (the standalone server reports nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `TestClientRecvStream` response stream was dropped after `sent` messages.
    RecvStreamEnded { data: String, sent: u32 },
    /// `TestClientSendStream` stopped after reading `read` messages.
    SendStreamRead { read: u32 },
}

/// The service. `pace` is the pause between streamed messages (the seed sleeps 1 s).
#[derive(Debug)]
pub struct DemoService {
    pace: Duration,
    events: Option<Sender<Event>>,
}

impl DemoService {
    /// A service that streams one message per `pace`.
    pub fn new(pace: Duration) -> DemoService {
        DemoService { pace, events: None }
    }

    /// Reports what the handlers observe to `events`.
    pub fn with_events(mut self, events: Sender<Event>) -> DemoService {
        self.events = Some(events);
        self
    }

    fn report(&self, event: Event) {
        if let Some(events) = &self.events {
            // Nobody listening any more is fine.
            let _ = events.send(event);
        }
    }
}

/// `TestClientRecvStream`'s response stream: one message per `pace` while the call is alive.
struct RecvStream<'a> {
    service: &'a DemoService,
    ctx: &'a ServerContext,
    data: String,
    index: u32,
}

impl Iterator for RecvStream<'_> {
    type Item = Result<pb::TestClientRecvStreamResponse, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        // Only stream while the client is there; once it cancels, stop.
        if !self.ctx.is_active() {
            return None;
        }
        if self.data == "close" {
            println!("data is close, request will cancel");
            self.ctx.cancel();
            return None;
        }
        thread::sleep(self.service.pace);
        self.index += 1;
        let result = format!("send {} {}", self.index, self.data);
        println!("{result}");
        Some(Ok(pb::TestClientRecvStreamResponse { result }))
    }
}

impl Drop for RecvStream<'_> {
    // The runtime drops the stream when the call ends for any reason: the surest sign that
    // the handler has stopped.
    fn drop(&mut self) {
        self.service.report(Event::RecvStreamEnded {
            data: std::mem::take(&mut self.data),
            sent: self.index,
        });
    }
}

/// `hellojlc`'s answer. The seed ignores the map; we append its entries (sorted, since
/// protobuf maps are unordered) so that the map's round trip shows.
pub fn hellojlc_result(request: &pb::HellojlcReq) -> String {
    let mut result = format!(
        "my name is {}, i am {} years old",
        request.name, request.age
    );
    let mut entries: Vec<_> = request.number.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in entries {
        result += &format!(
            "; {key}: {} is {} (active: {})",
            value.name, value.age, value.is_active
        );
    }
    result
}

impl demo_server::Demo for DemoService {
    fn hellojlc(
        &self,
        request: pb::HellojlcReq,
        _ctx: &ServerContext,
    ) -> Result<pb::HellojlcReply, Status> {
        Ok(pb::HellojlcReply {
            result: hellojlc_result(&request),
        })
    }

    fn test_client_recv_stream<'a>(
        &'a self,
        request: pb::TestClientRecvStreamRequest,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::TestClientRecvStreamResponse>, Status> {
        Ok(Box::new(RecvStream {
            service: self,
            ctx,
            data: request.data,
            index: 0,
        }))
    }

    fn test_client_send_stream(
        &self,
        requests: Streaming<pb::TestClientSendStreamRequest>,
        _ctx: &ServerContext,
    ) -> Result<pb::TestClientSendStreamResponse, Status> {
        let mut read = 0;
        for (index, request) in requests.enumerate() {
            let request = request?;
            read = index as u32 + 1;
            println!("{} : {index}", request.data);
            // Enough: stop reading and answer. Dropping `requests` tells the runtime we are
            // done with the client's stream.
            if index == 10 {
                break;
            }
        }
        self.report(Event::SendStreamRead { read });
        Ok(pb::TestClientSendStreamResponse {
            result: "ok".into(),
        })
    }

    fn test_two_way_stream<'a>(
        &'a self,
        requests: Streaming<pb::TestTwoWayStreamRequest>,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, pb::TestTwoWayStreamResponse>, Status> {
        Ok(Box::new(requests.map(|request| {
            request.map(|request| pb::TestTwoWayStreamResponse {
                result: format!("service send client {}", request.data),
            })
        })))
    }
}

/// How many `TestClientRecvStream` messages the client reads before it cancels.
pub const RECV_TAKE: usize = 5;
/// How many messages the client offers `TestClientSendStream` (the server stops at 11).
pub const SEND_COUNT: usize = 20;
/// How many messages the client sends on `TestTwoWayStream`.
pub const TWO_WAY_COUNT: usize = 5;

/// The request of `hellojlc`, with the seed's map entry `{"a": {name: jlc, age: 23,
/// is_active: true}}`.
pub fn hellojlc_request() -> pb::HellojlcReq {
    pb::HellojlcReq {
        name: "jlc".into(),
        age: 23,
        // `collect` builds whichever map type the generator chose (HashMap or BTreeMap).
        number: [(
            "a".to_string(),
            HellojlcReqNumberValue {
                name: "jlc".into(),
                age: 23,
                is_active: true,
            },
        )]
        .into_iter()
        .collect(),
    }
}

/// Everything the client saw, for `demo` to check.
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub hellojlc: String,
    /// The `TestClientRecvStream` messages read before cancelling.
    pub received: Vec<String>,
    /// How the `"close"` stream ended (the server cancels it).
    pub close: Option<Status>,
    pub send_result: String,
    /// The data sent on `TestTwoWayStream`, and the answers.
    pub two_way_sent: Vec<String>,
    pub two_way: Vec<String>,
}

/// The seed's `test()` generator: each datum is sent `pace` after the previous one and its
/// index printed as it goes out. It stops early once `done` is set: the runtime's sender
/// thread may be inside `next` (pausing) when the call ends, and should not announce a
/// message that will never be sent.
fn paced_data<T>(
    data: Vec<String>,
    pace: Duration,
    done: Arc<AtomicBool>,
    make: fn(String) -> T,
) -> impl Iterator<Item = T> + Send + 'static
where
    T: Send + 'static,
{
    data.into_iter()
        .enumerate()
        .map_while(move |(index, data)| {
            thread::sleep(pace);
            if done.load(Ordering::Relaxed) {
                return None;
            }
            println!("{index}");
            Some(make(data))
        })
}

/// The seed's clients, one after the other. `pace` spaces the client's sends; `seed` fixes
/// the random data.
pub fn run_client(channel: &Channel, pace: Duration, seed: u64) -> Result<ClientReport, BoxError> {
    let client = DemoClient::new(channel.clone());
    let mut rng = Rng::new(seed);

    println!("-- hellojlc");
    let hellojlc = client.hellojlc(hellojlc_request())?.result;
    println!("{hellojlc}");

    println!("-- TestClientRecvStream");
    let stream =
        client.test_client_recv_stream(pb::TestClientRecvStreamRequest { data: "jlc".into() })?;
    let mut received = Vec::new();
    // `take` stops reading; dropping the stream at the end of the loop cancels the call.
    for item in stream.take(RECV_TAKE) {
        let item = item?;
        println!("{}", item.result);
        received.push(item.result);
    }
    println!("(stopped reading after {RECV_TAKE} messages: the call is cancelled)");
    let close = first_error(
        client.test_client_recv_stream(pb::TestClientRecvStreamRequest {
            data: "close".into(),
        }),
    );
    match &close {
        Some(status) => println!("close: {}", python_status(status)),
        None => println!("close: the server did not cancel"),
    }

    println!("-- TestClientSendStream");
    let data: Vec<String> = (0..SEND_COUNT).map(|_| rng.random().to_string()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let requests = paced_data(data, pace, done.clone(), |data| {
        pb::TestClientSendStreamRequest { data }
    });
    let send_result = client.test_client_send_stream(requests)?.result;
    // The server answered before we ran out of messages: stop offering more.
    done.store(true, Ordering::Relaxed);
    println!("{send_result}");

    println!("-- TestTwoWayStream");
    let two_way_sent: Vec<String> = (0..TWO_WAY_COUNT)
        .map(|_| rng.random().to_string())
        .collect();
    let mut two_way = Vec::new();
    for response in client.test_two_way_stream(paced_data(
        two_way_sent.clone(),
        pace,
        Arc::default(),
        |data| pb::TestTwoWayStreamRequest { data },
    ))? {
        let response = response?;
        println!("{}", response.result);
        two_way.push(response.result);
    }

    Ok(ClientReport {
        hellojlc,
        received,
        close,
        send_result,
        two_way_sent,
        two_way,
    })
}
