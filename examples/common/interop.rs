//! The gRPC interop suite (`grpc.testing.TestService`): the server behaviours and the client
//! test cases of gRPC's `doc/interop-test-descriptions.md`, shared by `interop_server`,
//! `interop_client` and `tests/interop.rs`.
//!
//! Every client case is a function from a [`Channel`] to `Ok(what was checked)` or
//! `Err(what failed)`; [`run_case`] picks one by name.

use std::time::Duration;

use grpc_sync::{
    CallOptions, Channel, Code, CompressionEncoding, MetadataMap, Request, ResponseStream,
    ServerContext, Status, Streaming,
};

use super::pb::grpc_testing::test_service_client::{self, TestServiceClient};
use super::pb::grpc_testing::test_service_server::{TestService, TestServiceServer};
use super::pb::grpc_testing::unimplemented_service_client::UnimplementedServiceClient;
use super::pb::grpc_testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Request metadata echoed back as initial metadata.
pub const ECHO_INITIAL_KEY: &str = "x-grpc-test-echo-initial";
/// Request metadata echoed back as trailing metadata.
pub const ECHO_TRAILING_KEY: &str = "x-grpc-test-echo-trailing-bin";

/// Every client test case, in the order `--test_case=all` runs them.
pub const CASES: [&str; 18] = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// The interop `TestService`: payloads of the requested sizes, echoed metadata, requested
/// statuses, compression on request, `interval_us` pauses.
#[derive(Debug, Default)]
pub struct InteropService;

/// The service ready for `ServerBuilder::add_service`.
pub fn service() -> TestServiceServer<InteropService> {
    TestServiceServer::new(InteropService)
}

