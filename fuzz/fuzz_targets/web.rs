//! gRPC-Web's byte parsers: the HTTP/1.1 request parser, the HTTP/1.1 bridge in front of a
//! server's HTTP/2 machine, and the base64 decoder of text-mode bodies (through
//! `grpc_sync::web::fuzzing`, since they are internal).
//!
//! Input: one byte choosing the target and two cut points, then the bytes. The bridge gets
//! the bytes in up to four chunks, its timers passing between them.
//!
//! Properties: never panics; the parser and the decoder give the same result whole as cut
//! anywhere (the parser: both fail or neither, and the same requests when neither); no body
//! over its limit; the decoder decodes our own encoding back.
#![no_main]

use grpc_sync::web::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((cuts, input)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let cuts = [usize::from(cuts[0]), usize::from(cuts[0]) + usize::from(cuts[1])];
    match sel % 3 {
        0 => fuzzing::http1_parser(input, &cuts),
        1 => {
            let n = input.len();
            let (a, b) = (cuts[0].min(n), cuts[1].min(n));
            let (a, b) = (a.min(b), a.max(b));
            let mid = (b + n) / 2;
            fuzzing::http1_bridge(&[&input[..a], &input[a..b], &input[b..mid], &input[mid..]]);
        }
        _ => fuzzing::base64(input, &cuts),
    }
});
