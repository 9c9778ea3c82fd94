//! Services: named sets of methods, routed by `:path`, with or without generated code.
//!
//! A [`Service`] is what [`ServerBuilder::add_service`](crate::server::ServerBuilder::add_service)
//! takes. Generated code builds one from a trait implementation; without code generation,
//! build one from closures, like grpcio's `method_handlers_generic_handler`:
//!
//! ```
//! use grpc_sync::{Service, Status};
//! # #[derive(Clone, PartialEq, grpc_sync::prost::Message)] struct Work { #[prost(int32, tag = "1")] a: i32 }
//! let svc = Service::builder("demo.Calc")
//!     .unary("Double", |w: Work, _ctx: &grpc_sync::ServerContext| {
//!         if w.a > 1000 {
//!             return Err(Status::invalid_argument("too big"));
//!         }
//!         Ok(Work { a: w.a * 2 })
//!     })
//!     .build();
//! assert_eq!(svc.name(), "demo.Calc");
//! ```

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use crate::server::context::ServerContext;
use crate::server::interceptor::MethodKind;
use crate::server::sink::{DetachedCall, ResponseSink};
use crate::status::Status;
use crate::streaming::{MessageSource, Streaming};

/// The iterator a streaming handler returns: each item is a message, or an error that ends the
/// RPC with that status. It may borrow the handler (`&self`) and the context.
pub type ResponseStream<'a, T> = Box<dyn Iterator<Item = Result<T, Status>> + Send + 'a>;

/// A unary method: one request, one response.
pub trait UnaryHandler<Req, Resp>: Send + Sync + 'static {
    /// Handles one call.
    fn call(&self, request: Req, ctx: &ServerContext) -> Result<Resp, Status>;
}

/// A server-streaming method: one request, a stream of responses.
pub trait ServerStreamingHandler<Req, Resp>: Send + Sync + 'static {
    /// Handles one call; the returned iterator is pulled as flow control allows.
    fn call<'a>(
        &'a self,
        request: Req,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Resp>, Status>;
}

/// A client-streaming method: a stream of requests, one response.
pub trait ClientStreamingHandler<Req, Resp>: Send + Sync + 'static {
    /// Handles one call; `requests` ends at the client's half-close.
    fn call(&self, requests: Streaming<Req>, ctx: &ServerContext) -> Result<Resp, Status>;
}

/// A bidirectional-streaming method.
pub trait BidiStreamingHandler<Req, Resp>: Send + Sync + 'static {
    /// Handles one call.
    fn call<'a>(
        &'a self,
        requests: Streaming<Req>,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Resp>, Status>;
}

/// A server-streaming method whose responses are sent later, from any thread, through a
/// [`ResponseSink`]: the handler returns at once and holds no worker while the stream stays
/// open (for streams fed by events, such as health `Watch`). Closures work directly.
pub trait DetachedStreamingHandler<Req, Resp>: Send + Sync + 'static {
    /// Starts one call: keep `sink` wherever the events come from, or finish it now.
    fn call(&self, request: Req, sink: ResponseSink<Resp>);
}

impl<Req, Resp, F> DetachedStreamingHandler<Req, Resp> for F
where
    F: Fn(Req, ResponseSink<Resp>) + Send + Sync + 'static,
{
    fn call(&self, request: Req, sink: ResponseSink<Resp>) {
        self(request, sink)
    }
}

impl<Req, Resp, F> UnaryHandler<Req, Resp> for F
where
    F: Fn(Req, &ServerContext) -> Result<Resp, Status> + Send + Sync + 'static,
{
    fn call(&self, request: Req, ctx: &ServerContext) -> Result<Resp, Status> {
        self(request, ctx)
    }
}

impl<Req, Resp, F> ClientStreamingHandler<Req, Resp> for F
where
    F: Fn(Streaming<Req>, &ServerContext) -> Result<Resp, Status> + Send + Sync + 'static,
{
    fn call(&self, requests: Streaming<Req>, ctx: &ServerContext) -> Result<Resp, Status> {
        self(requests, ctx)
    }
}