fn zeros(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative payload size {size}")))?;
    Ok(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

fn echo_status(s: &Option<EchoStatus>) -> Result<(), Status> {
    match s {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// Echoes `x-grpc-test-echo-initial` as initial metadata (sent now) and
/// `x-grpc-test-echo-trailing-bin` as trailing metadata.
fn echo_metadata(ctx: &ServerContext) -> Result<(), Status> {
    if let Some(v) = ctx.metadata().get(ECHO_INITIAL_KEY) {
        let mut md = MetadataMap::new();
        md.insert(ECHO_INITIAL_KEY, v)
            .map_err(|e| Status::internal(e.to_string()))?;
        ctx.send_initial_metadata(md)?;
    }
    if let Some(v) = ctx.metadata().get_bin(ECHO_TRAILING_KEY) {
        let mut md = MetadataMap::new();
        md.insert_bin(ECHO_TRAILING_KEY, v)
            .map_err(|e| Status::internal(e.to_string()))?;
        ctx.set_trailing_metadata(md);
    }
    Ok(())
}

/// The `expect_compressed` check: a request that should have arrived compressed and did not.
fn check_compressed(expect: &Option<BoolValue>, ctx: &ServerContext) -> Result<(), Status> {
    if expect.as_ref().is_some_and(|b| b.value) && !ctx.request_compressed() {
        return Err(Status::invalid_argument(
            "expected a compressed request message, got an uncompressed one",
        ));
    }
    Ok(())
}

/// Waits `interval_us` before a streamed response (returns early if the call ends).
fn pause(ctx: &ServerContext, interval_us: i32) {
    if interval_us > 0 && ctx.is_active() {
        std::thread::sleep(Duration::from_micros(interval_us as u64));
    }
}

/// The responses of one `StreamingOutputCallRequest`, produced lazily (pauses included).
fn responses<'a>(
    ctx: &'a ServerContext,
    params: Vec<ResponseParameters>,
) -> impl Iterator<Item = Result<StreamingOutputCallResponse, Status>> + Send + 'a {
    params.into_iter().map(move |p| {
        pause(ctx, p.interval_us);
        let payload = zeros(p.size)?;
        if !p.compressed.is_some_and(|c| c.value) {
            ctx.disable_next_message_compression();
        }
        Ok(StreamingOutputCallResponse {
            payload: Some(payload),
        })
    })
}

/// Prepares a streaming response: responses may be compressed one by one (each is sent
/// uncompressed unless its parameters ask), then the metadata echo.
fn start_stream(ctx: &ServerContext) -> Result<(), Status> {
    ctx.set_compression(CompressionEncoding::Gzip);
    echo_metadata(ctx)
}

impl TestService for InteropService {
    fn empty_call(&self, _request: Empty, ctx: &ServerContext) -> Result<Empty, Status> {
        echo_metadata(ctx)?;
        Ok(Empty {})
    }

    fn unary_call(
        &self,
        request: SimpleRequest,
        ctx: &ServerContext,
    ) -> Result<SimpleResponse, Status> {
        check_compressed(&request.expect_compressed, ctx)?;
        match request.response_compressed {
            Some(BoolValue { value: true }) => {
                ctx.set_compression(CompressionEncoding::Gzip);
            }
            _ => ctx.disable_next_message_compression(),
        }
        echo_metadata(ctx)?;
        echo_status(&request.response_status)?;
        Ok(SimpleResponse {
            payload: Some(zeros(request.response_size)?),
            ..SimpleResponse::default()
        })
    }

    fn cacheable_unary_call(
        &self,
        request: SimpleRequest,
        ctx: &ServerContext,
    ) -> Result<SimpleResponse, Status> {
        self.unary_call(request, ctx)
    }

    fn streaming_output_call<'a>(
        &'a self,
        request: StreamingOutputCallRequest,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, StreamingOutputCallResponse>, Status> {
        start_stream(ctx)?;
        let status = request.response_status.clone();
        let tail = std::iter::once(()).filter_map(move |()| echo_status(&status).err().map(Err));
        Ok(Box::new(
            responses(ctx, request.response_parameters).chain(tail),
        ))
    }

    fn streaming_input_call(
        &self,
        requests: Streaming<StreamingInputCallRequest>,
        ctx: &ServerContext,
    ) -> Result<StreamingInputCallResponse, Status> {
        echo_metadata(ctx)?;
        let mut total = 0usize;
        for req in requests {
            let req = req?;
            check_compressed(&req.expect_compressed, ctx)?;
            total += req.payload.map_or(0, |p| p.body.len());
        }
        let total = i32::try_from(total)
            .map_err(|_| Status::invalid_argument("aggregated payload size overflows int32"))?;
        Ok(StreamingInputCallResponse {
            aggregated_payload_size: total,
        })
    }

    fn full_duplex_call<'a>(
        &'a self,
        requests: Streaming<StreamingOutputCallRequest>,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, StreamingOutputCallResponse>, Status> {
        start_stream(ctx)?;
        Ok(Box::new(requests.flat_map(move |req| {
            let it: Box<dyn Iterator<Item = _> + Send> = match req {
                Err(s) => Box::new(std::iter::once(Err(s))),
                Ok(req) => match echo_status(&req.response_status) {
                    Err(s) => Box::new(std::iter::once(Err(s))),
                    Ok(()) => Box::new(responses(ctx, req.response_parameters)),
                },
            };
            it
        })))
    }

    fn half_duplex_call<'a>(
        &'a self,
        requests: Streaming<StreamingOutputCallRequest>,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, StreamingOutputCallResponse>, Status> {
        start_stream(ctx)?;
        let all: Vec<StreamingOutputCallRequest> = requests.collect::<Result<_, _>>()?;
        let mut params = Vec::new();
        for req in all {
            echo_status(&req.response_status)?;
            params.extend(req.response_parameters);
        }
        Ok(Box::new(responses(ctx, params)))
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// The outcome of one case: what was checked, or what failed.
pub type CaseResult = Result<String, String>;

/// Variations of the cases for servers that cannot do everything the descriptions ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseOptions {
    /// Send the `client_compressed_*` probes (an uncompressed message with
    /// `expect_compressed` set, which must fail with INVALID_ARGUMENT). A server that cannot
    /// see whether a request was compressed (grpcio in Python) cannot pass them; grpc-java's
    /// client skips them the same way for such servers.
    pub compression_probe: bool,
}

impl Default for CaseOptions {
    fn default() -> Self {
        CaseOptions {
            compression_probe: true,
        }
    }
}

/// Runs the case called `name` over `channel`.
///
/// # Errors
///
/// A description of the first check that failed (or of an unknown case name).
pub fn run_case(channel: &Channel, name: &str) -> CaseResult {
    run_case_with(channel, name, CaseOptions::default())
}

/// [`run_case`] with [`CaseOptions`].
///
/// # Errors
///
/// As [`run_case`].
pub fn run_case_with(channel: &Channel, name: &str, opts: CaseOptions) -> CaseResult {
    let c = TestServiceClient::new(channel.clone());
    match name {
        "empty_unary" => empty_unary(&c),
        "large_unary" => large_unary(&c),
        "client_streaming" => client_streaming(&c),
        "server_streaming" => server_streaming(&c),
        "ping_pong" => ping_pong(&c),
        "empty_stream" => empty_stream(&c),
        "cancel_after_begin" => cancel_after_begin(&c),
        "cancel_after_first_response" => cancel_after_first_response(&c),
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&c),
        "status_code_and_message" => status_code_and_message(&c),
        "special_status_message" => special_status_message(&c),
        "custom_metadata" => custom_metadata(&c),
        "unimplemented_method" => unimplemented_method(&c),
        "unimplemented_service" => unimplemented_service(channel),
        "client_compressed_unary" => client_compressed_unary(&c, opts),
        "server_compressed_unary" => server_compressed_unary(&c),
        "client_compressed_streaming" => client_compressed_streaming(&c, channel, opts),
        "server_compressed_streaming" => server_compressed_streaming(&c),
        other => Err(format!(
            "unknown test case {other:?}; known: {}",
            CASES.join(", ")
        )),
    }
}

/// Turns a failed RPC into the case's failure message.
fn rpc<T>(what: &str, r: Result<T, Status>) -> Result<T, String> {
    r.map_err(|s| format!("{what} failed: {}: {}", s.code().as_str(), s.message()))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn expect_code<T>(what: &str, r: Result<T, Status>, code: Code) -> Result<Status, String> {
    match r {
        Ok(_) => Err(format!("{what} succeeded; expected {}", code.as_str())),
        Err(s) if s.code() == code => Ok(s),
        Err(s) => Err(format!(
            "{what} failed with {}: {}; expected {}",
            s.code().as_str(),
            s.message(),
            code.as_str()
        )),
    }
}

fn payload(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

fn check_payload(what: &str, p: &Option<Payload>, size: usize) -> Result<(), String> {
    let body = p.as_ref().map_or(&[][..], |p| &p.body[..]);
    ensure(body.len() == size, || {
        format!("{what}: payload of {} bytes, expected {size}", body.len())
    })?;
    ensure(body.iter().all(|&b| b == 0), || {
        format!("{what}: payload is not all zeros")
    })
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314_159,
        payload: payload(271_828),
        ..SimpleRequest::default()
    }
}

fn bool_value(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn stream_request(sizes: &[i32], payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..ResponseParameters::default()
            })
            .collect(),
        payload: (payload_size > 0).then(|| payload(payload_size)).flatten(),
        ..StreamingOutputCallRequest::default()
    }
}

const STREAM_REQUEST_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
const STREAM_RESPONSE_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];

