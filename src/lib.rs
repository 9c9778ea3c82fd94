//! grpc-sync: gRPC for Rust programs that do not want an async runtime.
//!
//! Blocking calls on plain `std::thread`s, iterators for streams, and a server that runs
//! handlers on a fixed pool of worker threads.
//!
//! Layers, bottom-up:
//!
//! ```text
//!  generated code  (grpc-sync-build: traits, server adapters, client stubs)
//!  client / server (Channel, Server, worker pool, ServerContext)
//!  gRPC protocol   (status, metadata, length-prefixed messages, grpc-timeout)
//!  transport       (TCP sockets, reader/writer loops)
//!  h2              (sans-IO HTTP/2: frames, HPACK, connection state machine)
//! ```
//!
//! # Logging
//!
//! Through the [`log`](https://docs.rs/log) facade, with the module paths as targets
//! (`RUST_LOG=grpc_sync=debug` with `env_logger`): handler panics at `error`; failed TLS
//! handshakes, GOAWAYs with an error code, a client's failed connections and keepalive
//! timeouts at `warn`, at most 10 lines a second of each kind (then a count of the rest);
//! connections opened and closed, and peers' protocol errors, at `debug`. Nothing per request.

pub mod client;
pub mod codec;
pub mod compression;
pub mod error_details;
pub mod h2;
pub mod health;
mod logging;
pub mod metadata;
pub mod options;
pub mod reflection;
pub mod server;
pub mod status;
pub mod streaming;
pub mod timeout;
pub(crate) mod transport;
pub mod web;

pub use client::{
    intercept_channel, CallCredentials, CallFuture, CallOptions, Channel, ChannelBuilder,
    ClientInterceptor, CompositeChannelCredentials, ConnectivityState, IntoRequest,
    IntoStreamingRequest, Request, RequestSender, Resolver, Response,
};
pub use compression::CompressionEncoding;
pub use metadata::MetadataMap;
pub use options::{OptionValue, OptionsError};
pub use prost;
pub use server::{
    BidiStreamingHandler, ClientStreamingHandler, PoolStats, ResponseStream, Server, ServerBuilder,
    ServerContext, ServerStreamingHandler, Service, ServiceBuilder, StopHandle, UnaryHandler,
};
pub use server::{CallEnd, CallStart, Extensions, MethodKind, ServerInterceptor};
pub use server::{DetachedStreamingHandler, ResponseSink, TrySendError};
pub use status::{Code, Status};
pub use streaming::Streaming;
pub use transport::tls::{
    AuthContext, ChannelCredentials, ClientAuth, HandshakeError, PeerIdentity, ServerCredentials,
    SubjectAltName, TlsError,
};
pub use web::GrpcWebConfig;
