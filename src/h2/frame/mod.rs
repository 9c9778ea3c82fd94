//! The HTTP/2 frame codec ([RFC 9113 §4], [§6]).
//!
//! [`decode`] splits one complete frame off the front of a receive buffer and parses it into a
//! [`Frame`]; payloads stay zero-copy [`Bytes`] slices of that buffer. Each frame type has its
//! own struct with an `encode(&self, dst)` method, and [`encode_data`] / [`encode_header_block`]
//! are the send paths the connection uses most.
//!
//! The decoder checks every rule of §4 and §6 that can be checked on one frame alone: frame
//! size, stream id zero or non-zero, fixed payload lengths, padding, SETTINGS values and a
//! WINDOW_UPDATE increment of zero. Rules that need connection state (stream states,
//! CONTINUATION sequencing, flow-control windows, which side may push) are the connection's.
//! Each violation is an [`Error`] that says whether it closes the stream or the connection.
//!
//! [RFC 9113 §4]: https://www.rfc-editor.org/rfc/rfc9113#section-4
//! [§6]: https://www.rfc-editor.org/rfc/rfc9113#section-6

use bytes::{Buf, Bytes, BytesMut};

use super::error::{Error, Reason};

mod continuation;
mod data;
mod go_away;
mod head;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod unknown;
mod window_update;

pub use continuation::Continuation;
pub use data::{encode_data, Data};
pub use go_away::GoAway;
pub use head::Head;
pub use headers::{encode_header_block, Headers, PrioritySpec};
pub use ping::Ping;
pub use priority::Priority;
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::Settings;
pub use unknown::Unknown;
pub use window_update::WindowUpdate;

/// A stream identifier: 31 bits, 0 for the connection itself ([RFC 9113 §5.1.1]).
///
/// [RFC 9113 §5.1.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.1.1
pub type StreamId = u32;

/// Length of the frame header that precedes every payload ([RFC 9113 §4.1]).
///
/// [RFC 9113 §4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-4.1
pub const FRAME_HEADER_LEN: usize = 9;

/// Initial and smallest allowed value of SETTINGS_MAX_FRAME_SIZE ([RFC 9113 §6.5.2]).
///
/// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// Largest allowed value of SETTINGS_MAX_FRAME_SIZE: 2^24 − 1 ([RFC 9113 §6.5.2]).
///
/// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// Largest flow-control window and window increment: 2^31 − 1 ([RFC 9113 §6.9.1]).
///
/// [RFC 9113 §6.9.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.1
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// Initial value of SETTINGS_INITIAL_WINDOW_SIZE and of the connection window: 65 535
/// ([RFC 9113 §6.9.2]).
///
/// [RFC 9113 §6.9.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.9.2
pub const DEFAULT_INITIAL_WINDOW_SIZE: u32 = 65_535;

/// Initial value of SETTINGS_HEADER_TABLE_SIZE: 4 096 ([RFC 9113 §6.5.2]).
///
/// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
pub const DEFAULT_HEADER_TABLE_SIZE: u32 = 4_096;