fn empty_unary(c: &TestServiceClient) -> CaseResult {
    let _: Empty = rpc("EmptyCall", c.empty_call(Empty {}))?;
    Ok("EmptyCall with an empty request returned an empty response".into())
}

fn large_unary(c: &TestServiceClient) -> CaseResult {
    let resp = rpc("UnaryCall", c.unary_call(large_request()))?;
    check_payload("UnaryCall response", &resp.payload, 314_159)?;
    Ok("UnaryCall sent 271828 bytes and got 314159 zero bytes back".into())
}

fn client_streaming(c: &TestServiceClient) -> CaseResult {
    let reqs: Vec<_> = STREAM_REQUEST_SIZES
        .iter()
        .map(|&n| StreamingInputCallRequest {
            payload: payload(n),
            ..StreamingInputCallRequest::default()
        })
        .collect();
    let resp = rpc("StreamingInputCall", c.streaming_input_call(reqs))?;
    ensure(resp.aggregated_payload_size == 74_922, || {
        format!(
            "aggregated_payload_size {}, expected 74922",
            resp.aggregated_payload_size
        )
    })?;
    Ok("StreamingInputCall of 4 messages: aggregated_payload_size 74922".into())
}

/// Reads a response stream to its end; the payload sizes, each checked to be all zeros.
fn collect_sizes(s: Streaming<StreamingOutputCallResponse>) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for r in s {
        let r = rpc("reading the response stream", r)?;
        let size = r.payload.as_ref().map_or(0, |p| p.body.len());
        check_payload("streamed response", &r.payload, size)?;
        sizes.push(size);
    }
    Ok(sizes)
}

fn server_streaming(c: &TestServiceClient) -> CaseResult {
    let s = rpc(
        "StreamingOutputCall",
        c.streaming_output_call(stream_request(&STREAM_RESPONSE_SIZES, 0)),
    )?;
    let sizes = collect_sizes(s)?;
    ensure(sizes == [31_415, 9, 2_653, 58_979], || {
        format!("response sizes {sizes:?}, expected [31415, 9, 2653, 58979]")
    })?;
    Ok("StreamingOutputCall streamed 4 responses of 31415, 9, 2653, 58979 bytes".into())
}

