//! GOAWAY frames ([RFC 9113 §6.8]).
//!
//! [RFC 9113 §6.8]: https://www.rfc-editor.org/rfc/rfc9113#section-6.8

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    frame_len, kind, read_u32, require_connection, Head, StreamId, FRAME_HEADER_LEN, STREAM_ID_MASK,
};
use crate::h2::error::{Error, Reason};

/// A GOAWAY frame: the sender stops accepting new streams, or closes the connection on an
/// error ([RFC 9113 §6.8]).
///
/// [RFC 9113 §6.8]: https://www.rfc-editor.org/rfc/rfc9113#section-6.8
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// The highest peer-initiated stream the sender processed or may still process.
    pub last_stream_id: StreamId,
    /// Why the connection is going away.
    pub reason: Reason,
    /// Opaque diagnostic data (often a UTF-8 message).
    pub debug_data: Bytes,
}

impl GoAway {
    /// Creates a GOAWAY frame.
    pub fn new(last_stream_id: StreamId, reason: Reason, debug_data: impl Into<Bytes>) -> GoAway {
        GoAway {
            last_stream_id,
            reason,
            debug_data: debug_data.into(),
        }
    }

    /// Parses a GOAWAY frame from its header and payload ([RFC 9113 §6.8]).
    ///
    /// # Errors
    ///
    /// Connection errors: a non-zero stream id (PROTOCOL_ERROR); a payload shorter than 8
    /// octets (FRAME_SIZE_ERROR).
    ///
    /// [RFC 9113 §6.8]: https://www.rfc-editor.org/rfc/rfc9113#section-6.8
    pub fn load(head: &Head, mut payload: Bytes) -> Result<GoAway, Error> {
        require_connection(head, "GOAWAY frame on a stream")?;
        if payload.len() < 8 {
            return Err(Error::connection(
                Reason::FRAME_SIZE_ERROR,
                "GOAWAY frame shorter than 8 octets",
            ));
        }
        let last_stream_id = read_u32(&payload) & STREAM_ID_MASK;
        let reason = Reason(read_u32(&payload[4..]));
        let debug_data = payload.split_off(8);
        Ok(GoAway {
            last_stream_id,
            reason,
            debug_data,
        })
    }

    /// Appends the frame to `dst`.
    ///
    /// # Panics
    ///
    /// Panics if the debug data is longer than 2^24 − 9 octets.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = 8 + self.debug_data.len();
        dst.reserve(FRAME_HEADER_LEN + len);
        Head::new(kind::GOAWAY, 0, 0, frame_len(len)).encode(dst);
        dst.put_u32(self.last_stream_id & STREAM_ID_MASK);
        dst.put_u32(self.reason.0);
        dst.put_slice(&self.debug_data);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    #[test]
    fn go_away_round_trips_with_and_without_debug_data() {
        for frame in [
            GoAway::new(0, Reason::NO_ERROR, Bytes::new()),
            GoAway::new(
                0x7fff_ffff,
                Reason::ENHANCE_YOUR_CALM,
                &b"too many resets"[..],
            ),
        ] {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::GoAway(frame)]);
        }
    }

    #[test]
    fn go_away_last_stream_id_reserved_bit_is_ignored() {
        let mut buf = frame_bytes(kind::GOAWAY, 0, 0, &[0x80, 0, 0, 3, 0, 0, 0, 0]);
        match decode_one(&mut buf) {
            Ok(Frame::GoAway(g)) => assert_eq!(g.last_stream_id, 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn go_away_shorter_than_eight_is_frame_size_error() {
        let mut buf = frame_bytes(kind::GOAWAY, 0, 0, &[0; 7]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }

    #[test]
    fn go_away_on_stream_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::GOAWAY, 0, 3, &[0; 8]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }
}
