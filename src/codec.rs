//! gRPC message framing: each message on the wire is a 5-byte prefix — a compressed flag
//! (one byte, 0 or 1) and the message length (four bytes, big-endian) — then the message.
//!
//! Sending: [`encode_message`] appends a prost message with its prefix to a buffer, checking
//! the send size limit; [`encode_raw_message`] does the same for bytes already encoded.
//! Receiving: a [`MessageDecoder`] takes the DATA payloads of one stream as they come, split
//! anywhere, and gives back whole messages; [`decode_message`] turns one into a prost type.
//!
//! Compression: [`encode_message_with`] compresses a message and sets its flag;
//! [`MessageDecoder::set_encoding`] names the coding of the messages received compressed,
//! which come back inflated (never past the receive limit). See [`crate::compression`].
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use grpc_sync::codec::{encode_raw_message, MessageDecoder};
//! let mut wire = BytesMut::new();
//! encode_raw_message(b"hello", &mut wire, usize::MAX).unwrap();
//! let wire = wire.freeze();
//!
//! let mut decoder = MessageDecoder::new(4 * 1024 * 1024);
//! decoder.push(wire.slice(..3));
//! assert_eq!(decoder.next_message().unwrap(), None);
//! decoder.push(wire.slice(3..));
//! assert_eq!(decoder.next_message().unwrap(), Some(Bytes::from_static(b"hello")));
//! decoder.finish().unwrap();
//! ```

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::compression::{self, CompressionEncoding};
use crate::status::Status;

/// Length of the prefix before each message: compressed flag + 4-byte length.
pub const HEADER_LEN: usize = 5;

/// Default limit on a received message: 4 MiB, as in grpcio and grpc-go.
pub const DEFAULT_MAX_RECV_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Default limit on a sent message: none.
pub const DEFAULT_MAX_SEND_MESSAGE_SIZE: usize = usize::MAX;

/// The 5-byte prefix for a message of `len` bytes, for callers that write the prefix and
/// the payload from separate buffers (one `writev`).
///
/// # Errors
///
/// RESOURCE_EXHAUSTED if `len` is over `max_send` or does not fit in 32 bits.
pub fn message_header(len: usize, max_send: usize) -> Result<[u8; HEADER_LEN], Status> {
    let len32 = check_send_size(len, max_send)?;
    let l = len32.to_be_bytes();
    Ok([0, l[0], l[1], l[2], l[3]])
}

fn check_send_size(len: usize, max_send: usize) -> Result<u32, Status> {
    match u32::try_from(len) {
        Ok(len32) if len <= max_send => Ok(len32),
        _ => Err(Status::resource_exhausted(format!(
            "trying to send message larger than max ({len} vs. {})",
            max_send.min(u32::MAX as usize)
        ))),
    }
}

/// Appends `msg`, encoded with prost and prefixed, to `dst`.
///
/// ```
/// use bytes::BytesMut;
/// use grpc_sync::codec::encode_message;
/// let mut dst = BytesMut::new();
/// encode_message(&"hi".to_string(), &mut dst, usize::MAX).unwrap();
/// assert_eq!(&dst[..], b"\x00\x00\x00\x00\x04\x0a\x02hi");
/// ```
///
/// # Errors
///
/// RESOURCE_EXHAUSTED ("trying to send message larger than max (N vs. M)") if the encoded
/// message is over `max_send` bytes; `dst` is then unchanged.
pub fn encode_message(
    msg: &impl prost::Message,
    dst: &mut BytesMut,
    max_send: usize,
) -> Result<(), Status> {
    let len = msg.encoded_len();
    let header = message_header(len, max_send)?;
    dst.reserve(HEADER_LEN + len);
    dst.put_slice(&header);
    msg.encode(dst).map_err(Status::from)
}

