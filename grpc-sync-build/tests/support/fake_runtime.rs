//! COMPILE-CHECK HARNESS ONLY — this is NOT the grpc-sync runtime.
//!
//! A stand-in for the part of the `grpc_sync` API that generated code calls (contract §6), with
//! the same names, paths, generic parameters and bounds, so that the code grpc-sync-build
//! generates can be compiled (and its wiring observed) before the real runtime exists. Nothing
//! here talks to a network: the "channel" only records which path and call kind each client
//! method used, and the "service builder" only records the registered methods and can call
//! each handler once with a default request.
//!
//! The end-to-end check — generated code against the real `grpc_sync` server and client — is a
//! separate test that belongs with the runtime.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use prost;

/// gRPC status codes (the fake needs only a few of them to be distinct).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Ok,
    Unknown,
    Unimplemented,
    Internal,
}

/// An RPC outcome: code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }
    pub fn code(&self) -> Code {
        self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Metadata (empty in the fake).
#[derive(Clone, Debug, Default)]
pub struct MetadataMap {
    entries: Vec<(String, String)>,
}

impl MetadataMap {
    pub fn insert(&mut self, key: &str, value: &str) {
        self.entries.push((key.to_owned(), value.to_owned()));
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler learns about its call.
#[derive(Debug, Default)]
pub struct ServerContext {
    metadata: MetadataMap,
}

impl ServerContext {
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }
}

/// The response stream a streaming handler returns.
pub type ResponseStream<'a, T> = Box<dyn Iterator<Item = Result<T, Status>> + Send + 'a>;

/// An incoming message stream (requests on the server, responses on the client).
pub struct Streaming<T> {
    items: Box<dyn Iterator<Item = Result<T, Status>> + Send>,
}

impl<T: Send + 'static> Streaming<T> {
    pub fn from_results(items: Vec<Result<T, Status>>) -> Streaming<T> {
        Streaming {
            items: Box::new(items.into_iter()),
        }
    }
    pub fn empty() -> Streaming<T> {
        Streaming::from_results(Vec::new())
    }
}

impl<T: prost::Message + Default> Iterator for Streaming<T> {
    type Item = Result<T, Status>;
    fn next(&mut self) -> Option<Self::Item> {
        self.items.next()
    }
}

/// Handler traits, at the path generated code names them by (`::grpc_sync::server::…`).
pub mod server {
    use super::{ResponseStream, ServerContext, Status, Streaming};

    pub trait UnaryHandler<Req, Resp>: Send + Sync + 'static {
        fn call(&self, req: Req, ctx: &ServerContext) -> Result<Resp, Status>;
    }
    pub trait ServerStreamingHandler<Req, Resp>: Send + Sync + 'static {
        fn call<'a>(
            &'a self,
            req: Req,
            ctx: &'a ServerContext,
        ) -> Result<ResponseStream<'a, Resp>, Status>;
    }
    pub trait ClientStreamingHandler<Req, Resp>: Send + Sync + 'static {
        fn call(&self, reqs: Streaming<Req>, ctx: &ServerContext) -> Result<Resp, Status>;
    }
    pub trait BidiStreamingHandler<Req, Resp>: Send + Sync + 'static {
        fn call<'a>(
            &'a self,
            reqs: Streaming<Req>,
            ctx: &'a ServerContext,
        ) -> Result<ResponseStream<'a, Resp>, Status>;
    }
}

/// Calls a registered handler once with a default request (or an empty request stream) and
/// reports how many response messages it produced.
type Invoke = Box<dyn Fn(&ServerContext) -> Result<usize, Status> + Send + Sync>;

/// One method registered on a [`Service`].
pub struct RegisteredMethod {
    pub name: String,
    pub kind: &'static str,
    invoke: Invoke,
}

impl RegisteredMethod {
    /// Runs the handler with a default request; `Ok(n)` = n response messages.
    pub fn invoke_with_default(&self) -> Result<usize, Status> {
        (self.invoke)(&ServerContext::default())
    }
}

/// A named set of methods.
pub struct Service {
    name: String,
    methods: Vec<RegisteredMethod>,
}

