//! Frames of unknown type ([RFC 9113 §4.1], [§5.5]).
//!
//! [RFC 9113 §4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-4.1
//! [§5.5]: https://www.rfc-editor.org/rfc/rfc9113#section-5.5

use bytes::{BufMut, Bytes, BytesMut};

use super::{frame_len, Head, StreamId, FRAME_HEADER_LEN};

/// A frame whose type this codec does not implement; receivers ignore and discard it
/// ([RFC 9113 §5.5]).
///
/// It is still bounded by SETTINGS_MAX_FRAME_SIZE. Encoding one is useful in tests (and for
/// "greasing" a peer with reserved frame types).
///
/// [RFC 9113 §5.5]: https://www.rfc-editor.org/rfc/rfc9113#section-5.5
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The frame type code.
    pub kind: u8,
    /// The flags, uninterpreted.
    pub flags: u8,
    /// The stream id, reserved bit cleared.
    pub stream_id: StreamId,
    /// The payload, uninterpreted.
    pub payload: Bytes,
}

impl Unknown {
    /// Wraps a frame of unknown type; this cannot fail.
    pub fn load(head: &Head, payload: Bytes) -> Unknown {
        Unknown {
            kind: head.kind,
            flags: head.flags,
            stream_id: head.stream_id,
            payload,
        }
    }

    /// Appends the frame to `dst` exactly as described by its fields.
    ///
    /// # Panics
    ///
    /// Panics if the payload is longer than 2^24 − 1 octets.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(FRAME_HEADER_LEN + self.payload.len());
        let len = frame_len(self.payload.len());
        Head::new(self.kind, self.flags, self.stream_id, len).encode(dst);
        dst.put_slice(&self.payload);
    }
}