/// Appends `msg` with its prefix to `dst`, compressed with `encoding` unless that is `None` or
/// identity (then exactly [`encode_message`], with no extra copy). A compressed message has its
/// flag set and the send limit applies to its compressed size.
///
/// ```
/// use bytes::BytesMut;
/// use grpc_sync::codec::encode_message_with;
/// use grpc_sync::compression::CompressionEncoding;
/// let mut dst = BytesMut::new();
/// encode_message_with(&"a".repeat(1000), &mut dst, usize::MAX, Some(CompressionEncoding::Gzip)).unwrap();
/// assert_eq!(dst[0], 1);
/// assert!(dst.len() < 100);
/// ```
///
/// # Errors
///
/// As [`encode_message`]; INTERNAL if the compressor fails.
pub fn encode_message_with(
    msg: &impl prost::Message,
    dst: &mut BytesMut,
    max_send: usize,
    encoding: Option<CompressionEncoding>,
) -> Result<(), Status> {
    match encoding {
        Some(enc) if enc.is_compressed() => {
            let raw = msg.encode_to_vec();
            let start = dst.len();
            dst.put_slice(&[1, 0, 0, 0, 0]);
            if let Err(e) = compression::compress(enc, &raw, dst) {
                dst.truncate(start);
                return Err(e.into());
            }
            let len = dst.len() - start - HEADER_LEN;
            match check_send_size(len, max_send) {
                Ok(len32) => {
                    dst[start + 1..start + HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
                    Ok(())
                }
                Err(e) => {
                    dst.truncate(start);
                    Err(e)
                }
            }
        }
        _ => encode_message(msg, dst, max_send),
    }
}

/// Appends `payload`, an already encoded message, with its prefix to `dst`.
///
/// # Errors
///
/// As [`encode_message`].
pub fn encode_raw_message(
    payload: &[u8],
    dst: &mut BytesMut,
    max_send: usize,
) -> Result<(), Status> {
    let header = message_header(payload.len(), max_send)?;
    dst.reserve(HEADER_LEN + payload.len());
    dst.put_slice(&header);
    dst.put_slice(payload);
    Ok(())
}

/// Decodes one received message (without its prefix) as `T`.
///
/// # Errors
///
/// INTERNAL ("failed to decode Protobuf message: …") if the bytes are not a valid `T`.
pub fn decode_message<T: prost::Message + Default>(msg: Bytes) -> Result<T, Status> {
    T::decode(msg).map_err(Status::from)
}

impl From<prost::DecodeError> for Status {
    /// A message that does not decode: INTERNAL, as gRPC reports malformed messages.
    fn from(err: prost::DecodeError) -> Status {
        Status::internal(format!("failed to decode Protobuf message: {err}"))
    }
}

impl From<prost::EncodeError> for Status {
    /// A message that does not fit its buffer: INTERNAL.
    fn from(err: prost::EncodeError) -> Status {
        Status::internal(format!("failed to encode Protobuf message: {err}"))
    }
}

/// Splits a stream's DATA payloads back into messages.
///
/// Feed it chunks with [`push`](MessageDecoder::push) as they arrive, take messages with
/// [`next_message`](MessageDecoder::next_message) until it returns `Ok(None)`, and call
/// [`finish`](MessageDecoder::finish) when the stream ends. A message that lies within one
/// chunk comes back as a slice of it, without copying.
///
/// The receive limit is checked as soon as a message's prefix is complete, before any of its
/// body arrives, so the caller can reset the stream rather than wait for megabytes it will
/// refuse. Errors are sticky: once one is returned, every later call returns it again and
/// pushed data is dropped.
pub struct MessageDecoder {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    max_recv: usize,
    /// The length of the message whose prefix has been read, if any.
    body_len: Option<usize>,
    error: Option<Status>,
    /// The coding of compressed messages (the peer's `grpc-encoding`), if one was negotiated.
    encoding: Option<CompressionEncoding>,
    /// Whether the message being read (or last returned) had its compressed flag set.
    compressed: bool,
    /// Where a message split over several chunks is joined. Its allocation is reclaimed for
    /// the next such message once the application has dropped the last one, so a stream of
    /// large messages does not allocate (and fault in) a fresh buffer per message.
    scratch: BytesMut,
}

impl MessageDecoder {
    /// A decoder that refuses messages over `max_recv` bytes.
    pub fn new(max_recv: usize) -> MessageDecoder {
        MessageDecoder {
            chunks: VecDeque::new(),
            buffered: 0,
            max_recv,
            body_len: None,
            error: None,
            encoding: None,
            compressed: false,
            scratch: BytesMut::new(),
        }
    }

    /// Sets the coding of compressed messages (the peer's `grpc-encoding`). Without one
    /// (`None` or identity), a message with its compressed flag set is an error.
    pub fn set_encoding(&mut self, encoding: Option<CompressionEncoding>) {
        self.encoding = encoding.filter(|e| e.is_compressed());
    }

    /// Whether the last message returned by [`next_message`](Self::next_message) arrived
    /// compressed (its flag set); it is returned decompressed.
    pub fn last_compressed(&self) -> bool {
        self.compressed
    }

    /// The receive limit.
    pub fn max_recv(&self) -> usize {
        self.max_recv
    }

    /// Bytes pushed and not yet returned as messages (prefixes already read not counted).
    pub fn buffered_len(&self) -> usize {
        self.buffered
    }

    /// Whether a message has been started and not finished: what [`finish`] would reject.
    ///
    /// [`finish`]: MessageDecoder::finish
    pub fn has_partial_message(&self) -> bool {
        self.body_len.is_some() || self.buffered > 0
    }

    /// Adds the next chunk of the stream. Dropped after an error.
    pub fn push(&mut self, chunk: Bytes) {
        if self.error.is_none() && !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    fn fail(&mut self, status: Status) -> Status {
        self.chunks.clear();
        self.buffered = 0;
        self.body_len = None;
        self.error = Some(status.clone());
        status
    }

    /// Takes `n <= self.buffered` bytes off the front, zero-copy when one chunk holds them.
    fn take(&mut self, n: usize) -> Bytes {
        self.buffered -= n;
        if n == 0 {
            return Bytes::new();
        }
        if let Some(front) = self.chunks.front_mut() {
            if front.len() > n {
                return front.split_to(n);
            }
            if front.len() == n {
                return self.chunks.pop_front().unwrap_or_default();
            }
        }
        // `reserve` reuses the buffer of the previous joined message if it is unique again.
        let out = &mut self.scratch;
        out.reserve(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let want = n - out.len();
            if front.len() > want {
                out.put_slice(&front[..want]);
                front.advance(want);
            } else {
                out.put_slice(front);
                self.chunks.pop_front();
            }
        }
        out.split().freeze()
    }

    /// Takes the 5-byte message prefix off the front (`self.buffered >= HEADER_LEN`), copying
    /// it rather than slicing a `Bytes` (which costs two atomic reference-count updates).
    fn take_header(&mut self) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let n = front.len().min(HEADER_LEN - filled);
            header[filled..filled + n].copy_from_slice(&front[..n]);
            filled += n;
            if n == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(n);
            }
        }
        self.buffered -= filled;
        header
    }

    /// The next complete message, `Ok(None)` if more data is needed.
    ///
    /// # Errors
    ///
    /// - RESOURCE_EXHAUSTED ("received message larger than max (N vs. M)") for a message
    ///   over the limit, as soon as its prefix is read;
    /// - INTERNAL for a set compressed flag when no coding was set with
    ///   [`set_encoding`](Self::set_encoding), a flag byte other than 0 and 1, or compressed
    ///   bytes that do not decompress;
    /// - RESOURCE_EXHAUSTED for a message that decompresses to more than the limit
    ///   (decompression stops there).
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let len = match self.body_len {
            Some(len) => len,
            None => {
                if self.buffered < HEADER_LEN {
                    return Ok(None);
                }
                let header = self.take_header();
                let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
                match header[0] {
                    0 => self.compressed = false,
                    1 if self.encoding.is_some() => self.compressed = true,
                    1 => {
                        return Err(self.fail(Status::internal(
                            "received a compressed message but no grpc-encoding was negotiated",
                        )))
                    }
                    flag => {
                        return Err(self.fail(Status::internal(format!(
                            "invalid compressed flag {flag} in message prefix"
                        ))))
                    }
                }
                if len > self.max_recv {
                    return Err(self.fail(Status::resource_exhausted(format!(
                        "received message larger than max ({len} vs. {})",
                        self.max_recv
                    ))));
                }
                self.body_len = Some(len);
                len
            }
        };
        if self.buffered < len {
            return Ok(None);
        }
        self.body_len = None;
        let body = self.take(len);
        match self.encoding {
            Some(enc) if self.compressed => {
                match compression::decompress(enc, &body, self.max_recv) {
                    Ok(m) => Ok(Some(m)),
                    Err(e) => Err(self.fail(e.into())),
                }
            }
            _ => Ok(Some(body)),
        }
    }

    /// Checks that the stream ended between messages. Call it at end of stream, after
    /// [`next_message`](MessageDecoder::next_message) has returned `Ok(None)`.
    ///
    /// # Errors
    ///
    /// INTERNAL if part of a message is left; any earlier error again.
    pub fn finish(&mut self) -> Result<(), Status> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(len) = self.body_len {
            let have = self.buffered;
            return Err(self.fail(Status::internal(format!(
                "stream ended inside a message: {have} of {len} bytes received"
            ))));
        }
        if self.buffered > 0 {
            let have = self.buffered;
            return Err(self.fail(Status::internal(format!(
                "stream ended inside a message prefix: {have} of {HEADER_LEN} bytes received"
            ))));
        }
        Ok(())
    }
}

