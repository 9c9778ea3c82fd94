//! The benchmark server of issue 7's CLI contract: `helloworld.Greeter/SayHello` (replies
//! `"Hello " + name`) and `helloworld.Streamer/ServerStream` (`count` replies of `size` bytes).
//!
//! Run: `cargo run --release --example bench_server -- --port 50051 --workers 4`
//! (`--inline false` sends every handler to the pool: `ServerBuilder::inline_unary`, for A/B
//! runs of the inline unary path).
//!
//! `scripts/compare.sh` runs it side by side with tonic's equivalent (`compare/`).

mod common;

use grpc_sync::{ResponseStream, Server, ServerContext, Status};

use common::bench::Flags;
use common::pb::bench::streamer_server::{Streamer, StreamerServer};
use common::pb::bench::{StreamReply, StreamRequest};
use common::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use common::pb::helloworld::{HelloReply, HelloRequest};

/// `SayHello` answers `"Hello " + name`, as tonic's helloworld does.
struct Hello;

impl Greeter for Hello {
    fn say_hello(&self, request: HelloRequest, _ctx: &ServerContext) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello {}", request.name),
        })
    }
}

/// `ServerStream` sends `count` replies of `size` payload bytes.
struct Stream;

impl Streamer for Stream {
    fn server_stream<'a>(
        &'a self,
        request: StreamRequest,
        _ctx: &'a ServerContext,
    ) -> Result<ResponseStream<'a, StreamReply>, Status> {
        let payload = vec![0xA5u8; request.size as usize];
        Ok(Box::new((0..request.count).map(move |_| {
            Ok(StreamReply {
                payload: payload.clone(),
            })
        })))
    }
}

fn main() -> Result<(), common::BoxError> {
    common::init_logging();
    // One descriptor per connection: lift the soft open-files limit (Go does the same).
    common::raise_fd_limit();
    let flags = Flags::from_env();
    if flags.get("help").is_some() || !flags.positional.is_empty() {
        common::bench::die(
            "usage: bench_server [--port P] [--workers N] [--io-threads N] [--host H] \
             [--inline true|false] [--option NAME=VALUE]...",
        );
    }
    flags.only(&[
        "port",
        "workers",
        "io-threads",
        "host",
        "inline",
        "help",
        "option",
    ]);
    let options = common::options_or_exit(flags.options());
    let port: u16 = flags.num("port", common::DEFAULT_PORT);
    let workers: usize = flags.num("workers", 4);
    // I/O loops; by default one per CPU this process may run on (1 when pinned with taskset).
    let io_threads: usize = flags.num(
        "io-threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let host = flags.get("host").unwrap_or("127.0.0.1");
    // Whether reader threads may run unary handlers in place (ServerBuilder::inline_unary).
    let inline = flags.get("inline").unwrap_or("true") != "false";

    let server = Server::builder()
        .max_workers(workers)
        .io_threads(io_threads)
        .inline_unary(inline)
        .add_service(GreeterServer::new(Hello))
        .add_service(StreamerServer::new(Stream))
        .options(options)?
        .build();
    let port = server.add_insecure_port(&format!("{host}:{port}"))?;
    server.start()?;
    println!(
        "bench_server listening on {host}:{port} with {workers} workers, {io_threads} I/O threads"
    );
    server.wait_for_termination(None);
    Ok(())
}