/// Mask that clears the reserved high bit of a stream id or window increment
/// ([RFC 9113 §4.1]).
///
/// [RFC 9113 §4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-4.1
pub const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// Frame type codes ([RFC 9113 §6], [§11.2]).
///
/// [RFC 9113 §6]: https://www.rfc-editor.org/rfc/rfc9113#section-6
/// [§11.2]: https://www.rfc-editor.org/rfc/rfc9113#section-11.2
pub mod kind {
    /// DATA (0x0), [RFC 9113 §6.1](https://www.rfc-editor.org/rfc/rfc9113#section-6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (0x1), [RFC 9113 §6.2](https://www.rfc-editor.org/rfc/rfc9113#section-6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (0x2), [RFC 9113 §6.3](https://www.rfc-editor.org/rfc/rfc9113#section-6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (0x3), [RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113#section-6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (0x4), [RFC 9113 §6.5](https://www.rfc-editor.org/rfc/rfc9113#section-6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (0x5), [RFC 9113 §6.6](https://www.rfc-editor.org/rfc/rfc9113#section-6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (0x6), [RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113#section-6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (0x7), [RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113#section-6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (0x8), [RFC 9113 §6.9](https://www.rfc-editor.org/rfc/rfc9113#section-6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (0x9), [RFC 9113 §6.10](https://www.rfc-editor.org/rfc/rfc9113#section-6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flag bits ([RFC 9113 §6]); each is meaningful only on the frame types listed.
///
/// [RFC 9113 §6]: https://www.rfc-editor.org/rfc/rfc9113#section-6
pub mod flags {
    /// END_STREAM (0x1) on DATA and HEADERS: the sender's last frame on this stream.
    pub const END_STREAM: u8 = 0x1;
    /// ACK (0x1) on SETTINGS and PING: this frame acknowledges the peer's.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (0x4) on HEADERS, PUSH_PROMISE and CONTINUATION: the field block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (0x8) on DATA, HEADERS and PUSH_PROMISE: a pad length octet and padding follow.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (0x20) on HEADERS: a stream dependency and weight precede the fragment.
    pub const PRIORITY: u8 = 0x20;
}

/// One decoded HTTP/2 frame ([RFC 9113 §6]).
///
/// [RFC 9113 §6]: https://www.rfc-editor.org/rfc/rfc9113#section-6
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// DATA ([RFC 9113 §6.1](https://www.rfc-editor.org/rfc/rfc9113#section-6.1)).
    Data(Data),
    /// HEADERS ([RFC 9113 §6.2](https://www.rfc-editor.org/rfc/rfc9113#section-6.2)).
    Headers(Headers),
    /// PRIORITY ([RFC 9113 §6.3](https://www.rfc-editor.org/rfc/rfc9113#section-6.3)).
    Priority(Priority),
    /// RST_STREAM ([RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113#section-6.4)).
    RstStream(RstStream),
    /// SETTINGS ([RFC 9113 §6.5](https://www.rfc-editor.org/rfc/rfc9113#section-6.5)).
    Settings(Settings),
    /// PUSH_PROMISE ([RFC 9113 §6.6](https://www.rfc-editor.org/rfc/rfc9113#section-6.6)).
    PushPromise(PushPromise),
    /// PING ([RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113#section-6.7)).
    Ping(Ping),
    /// GOAWAY ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113#section-6.8)).
    GoAway(GoAway),
    /// WINDOW_UPDATE ([RFC 9113 §6.9](https://www.rfc-editor.org/rfc/rfc9113#section-6.9)).
    WindowUpdate(WindowUpdate),
    /// CONTINUATION ([RFC 9113 §6.10](https://www.rfc-editor.org/rfc/rfc9113#section-6.10)).
    Continuation(Continuation),
    /// A frame of a type this codec does not know; the connection ignores it
    /// ([RFC 9113 §4.1](https://www.rfc-editor.org/rfc/rfc9113#section-4.1)).
    Unknown(Unknown),
}

impl Frame {
    /// Returns the stream the frame belongs to (0 for connection-level frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Continuation(f) => f.stream_id,
            Frame::Unknown(f) => f.stream_id,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => 0,
        }
    }

    /// Returns the frame type code (see [`kind`]).
    pub fn kind(&self) -> u8 {
        match self {
            Frame::Data(_) => kind::DATA,
            Frame::Headers(_) => kind::HEADERS,
            Frame::Priority(_) => kind::PRIORITY,
            Frame::RstStream(_) => kind::RST_STREAM,
            Frame::Settings(_) => kind::SETTINGS,
            Frame::PushPromise(_) => kind::PUSH_PROMISE,
            Frame::Ping(_) => kind::PING,
            Frame::GoAway(_) => kind::GOAWAY,
            Frame::WindowUpdate(_) => kind::WINDOW_UPDATE,
            Frame::Continuation(_) => kind::CONTINUATION,
            Frame::Unknown(f) => f.kind,
        }
    }

    /// Appends the frame, header and payload, to `dst` (without padding).
    ///
    /// # Panics
    ///
    /// Panics if the payload is longer than 2^24 − 1 octets (see [`Head::encode`]).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Data(f) => f.encode(dst),
            Frame::Headers(f) => f.encode(dst),
            Frame::Priority(f) => f.encode(dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::PushPromise(f) => f.encode(dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Continuation(f) => f.encode(dst),
            Frame::Unknown(f) => f.encode(dst),
        }
    }
}

