//! PUSH_PROMISE frames ([RFC 9113 §6.6]).
//!
//! [RFC 9113 §6.6]: https://www.rfc-editor.org/rfc/rfc9113#section-6.6

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    encode_padded_frame, flags, frame_len, kind, read_u32, require_stream, strip_padding, Head,
    StreamId, FRAME_HEADER_LEN, STREAM_ID_MASK,
};
use crate::h2::error::{Error, Reason};

/// A PUSH_PROMISE frame: the server announces a stream it will push ([RFC 9113 §6.6]).
///
/// gRPC never pushes; clients advertise SETTINGS_ENABLE_PUSH = 0 and the connection treats a
/// PUSH_PROMISE as a protocol error. The frame is still parsed so that error is accurate.
///
/// [RFC 9113 §6.6]: https://www.rfc-editor.org/rfc/rfc9113#section-6.6
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPromise {
    /// The stream the promise is associated with (never 0).
    pub stream_id: StreamId,
    /// The stream the server reserves for the pushed response (never 0).
    pub promised_id: StreamId,
    /// The field block fragment of the promised request, padding stripped.
    pub fragment: Bytes,
    /// END_HEADERS: the field block is complete; otherwise CONTINUATION frames follow.
    pub end_headers: bool,
}

impl PushPromise {
    /// Parses a PUSH_PROMISE frame from its header and payload ([RFC 9113 §6.6]).
    ///
    /// # Errors
    ///
    /// All are connection errors: stream id 0 or promised stream id 0 (PROTOCOL_ERROR); a
    /// payload too short for the pad length and promised stream id (FRAME_SIZE_ERROR);
    /// padding that does not fit (PROTOCOL_ERROR).
    ///
    /// [RFC 9113 §6.6]: https://www.rfc-editor.org/rfc/rfc9113#section-6.6
    pub fn load(head: &Head, mut payload: Bytes) -> Result<PushPromise, Error> {
        require_stream(head, "PUSH_PROMISE frame on stream 0")?;
        strip_padding(head, &mut payload, 4)?;
        let promised_id = read_u32(&payload) & STREAM_ID_MASK;
        payload.advance(4);
        if promised_id == 0 {
            return Err(Error::connection(
                Reason::PROTOCOL_ERROR,
                "PUSH_PROMISE promises stream 0",
            ));
        }
        Ok(PushPromise {
            stream_id: head.stream_id,
            promised_id,
            fragment: payload,
            end_headers: head.has_flag(flags::END_HEADERS),
        })
    }

    fn flags(&self) -> u8 {
        if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        }
    }

    /// Appends the frame to `dst`, unpadded.
    ///
    /// # Panics
    ///
    /// Panics if the payload is longer than 2^24 − 1 octets.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = 4 + self.fragment.len();
        dst.reserve(FRAME_HEADER_LEN + len);
        Head::new(
            kind::PUSH_PROMISE,
            self.flags(),
            self.stream_id,
            frame_len(len),
        )
        .encode(dst);
        dst.put_u32(self.promised_id & STREAM_ID_MASK);
        dst.put_slice(&self.fragment);
    }

    /// Appends the frame to `dst` with PADDED set and `pad_len` zero octets of padding.
    ///
    /// # Panics
    ///
    /// Panics if the padded payload is longer than 2^24 − 1 octets.
    pub fn encode_padded(&self, pad_len: u8, dst: &mut BytesMut) {
        encode_padded_frame(
            dst,
            kind::PUSH_PROMISE,
            self.flags(),
            self.stream_id,
            &(self.promised_id & STREAM_ID_MASK).to_be_bytes(),
            &self.fragment,
            pad_len,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    #[test]
    fn push_promise_round_trips_plain_and_padded() {
        let frame = PushPromise {
            stream_id: 1,
            promised_id: 2,
            fragment: Bytes::from_static(b"\x82\x87"),
            end_headers: true,
        };
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        frame.encode_padded(4, &mut buf);
        assert_eq!(
            decode_all(&mut buf),
            vec![Frame::PushPromise(frame.clone()), Frame::PushPromise(frame)]
        );
    }

    #[test]
    fn push_promise_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::PUSH_PROMISE, 0, 0, &[0, 0, 0, 2]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn push_promise_of_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::PUSH_PROMISE, 0, 1, &[0x80, 0, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn push_promise_too_short_for_promised_id_is_frame_size_error() {
        let mut buf = frame_bytes(kind::PUSH_PROMISE, 0, 1, &[0, 0, 2]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }

    #[test]
    fn push_promise_padding_over_promised_id_is_protocol_error() {
        let mut buf = frame_bytes(kind::PUSH_PROMISE, flags::PADDED, 1, &[1, 0, 0, 0, 2]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }
}
