//! WINDOW_UPDATE frames ([RFC 9113 §6.9]).
//!
//! [RFC 9113 §6.9]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9

use bytes::{BufMut, Bytes, BytesMut};

use super::{kind, read_u32, Head, StreamId, FRAME_HEADER_LEN, STREAM_ID_MASK};
use crate::h2::error::{Error, Reason};

/// A WINDOW_UPDATE frame: grants the peer more flow-control credit, for one stream or (stream
/// 0) the whole connection ([RFC 9113 §6.9]).
///
/// [RFC 9113 §6.9]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream whose window grows, or 0 for the connection window.
    pub stream_id: StreamId,
    /// Octets of credit added, 1..=2^31 − 1.
    pub increment: u32,
}

impl WindowUpdate {
    /// Creates a WINDOW_UPDATE frame.
    pub fn new(stream_id: StreamId, increment: u32) -> WindowUpdate {
        WindowUpdate {
            stream_id,
            increment,
        }
    }

    /// Parses a WINDOW_UPDATE frame from its header and payload ([RFC 9113 §6.9]).
    ///
    /// The reserved high bit of the increment is ignored.
    ///
    /// # Errors
    ///
    /// A length other than 4: FRAME_SIZE_ERROR, connection error. An increment of 0:
    /// PROTOCOL_ERROR, a stream error on a stream and a connection error on stream 0.
    ///
    /// [RFC 9113 §6.9]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9
    pub fn load(head: &Head, payload: Bytes) -> Result<WindowUpdate, Error> {
        if payload.len() != 4 {
            return Err(Error::connection(
                Reason::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE frame length is not 4",
            ));
        }
        let increment = read_u32(&payload) & STREAM_ID_MASK;
        if increment == 0 {
            let detail = "WINDOW_UPDATE increment of 0";
            return Err(if head.stream_id == 0 {
                Error::connection(Reason::PROTOCOL_ERROR, detail)
            } else {
                Error::stream(head.stream_id, Reason::PROTOCOL_ERROR, detail)
            });
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }

    /// Appends the frame to `dst`; the reserved bit of the increment is written as zero.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(FRAME_HEADER_LEN + 4);
        Head::new(kind::WINDOW_UPDATE, 0, self.stream_id, 4).encode(dst);
        dst.put_u32(self.increment & STREAM_ID_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::{Frame, MAX_WINDOW_SIZE};
    use super::*;

    #[test]
    fn window_update_round_trips_on_connection_and_stream() {
        for frame in [
            WindowUpdate::new(0, 1),
            WindowUpdate::new(11, MAX_WINDOW_SIZE),
        ] {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::WindowUpdate(frame)]);
        }
    }

    #[test]
    fn window_update_reserved_bit_is_ignored() {
        let mut buf = frame_bytes(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 9]);
        assert_eq!(
            decode_one(&mut buf),
            Ok(Frame::WindowUpdate(WindowUpdate::new(1, 9)))
        );
    }

    #[test]
    fn window_update_zero_increment_on_stream_is_stream_error() {
        let mut buf = frame_bytes(kind::WINDOW_UPDATE, 0, 5, &[0, 0, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert_eq!(err.stream_id(), Some(5));
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
        assert!(buf.is_empty());
    }

    #[test]
    fn window_update_zero_increment_on_connection_is_connection_error() {
        // Only the reserved bit set: the increment is still 0.
        let mut buf = frame_bytes(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn window_update_with_wrong_length_is_frame_size_error() {
        for (stream_id, payload) in [(0, &[0u8, 0, 1][..]), (3, &[0, 0, 0, 1, 0][..])] {
            let mut buf = frame_bytes(kind::WINDOW_UPDATE, 0, stream_id, payload);
            let err = decode_one(&mut buf).unwrap_err();
            assert!(err.is_connection());
            assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
        }
    }
}
