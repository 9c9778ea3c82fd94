//! The gRPC length-prefixed message decoder (`codec::MessageDecoder`) on arbitrary chunks,
//! with and without a `grpc-encoding` (gzip/deflate) set.
//!
//! Input: one byte choosing the coding and the receive limit, then chunks: a control byte
//! and a length byte, then that many bytes. Bit 7 of the control byte makes the harness
//! compress the chunk itself and push it as one well-formed compressed message, which must
//! come back unchanged (or be refused as too large, compressed or not).
//!
//! Properties: never panics; no message longer than the limit is returned; errors are
//! sticky; harness-compressed messages round-trip.

use bytes::{Bytes, BytesMut};
use grpc_sync::codec::MessageDecoder;
use grpc_sync::compression::{compress, CompressionEncoding};
use grpc_sync::Code;

const LIMITS: [usize; 4] = [4 << 20, 0, 16, 300];

/// Runs one input (the fuzz target's whole body).
pub fn run(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let encoding = match sel & 3 {
        0 => None,
        1 => Some(CompressionEncoding::Identity),
        2 => Some(CompressionEncoding::Gzip),
        _ => Some(CompressionEncoding::Deflate),
    };
    let max_recv = LIMITS[usize::from((sel >> 2) & 3)];
    let mut dec = MessageDecoder::new(max_recv);
    dec.set_encoding(encoding);
    let compressing = encoding.filter(|e| e.is_compressed());
    let mut failed = None;
    // Messages the harness framed itself, in order, once nothing else is queued before them.
    let mut expected: Option<(Bytes, usize)> = None;

    while rest.len() >= 2 {
        let ctl = rest[0];
        let len = usize::from(rest[1]).min(rest.len() - 2);
        let chunk = &rest[2..2 + len];
        rest = &rest[2 + len..];
        if ctl & 0x80 != 0 && !dec.has_partial_message() && failed.is_none() {
            if let Some(enc) = compressing {
                // Repeat the chunk so that it compresses well.
                let plain: Vec<u8> = chunk.repeat(usize::from(ctl & 0x3f) + 1);
                let mut body = BytesMut::new();
                compress(enc, &plain, &mut body).expect("compress");
                let body_len = body.len();
                let mut framed = BytesMut::new();
                framed.extend_from_slice(&[1]);
                framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
                framed.extend_from_slice(&body);
                // Split it in two at a point the input chooses.
                let at = usize::from(ctl & 0x3f).min(framed.len());
                let tail = framed.split_off(at);
                dec.push(framed.freeze());
                dec.push(tail.freeze());
                expected = Some((Bytes::from(plain), body_len));
            }
        } else {
            dec.push(Bytes::copy_from_slice(chunk));
        }
        loop {
            match dec.next_message() {
                Ok(Some(m)) => {
                    assert!(failed.is_none(), "message after an error");
                    assert!(m.len() <= max_recv, "message over the limit returned");
                    if let Some((want, _)) = expected.take() {
                        assert_eq!(m, want, "compressed message round trip");
                        assert!(dec.last_compressed());
                    }
                }
                Ok(None) => {
                    assert!(failed.is_none(), "Ok after an error");
                    break;
                }
                Err(e) => {
                    if let Some((want, wire_len)) = expected.take() {
                        // Only the limit, on the compressed or the decompressed length, may
                        // refuse a message the harness compressed.
                        assert_eq!(
                            e.code(),
                            Code::ResourceExhausted,
                            "{e} for {} bytes",
                            want.len()
                        );
                        assert!(want.len() > max_recv || wire_len > max_recv);
                    }
                    if let Some(prev) = &failed {
                        assert_eq!(&e.to_string(), prev, "error not sticky");
                    }
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let _ = (dec.buffered_len(), dec.has_partial_message());
    }
    let res = dec.finish();
    if failed.is_some() {
        assert!(res.is_err(), "finish succeeded after an error");
    }
}
