//! The HTTP/2 frame decoder (`h2::frame::decode`) on arbitrary bytes.
//!
//! Input: one byte choosing SETTINGS_MAX_FRAME_SIZE, then the bytes to decode, frame after
//! frame, until the buffer runs dry or a connection error.
//!
//! Properties: never panics; `Ok(Some)` consumes exactly one frame, `Ok(None)` consumes
//! nothing, a stream error consumes the frame; every decoded frame re-encodes to bytes that
//! decode to the same frame.

use bytes::BytesMut;
use grpc_sync::h2::frame::{self, Frame, DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE};

/// Padding is not kept by the decoder, so `flow_len` is the only field a re-encode changes.
fn normalized(f: &Frame) -> Frame {
    match f {
        Frame::Data(d) => {
            let mut d = d.clone();
            d.flow_len = 0;
            Frame::Data(d)
        }
        other => other.clone(),
    }
}

fn check_round_trip(f: &Frame) {
    if let Frame::Data(d) = f {
        assert!(
            d.payload.len() <= d.flow_len as usize,
            "payload longer than flow_len"
        );
    }
    let mut out = BytesMut::new();
    f.encode(&mut out);
    let encoded_len = out.len();
    let g = match frame::decode(&mut out, MAX_MAX_FRAME_SIZE) {
        Ok(Some(g)) => g,
        other => panic!("re-encoded frame {f:?} ({encoded_len} bytes) decodes to {other:?}"),
    };
    assert!(out.is_empty(), "re-encoded frame left {} bytes", out.len());
    assert_eq!(normalized(f), normalized(&g), "frame round trip");
}

/// Runs one input (the fuzz target's whole body).
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let max = match sel % 4 {
        0 => DEFAULT_MAX_FRAME_SIZE,
        1 => 64,
        2 => MAX_MAX_FRAME_SIZE,
        _ => 0,
    };
    let mut buf = BytesMut::from(rest);
    loop {
        let before = buf.len();
        match frame::decode(&mut buf, max) {
            Ok(Some(f)) => {
                assert!(buf.len() + frame::FRAME_HEADER_LEN <= before);
                check_round_trip(&f);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                break;
            }
            Err(e) => {
                let _ = e.to_string();
                if e.is_connection() {
                    break;
                }
                assert!(
                    buf.len() + frame::FRAME_HEADER_LEN <= before,
                    "stream error did not consume the frame"
                );
            }
        }
    }
}
