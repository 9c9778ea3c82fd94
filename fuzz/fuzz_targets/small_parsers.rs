//! libFuzzer entry for `harness/small_parsers.rs` (what it checks is described there).
#![no_main]

#[path = "../harness/small_parsers.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
