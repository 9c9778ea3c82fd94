//! The 9-octet frame header ([RFC 9113 §4.1]).
//!
//! [RFC 9113 §4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-4.1

use bytes::{BufMut, BytesMut};

use super::{StreamId, FRAME_HEADER_LEN, MAX_MAX_FRAME_SIZE, STREAM_ID_MASK};

/// The fixed 9-octet header that starts every frame ([RFC 9113 §4.1]).
///
/// On the wire: a 24-bit payload length, an 8-bit type, 8 bits of flags, one reserved bit and a
/// 31-bit stream identifier, all big-endian.
///
/// [RFC 9113 §4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-4.1
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Payload length in octets (24 bits; the header itself is not counted).
    pub length: u32,
    /// Frame type (see [`kind`](super::kind)).
    pub kind: u8,
    /// Type-specific flags (see [`flags`](super::flags)).
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: StreamId,
}

impl Head {
    /// Creates a header from its fields.
    pub const fn new(kind: u8, flags: u8, stream_id: StreamId, length: u32) -> Head {
        Head {
            length,
            kind,
            flags,
            stream_id,
        }
    }

    /// Reads a header from the first 9 octets of `buf`, ignoring the reserved bit.
    ///
    /// # Panics
    ///
    /// Panics if `buf` is shorter than [`FRAME_HEADER_LEN`]; check the length first.
    pub fn parse(buf: &[u8]) -> Head {
        let b = &buf[..FRAME_HEADER_LEN];
        Head {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & STREAM_ID_MASK,
        }
    }

    /// Appends the 9-octet header to `dst`, with the reserved bit set to zero.
    ///
    /// # Panics
    ///
    /// Panics if `length` does not fit in 24 bits (more than [`MAX_MAX_FRAME_SIZE`]); frames
    /// that large cannot be expressed on the wire, so this is a bug in the caller.
    pub fn encode(&self, dst: &mut BytesMut) {
        assert!(
            self.length <= MAX_MAX_FRAME_SIZE,
            "frame payload length {} does not fit in 24 bits",
            self.length
        );
        let len = self.length.to_be_bytes();
        let id = (self.stream_id & STREAM_ID_MASK).to_be_bytes();
        dst.put_slice(&[
            len[1], len[2], len[3], self.kind, self.flags, id[0], id[1], id[2], id[3],
        ]);
    }

    /// Returns true if every bit of `flag` is set in `flags`.
    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_writes_reserved_bit_as_zero() {
        let head = Head::new(0x1, 0x25, 0xffff_ffff, 0x01_0203);
        let mut buf = BytesMut::new();
        head.encode(&mut buf);
        assert_eq!(&buf[..], &[1, 2, 3, 1, 0x25, 0x7f, 0xff, 0xff, 0xff]);
        let back = Head::parse(&buf);
        assert_eq!(back, Head::new(0x1, 0x25, 0x7fff_ffff, 0x01_0203));
    }

    #[test]
    fn head_parse_ignores_reserved_bit() {
        let head = Head::parse(&[0, 0, 4, 8, 0, 0x80, 0, 0, 5]);
        assert_eq!(head.stream_id, 5);
        assert_eq!(head.length, 4);
        assert_eq!(head.kind, 8);
    }

    #[test]
    #[should_panic(expected = "does not fit in 24 bits")]
    fn head_encode_rejects_length_over_24_bits() {
        Head::new(0, 0, 1, 1 << 24).encode(&mut BytesMut::new());
    }
}
