//! PRIORITY frames ([RFC 9113 §6.3]).
//!
//! [RFC 9113 §6.3]: https://www.rfc-editor.org/rfc/rfc9113#section-6.3

use bytes::BytesMut;

use super::{kind, require_stream, Head, PrioritySpec, StreamId};
use crate::h2::error::{Error, Reason};

/// A PRIORITY frame: the sender's advice on a stream's priority ([RFC 9113 §6.3]).
///
/// The scheme is deprecated by RFC 9113; the connection parses these frames and ignores them.
///
/// [RFC 9113 §6.3]: https://www.rfc-editor.org/rfc/rfc9113#section-6.3
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream whose priority is given (never 0).
    pub stream_id: StreamId,
    /// Its dependency and weight.
    pub spec: PrioritySpec,
}

impl Priority {
    /// Parses a PRIORITY frame from its header and payload ([RFC 9113 §6.3]).
    ///
    /// # Errors
    ///
    /// Stream id 0: PROTOCOL_ERROR, connection error. A length other than 5:
    /// FRAME_SIZE_ERROR, stream error. A stream that depends on itself: PROTOCOL_ERROR, stream
    /// error ([§5.3.1]).
    ///
    /// [RFC 9113 §6.3]: https://www.rfc-editor.org/rfc/rfc9113#section-6.3
    /// [§5.3.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.3.1
    pub fn load(head: &Head, payload: bytes::Bytes) -> Result<Priority, Error> {
        require_stream(head, "PRIORITY frame on stream 0")?;
        if payload.len() != PrioritySpec::LEN {
            return Err(Error::stream(
                head.stream_id,
                Reason::FRAME_SIZE_ERROR,
                "PRIORITY frame length is not 5",
            ));
        }
        let spec = PrioritySpec::parse(&payload);
        if spec.dependency == head.stream_id {
            return Err(Error::stream(
                head.stream_id,
                Reason::PROTOCOL_ERROR,
                "PRIORITY frame makes the stream depend on itself",
            ));
        }
        Ok(Priority {
            stream_id: head.stream_id,
            spec,
        })
    }

    /// Appends the frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(super::FRAME_HEADER_LEN + PrioritySpec::LEN);
        Head::new(kind::PRIORITY, 0, self.stream_id, PrioritySpec::LEN as u32).encode(dst);
        self.spec.encode(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    #[test]
    fn priority_round_trips() {
        let frame = Priority {
            stream_id: 5,
            spec: PrioritySpec {
                dependency: 3,
                exclusive: true,
                weight: 200,
            },
        };
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        assert_eq!(&buf[9..], &[0x80, 0, 0, 3, 200]);
        assert_eq!(decode_all(&mut buf), vec![Frame::Priority(frame)]);
    }

    #[test]
    fn priority_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn priority_with_wrong_length_is_stream_frame_size_error() {
        for payload in [&[0u8, 0, 0, 1][..], &[0, 0, 0, 1, 16, 0][..]] {
            let mut buf = frame_bytes(kind::PRIORITY, 0, 7, payload);
            let err = decode_one(&mut buf).unwrap_err();
            assert_eq!(err.stream_id(), Some(7));
            assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn priority_depending_on_itself_is_stream_protocol_error() {
        let mut buf = frame_bytes(kind::PRIORITY, 0, 7, &[0x80, 0, 0, 7, 16]);
        let err = decode_one(&mut buf).unwrap_err();
        assert_eq!(err.stream_id(), Some(7));
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }
}