impl std::fmt::Debug for MessageDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDecoder")
            .field("buffered", &self.buffered)
            .field("max_recv", &self.max_recv)
            .field("body_len", &self.body_len)
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Point {
        #[prost(int32, tag = "1")]
        latitude: i32,
        #[prost(int32, tag = "2")]
        longitude: i32,
    }

    fn framed(payloads: &[&[u8]]) -> Bytes {
        let mut dst = BytesMut::new();
        for p in payloads {
            encode_raw_message(p, &mut dst, usize::MAX).unwrap();
        }
        dst.freeze()
    }

    fn drain(d: &mut MessageDecoder, out: &mut Vec<Bytes>) {
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
    }

    const PAYLOADS: [&[u8]; 4] = [b"first message", b"", b"\x00\x01\x02", b"last"];

    #[test]
    fn encode_message_writes_prefix_and_prost_bytes() {
        let p = Point {
            latitude: 1,
            longitude: -1,
        };
        let mut dst = BytesMut::from(&b"xx"[..]);
        encode_message(&p, &mut dst, usize::MAX).unwrap();
        let body = prost::Message::encode_to_vec(&p);
        assert_eq!(&dst[..2], b"xx");
        assert_eq!(dst[2], 0);
        assert_eq!(&dst[3..7], (body.len() as u32).to_be_bytes());
        assert_eq!(&dst[7..], &body[..]);
    }

    #[test]
    fn encode_over_max_send_is_resource_exhausted_and_writes_nothing() {
        let p = Point {
            latitude: 1_000_000,
            longitude: 2,
        };
        let len = prost::Message::encoded_len(&p);
        let mut dst = BytesMut::new();
        let err = encode_message(&p, &mut dst, len - 1).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(
            err.message(),
            format!(
                "trying to send message larger than max ({len} vs. {})",
                len - 1
            )
        );
        assert!(dst.is_empty());
        encode_message(&p, &mut dst, len).unwrap();
        let err = encode_raw_message(&[0; 11], &mut dst, 10).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }

    #[test]
    fn message_header_is_flag_and_big_endian_length() {
        assert_eq!(
            message_header(0x0102_0304, usize::MAX).unwrap(),
            [0, 1, 2, 3, 4]
        );
        assert!(message_header(5, 4).is_err());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            message_header(u32::MAX as usize + 1, usize::MAX)
                .unwrap_err()
                .code(),
            Code::ResourceExhausted
        );
    }

    #[test]
    fn prost_message_round_trips_through_the_decoder() {
        let p = Point {
            latitude: 409146138,
            longitude: -746188906,
        };
        let mut dst = BytesMut::new();
        encode_message(&p, &mut dst, usize::MAX).unwrap();
        let mut d = MessageDecoder::new(DEFAULT_MAX_RECV_MESSAGE_SIZE);
        d.push(dst.freeze());
        let msg = d.next_message().unwrap().unwrap();
        assert_eq!(decode_message::<Point>(msg).unwrap(), p);
        assert_eq!(d.next_message().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn decode_failure_is_internal() {
        let err = decode_message::<Point>(Bytes::from_static(b"\x08")).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err
            .message()
            .starts_with("failed to decode Protobuf message"));
    }

    #[test]
    fn message_within_one_chunk_is_not_copied() {
        let wire = framed(&[b"zero-copy payload", b"second"]);
        let mut d = MessageDecoder::new(1024);
        d.push(wire.clone());
        let first = d.next_message().unwrap().unwrap();
        assert_eq!(first.as_ptr(), wire[5..].as_ptr());
        let second = d.next_message().unwrap().unwrap();
        assert_eq!(&second[..], b"second");
        assert_eq!(second.as_ptr(), wire[wire.len() - 6..].as_ptr());
        assert_eq!(d.buffered_len(), 0);
    }

    /// Pushes `wire` in chunks of `step` bytes.
    fn push_in_chunks(d: &mut MessageDecoder, wire: &Bytes, step: usize) {
        for start in (0..wire.len()).step_by(step) {
            d.push(wire.slice(start..(start + step).min(wire.len())));
        }
    }

    #[test]
    fn joined_messages_reuse_their_buffer_once_dropped() {
        let a = vec![1u8; 10_000];
        let b = vec![2u8; 10_000];
        let wire = framed(&[&a, &b, &a]);
        let mut d = MessageDecoder::new(1 << 20);
        push_in_chunks(&mut d, &wire, 1000);
        let first = d.next_message().unwrap().unwrap();
        assert_eq!(&first[..], &a[..]);
        let ptr = first.as_ptr();
        drop(first);
        let second = d.next_message().unwrap().unwrap();
        assert_eq!(&second[..], &b[..]);
        assert_eq!(
            second.as_ptr(),
            ptr,
            "the dropped message's buffer is reused"
        );
        // Kept by the application: the next message gets its own buffer.
        let third = d.next_message().unwrap().unwrap();
        assert_eq!(&third[..], &a[..]);
        assert_ne!(third.as_ptr(), second.as_ptr());
        assert_eq!(&second[..], &b[..]);
        assert_eq!(d.next_message().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn prefix_split_over_chunks_is_read() {
        let wire = framed(&[b"abc", b"defgh"]);
        for step in 1..=wire.len() {
            let mut d = MessageDecoder::new(1024);
            push_in_chunks(&mut d, &wire, step);
            let mut out = Vec::new();
            drain(&mut d, &mut out);
            assert_eq!(out, [&b"abc"[..], &b"defgh"[..]], "chunks of {step}");
            assert_eq!(d.buffered_len(), 0);
            d.finish().unwrap();
        }
    }

    #[test]
    fn decoder_gives_the_same_messages_split_at_every_byte_position() {
        let wire = framed(&PAYLOADS);
        for split in 0..=wire.len() {
            let mut d = MessageDecoder::new(1024);
            let mut out = Vec::new();
            d.push(wire.slice(..split));
            drain(&mut d, &mut out);
            d.push(wire.slice(split..));
            drain(&mut d, &mut out);
            d.finish().unwrap();
            assert_eq!(out, PAYLOADS, "split at {split}");
        }
    }

    #[test]
    fn decoder_gives_the_same_messages_split_at_every_pair_of_positions() {
        let wire = framed(&PAYLOADS);
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let mut d = MessageDecoder::new(1024);
                let mut out = Vec::new();
                for part in [wire.slice(..a), wire.slice(a..b), wire.slice(b..)] {
                    d.push(part);
                    drain(&mut d, &mut out);
                }
                d.finish().unwrap();
                assert_eq!(out, PAYLOADS, "split at {a}, {b}");
            }
        }
    }

    #[test]
    fn decoder_fed_byte_by_byte_matches_all_at_once() {
        let wire = framed(&PAYLOADS);
        let mut d = MessageDecoder::new(1024);
        let mut out = Vec::new();
        let mut boundaries = vec![0];
        for p in PAYLOADS {
            boundaries.push(boundaries.last().unwrap() + HEADER_LEN + p.len());
        }
        for i in 0..wire.len() {
            d.push(wire.slice(i..i + 1));
            drain(&mut d, &mut out);
            assert_eq!(
                d.has_partial_message(),
                !boundaries.contains(&(i + 1)),
                "at {i}"
            );
        }
        d.finish().unwrap();
        assert_eq!(out, PAYLOADS);
    }

    #[test]
    fn over_limit_message_is_rejected_before_its_body_arrives() {
        let mut d = MessageDecoder::new(10);
        d.push(Bytes::from_static(&[0, 0, 0, 0, 100]));
        let err = d.next_message().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(
            err.message(),
            "received message larger than max (100 vs. 10)"
        );
        // Sticky, and later data is dropped rather than buffered.
        d.push(Bytes::from(vec![0u8; 100]));
        assert_eq!(d.buffered_len(), 0);
        assert_eq!(
            d.next_message().unwrap_err().code(),
            Code::ResourceExhausted
        );
        assert_eq!(d.finish().unwrap_err().code(), Code::ResourceExhausted);
    }

    #[test]
    fn message_of_exactly_the_limit_is_accepted() {
        let mut d = MessageDecoder::new(4);
        d.push(framed(&[b"four"]));
        assert_eq!(&d.next_message().unwrap().unwrap()[..], b"four");
        let mut d = MessageDecoder::new(0);
        d.push(framed(&[b""]));
        assert_eq!(d.next_message().unwrap(), Some(Bytes::new()));
    }

    #[test]
    fn huge_length_prefix_is_rejected_at_default_limit() {
        let mut d = MessageDecoder::new(DEFAULT_MAX_RECV_MESSAGE_SIZE);
        d.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        let err = d.next_message().unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "received message larger than max (4294967295 vs. {DEFAULT_MAX_RECV_MESSAGE_SIZE})"
            )
        );
    }

    #[test]
    fn compressed_flag_without_negotiated_encoding_is_internal() {
        let mut d = MessageDecoder::new(1024);
        d.push(Bytes::from_static(&[1, 0, 0, 0, 1, 0xaa]));
        let err = d.next_message().unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().contains("compressed"));
    }

    #[test]
    fn compressed_messages_round_trip_through_the_decoder() {
        for enc in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
            let big = "x".repeat(10_000);
            let mut wire = BytesMut::new();
            encode_message_with(&big, &mut wire, usize::MAX, Some(enc)).unwrap();
            assert_eq!(wire[0], 1);
            assert!(wire.len() < 200, "{enc}: {} bytes", wire.len());
            // Identity and None take the plain path: flag 0.
            encode_message_with(&"plain".to_string(), &mut wire, usize::MAX, None).unwrap();
            let wire = wire.freeze();
            for split in [1, 7, wire.len() / 2] {
                let mut d = MessageDecoder::new(DEFAULT_MAX_RECV_MESSAGE_SIZE);
                d.set_encoding(Some(enc));
                d.push(wire.slice(..split));
                let mut out = Vec::new();
                let mut flags = Vec::new();
                d.push(wire.slice(split..));
                while let Some(m) = d.next_message().unwrap() {
                    flags.push(d.last_compressed());
                    out.push(decode_message::<String>(m).unwrap());
                }
                d.finish().unwrap();
                assert_eq!(out, [big.clone(), "plain".to_string()]);
                assert_eq!(flags, [true, false]);
            }
        }
    }

    #[test]
    fn compressed_send_limit_applies_to_the_wire_size() {
        let big = "x".repeat(10_000);
        let mut dst = BytesMut::from(&b"keep"[..]);
        let err =
            encode_message_with(&big, &mut dst, 10, Some(CompressionEncoding::Gzip)).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(&dst[..], b"keep");
        encode_message_with(&big, &mut dst, 1000, Some(CompressionEncoding::Gzip)).unwrap();
    }

    #[test]
    fn decompression_bomb_stops_at_the_receive_limit() {
        let mut wire = BytesMut::new();
        let bomb = vec![0u8; 32 << 20];
        wire.put_slice(&[1, 0, 0, 0, 0]);
        compression::compress(CompressionEncoding::Gzip, &bomb, &mut wire).unwrap();
        let len = (wire.len() - HEADER_LEN) as u32;
        wire[1..5].copy_from_slice(&len.to_be_bytes());
        let mut d = MessageDecoder::new(1 << 20);
        d.set_encoding(Some(CompressionEncoding::Gzip));
        d.push(wire.freeze());
        let err = d.next_message().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(d.finish().unwrap_err().code(), Code::ResourceExhausted);
    }

    #[test]
    fn identity_encoding_still_rejects_the_compressed_flag() {
        let mut d = MessageDecoder::new(1024);
        d.set_encoding(Some(CompressionEncoding::Identity));
        d.push(Bytes::from_static(&[1, 0, 0, 0, 1, 0xaa]));
        assert_eq!(d.next_message().unwrap_err().code(), Code::Internal);
    }

    #[test]
    fn invalid_flag_byte_is_internal() {
        let mut d = MessageDecoder::new(1024);
        d.push(Bytes::from_static(&[2, 0, 0, 0, 0]));
        assert_eq!(d.next_message().unwrap_err().code(), Code::Internal);
    }

    #[test]
    fn stream_ending_inside_a_message_is_internal() {
        let wire = framed(&[b"abcdef"]);
        for cut in 1..wire.len() {
            let mut d = MessageDecoder::new(1024);
            d.push(wire.slice(..cut));
            assert_eq!(d.next_message().unwrap(), None);
            let err = d.finish().unwrap_err();
            assert_eq!(err.code(), Code::Internal, "cut at {cut}");
        }
        let mut d = MessageDecoder::new(1024);
        d.finish().unwrap();
    }
}