macro_rules! from_frame_struct {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Frame {
            fn from(frame: $variant) -> Frame {
                Frame::$variant(frame)
            }
        }
    )*};
}

from_frame_struct!(
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown
);

/// Splits one complete frame off the front of `buf` and parses it; `Ok(None)` if incomplete
/// ([RFC 9113 §4], [§6]).
///
/// Payloads are zero-copy [`Bytes`] slices of `buf`. As soon as the 9-octet header is in
/// `buf`, its length is checked against `max_frame_size` (the SETTINGS_MAX_FRAME_SIZE this
/// endpoint advertised), so an oversized frame is rejected before its payload is buffered.
/// While a frame is incomplete, `buf` is reserved up to the whole frame so that the next read
/// fills it without reallocating. Call it in a loop until it returns `Ok(None)`.
///
/// This function never panics, whatever the input.
///
/// # Errors
///
/// - a length over `max_frame_size`: FRAME_SIZE_ERROR, connection error ([§4.2]);
/// - any rule of §6 that one frame alone can break (stream id zero or non-zero, fixed payload
///   sizes, padding not shorter than the payload, SETTINGS values out of range, a
///   WINDOW_UPDATE increment of 0, a stream that depends on itself): the code and scope the
///   RFC gives for it, see each frame type's `load`.
///
/// Whenever the whole frame was buffered it is consumed, even if it is invalid, so that the
/// caller can carry on after a stream error. After a connection error the content of `buf` is
/// unspecified: the connection is over.
///
/// [RFC 9113 §4]: https://www.rfc-editor.org/rfc/rfc9113#section-4
/// [§6]: https://www.rfc-editor.org/rfc/rfc9113#section-6
/// [§4.2]: https://www.rfc-editor.org/rfc/rfc9113#section-4.2
pub fn decode(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, Error> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let head = Head::parse(buf);
    if head.length > max_frame_size {
        return Err(Error::connection(
            Reason::FRAME_SIZE_ERROR,
            "frame length exceeds SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    // At most 2^24 - 1 + 9, so this cannot overflow even on 32-bit targets.
    let total = FRAME_HEADER_LEN + head.length as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut payload = buf.split_to(total).freeze();
    payload.advance(FRAME_HEADER_LEN);
    load(&head, payload).map(Some)
}

/// Parses one frame from its header and complete payload ([RFC 9113 §6]).
///
/// This is [`decode`] without the buffering and without the SETTINGS_MAX_FRAME_SIZE check;
/// `head.length` is not consulted, the payload's own length is used.
///
/// # Errors
///
/// The same as [`decode`], apart from the frame size limit.
///
/// [RFC 9113 §6]: https://www.rfc-editor.org/rfc/rfc9113#section-6
#[inline]
pub fn load(head: &Head, payload: Bytes) -> Result<Frame, Error> {
    Ok(match head.kind {
        kind::DATA => Frame::Data(Data::load(head, payload)?),
        kind::HEADERS => Frame::Headers(Headers::load(head, payload)?),
        kind::PRIORITY => Frame::Priority(Priority::load(head, payload)?),
        kind::RST_STREAM => Frame::RstStream(RstStream::load(head, payload)?),
        kind::SETTINGS => Frame::Settings(Settings::load(head, payload)?),
        kind::PUSH_PROMISE => Frame::PushPromise(PushPromise::load(head, payload)?),
        kind::PING => Frame::Ping(Ping::load(head, payload)?),
        kind::GOAWAY => Frame::GoAway(GoAway::load(head, payload)?),
        kind::WINDOW_UPDATE => Frame::WindowUpdate(WindowUpdate::load(head, payload)?),
        kind::CONTINUATION => Frame::Continuation(Continuation::load(head, payload)?),
        _ => Frame::Unknown(Unknown::load(head, payload)),
    })
}

/// Rejects stream id 0 on a frame type that belongs to a stream (PROTOCOL_ERROR, connection).
fn require_stream(head: &Head, detail: &'static str) -> Result<(), Error> {
    if head.stream_id == 0 {
        return Err(Error::connection(Reason::PROTOCOL_ERROR, detail));
    }
    Ok(())
}

/// Rejects a non-zero stream id on a connection-level frame (PROTOCOL_ERROR, connection).
fn require_connection(head: &Head, detail: &'static str) -> Result<(), Error> {
    if head.stream_id != 0 {
        return Err(Error::connection(Reason::PROTOCOL_ERROR, detail));
    }
    Ok(())
}

/// Removes the pad length octet and trailing padding when PADDED is set
/// ([RFC 9113 §6.1], [§6.2], [§6.6]).
///
/// `fixed` is the number of mandatory octets that follow the pad length (or start the payload
/// when there is no padding); they are left at the front of `payload`. A payload too short to
/// hold the pad length and the fixed fields is a FRAME_SIZE_ERROR ([§4.2]); padding that does
/// not leave room for them is a PROTOCOL_ERROR. Both are connection errors: every frame type
/// that can be padded changes connection-wide state (flow control or the HPACK context).
///
/// [RFC 9113 §6.1]: https://www.rfc-editor.org/rfc/rfc9113#section-6.1
/// [§6.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.2
/// [§6.6]: https://www.rfc-editor.org/rfc/rfc9113#section-6.6
/// [§4.2]: https://www.rfc-editor.org/rfc/rfc9113#section-4.2
fn strip_padding(head: &Head, payload: &mut Bytes, fixed: usize) -> Result<(), Error> {
    let padded = head.has_flag(flags::PADDED);
    let pad_field = usize::from(padded);
    if payload.len() < pad_field + fixed {
        return Err(Error::connection(
            Reason::FRAME_SIZE_ERROR,
            "frame too short for its pad length and fixed fields",
        ));
    }
    if !padded {
        return Ok(());
    }
    let pad_len = usize::from(payload[0]);
    // The RFC's rule is "padding length >= payload length"; with fixed fields the padding must
    // also leave room for them.
    if pad_field + fixed + pad_len > payload.len() {
        return Err(Error::connection(
            Reason::PROTOCOL_ERROR,
            "padding length too large for the frame payload",
        ));
    }
    payload.advance(1);
    payload.truncate(payload.len() - pad_len);
    Ok(())
}

/// Reads a big-endian u32 from the first 4 octets of `b` (which must hold at least 4).
fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Appends a padded frame: header with PADDED, pad length octet, `prefix`, `body`, zero padding.
fn encode_padded_frame(
    dst: &mut BytesMut,
    kind: u8,
    flags: u8,
    stream_id: StreamId,
    prefix: &[u8],
    body: &[u8],
    pad_len: u8,
) {
    use bytes::BufMut;
    let len = 1 + prefix.len() + body.len() + usize::from(pad_len);
    let head = Head::new(kind, flags | flags::PADDED, stream_id, frame_len(len));
    dst.reserve(FRAME_HEADER_LEN + len);
    head.encode(dst);
    dst.put_u8(pad_len);
    dst.put_slice(prefix);
    dst.put_slice(body);
    dst.put_bytes(0, usize::from(pad_len));
}

/// Converts a payload length to the header's length field, saturating so that
/// [`Head::encode`] reports an oversized payload instead of a silently truncated length.
fn frame_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