fn ping_pong(c: &TestServiceClient) -> CaseResult {
    let (mut tx, mut rx) = rpc(
        "FullDuplexCall",
        c.full_duplex_call_interactive(CallOptions::new()),
    )?;
    for (i, (&req, &resp)) in STREAM_REQUEST_SIZES
        .iter()
        .zip(&STREAM_RESPONSE_SIZES)
        .enumerate()
    {
        rpc("sending a ping", tx.send(stream_request(&[resp], req)))?;
        let r = match rx.next() {
            Some(r) => rpc("reading a pong", r)?,
            None => return Err(format!("the stream ended after {i} pongs, expected 4")),
        };
        check_payload(&format!("pong {i}"), &r.payload, resp as usize)?;
    }
    rpc("half-closing", tx.close())?;
    if let Some(r) = rx.next() {
        return Err(format!("an extra response after half-close: {r:?}"));
    }
    Ok("FullDuplexCall ping-pong: 4 requests, each answered in turn with the right size".into())
}

fn empty_stream(c: &TestServiceClient) -> CaseResult {
    let s = rpc(
        "FullDuplexCall",
        c.full_duplex_call(Vec::<StreamingOutputCallRequest>::new()),
    )?;
    let sizes = collect_sizes(s)?;
    ensure(sizes.is_empty(), || {
        format!("{} responses, expected none", sizes.len())
    })?;
    Ok("FullDuplexCall with no requests ended OK with no responses".into())
}

fn cancel_after_begin(c: &TestServiceClient) -> CaseResult {
    // A request iterator that yields nothing until the call is cancelled.
    let (hold, rx) = crossbeam_channel::bounded::<StreamingInputCallRequest>(0);
    let future = c.streaming_input_call_future(rx.into_iter());
    future.cancel();
    drop(hold);
    let r = future
        .result_timeout(Duration::from_secs(10))
        .ok_or("the cancelled call did not finish within 10 s")?;
    expect_code(
        "StreamingInputCall cancelled before any request",
        r,
        Code::Cancelled,
    )?;
    Ok("StreamingInputCall cancelled before sending: CANCELLED".into())
}

fn cancel_after_first_response(c: &TestServiceClient) -> CaseResult {
    let (mut tx, mut rx) = rpc(
        "FullDuplexCall",
        c.full_duplex_call_interactive(CallOptions::new()),
    )?;
    rpc("sending", tx.send(stream_request(&[31_415], 27_182)))?;
    match rx.next() {
        Some(Ok(r)) => check_payload("first response", &r.payload, 31_415)?,
        Some(Err(s)) => return rpc("reading the first response", Err(s)),
        None => return Err("the stream ended before its first response".into()),
    }
    rx.cancel();
    ensure(rx.next().is_none(), || {
        "the stream yielded more after cancel".into()
    })?;
    let after = tx.send(stream_request(&[9], 8));
    expect_code("sending after cancel", after, Code::Cancelled)?;
    Ok("FullDuplexCall cancelled after the first response: CANCELLED".into())
}

fn timeout_on_sleeping_server(c: &TestServiceClient) -> CaseResult {
    let opts = CallOptions::new().timeout(Duration::from_millis(1));
    let (mut tx, mut rx) = rpc("FullDuplexCall", c.full_duplex_call_interactive(opts))?;
    // The send may already fail with the deadline; the status is what counts.
    let _ = tx.send(stream_request(&[], 27_182));
    let r = match rx.next() {
        Some(r) => r.map(|_| ()),
        None => Ok(()),
    };
    expect_code(
        "FullDuplexCall with a 1 ms deadline",
        r,
        Code::DeadlineExceeded,
    )?;
    Ok("FullDuplexCall with a 1 ms deadline: DEADLINE_EXCEEDED".into())
}

fn echo_status_request(message: &str) -> Option<EchoStatus> {
    Some(EchoStatus {
        code: 2,
        message: message.to_string(),
    })
}

fn check_status(what: &str, r: Result<(), Status>, message: &str) -> Result<(), String> {
    let s = expect_code(what, r, Code::Unknown)?;
    ensure(s.message() == message, || {
        format!("{what}: message {:?}, expected {message:?}", s.message())
    })
}

