//! libFuzzer entry for `harness/message_decoder.rs` (what it checks is described there).
#![no_main]

#[path = "../harness/message_decoder.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