/// A response stream being sent: pulling an item pulls one message from the handler and
/// sends it ([`ServerContext::send_message`], which encodes it in place, typed); an error is
/// the status that ends the call (the handler's, or why the send failed).
pub(crate) type RawStream<'a> = Box<dyn Iterator<Item = Result<(), Status>> + Send + 'a>;

/// The type-erased forms the server core runs; requests arrive as message bytes.
pub(crate) trait ErasedUnary: Send + Sync {
    fn call(&self, request: Bytes, ctx: &ServerContext) -> Result<Bytes, Status>;
}
pub(crate) trait ErasedServerStreaming: Send + Sync {
    fn call<'a>(&'a self, request: Bytes, ctx: &'a ServerContext) -> Result<RawStream<'a>, Status>;
}
pub(crate) trait ErasedClientStreaming: Send + Sync {
    fn call(&self, requests: Box<dyn MessageSource>, ctx: &ServerContext) -> Result<Bytes, Status>;
}
pub(crate) trait ErasedBidi: Send + Sync {
    fn call<'a>(
        &'a self,
        requests: Box<dyn MessageSource>,
        ctx: &'a ServerContext,
    ) -> Result<RawStream<'a>, Status>;
}

/// A detached server-streaming handler: it gets the call itself, which outlives it.
pub(crate) trait ErasedDetached: Send + Sync {
    fn call(&self, request: Bytes, call: DetachedCall);
}

/// One routable method.
#[derive(Clone)]
pub(crate) enum Method {
    Unary(Arc<dyn ErasedUnary>),
    ServerStreaming(Arc<dyn ErasedServerStreaming>),
    ClientStreaming(Arc<dyn ErasedClientStreaming>),
    Bidi(Arc<dyn ErasedBidi>),
    /// Server streaming through a [`ResponseSink`]: the worker returns as soon as the handler
    /// has taken the sink (see `server::sink`).
    Detached(Arc<dyn ErasedDetached>),
}

impl Method {
    /// Whether the handler needs the whole request before it runs (unary and server streaming).
    pub fn single_request(&self) -> bool {
        matches!(
            self,
            Method::Unary(_) | Method::ServerStreaming(_) | Method::Detached(_)
        )
    }

    /// Whether the RPC outlives a unary exchange (every kind but unary): it counts towards
    /// `max_streaming_rpcs_per_connection` while open, and never runs inline. Every such
    /// kind holds its worker for the life of the stream, except [`Method::Detached`].
    pub fn streams(&self) -> bool {
        !matches!(self, Method::Unary(_))
    }

    /// The RPC kind, as interceptors see it (a detached stream is server streaming).
    pub fn kind(&self) -> MethodKind {
        match self {
            Method::Unary(_) => MethodKind::Unary,
            Method::ServerStreaming(_) | Method::Detached(_) => MethodKind::ServerStreaming,
            Method::ClientStreaming(_) => MethodKind::ClientStreaming,
            Method::Bidi(_) => MethodKind::BidiStreaming,
        }
    }
}

fn decode<T: Message + Default>(bytes: Bytes) -> Result<T, Status> {
    T::decode(bytes)
        .map_err(|e| Status::internal(format!("failed to decode the request message: {e}")))
}

struct Typed<H, Req, Resp>(H, PhantomData<fn(Req) -> Resp>);

impl<H, Req, Resp> ErasedUnary for Typed<H, Req, Resp>
where
    H: UnaryHandler<Req, Resp>,
    Req: Message + Default + 'static,
    Resp: Message + 'static,
{
    fn call(&self, request: Bytes, ctx: &ServerContext) -> Result<Bytes, Status> {
        let resp = self.0.call(decode(request)?, ctx)?;
        ctx.encode(&resp)
    }
}

impl<H, Req, Resp> ErasedServerStreaming for Typed<H, Req, Resp>
where
    H: ServerStreamingHandler<Req, Resp>,
    Req: Message + Default + 'static,
    Resp: Message + 'static,
{
    fn call<'a>(&'a self, request: Bytes, ctx: &'a ServerContext) -> Result<RawStream<'a>, Status> {
        let it = self.0.call(decode(request)?, ctx)?;
        Ok(Box::new(
            it.map(move |r| r.and_then(|m| ctx.send_message(&m))),
        ))
    }
}