fn status_code_and_message(c: &TestServiceClient) -> CaseResult {
    const MSG: &str = "test status message";
    let req = SimpleRequest {
        response_status: echo_status_request(MSG),
        ..SimpleRequest::default()
    };
    check_status("UnaryCall", c.unary_call(req).map(|_| ()), MSG)?;
    let req = StreamingOutputCallRequest {
        response_status: echo_status_request(MSG),
        ..StreamingOutputCallRequest::default()
    };
    let r = c.full_duplex_call(vec![req]).and_then(|s| {
        for r in s {
            r?;
        }
        Ok(())
    });
    check_status("FullDuplexCall", r, MSG)?;
    Ok("UnaryCall and FullDuplexCall returned UNKNOWN \"test status message\"".into())
}

fn special_status_message(c: &TestServiceClient) -> CaseResult {
    const MSG: &str =
        "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";
    let req = SimpleRequest {
        response_status: echo_status_request(MSG),
        ..SimpleRequest::default()
    };
    check_status("UnaryCall", c.unary_call(req).map(|_| ()), MSG)?;
    Ok("UnaryCall returned UNKNOWN with whitespace, BMP and non-BMP characters intact".into())
}

const INITIAL_VALUE: &str = "test_initial_metadata_value";
const TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];

fn check_echo(
    what: &str,
    initial: Option<&MetadataMap>,
    trailing: Option<&MetadataMap>,
) -> Result<(), String> {
    let got = initial.and_then(|m| m.get(ECHO_INITIAL_KEY));
    ensure(got == Some(INITIAL_VALUE), || {
        format!("{what}: initial metadata {ECHO_INITIAL_KEY} = {got:?}, expected {INITIAL_VALUE:?}")
    })?;
    let got = trailing.and_then(|m| m.get_bin(ECHO_TRAILING_KEY));
    ensure(got.as_deref() == Some(&TRAILING_VALUE[..]), || {
        format!("{what}: trailing metadata {ECHO_TRAILING_KEY} = {got:?}, expected ababab")
    })
}

fn custom_metadata(c: &TestServiceClient) -> CaseResult {
    let resp = rpc(
        "UnaryCall",
        c.unary_call_with_call(with_md(large_request())),
    )?;
    check_payload("UnaryCall response", &resp.get_ref().payload, 314_159)?;
    check_echo(
        "UnaryCall",
        Some(resp.initial_metadata()),
        Some(resp.trailing_metadata()),
    )?;

    let req = stream_request(&[314_159], 271_828);
    let mut s = rpc(
        "FullDuplexCall",
        c.full_duplex_call(with_md(vec![req]).map_iter()),
    )?;
    let initial = s.initial_metadata().cloned();
    let mut n = 0;
    for r in s.by_ref() {
        let r = rpc("FullDuplexCall response", r)?;
        check_payload("FullDuplexCall response", &r.payload, 314_159)?;
        n += 1;
    }
    ensure(n == 1, || {
        format!("FullDuplexCall: {n} responses, expected 1")
    })?;
    check_echo("FullDuplexCall", initial.as_ref(), s.trailing_metadata())?;
    Ok("UnaryCall and FullDuplexCall echoed x-grpc-test-echo-initial and -trailing-bin".into())
}

/// Wraps `r` with the two metadata entries the server echoes.
fn with_md<T>(r: T) -> Request<T> {
    Request::new(r)
        .with_metadata(ECHO_INITIAL_KEY, INITIAL_VALUE)
        .with_metadata_bin(ECHO_TRAILING_KEY, &TRAILING_VALUE[..])
}

/// Turns a request carrying a `Vec` into one carrying its iterator.
trait MapIter<T> {
    fn map_iter(self) -> Request<std::vec::IntoIter<T>>;
}

impl<T> MapIter<T> for Request<Vec<T>> {
    fn map_iter(self) -> Request<std::vec::IntoIter<T>> {
        let (v, opts) = self.into_parts();
        Request::with_options(v.into_iter(), opts)
    }
}

fn unimplemented_method(c: &TestServiceClient) -> CaseResult {
    expect_code(
        "TestService/UnimplementedCall",
        c.unimplemented_call(Empty {}),
        Code::Unimplemented,
    )?;
    Ok("TestService/UnimplementedCall: UNIMPLEMENTED".into())
}

