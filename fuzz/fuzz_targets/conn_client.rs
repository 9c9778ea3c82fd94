//! A client-role `h2::conn::Connection` fed arbitrary server bytes, split at arbitrary
//! points, with application commands (open streams, send, reset...) in between (see
//! `harness/conn.rs`).
#![no_main]

#[path = "../harness/conn.rs"]
mod harness;

use grpc_sync::h2::conn::Role;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(Role::Client, data));
