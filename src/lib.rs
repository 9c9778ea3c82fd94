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

pub mod client;
pub mod codec;
pub mod compression;
pub mod error_details;
pub mod h2;
pub mod health;
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
    CallFuture, CallOptions, Channel, ChannelBuilder, ConnectivityState, IntoRequest,
    IntoStreamingRequest, Request, RequestSender, Response,
};
pub use compression::CompressionEncoding;
pub use metadata::MetadataMap;
pub use options::{OptionValue, OptionsError};
pub use prost;
pub use server::{
    BidiStreamingHandler, ClientStreamingHandler, PoolStats, ResponseStream, Server, ServerBuilder,
    ServerContext, ServerStreamingHandler, Service, ServiceBuilder, StopHandle, UnaryHandler,
};
pub use server::{DetachedStreamingHandler, ResponseSink, TrySendError};
pub use status::{Code, Status};
pub use streaming::Streaming;
pub use transport::tls::{
    AuthContext, ChannelCredentials, ClientAuth, HandshakeError, PeerIdentity, ServerCredentials,
    SubjectAltName, TlsError,
};
pub use web::GrpcWebConfig;