fn unimplemented_service(channel: &Channel) -> CaseResult {
    let c = UnimplementedServiceClient::new(channel.clone());
    expect_code(
        "UnimplementedService/UnimplementedCall",
        c.unimplemented_call(Empty {}),
        Code::Unimplemented,
    )?;
    Ok("UnimplementedService/UnimplementedCall: UNIMPLEMENTED".into())
}

fn client_compressed_unary(c: &TestServiceClient, opts: CaseOptions) -> CaseResult {
    let probe = SimpleRequest {
        expect_compressed: bool_value(true),
        ..large_request()
    };
    if opts.compression_probe {
        expect_code(
            "the probe (uncompressed, expect_compressed=true)",
            c.unary_call(uncompressed(probe.clone())),
            Code::InvalidArgument,
        )?;
    }
    let resp = rpc(
        "UnaryCall compressed",
        c.unary_call(Request::new(probe).with_compression(CompressionEncoding::Gzip)),
    )?;
    check_payload("compressed call's response", &resp.payload, 314_159)?;
    let plain = SimpleRequest {
        expect_compressed: bool_value(false),
        ..large_request()
    };
    let resp = rpc("UnaryCall uncompressed", c.unary_call(uncompressed(plain)))?;
    check_payload("uncompressed call's response", &resp.payload, 314_159)?;
    Ok(format!(
        "{}gzip-compressed and uncompressed UnaryCalls succeeded",
        probe_note(opts)
    ))
}

/// `r` sent uncompressed whatever the channel's default compression.
fn uncompressed<T>(r: T) -> Request<T> {
    Request::new(r).with_compression(CompressionEncoding::Identity)
}

fn probe_note(opts: CaseOptions) -> &'static str {
    if opts.compression_probe {
        "probe INVALID_ARGUMENT; "
    } else {
        "(probe skipped) "
    }
}

fn server_compressed_unary(c: &TestServiceClient) -> CaseResult {
    for compressed in [true, false] {
        let req = SimpleRequest {
            response_compressed: bool_value(compressed),
            ..large_request()
        };
        let resp = rpc(
            &format!("UnaryCall response_compressed={compressed}"),
            c.unary_call_with_call(req),
        )?;
        check_payload("response", &resp.get_ref().payload, 314_159)?;
        ensure(resp.message_compressed() == compressed, || {
            format!(
                "response_compressed={compressed} but the response's compressed flag is {}",
                resp.message_compressed()
            )
        })?;
    }
    Ok("UnaryCall responses compressed (flag set) and uncompressed (flag clear) on request".into())
}

fn client_compressed_streaming(
    c: &TestServiceClient,
    channel: &Channel,
    opts: CaseOptions,
) -> CaseResult {
    let probe = StreamingInputCallRequest {
        payload: payload(27_182),
        expect_compressed: bool_value(true),
    };
    if opts.compression_probe {
        expect_code(
            "the probe (uncompressed, expect_compressed=true)",
            c.streaming_input_call(uncompressed(vec![probe.clone()]).map_iter()),
            Code::InvalidArgument,
        )?;
    }
    let gzip = CallOptions::new().compression(CompressionEncoding::Gzip);
    let (mut tx, mut rx) = rpc(
        "StreamingInputCall",
        channel.bidi_interactive::<StreamingInputCallRequest, StreamingInputCallResponse>(
            test_service_client::STREAMING_INPUT_CALL_PATH,
            gzip,
        ),
    )?;
    rpc("sending the compressed message", tx.send(probe))?;
    tx.set_message_compression(false);
    rpc(
        "sending the uncompressed message",
        tx.send(StreamingInputCallRequest {
            payload: payload(45_904),
            expect_compressed: bool_value(false),
        }),
    )?;
    rpc("half-closing", tx.close())?;
    let resp = match rx.next() {
        Some(r) => rpc("StreamingInputCall", r)?,
        None => return Err("StreamingInputCall ended without a response".into()),
    };
    if let Some(r) = rx.next() {
        rpc("StreamingInputCall", r)?;
        return Err("StreamingInputCall sent more than one response".into());
    }
    ensure(resp.aggregated_payload_size == 73_086, || {
        format!(
            "aggregated_payload_size {}, expected 73086",
            resp.aggregated_payload_size
        )
    })?;
    Ok(format!(
        "{}compressed then uncompressed message: 73086 bytes",
        probe_note(opts)
    ))
}

