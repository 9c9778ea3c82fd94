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
pub mod h2;
pub mod server;
pub(crate) mod transport;
