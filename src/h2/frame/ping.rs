//! PING frames ([RFC 9113 §6.7]).
//!
//! [RFC 9113 §6.7]: https://www.rfc-editor.org/rfc/rfc9113#section-6.7

use bytes::{BufMut, Bytes, BytesMut};

use super::{flags, kind, require_connection, Head, FRAME_HEADER_LEN};
use crate::h2::error::{Error, Reason};

/// A PING frame: measures round-trip time and checks the connection is alive
/// ([RFC 9113 §6.7]).
///
/// [RFC 9113 §6.7]: https://www.rfc-editor.org/rfc/rfc9113#section-6.7
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// ACK: this is the answer to a PING, echoing its payload.
    pub ack: bool,
    /// Eight octets of opaque data.
    pub payload: [u8; 8],
}

impl Ping {
    /// Creates a PING that asks for an answer.
    pub fn new(payload: [u8; 8]) -> Ping {
        Ping {
            ack: false,
            payload,
        }
    }

    /// Creates the answer to a PING carrying `payload`.
    pub fn pong(payload: [u8; 8]) -> Ping {
        Ping { ack: true, payload }
    }

    /// Parses a PING frame from its header and payload ([RFC 9113 §6.7]).
    ///
    /// # Errors
    ///
    /// Connection errors: a non-zero stream id (PROTOCOL_ERROR); a length other than 8
    /// (FRAME_SIZE_ERROR).
    ///
    /// [RFC 9113 §6.7]: https://www.rfc-editor.org/rfc/rfc9113#section-6.7
    pub fn load(head: &Head, payload: Bytes) -> Result<Ping, Error> {
        require_connection(head, "PING frame on a stream")?;
        let payload: [u8; 8] = payload[..].try_into().map_err(|_| {
            Error::connection(Reason::FRAME_SIZE_ERROR, "PING frame length is not 8")
        })?;
        Ok(Ping {
            ack: head.has_flag(flags::ACK),
            payload,
        })
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let f = if self.ack { flags::ACK } else { 0 };
        dst.reserve(FRAME_HEADER_LEN + 8);
        Head::new(kind::PING, f, 0, 8).encode(dst);
        dst.put_slice(&self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    #[test]
    fn ping_and_ack_round_trip() {
        for frame in [Ping::new(*b"12345678"), Ping::pong([0xff; 8])] {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::Ping(frame)]);
        }
    }

    #[test]
    fn ping_with_wrong_length_is_frame_size_error() {
        for len in [0, 7, 9, 64] {
            let mut buf = frame_bytes(kind::PING, 0, 0, &vec![0; len]);
            let err = decode_one(&mut buf).unwrap_err();
            assert!(err.is_connection());
            assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn ping_on_stream_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::PING, 0, 1, &[0; 8]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }
}
