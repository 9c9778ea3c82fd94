//! The fuzz targets' bodies, one module each: the libFuzzer entries in `fuzz_targets/` call
//! them, and so does `tests/fuzz_corpus.rs` in the main workspace, which replays every saved
//! input (seeds, corpora, crash artifacts, regressions) with a plain `cargo test`. Each
//! depends only on `grpc_sync` and `bytes`.

pub mod conn;
pub mod frame_decode;
pub mod hpack_decode;
pub mod message_decoder;
pub mod small_parsers;

use grpc_sync::h2::conn::Role;

fn conn_client(data: &[u8]) {
    conn::run(Role::Client, data);
}

fn conn_server(data: &[u8]) {
    conn::run(Role::Server, data);
}

/// A target's name in `Cargo.toml` and the function it runs on one input.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 6] = [
    ("conn_client", conn_client),
    ("conn_server", conn_server),
    ("frame_decode", frame_decode::run),
    ("hpack_decode", hpack_decode::run),
    ("message_decoder", message_decoder::run),
    ("small_parsers", small_parsers::run),
];