impl<H, Req, Resp> ErasedClientStreaming for Typed<H, Req, Resp>
where
    H: ClientStreamingHandler<Req, Resp>,
    Req: Message + Default + 'static,
    Resp: Message + 'static,
{
    fn call(&self, requests: Box<dyn MessageSource>, ctx: &ServerContext) -> Result<Bytes, Status> {
        let resp = self.0.call(Streaming::from_boxed(requests), ctx)?;
        ctx.encode(&resp)
    }
}

impl<H, Req, Resp> ErasedBidi for Typed<H, Req, Resp>
where
    H: BidiStreamingHandler<Req, Resp>,
    Req: Message + Default + 'static,
    Resp: Message + 'static,
{
    fn call<'a>(
        &'a self,
        requests: Box<dyn MessageSource>,
        ctx: &'a ServerContext,
    ) -> Result<RawStream<'a>, Status> {
        let it = self.0.call(Streaming::from_boxed(requests), ctx)?;
        Ok(Box::new(
            it.map(move |r| r.and_then(|m| ctx.send_message(&m))),
        ))
    }
}

impl<H, Req, Resp> ErasedDetached for Typed<H, Req, Resp>
where
    H: DetachedStreamingHandler<Req, Resp>,
    Req: Message + Default + 'static,
    Resp: Message + 'static,
{
    fn call(&self, request: Bytes, mut call: DetachedCall) {
        match decode(request) {
            Ok(req) => self.0.call(req, ResponseSink::new(call)),
            Err(status) => call.finish(status),
        }
    }
}

/// Adapts a closure to [`ServerStreamingHandler`] (closures cannot name the borrowed lifetime
/// through a blanket impl, so this goes through [`ServiceBuilder::server_streaming_fn`]).
struct FnServerStreaming<F>(F);

impl<Req, Resp, F> ServerStreamingHandler<Req, Resp> for FnServerStreaming<F>
where
    F: for<'a> Fn(Req, &'a ServerContext) -> Result<ResponseStream<'a, Resp>, Status>
        + Send
        + Sync
        + 'static,
{
    fn call<'a>(
        &'a self,
        request: Req,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Resp>, Status> {
        (self.0)(request, ctx)
    }
}

struct FnBidi<F>(F);

impl<Req, Resp, F> BidiStreamingHandler<Req, Resp> for FnBidi<F>
where
    F: for<'a> Fn(Streaming<Req>, &'a ServerContext) -> Result<ResponseStream<'a, Resp>, Status>
        + Send
        + Sync
        + 'static,
{
    fn call<'a>(
        &'a self,
        requests: Streaming<Req>,
        ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, Resp>, Status> {
        (self.0)(requests, ctx)
    }
}

struct RawUnary<F>(F);

impl<F> ErasedUnary for RawUnary<F>
where
    F: Fn(Bytes, &ServerContext) -> Result<Bytes, Status> + Send + Sync + 'static,
{
    fn call(&self, request: Bytes, ctx: &ServerContext) -> Result<Bytes, Status> {
        let resp = (self.0)(request, ctx)?;
        ctx.frame(&resp)
    }
}

/// A named gRPC service (`package.Service`) and its methods.
#[derive(Clone)]
pub struct Service {
    name: String,
    pub(crate) methods: HashMap<String, Method>,
    /// Run by `Server::stop` before its GOAWAY (see [`ServiceBuilder::on_server_stop`]).
    pub(crate) stop_hooks: Vec<Arc<dyn Fn() + Send + Sync>>,
}

impl Service {
    /// Starts a service named `name` (the proto's `package.Service`).
    pub fn builder(name: &str) -> ServiceBuilder {
        ServiceBuilder {
            service: Service {
                name: name.to_string(),
                methods: HashMap::new(),
                stop_hooks: Vec::new(),
            },
        }
    }

    /// The full service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The method names, in no particular order.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.methods.keys().collect();
        names.sort();
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("methods", &names)
            .finish()
    }
}

/// Builds a [`Service`] method by method.
pub struct ServiceBuilder {
    service: Service,
}

