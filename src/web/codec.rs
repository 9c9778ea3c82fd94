//! gRPC-Web's body framing: the trailers frame (flag `0x80`) and the base64 of
//! `application/grpc-web-text`.
//!
//! Message frames are gRPC's own 5-byte length prefix (`crate::codec`); what differs is the end
//! of a response, whose trailers travel in the body as one more frame with the top bit of the
//! flag byte set and an HTTP/1-style header block as payload (`name: value\r\n` each, lowercase
//! names), and the text mode, where the body is base64. A server may flush base64 chunks with
//! padding in the middle of the body; so may a client, so [`Base64Decoder`] accepts padding at
//! every 4-symbol boundary, and a chunk split anywhere, even inside a symbol group.
//! See gRPC's `doc/PROTOCOL-WEB.md`.

use bytes::{BufMut, BytesMut};

use crate::h2::hpack::Header;
use crate::metadata::{base64_value, BASE64_ALPHABET};

/// The flag byte of a trailers frame (uncompressed).
pub const TRAILERS_FLAG: u8 = 0x80;

/// Appends the trailers frame for `trailers` (pseudo-headers left out) to `out`.
pub(crate) fn encode_trailers(trailers: &[Header], out: &mut BytesMut) {
    let fields = trailers.iter().filter(|h| !h.name.starts_with(b":"));
    let len: usize = fields
        .clone()
        .map(|h| h.name.len() + h.value.len() + 4)
        .sum();
    out.reserve(5 + len);
    out.put_u8(TRAILERS_FLAG);
    // A header block is bounded by the header list limits: far under 4 GiB.
    out.put_u32(len as u32);
    for h in fields {
        // HTTP/2 names are lowercase already; gRPC-Web asks for lowercase names.
        out.extend(h.name.iter().map(u8::to_ascii_lowercase));
        out.put_slice(b": ");
        out.put_slice(&h.value);
        out.put_slice(b"\r\n");
    }
}

/// The length of `n` bytes in padded base64.
pub(crate) fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends `input` as padded standard base64 (RFC 4648 §4) to `out`.
pub(crate) fn base64_encode_padded(input: &[u8], out: &mut BytesMut) {
    out.reserve(base64_len(input.len()));
    let sym = |v: u32| BASE64_ALPHABET[(v & 0x3f) as usize];
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.put_slice(&[sym(n >> 18), sym(n >> 12), sym(n >> 6), sym(n)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.put_slice(&[sym(n >> 18), sym(n >> 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.put_slice(&[sym(n >> 18), sym(n >> 12), sym(n >> 6), b'=']);
        }
        _ => {}
    }
}

/// Why a text-mode body is not base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base64Error(pub &'static str);

/// Decodes a base64 body that arrives in pieces split at any byte, with padding allowed at
/// the end of any 4-symbol group (concatenated padded chunks).
#[derive(Debug, Default)]
pub(crate) struct Base64Decoder {
    group: [u8; 4],
    have: usize,
}

impl Base64Decoder {
    /// Decodes `input`, appending the bytes it completes to `out`.
    ///
    /// # Errors
    /// A symbol outside the base64 alphabet, or padding where none may be.
    pub fn push(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), Base64Error> {
        out.reserve(input.len() / 4 * 3 + 3);
        for &c in input {
            self.group[self.have] = c;
            self.have += 1;
            if self.have == 4 {
                self.have = 0;
                decode_group(&self.group, out)?;
            }
        }
        Ok(())
    }

    /// The body ended: a partial group left over is an error.
    ///
    /// # Errors
    /// The body's length (without whitespace) is not a multiple of 4.
    pub fn finish(&self) -> Result<(), Base64Error> {
        if self.have != 0 {
            return Err(Base64Error(
                "the base64 body ends inside a 4-character group",
            ));
        }
        Ok(())
    }
}

fn decode_group(g: &[u8; 4], out: &mut BytesMut) -> Result<(), Base64Error> {
    let pad = match g {
        [_, _, b'=', b'='] => 2,
        [_, _, _, b'='] => 1,
        _ => 0,
    };
    let mut n = 0u32;
    for &c in &g[..4 - pad] {
        let v = base64_value(c).ok_or(Base64Error(if c == b'=' {
            "misplaced base64 padding"
        } else {
            "a character outside the base64 alphabet"
        }))?;
        n = n << 6 | v;
    }
    match pad {
        0 => out.put_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
        1 => out.put_slice(&[(n >> 10) as u8, (n >> 2) as u8]),
        _ => out.put_u8((n >> 4) as u8),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(text: &[u8], at: &[usize]) -> Result<Vec<u8>, Base64Error> {
        let mut d = Base64Decoder::default();
        let mut out = BytesMut::new();
        let mut from = 0;
        for &cut in at.iter().chain(std::iter::once(&text.len())) {
            d.push(&text[from..cut], &mut out)?;
            from = cut;
        }
        d.finish()?;
        Ok(out.to_vec())
    }

    #[test]
    fn base64_round_trips_every_length() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in 0..64 {
            let mut enc = BytesMut::new();
            base64_encode_padded(&all[..len], &mut enc);
            assert_eq!(enc.len(), base64_len(len));
            assert_eq!(decode_split(&enc, &[]).unwrap(), &all[..len]);
        }
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = BytesMut::new();
            base64_encode_padded(plain.as_bytes(), &mut out);
            assert_eq!(&out[..], enc.as_bytes());
        }
    }

    #[test]
    fn a_body_split_at_every_byte_decodes_the_same() {
        // Two chunks, each padded: padding in the middle of the body.
        let text = b"AAAAAAU=AAAAAANhYmM=gAAAAA9ncnBjLXN0YXR1czogMA0K";
        let whole = decode_split(text, &[]).unwrap();
        for i in 0..=text.len() {
            assert_eq!(decode_split(text, &[i]).unwrap(), whole, "split at {i}");
            for j in i..=text.len() {
                assert_eq!(decode_split(text, &[i, j]).unwrap(), whole);
            }
        }
        assert_eq!(&whole[..7], &[0, 0, 0, 0, 5, 0, 0]);
    }

    #[test]
    fn bad_base64_is_an_error() {
        assert!(decode_split(b"Zm9", &[]).is_err());
        assert!(decode_split(b"Z=9v", &[]).is_err());
        assert!(decode_split(b"Zm9v!!!!", &[]).is_err());
        assert!(decode_split(b"====", &[]).is_err());
    }

    #[test]
    fn trailers_frame_is_an_http1_block_behind_flag_0x80() {
        let t = [
            Header::from_static(b"grpc-status", b"3"),
            Header::from_static(b"grpc-message", b"bad"),
            Header::from_static(b"x-Extra", b"v"),
        ];
        let mut out = BytesMut::new();
        encode_trailers(&t, &mut out);
        let body = b"grpc-status: 3\r\ngrpc-message: bad\r\nx-extra: v\r\n";
        assert_eq!(out[0], 0x80);
        assert_eq!(
            u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize,
            body.len()
        );
        assert_eq!(&out[5..], body);
    }
}
