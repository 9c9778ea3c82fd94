//! DATA frames ([RFC 9113 §6.1]).
//!
//! [RFC 9113 §6.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.1

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    encode_padded_frame, flags, frame_len, kind, require_stream, strip_padding, Head, StreamId,
    FRAME_HEADER_LEN,
};
use crate::h2::error::Error;

/// A DATA frame: a chunk of a stream's message body ([RFC 9113 §6.1]).
///
/// [RFC 9113 §6.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.1
#[derive(Clone, PartialEq, Eq)]
pub struct Data {
    /// The stream the data belongs to (never 0).
    pub stream_id: StreamId,
    /// The application data, padding stripped.
    pub payload: Bytes,
    /// END_STREAM: the sender's last frame on this stream.
    pub end_stream: bool,
    /// Length of the whole frame payload including pad length octet and padding: the amount
    /// flow control counts ([RFC 9113 §6.9]). Ignored by [`Data::encode`].
    ///
    /// [RFC 9113 §6.9]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9
    pub flow_len: u32,
}

impl Data {
    /// Creates an unpadded DATA frame; `flow_len` is the payload length.
    pub fn new(stream_id: StreamId, payload: impl Into<Bytes>, end_stream: bool) -> Data {
        let payload = payload.into();
        Data {
            stream_id,
            flow_len: frame_len(payload.len()),
            payload,
            end_stream,
        }
    }

    /// Parses a DATA frame from its header and payload ([RFC 9113 §6.1]).
    ///
    /// # Errors
    ///
    /// Connection errors: stream id 0 (PROTOCOL_ERROR); PADDED with an empty payload
    /// (FRAME_SIZE_ERROR); a pad length not less than the payload length (PROTOCOL_ERROR).
    ///
    /// [RFC 9113 §6.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.1
    #[inline]
    pub fn load(head: &Head, mut payload: Bytes) -> Result<Data, Error> {
        require_stream(head, "DATA frame on stream 0")?;
        let flow_len = frame_len(payload.len());
        strip_padding(head, &mut payload, 0)?;
        Ok(Data {
            stream_id: head.stream_id,
            payload,
            end_stream: head.has_flag(flags::END_STREAM),
            flow_len,
        })
    }

    fn flags(&self) -> u8 {
        if self.end_stream {
            flags::END_STREAM
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
        encode_data(dst, self.stream_id, &self.payload, self.end_stream);
    }

    /// Appends the frame to `dst` with PADDED set and `pad_len` zero octets of padding.
    ///
    /// The frame's flow-control length is then `payload.len() + 1 + pad_len`.
    ///
    /// # Panics
    ///
    /// Panics if the padded payload is longer than 2^24 − 1 octets.
    pub fn encode_padded(&self, pad_len: u8, dst: &mut BytesMut) {
        encode_padded_frame(
            dst,
            kind::DATA,
            self.flags(),
            self.stream_id,
            &[],
            &self.payload,
            pad_len,
        );
    }
}

impl fmt::Debug for Data {
    // The payload can be large; show its length rather than its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("stream_id", &self.stream_id)
            .field("payload_len", &self.payload.len())
            .field("end_stream", &self.end_stream)
            .field("flow_len", &self.flow_len)
            .finish()
    }
}

/// Writes one DATA frame header and a copy of `payload` to `dst` (the hot send path,
/// [RFC 9113 §6.1]).
///
/// Reserves once, then writes the header and the payload. The caller keeps `payload` within
/// the peer's SETTINGS_MAX_FRAME_SIZE and the flow-control windows.
///
/// # Panics
///
/// Panics if `payload` is longer than 2^24 − 1 octets.
///
/// [RFC 9113 §6.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.1
pub fn encode_data(dst: &mut BytesMut, stream_id: StreamId, payload: &[u8], end_stream: bool) {
    let flags = if end_stream { flags::END_STREAM } else { 0 };
    dst.reserve(FRAME_HEADER_LEN + payload.len());
    Head::new(kind::DATA, flags, stream_id, frame_len(payload.len())).encode(dst);
    dst.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::{Frame, DEFAULT_MAX_FRAME_SIZE};
    use super::*;
    use crate::h2::error::Reason;

    #[test]
    fn data_round_trips() {
        for (payload, end) in [(&b"hello"[..], false), (&b""[..], true)] {
            let frame = Data::new(7, Bytes::copy_from_slice(payload), end);
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(buf.len(), 9 + payload.len());
            assert_eq!(decode_all(&mut buf), vec![Frame::Data(frame)]);
        }
    }

    #[test]
    fn encode_data_writes_header_then_payload() {
        let mut buf = BytesMut::new();
        encode_data(&mut buf, 3, b"abc", true);
        assert_eq!(&buf[..], &[0, 0, 3, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn data_padding_is_stripped_and_counted_in_flow_len() {
        let mut buf = BytesMut::new();
        Data::new(1, &b"body"[..], true).encode_padded(10, &mut buf);
        assert_eq!(buf.len(), 9 + 1 + 4 + 10);
        match decode_one(&mut buf) {
            Ok(Frame::Data(d)) => {
                assert_eq!(&d.payload[..], b"body");
                assert_eq!(d.flow_len, 15);
                assert!(d.end_stream);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn data_padding_of_zero_and_maximal_padding_are_accepted() {
        // Pad length 0: only the pad length octet.
        let mut buf = frame_bytes(kind::DATA, flags::PADDED, 1, &[0]);
        let d = decode_one(&mut buf).unwrap();
        assert_eq!(
            d,
            Frame::Data(Data {
                flow_len: 1,
                ..Data::new(1, Bytes::new(), false)
            })
        );
        // Padding fills everything after the pad length octet.
        let mut buf = frame_bytes(kind::DATA, flags::PADDED, 1, &[3, 0, 0, 0]);
        match decode_one(&mut buf) {
            Ok(Frame::Data(d)) => assert_eq!((d.payload.len(), d.flow_len), (0, 4)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn data_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::DATA, 0, 0, b"x");
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn data_padding_not_shorter_than_payload_is_protocol_error() {
        for payload in [&[4u8, 1, 2, 3][..], &[1][..], &[200, 0][..]] {
            let mut buf = frame_bytes(kind::DATA, flags::PADDED, 1, payload);
            let err = decode_one(&mut buf).unwrap_err();
            assert!(err.is_connection());
            assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn data_padded_without_pad_length_octet_is_frame_size_error() {
        let mut buf = frame_bytes(kind::DATA, flags::PADDED, 1, &[]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }

    #[test]
    fn data_payload_is_a_zero_copy_slice_of_the_input() {
        let mut buf = BytesMut::new();
        encode_data(&mut buf, 1, &[0xab; 1000], false);
        let start = buf.as_ptr() as usize;
        match super::super::decode(&mut buf, DEFAULT_MAX_FRAME_SIZE) {
            Ok(Some(Frame::Data(d))) => assert_eq!(d.payload.as_ptr() as usize, start + 9),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn data_debug_shows_length_not_bytes() {
        let d = Data::new(1, vec![0u8; 4096], false);
        let s = format!("{d:?}");
        assert!(s.contains("payload_len: 4096"), "{s}");
        assert!(s.len() < 200);
    }
}