impl ServiceBuilder {
    fn add(mut self, method: &str, m: Method) -> Self {
        self.service.methods.insert(method.to_string(), m);
        self
    }

    /// Adds a unary method (`rpc M(Req) returns (Resp)`); closures work directly.
    pub fn unary<Req, Resp>(self, method: &str, handler: impl UnaryHandler<Req, Resp>) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        self.add(method, Method::Unary(Arc::new(Typed(handler, PhantomData))))
    }

    /// Adds a unary method over raw message bytes (no protobuf decoding).
    pub fn unary_raw<F>(self, method: &str, handler: F) -> Self
    where
        F: Fn(Bytes, &ServerContext) -> Result<Bytes, Status> + Send + Sync + 'static,
    {
        self.add(method, Method::Unary(Arc::new(RawUnary(handler))))
    }

    /// Adds a server-streaming method implemented by a handler type.
    pub fn server_streaming<Req, Resp>(
        self,
        method: &str,
        handler: impl ServerStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        self.add(
            method,
            Method::ServerStreaming(Arc::new(Typed(handler, PhantomData))),
        )
    }

    /// Adds a server-streaming method implemented by a closure.
    pub fn server_streaming_fn<Req, Resp, F>(self, method: &str, f: F) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
        F: for<'a> Fn(Req, &'a ServerContext) -> Result<ResponseStream<'a, Resp>, Status>
            + Send
            + Sync
            + 'static,
    {
        self.server_streaming(method, FnServerStreaming(f))
    }

    /// Adds a client-streaming method; closures work directly.
    pub fn client_streaming<Req, Resp>(
        self,
        method: &str,
        handler: impl ClientStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        self.add(
            method,
            Method::ClientStreaming(Arc::new(Typed(handler, PhantomData))),
        )
    }

    /// Adds a bidirectional-streaming method implemented by a handler type.
    pub fn bidi_streaming<Req, Resp>(
        self,
        method: &str,
        handler: impl BidiStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        self.add(method, Method::Bidi(Arc::new(Typed(handler, PhantomData))))
    }

    /// Adds a bidirectional-streaming method implemented by a closure.
    pub fn bidi_streaming_fn<Req, Resp, F>(self, method: &str, f: F) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
        F: for<'a> Fn(
                Streaming<Req>,
                &'a ServerContext,
            ) -> Result<ResponseStream<'a, Resp>, Status>
            + Send
            + Sync
            + 'static,
    {
        self.bidi_streaming(method, FnBidi(f))
    }

    /// Adds a server-streaming method whose responses are sent from other threads through a
    /// [`ResponseSink`] (see [`DetachedStreamingHandler`]); closures work directly.
    ///
    /// ```
    /// use grpc_sync::{ResponseSink, Service};
    /// # #[derive(Clone, PartialEq, grpc_sync::prost::Message)] struct Tick { #[prost(int32, tag = "1")] n: i32 }
    /// let svc = Service::builder("demo.Clock")
    ///     .server_streaming_detached("Ticks", |first: Tick, mut sink: ResponseSink<Tick>| {
    ///         // Hand `sink` to whatever produces the events; here, one message and done.
    ///         let _ = sink.try_send(&first);
    ///         sink.finish(grpc_sync::Status::ok(""));
    ///     })
    ///     .build();
    /// # drop(svc);
    /// ```
    pub fn server_streaming_detached<Req, Resp>(
        self,
        method: &str,
        handler: impl DetachedStreamingHandler<Req, Resp>,
    ) -> Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        self.add(
            method,
            Method::Detached(Arc::new(Typed(handler, PhantomData))),
        )
    }

    /// Registers `hook` to run when the server that serves this service starts to stop
    /// ([`Server::stop`](crate::Server::stop)), before the server sends GOAWAY: the health
    /// service uses it to turn every status to NOT_SERVING while its watchers can still hear.
    pub fn on_server_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.service.stop_hooks.push(Arc::new(hook));
        self
    }

    /// Finishes the service.
    pub fn build(self) -> Service {
        self.service
    }
}

impl From<ServiceBuilder> for Service {
    fn from(b: ServiceBuilder) -> Service {
        b.build()
    }
}
