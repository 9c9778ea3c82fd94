//! HEADERS frames and stream priority fields ([RFC 9113 §6.2], [§5.3]).
//!
//! [RFC 9113 §6.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.2
//! [§5.3]: https://www.rfc-editor.org/rfc/rfc9113#section-5.3

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    encode_padded_frame, flags, frame_len, kind, read_u32, require_stream, strip_padding, Head,
    StreamId, FRAME_HEADER_LEN, MAX_MAX_FRAME_SIZE, STREAM_ID_MASK,
};
use crate::h2::error::{Error, Reason};

/// The stream dependency and weight carried by PRIORITY frames and by HEADERS frames with the
/// PRIORITY flag ([RFC 9113 §5.3.1], [§6.3]).
///
/// RFC 9113 deprecates this priority scheme; peers may still send it, so it is parsed (and the
/// connection ignores it).
///
/// [RFC 9113 §5.3.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.3.1
/// [§6.3]: https://www.rfc-editor.org/rfc/rfc9113#section-6.3
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrioritySpec {
    /// The stream this one depends on (0 for the root).
    pub dependency: StreamId,
    /// The E bit: the dependency is exclusive.
    pub exclusive: bool,
    /// The weight as on the wire: the effective weight minus one (0..=255 for 1..=256).
    pub weight: u8,
}

impl PrioritySpec {
    /// Length of the encoded fields: 4 octets of E bit and dependency, 1 octet of weight.
    pub const LEN: usize = 5;

    /// Reads the fields from the first 5 octets of `b`.
    ///
    /// # Panics
    ///
    /// Panics if `b` is shorter than [`PrioritySpec::LEN`].
    pub fn parse(b: &[u8]) -> PrioritySpec {
        let word = read_u32(b);
        PrioritySpec {
            dependency: word & STREAM_ID_MASK,
            exclusive: word & !STREAM_ID_MASK != 0,
            weight: b[4],
        }
    }

    /// Returns the 5-octet wire form.
    pub fn to_bytes(&self) -> [u8; 5] {
        let mut word = self.dependency & STREAM_ID_MASK;
        if self.exclusive {
            word |= !STREAM_ID_MASK;
        }
        let w = word.to_be_bytes();
        [w[0], w[1], w[2], w[3], self.weight]
    }

    /// Appends the 5-octet wire form to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }
}

/// A HEADERS frame: opens a stream and carries the first fragment of a field block
/// ([RFC 9113 §6.2]).
///
/// [RFC 9113 §6.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.2
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The field block fragment, padding and priority fields stripped.
    pub fragment: Bytes,
    /// END_STREAM: the sender's last frame on this stream (CONTINUATIONs may still follow).
    pub end_stream: bool,
    /// END_HEADERS: the field block is complete; otherwise CONTINUATION frames follow.
    pub end_headers: bool,
    /// The priority fields, present when the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
}

impl Headers {
    /// Creates a HEADERS frame without priority fields.
    pub fn new(
        stream_id: StreamId,
        fragment: impl Into<Bytes>,
        end_stream: bool,
        end_headers: bool,
    ) -> Headers {
        Headers {
            stream_id,
            fragment: fragment.into(),
            end_stream,
            end_headers,
            priority: None,
        }
    }

