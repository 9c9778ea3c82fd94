//! RST_STREAM frames ([RFC 9113 §6.4]).
//!
//! [RFC 9113 §6.4]: https://www.rfc-editor.org/rfc/rfc9113#section-6.4

use bytes::{BufMut, Bytes, BytesMut};

use super::{kind, read_u32, require_stream, Head, StreamId, FRAME_HEADER_LEN};
use crate::h2::error::{Error, Reason};

/// An RST_STREAM frame: terminates one stream immediately ([RFC 9113 §6.4]).
///
/// [RFC 9113 §6.4]: https://www.rfc-editor.org/rfc/rfc9113#section-6.4
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    /// The stream to terminate (never 0).
    pub stream_id: StreamId,
    /// Why it is terminated.
    pub reason: Reason,
}

impl RstStream {
    /// Creates an RST_STREAM frame.
    pub fn new(stream_id: StreamId, reason: Reason) -> RstStream {
        RstStream { stream_id, reason }
    }

    /// Parses an RST_STREAM frame from its header and payload ([RFC 9113 §6.4]).
    ///
    /// # Errors
    ///
    /// Connection errors: stream id 0 (PROTOCOL_ERROR); a length other than 4
    /// (FRAME_SIZE_ERROR).
    ///
    /// [RFC 9113 §6.4]: https://www.rfc-editor.org/rfc/rfc9113#section-6.4
    pub fn load(head: &Head, payload: Bytes) -> Result<RstStream, Error> {
        require_stream(head, "RST_STREAM frame on stream 0")?;
        if payload.len() != 4 {
            return Err(Error::connection(
                Reason::FRAME_SIZE_ERROR,
                "RST_STREAM frame length is not 4",
            ));
        }
        Ok(RstStream {
            stream_id: head.stream_id,
            reason: Reason(read_u32(&payload)),
        })
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(FRAME_HEADER_LEN + 4);
        Head::new(kind::RST_STREAM, 0, self.stream_id, 4).encode(dst);
        dst.put_u32(self.reason.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    #[test]
    fn rst_stream_round_trips_known_and_unknown_codes() {
        for reason in [Reason::CANCEL, Reason(0xdead_beef)] {
            let frame = RstStream::new(9, reason);
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::RstStream(frame)]);
        }
    }

    #[test]
    fn rst_stream_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn rst_stream_with_wrong_length_is_frame_size_error() {
        for payload in [&[0u8, 0, 8][..], &[0, 0, 0, 8, 0][..]] {
            let mut buf = frame_bytes(kind::RST_STREAM, 0, 1, payload);
            let err = decode_one(&mut buf).unwrap_err();
            assert!(err.is_connection());
            assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
        }
    }
}
