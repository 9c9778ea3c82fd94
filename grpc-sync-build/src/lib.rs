//! Code generator for [grpc-sync](https://docs.rs/grpc-sync): Rust types for the messages of
//! your `.proto` files (by [prost](https://docs.rs/prost)), plus, for every service, a trait to
//! implement on the server, an adapter that registers it, and a blocking client stub.
//!
//! No `protoc` is needed: `.proto` files are parsed by [protox](https://docs.rs/protox), a
//! protobuf compiler written in Rust that also ships the well-known types
//! (`google/protobuf/empty.proto`, `timestamp.proto`, …), and its `FileDescriptorSet` is handed
//! to [prost-build](https://docs.rs/prost-build) with this crate's service generator.
//!
//! # Use from a build script
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! grpc-sync = "0.1"
//!
//! [build-dependencies]
//! grpc-sync-build = "0.1"
//! ```
//!
//! `build.rs`:
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     grpc_sync_build::compile_protos(&["proto/helloworld.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! The code lands in `OUT_DIR`, one file per protobuf package (here `helloworld.rs`):
//!
//! ```ignore
//! pub mod helloworld {
//!     include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
//! }
//!
//! use helloworld::greeter_server::{Greeter, GreeterServer};
//! use helloworld::{HelloReply, HelloRequest};
//! use grpc_sync::{Server, ServerContext, Status};
//!
//! struct MyGreeter;
//!
//! impl Greeter for MyGreeter {
//!     fn say_hello(&self, request: HelloRequest, _ctx: &ServerContext) -> Result<HelloReply, Status> {
//!         Ok(HelloReply { message: format!("Hello, {}!", request.name) })
//!     }
//! }
//!
//! let server = Server::builder().add_service(GreeterServer::new(MyGreeter)) /* … */;
//!
//! let client = helloworld::greeter_client::GreeterClient::new(channel);
//! let reply = client.say_hello(HelloRequest { name: "you".into() })?;
//! ```
//!
//! Options (server or client only, an output folder, extern paths, attributes…) are on
//! [`Builder`], from [`configure()`].
//!
//! # What is generated
//!
//! For `service Greeter` in `package helloworld`, next to the prost messages:
//!
//! * `pub mod greeter_server` with
//!   - `pub trait Greeter: Send + Sync + 'static`, one method per rpc, named in snake_case, each
//!     with a default body that answers `UNIMPLEMENTED` with the message
//!     `"Method not implemented!"`:
//!     - unary: `fn say_hello(&self, request: HelloRequest, ctx: &ServerContext) -> Result<HelloReply, Status>`
//!     - server streaming: `fn list_features<'a>(&'a self, request: Rectangle, ctx: &'a ServerContext) -> Result<ResponseStream<'a, Feature>, Status>`
//!     - client streaming: `fn record_route(&self, requests: Streaming<Point>, ctx: &ServerContext) -> Result<RouteSummary, Status>`
//!     - bidirectional: `fn route_chat<'a>(&'a self, requests: Streaming<RouteNote>, ctx: &'a ServerContext) -> Result<ResponseStream<'a, RouteNote>, Status>`
//!   - `pub struct GreeterServer<T>` with `new(T)`, `from_arc(Arc<T>)`, and
//!     `impl From<GreeterServer<T>> for grpc_sync::Service`, so that
//!     `Server::builder().add_service(GreeterServer::new(imp))` works;
//!   - `SERVICE_NAME` (`"helloworld.Greeter"`).
//! * `pub mod greeter_client` with
//!   - `#[derive(Clone)] pub struct GreeterClient`, `new(Channel)`, and per rpc:
//!     - unary and client streaming: `say_hello(req) -> Result<HelloReply, Status>`,
//!       `say_hello_with_call(req) -> Result<Response<HelloReply>, Status>` (with metadata),
//!       `say_hello_future(req) -> CallFuture<Response<HelloReply>>`;
//!     - server streaming: `list_features(req) -> Result<Streaming<Feature>, Status>`;
//!     - bidirectional: `route_chat(requests) -> Result<Streaming<RouteNote>, Status>` and
//!       `route_chat_interactive(CallOptions) -> Result<(RequestSender<RouteNote>, Streaming<RouteNote>), Status>`;
//!   - the request paths as constants: `SAY_HELLO_PATH = "/helloworld.Greeter/SayHello"`.
//! * in every package's module, `pub const FILE_DESCRIPTOR_SET: &[u8]`: the encoded
//!   `FileDescriptorSet` of the package's files and all they import, for server reflection in one
//!   line (`ReflectionService::builder().register_file_descriptor_set(helloworld::FILE_DESCRIPTOR_SET)`);
//!   see [`Builder::embed_file_descriptor_set`].
//!
//! Unary requests are `impl IntoRequest<M>` (the message, or a `grpc_sync::Request` carrying a
//! timeout and metadata); streamed requests are `impl IntoStreamingRequest<Message = M>` (any
//! `IntoIterator` whose iterator is `Send + 'static`). Comments in the `.proto` become the doc
//! comments of the trait and client methods.
//!
//! Generated code uses fully qualified paths (`::grpc_sync::…`) and needs no `use`. Messages
//! derive through `::grpc_sync::prost` (the runtime's re-export of prost), so `grpc-sync` is the
//! only dependency it needs; `google.protobuf.Empty` becomes `()` and the wrapper types become
//! primitives, while other well-known types (`Timestamp`, `Duration`, `Any`, …) need a
//! `prost-types` dependency (or [`Builder::prost_types_path`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod generator;

use std::io;
use std::path::Path;

pub use builder::{Builder, DEFAULT_PROST_PATH};

/// The prost-build this crate generates messages with, for its types
/// ([`prost_build::Config`], [`prost_build::Service`]…).
pub use prost_build;
/// The protobuf compiler this crate parses `.proto` files with.
pub use protox;

/// Compiles `protos` into Rust files in Cargo's `OUT_DIR`, with servers and clients for every
/// service; call it from a build script.
///
/// `includes` are the folders searched for the files and their imports (each file must lie
/// under one of them); the well-known types (`google/protobuf/*.proto`) are always found. Use
/// [`configure()`] for options.
///
/// ```no_run
/// // build.rs
/// fn main() -> std::io::Result<()> {
///     grpc_sync_build::compile_protos(
///         &["proto/helloworld.proto", "proto/route_guide.proto"],
///         &["proto"],
///     )?;
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// See [`Builder::compile_protos`].
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    configure().compile_protos(protos, includes)
}

/// A [`Builder`] with the default options, to change some before compiling.
///
/// ```no_run
/// // build.rs of a crate that only calls services
/// fn main() -> std::io::Result<()> {
///     grpc_sync_build::configure()
///         .build_server(false)
///         .compile_protos(&["proto/route_guide.proto"], &["proto"])
/// }
/// ```
pub fn configure() -> Builder {
    Builder::new()
}
