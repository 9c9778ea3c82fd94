//! CONTINUATION frames ([RFC 9113 §6.10]).
//!
//! [RFC 9113 §6.10]: https://www.rfc-editor.org/rfc/rfc9113#section-6.10

use bytes::{BufMut, Bytes, BytesMut};

use super::{flags, frame_len, kind, require_stream, Head, StreamId, FRAME_HEADER_LEN};
use crate::h2::error::Error;

/// A CONTINUATION frame: the next fragment of a field block started by HEADERS or
/// PUSH_PROMISE ([RFC 9113 §6.10]).
///
/// That it follows such a frame on the same stream, with no other frame in between, is checked
/// by the connection.
///
/// [RFC 9113 §6.10]: https://www.rfc-editor.org/rfc/rfc9113#section-6.10
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The field block fragment.
    pub fragment: Bytes,
    /// END_HEADERS: the field block is complete.
    pub end_headers: bool,
}

impl Continuation {
    /// Parses a CONTINUATION frame from its header and payload ([RFC 9113 §6.10]).
    ///
    /// # Errors
    ///
    /// Stream id 0: PROTOCOL_ERROR, connection error.
    ///
    /// [RFC 9113 §6.10]: https://www.rfc-editor.org/rfc/rfc9113#section-6.10
    pub fn load(head: &Head, payload: Bytes) -> Result<Continuation, Error> {
        require_stream(head, "CONTINUATION frame on stream 0")?;
        Ok(Continuation {
            stream_id: head.stream_id,
            fragment: payload,
            end_headers: head.has_flag(flags::END_HEADERS),
        })
    }

    /// Appends the frame to `dst`.
    ///
    /// # Panics
    ///
    /// Panics if the fragment is longer than 2^24 − 1 octets.
    pub fn encode(&self, dst: &mut BytesMut) {
        let f = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        dst.reserve(FRAME_HEADER_LEN + self.fragment.len());
        let len = frame_len(self.fragment.len());
        Head::new(kind::CONTINUATION, f, self.stream_id, len).encode(dst);
        dst.put_slice(&self.fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;
    use crate::h2::error::Reason;

    #[test]
    fn continuation_round_trips() {
        for end_headers in [false, true] {
            let frame = Continuation {
                stream_id: 3,
                fragment: Bytes::from_static(b"\x41\x8a"),
                end_headers,
            };
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::Continuation(frame)]);
        }
    }

    #[test]
    fn continuation_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::CONTINUATION, flags::END_HEADERS, 0, b"\x82");
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }
}