fn server_compressed_streaming(c: &TestServiceClient) -> CaseResult {
    let req = StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                size: 31_415,
                compressed: bool_value(true),
                ..ResponseParameters::default()
            },
            ResponseParameters {
                size: 92_653,
                compressed: bool_value(false),
                ..ResponseParameters::default()
            },
        ],
        ..StreamingOutputCallRequest::default()
    };
    let mut s = rpc("StreamingOutputCall", c.streaming_output_call(req))?;
    for (n, (size, compressed)) in [(31_415, true), (92_653, false)].into_iter().enumerate() {
        let r = match s.next() {
            Some(r) => rpc("StreamingOutputCall", r)?,
            None => return Err(format!("{n} responses, expected 2")),
        };
        check_payload(&format!("response {n}"), &r.payload, size)?;
        ensure(s.last_message_compressed() == compressed, || {
            format!(
                "response {n}: compressed flag {}, expected {compressed}",
                s.last_message_compressed()
            )
        })?;
    }
    if let Some(r) = s.next() {
        rpc("StreamingOutputCall", r)?;
        return Err("more than 2 responses".into());
    }
    Ok("StreamingOutputCall: response 1 compressed (flag set), response 2 not".into())
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

/// Parses a gRPC interop boolean flag value (`true`/`false`, `1`/`0`).
fn parse_bool(flag: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{flag}: expected true or false, got {v:?}")),
    }
}

/// Splits `--flag=value` / `--flag value` pairs; a bare boolean flag means true.
fn flags(args: impl IntoIterator<Item = String>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            out.push(("--help".to_string(), String::new()));
            continue;
        }
        if !arg.starts_with("--") {
            return Err(format!("unexpected argument {arg:?}"));
        }
        match arg.split_once('=') {
            Some((f, v)) => out.push((f.to_string(), v.to_string())),
            None => {
                let value = match args.peek() {
                    Some(v) if !v.starts_with("--") => args.next().unwrap_or_default(),
                    _ => "true".to_string(),
                };
                out.push((arg, value));
            }
        }
    }
    Ok(out)
}

/// `interop_server` flags: `--port`, `--use_tls`, and (as grpc-go's interop server)
/// `--tls_cert_file`, `--tls_key_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// `--port`: the port to listen on (all addresses).
    pub port: u16,
    /// `--use_tls`: serve TLS.
    pub use_tls: bool,
    /// `--tls_cert_file`: the PEM certificate chain for `--use_tls`. The interop test
    /// certificates are not bundled, so it is required with `--use_tls`.
    pub tls_cert_file: Option<String>,
    /// `--tls_key_file`: the PEM private key for `--use_tls`.
    pub tls_key_file: Option<String>,
    /// `--option NAME=VALUE` (repeatable): grpcio channel arguments for the server.
    pub options: Vec<(String, grpc_sync::OptionValue)>,
}

