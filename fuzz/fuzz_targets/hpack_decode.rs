//! libFuzzer entry for `harness/hpack_decode.rs` (what it checks is described there).
#![no_main]

#[path = "../harness/hpack_decode.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