    /// Parses a HEADERS frame from its header and payload ([RFC 9113 §6.2]).
    ///
    /// # Errors
    ///
    /// Connection errors: stream id 0 (PROTOCOL_ERROR); a payload too short for the pad length
    /// and priority fields its flags announce (FRAME_SIZE_ERROR); padding that does not fit
    /// (PROTOCOL_ERROR). A stream error: a priority that makes the stream depend on itself
    /// (PROTOCOL_ERROR, [§5.3.1]). The field block fragment is lost with the error, so the
    /// caller's HPACK context no longer matches the peer's if that block changed the
    /// dynamic table.
    ///
    /// [RFC 9113 §6.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.2
    /// [§5.3.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.3.1
    pub fn load(head: &Head, mut payload: Bytes) -> Result<Headers, Error> {
        require_stream(head, "HEADERS frame on stream 0")?;
        let has_priority = head.has_flag(flags::PRIORITY);
        let fixed = if has_priority { PrioritySpec::LEN } else { 0 };
        strip_padding(head, &mut payload, fixed)?;
        let priority = if has_priority {
            let spec = PrioritySpec::parse(&payload);
            payload.advance(PrioritySpec::LEN);
            if spec.dependency == head.stream_id {
                return Err(Error::stream(
                    head.stream_id,
                    Reason::PROTOCOL_ERROR,
                    "HEADERS frame makes the stream depend on itself",
                ));
            }
            Some(spec)
        } else {
            None
        };
        Ok(Headers {
            stream_id: head.stream_id,
            fragment: payload,
            end_stream: head.has_flag(flags::END_STREAM),
            end_headers: head.has_flag(flags::END_HEADERS),
            priority,
        })
    }

    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.end_stream {
            f |= flags::END_STREAM;
        }
        if self.end_headers {
            f |= flags::END_HEADERS;
        }
        if self.priority.is_some() {
            f |= flags::PRIORITY;
        }
        f
    }

    fn priority_bytes(&self) -> ([u8; 5], usize) {
        match self.priority {
            Some(spec) => (spec.to_bytes(), PrioritySpec::LEN),
            None => ([0; 5], 0),
        }
    }

    /// Appends the frame to `dst` as one HEADERS frame, unpadded; no splitting into
    /// CONTINUATION frames (see [`encode_header_block`] for that).
    ///
    /// # Panics
    ///
    /// Panics if the payload is longer than 2^24 − 1 octets.
    pub fn encode(&self, dst: &mut BytesMut) {
        let (prio, prio_len) = self.priority_bytes();
        let len = prio_len + self.fragment.len();
        dst.reserve(FRAME_HEADER_LEN + len);
        Head::new(kind::HEADERS, self.flags(), self.stream_id, frame_len(len)).encode(dst);
        dst.put_slice(&prio[..prio_len]);
        dst.put_slice(&self.fragment);
    }

    /// Appends the frame to `dst` with PADDED set and `pad_len` zero octets of padding.
    ///
    /// # Panics
    ///
    /// Panics if the padded payload is longer than 2^24 − 1 octets.
    pub fn encode_padded(&self, pad_len: u8, dst: &mut BytesMut) {
        let (prio, prio_len) = self.priority_bytes();
        encode_padded_frame(
            dst,
            kind::HEADERS,
            self.flags(),
            self.stream_id,
            &prio[..prio_len],
            &self.fragment,
            pad_len,
        );
    }
}