impl ServerArgs {
    /// Parses the flags (without the program name); `Ok(None)` for `--help`.
    ///
    /// # Errors
    ///
    /// A message naming the bad flag.
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<ServerArgs>, String> {
        let mut parsed = ServerArgs {
            port: 10000,
            use_tls: false,
            tls_cert_file: None,
            tls_key_file: None,
            options: Vec::new(),
        };
        for (flag, v) in flags(args)? {
            match flag.as_str() {
                "--port" => parsed.port = v.parse().map_err(|_| format!("bad --port {v:?}"))?,
                "--use_tls" => parsed.use_tls = parse_bool(&flag, &v)?,
                "--tls_cert_file" => parsed.tls_cert_file = Some(v),
                "--tls_key_file" => parsed.tls_key_file = Some(v),
                "--option" => parsed.options.push(super::parse_option(&v)?),
                "--help" => return Ok(None),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(Some(parsed))
    }

    /// The server's TLS credentials when `--use_tls` is set.
    ///
    /// # Errors
    /// A message naming the missing flag or the unreadable file.
    pub fn credentials(&self) -> Result<Option<grpc_sync::ServerCredentials>, String> {
        if !self.use_tls {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&self.tls_cert_file, &self.tls_key_file) else {
            return Err(
                "--use_tls needs --tls_cert_file and --tls_key_file (the interop test \
                 certificates are not bundled)"
                    .into(),
            );
        };
        let read = |p: &str| std::fs::read(p).map_err(|e| format!("cannot read {p}: {e}"));
        grpc_sync::ServerCredentials::from_pem(&read(cert)?, &read(key)?)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// `interop_client` flags: the standard interop client flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// `--server_host` (default `localhost`).
    pub server_host: String,
    /// `--server_port` (default 10000).
    pub server_port: u16,
    /// `--server_host_override`: the `:authority` (and TLS name) to claim.
    pub server_host_override: Option<String>,
    /// `--use_tls`.
    pub use_tls: bool,
    /// `--use_test_ca`: trust the test CA of `--ca_file` instead of the platform roots.
    pub use_test_ca: bool,
    /// `--ca_file` (as grpc-go's interop client): the PEM file of the test CA; required with
    /// `--use_test_ca`, since the interop test CA is not bundled.
    pub ca_file: Option<String>,
    /// `--test_case`: a case name, or `all`.
    pub test_case: String,
    /// `--compression_probe` (not a standard flag; default true): see
    /// [`CaseOptions::compression_probe`].
    pub compression_probe: bool,
    /// `--option NAME=VALUE` (repeatable): grpcio channel arguments for the channel.
    pub options: Vec<(String, grpc_sync::OptionValue)>,
}

impl ClientArgs {
    /// Parses the flags (without the program name); `Ok(None)` for `--help`.
    ///
    /// # Errors
    ///
    /// A message naming the bad flag.
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<ClientArgs>, String> {
        let mut parsed = ClientArgs {
            server_host: "localhost".into(),
            server_port: 10000,
            server_host_override: None,
            use_tls: false,
            use_test_ca: false,
            ca_file: None,
            test_case: "large_unary".into(),
            compression_probe: true,
            options: Vec::new(),
        };
        for (flag, v) in flags(args)? {
            match flag.as_str() {
                "--server_host" => parsed.server_host = v,
                "--server_port" => {
                    parsed.server_port =
                        v.parse().map_err(|_| format!("bad --server_port {v:?}"))?
                }
                "--server_host_override" => {
                    parsed.server_host_override = Some(v).filter(|v| !v.is_empty())
                }
                "--use_tls" => parsed.use_tls = parse_bool(&flag, &v)?,
                "--use_test_ca" => parsed.use_test_ca = parse_bool(&flag, &v)?,
                "--ca_file" => parsed.ca_file = Some(v),
                "--test_case" => parsed.test_case = v,
                "--compression_probe" => parsed.compression_probe = parse_bool(&flag, &v)?,
                "--option" => parsed.options.push(super::parse_option(&v)?),
                "--help" => return Ok(None),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(Some(parsed))
    }

    /// The channel target, `host:port` (IPv6 literals bracketed).
    pub fn target(&self) -> String {
        if self.server_host.contains(':') && !self.server_host.starts_with('[') {
            format!("[{}]:{}", self.server_host, self.server_port)
        } else {
            format!("{}:{}", self.server_host, self.server_port)
        }
    }

    /// The channel's TLS credentials when `--use_tls` is set.
    ///
    /// # Errors
    /// A message naming the missing flag or the unreadable file.
    pub fn credentials(&self) -> Result<Option<grpc_sync::ChannelCredentials>, String> {
        if !self.use_tls {
            return Ok(None);
        }
        let creds = match (&self.ca_file, self.use_test_ca) {
            (Some(path), _) => {
                let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                grpc_sync::ChannelCredentials::from_ca_pem(&pem).map_err(|e| e.to_string())?
            }
            (None, true) => {
                return Err(
                    "--use_test_ca needs --ca_file=PATH (the interop test CA is not bundled)"
                        .into(),
                )
            }
            (None, false) => {
                return Err(
                    "--use_tls needs --ca_file=PATH (platform roots are behind the \
                            `native-roots` feature)"
                        .into(),
                )
            }
        };
        Ok(Some(match &self.server_host_override {
            Some(name) => creds.with_server_name_override(name),
            None => creds,
        }))
    }

    /// The cases to run: `all`, or a comma-separated list.
    pub fn cases(&self) -> Vec<String> {
        if self.test_case == "all" {
            CASES.iter().map(|s| s.to_string()).collect()
        } else {
            self.test_case.split(',').map(str::to_string).collect()
        }
    }
}

/// Runs `cases` over `channel`, printing one line per case (`PASS name: …` / `FAIL name: …`).
/// Returns whether all passed.
pub fn run_cases(channel: &Channel, cases: &[String], opts: CaseOptions) -> bool {
    let mut ok = true;
    for case in cases {
        match run_case_with(channel, case, opts) {
            Ok(what) => println!("PASS {case}: {what}"),
            Err(why) => {
                ok = false;
                println!("FAIL {case}: {why}");
            }
        }
    }
    ok
}
