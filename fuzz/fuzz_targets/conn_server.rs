//! A server-role `h2::conn::Connection` fed the client preface plus arbitrary bytes, split
//! at arbitrary points, with application commands in between (see `conn_common.rs`).
#![no_main]

mod conn_common;

use grpc_sync::h2::conn::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| conn_common::run(Role::Server, data));