impl Service {
    pub fn builder(name: &str) -> ServiceBuilder {
        ServiceBuilder {
            service: Service {
                name: name.to_owned(),
                methods: Vec::new(),
            },
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn methods(&self) -> &[RegisteredMethod] {
        &self.methods
    }
}

/// Builds a [`Service`].
pub struct ServiceBuilder {
    service: Service,
}

impl ServiceBuilder {
    fn add(mut self, name: &str, kind: &'static str, invoke: Invoke) -> Self {
        self.service.methods.push(RegisteredMethod {
            name: name.to_owned(),
            kind,
            invoke,
        });
        self
    }

    pub fn unary<Req, Resp>(self, method: &str, h: impl server::UnaryHandler<Req, Resp>) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
    {
        self.add(
            method,
            "unary",
            Box::new(move |ctx| h.call(Req::default(), ctx).map(|_| 1)),
        )
    }

    pub fn server_streaming<Req, Resp>(
        self,
        method: &str,
        h: impl server::ServerStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
    {
        self.add(
            method,
            "server_streaming",
            Box::new(move |ctx| h.call(Req::default(), ctx).map(Iterator::count)),
        )
    }

    pub fn client_streaming<Req, Resp>(
        self,
        method: &str,
        h: impl server::ClientStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
    {
        self.add(
            method,
            "client_streaming",
            Box::new(move |ctx| h.call(Streaming::empty(), ctx).map(|_| 1)),
        )
    }

    pub fn bidi_streaming<Req, Resp>(
        self,
        method: &str,
        h: impl server::BidiStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
    {
        self.add(
            method,
            "bidi_streaming",
            Box::new(move |ctx| h.call(Streaming::empty(), ctx).map(Iterator::count)),
        )
    }

    pub fn build(self) -> Service {
        self.service
    }
}

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub timeout: Option<Duration>,
    pub metadata: MetadataMap,
    pub wait_for_ready: bool,
}

/// A request message with its call options.
pub struct Request<T> {
    message: T,
    options: CallOptions,
}

impl<T> Request<T> {
    pub fn new(message: T) -> Self {
        Request {
            message,
            options: CallOptions::default(),
        }
    }
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.options.metadata.insert(key, value);
        self
    }
    pub fn options(&self) -> &CallOptions {
        &self.options
    }
    pub fn into_parts(self) -> (T, CallOptions) {
        (self.message, self.options)
    }
    pub fn get_ref(&self) -> &T {
        &self.message
    }
    pub fn into_inner(self) -> T {
        self.message
    }
}

/// The message or a [`Request`] wrapping it.
pub trait IntoRequest<T> {
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// Anything that yields the request messages of a streaming call.
pub trait IntoStreamingRequest {
    type Message;
    type Iter: Iterator<Item = Self::Message> + Send + 'static;
    fn into_streaming_request(self) -> Request<Self::Iter>;
}

impl<I> IntoStreamingRequest for I
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
{
    type Message = I::Item;
    type Iter = I::IntoIter;
    fn into_streaming_request(self) -> Request<Self::Iter> {
        Request::new(self.into_iter())
    }
}

impl<I: Iterator + Send + 'static> IntoStreamingRequest for Request<I> {
    type Message = I::Item;
    type Iter = I;
    fn into_streaming_request(self) -> Request<I> {
        self
    }
}

/// A response message with its metadata.
pub struct Response<T> {
    message: T,
    initial_metadata: MetadataMap,
    trailing_metadata: MetadataMap,
}

impl<T> Response<T> {
    pub fn get_ref(&self) -> &T {
        &self.message
    }
    pub fn into_inner(self) -> T {
        self.message
    }
    pub fn initial_metadata(&self) -> &MetadataMap {
        &self.initial_metadata
    }
    pub fn trailing_metadata(&self) -> &MetadataMap {
        &self.trailing_metadata
    }
}

/// The result of a call that goes on in the background.
pub struct CallFuture<T> {
    outcome: Result<T, Status>,
}

impl<T> CallFuture<T> {
    pub fn result(self) -> Result<T, Status> {
        self.outcome
    }
    pub fn cancel(&self) {}
    pub fn is_done(&self) -> bool {
        true
    }
}

/// The sending half of an interactive bidi call.
pub struct RequestSender<T> {
    _marker: std::marker::PhantomData<fn(T)>,
}

impl<T> RequestSender<T> {
    pub fn send(&self, _message: T) -> Result<(), Status> {
        Err(Status::unimplemented(FAKE))
    }
    pub fn close(self) {}
}

const FAKE: &str = "compile-check harness: no real channel";

/// One call seen by the recording [`Channel`]: request path, call kind, and the number of
/// request messages (1 for unary requests, the drained count for streams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCall {
    pub path: &'static str,
    pub kind: &'static str,
    pub requests: usize,
}

/// A channel that records calls and answers every one with UNIMPLEMENTED.
#[derive(Clone, Default)]
pub struct Channel {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
}

impl Channel {
    pub fn recording() -> Channel {
        Channel::default()
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, path: &'static str, kind: &'static str, requests: usize) {
        self.calls.lock().unwrap().push(RecordedCall {
            path,
            kind,
            requests,
        });
    }

    pub fn unary<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        drop(req);
        self.record(path, "unary", 1);
        Err(Status::unimplemented(FAKE))
    }

    pub fn unary_future<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> CallFuture<Response<Resp>>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        drop(req);
        self.record(path, "unary_future", 1);
        CallFuture {
            outcome: Err(Status::unimplemented(FAKE)),
        }
    }

    pub fn server_streaming<Req, Resp>(
        &self,
        path: &'static str,
        req: Request<Req>,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        drop(req);
        self.record(path, "server_streaming", 1);
        Ok(Streaming::empty())
    }

    pub fn client_streaming<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        self.record(path, "client_streaming", req.into_inner().count());
        Err(Status::unimplemented(FAKE))
    }

    pub fn client_streaming_future<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> CallFuture<Response<Resp>>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        self.record(path, "client_streaming_future", req.into_inner().count());
        CallFuture {
            outcome: Err(Status::unimplemented(FAKE)),
        }
    }

    pub fn bidi_streaming<Req, Resp, I>(
        &self,
        path: &'static str,
        req: Request<I>,
    ) -> Result<Streaming<Resp>, Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + Send + 'static,
        I: Iterator<Item = Req> + Send + 'static,
    {
        self.record(path, "bidi_streaming", req.into_inner().count());
        Ok(Streaming::empty())
    }

    pub fn bidi_interactive<Req, Resp>(
        &self,
        path: &'static str,
        options: CallOptions,
    ) -> Result<(RequestSender<Req>, Streaming<Resp>), Status>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        drop(options);
        self.record(path, "bidi_interactive", 0);
        Ok((
            RequestSender {
                _marker: std::marker::PhantomData,
            },
            Streaming::empty(),
        ))
    }
}
