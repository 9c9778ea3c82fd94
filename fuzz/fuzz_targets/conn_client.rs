//! A client-role `h2::conn::Connection` fed arbitrary server bytes, split at arbitrary
//! points, with application commands (open streams, send, reset...) in between (see
//! `conn_common.rs`).
#![no_main]

mod conn_common;

use grpc_sync::h2::conn::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| conn_common::run(Role::Client, data));