/// Writes a HEADERS frame and as many CONTINUATION frames as `block` needs at
/// `max_frame_size` ([RFC 9113 §6.2], [§6.10]).
///
/// The HEADERS frame carries END_STREAM when `end_stream` is set; the last frame carries
/// END_HEADERS. An empty block is one empty HEADERS frame. `max_frame_size` is the peer's
/// SETTINGS_MAX_FRAME_SIZE; it is clamped to `1..=2^24 − 1` so that a bad value can neither
/// loop forever nor produce an unencodable frame. `dst` is reserved once for all frames.
///
/// [RFC 9113 §6.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.2
/// [§6.10]: https://www.rfc-editor.org/rfc/rfc9113#section-6.10
pub fn encode_header_block(
    dst: &mut BytesMut,
    stream_id: StreamId,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let max = max_frame_size.clamp(1, MAX_MAX_FRAME_SIZE) as usize;
    let frames = block.len().div_ceil(max).max(1);
    dst.reserve(block.len() + frames * FRAME_HEADER_LEN);

    let first_len = block.len().min(max);
    let (first, mut rest) = block.split_at(first_len);
    let mut f = if end_stream { flags::END_STREAM } else { 0 };
    if rest.is_empty() {
        f |= flags::END_HEADERS;
    }
    Head::new(kind::HEADERS, f, stream_id, frame_len(first.len())).encode(dst);
    dst.put_slice(first);

    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(max));
        let f = if tail.is_empty() {
            flags::END_HEADERS
        } else {
            0
        };
        Head::new(kind::CONTINUATION, f, stream_id, frame_len(chunk.len())).encode(dst);
        dst.put_slice(chunk);
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::{Continuation, Frame};
    use super::*;

    fn spec(dependency: StreamId, exclusive: bool, weight: u8) -> PrioritySpec {
        PrioritySpec {
            dependency,
            exclusive,
            weight,
        }
    }

    #[test]
    fn headers_round_trip_with_and_without_priority() {
        let plain = Headers::new(1, &b"\x82\x86"[..], true, true);
        let with_prio = Headers {
            priority: Some(spec(0x7fff_fffe, true, 255)),
            ..Headers::new(3, &b"\x84"[..], false, false)
        };
        for frame in [plain, with_prio] {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::Headers(frame)]);
        }
    }

    #[test]
    fn headers_priority_flag_is_parsed() {
        let payload = [0x80, 0, 0, 5, 15, b'a', b'b'];
        let mut buf = frame_bytes(
            kind::HEADERS,
            flags::PRIORITY | flags::END_HEADERS,
            3,
            &payload,
        );
        match decode_one(&mut buf) {
            Ok(Frame::Headers(h)) => {
                assert_eq!(h.priority, Some(spec(5, true, 15)));
                assert_eq!(&h.fragment[..], b"ab");
                assert!(h.end_headers && !h.end_stream);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn headers_padding_and_priority_are_stripped() {
        let frame = Headers {
            priority: Some(spec(1, false, 7)),
            ..Headers::new(5, &b"block"[..], true, true)
        };
        let mut buf = BytesMut::new();
        frame.encode_padded(3, &mut buf);
        assert_eq!(buf.len(), 9 + 1 + 5 + 5 + 3);
        assert_eq!(
            buf[4],
            flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY
        );
        assert_eq!(decode_all(&mut buf), vec![Frame::Headers(frame)]);
    }

    #[test]
    fn headers_on_stream_zero_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::HEADERS, flags::END_HEADERS, 0, b"\x82");
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn headers_depending_on_itself_is_stream_protocol_error() {
        let mut buf = frame_bytes(kind::HEADERS, flags::PRIORITY, 9, &[0, 0, 0, 9, 16]);
        assert_eq!(
            decode_one(&mut buf),
            Err(Error::stream(
                9,
                Reason::PROTOCOL_ERROR,
                "HEADERS frame makes the stream depend on itself"
            ))
        );
        assert!(buf.is_empty(), "the bad frame is consumed");
    }

    #[test]
    fn headers_padding_not_shorter_than_payload_is_protocol_error() {
        // Pad length equal to the payload length.
        let mut buf = frame_bytes(kind::HEADERS, flags::PADDED, 1, &[3, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
        // Padding that would eat the priority fields.
        let mut buf = frame_bytes(
            kind::HEADERS,
            flags::PADDED | flags::PRIORITY,
            1,
            &[2, 0, 0, 0, 0, 16, 0],
        );
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn headers_too_short_for_priority_fields_is_frame_size_error() {
        let mut buf = frame_bytes(kind::HEADERS, flags::PRIORITY, 1, &[0, 0, 0, 3]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
        let mut buf = frame_bytes(kind::HEADERS, flags::PADDED, 1, &[]);
        assert_eq!(
            decode_one(&mut buf).unwrap_err().reason(),
            Reason::FRAME_SIZE_ERROR
        );
    }

    #[test]
    fn header_block_fitting_one_frame_is_a_single_headers_with_end_headers() {
        let mut buf = BytesMut::new();
        encode_header_block(&mut buf, 1, b"abc", true, 16_384);
        assert_eq!(
            decode_all(&mut buf),
            vec![Frame::Headers(Headers::new(1, &b"abc"[..], true, true))]
        );
        let mut buf = BytesMut::new();
        encode_header_block(&mut buf, 1, b"", false, 16_384);
        assert_eq!(
            decode_all(&mut buf),
            vec![Frame::Headers(Headers::new(1, Bytes::new(), false, true))]
        );
    }

    #[test]
    fn header_block_is_split_into_continuations_at_max_frame_size() {
        let block: Vec<u8> = (0..=255u8).cycle().take(10).collect();
        let mut buf = BytesMut::new();
        encode_header_block(&mut buf, 3, &block, true, 4);
        assert_eq!(buf.len(), 10 + 3 * 9);
        let cont = |frag: &[u8], end_headers| {
            Frame::Continuation(Continuation {
                stream_id: 3,
                fragment: Bytes::copy_from_slice(frag),
                end_headers,
            })
        };
        assert_eq!(
            decode_all(&mut buf),
            vec![
                Frame::Headers(Headers::new(
                    3,
                    Bytes::copy_from_slice(&block[..4]),
                    true,
                    false
                )),
                cont(&block[4..8], false),
                cont(&block[8..], true),
            ]
        );
        // An exact multiple of the frame size needs no empty trailing CONTINUATION.
        let mut buf = BytesMut::new();
        encode_header_block(&mut buf, 3, &block[..8], false, 4);
        let frames = decode_all(&mut buf);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], cont(&block[4..8], true));
    }

    #[test]
    fn header_block_with_zero_max_frame_size_does_not_loop() {
        let mut buf = BytesMut::new();
        encode_header_block(&mut buf, 1, b"ab", false, 0);
        assert_eq!(decode_all(&mut buf).len(), 2);
    }
}
