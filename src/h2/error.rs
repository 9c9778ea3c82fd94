//! HTTP/2 error codes and protocol errors ([RFC 9113 §5.4], [§7]).
//!
//! [`Reason`] is the 32-bit error code carried by RST_STREAM and GOAWAY frames. [`Error`] is a
//! protocol violation detected while processing input, and says how much of the connection it
//! takes down: one stream (answered with RST_STREAM) or the whole connection (answered with
//! GOAWAY).
//!
//! [RFC 9113 §5.4]: https://www.rfc-editor.org/rfc/rfc9113#section-5.4
//! [§7]: https://www.rfc-editor.org/rfc/rfc9113#section-7

use std::fmt;

use super::frame::StreamId;

/// An HTTP/2 error code ([RFC 9113 §7]).
///
/// This is an open newtype: codes this crate does not know are kept as they are, and the RFC
/// says an unknown code must not trigger any special behaviour (it may be treated as
/// `INTERNAL_ERROR`).
///
/// [RFC 9113 §7]: https://www.rfc-editor.org/rfc/rfc9113#section-7
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub u32);

impl Reason {
    /// The condition is not the result of an error, e.g. a graceful GOAWAY (0x0).
    pub const NO_ERROR: Reason = Reason(0x0);
    /// An unspecific protocol error was detected (0x1).
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// The endpoint encountered an unexpected internal error (0x2).
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    /// The peer violated the flow-control protocol (0x3).
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    /// A SETTINGS frame was not acknowledged in time (0x4).
    pub const SETTINGS_TIMEOUT: Reason = Reason(0x4);
    /// A frame arrived after the stream was half-closed by the peer (0x5).
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    /// A frame had an invalid size (0x6).
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    /// The stream was refused before any application processing (0x7).
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    /// The stream is no longer needed (0x8).
    pub const CANCEL: Reason = Reason(0x8);
    /// The field-block compression state cannot be kept up (0x9).
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    /// A CONNECT tunnel was reset or abnormally closed (0xa).
    pub const CONNECT_ERROR: Reason = Reason(0xa);
    /// The peer behaves in a way that may generate excessive load (0xb).
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
    /// The transport does not meet minimum security requirements (0xc).
    pub const INADEQUATE_SECURITY: Reason = Reason(0xc);
    /// The endpoint requires HTTP/1.1 instead of HTTP/2 (0xd).
    pub const HTTP_1_1_REQUIRED: Reason = Reason(0xd);

    /// Returns the registered name of the code (`"PROTOCOL_ERROR"`), or `None` if unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }

    /// Returns a short English description of what the code means.
    pub fn description(self) -> &'static str {
        match self.0 {
            0x0 => "not a result of an error",
            0x1 => "unspecific protocol error detected",
            0x2 => "unexpected internal error encountered",
            0x3 => "flow-control protocol violated",
            0x4 => "settings ACK not received in time",
            0x5 => "received frame when stream half-closed",
            0x6 => "frame with invalid size",
            0x7 => "refused stream before processing any application logic",
            0x8 => "stream no longer needed",
            0x9 => "unable to maintain the field compression context",
            0xa => "connection established in response to a CONNECT request was reset or abnormally closed",
            0xb => "detected excessive load generating behavior",
            0xc => "security properties do not meet minimum requirements",
            0xd => "endpoint requires HTTP/1.1",
            _ => "unknown error code",
        }
    }
}

impl From<u32> for Reason {
    fn from(code: u32) -> Reason {
        Reason(code)
    }
}

impl From<Reason> for u32 {
    fn from(reason: Reason) -> u32 {
        reason.0
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Reason({:#x})", self.0),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

/// A protocol violation: either the whole connection or one stream must be closed
/// ([RFC 9113 §5.4]).
///
/// [RFC 9113 §5.4]: https://www.rfc-editor.org/rfc/rfc9113#section-5.4
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Close the connection with GOAWAY(reason) ([RFC 9113 §5.4.1]).
    ///
    /// [RFC 9113 §5.4.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.4.1
    Connection {
        /// The error code to send in GOAWAY.
        reason: Reason,
        /// What went wrong, for logs and GOAWAY debug data.
        detail: &'static str,
    },
    /// Reset one stream with RST_STREAM(reason); the connection carries on
    /// ([RFC 9113 §5.4.2]).
    ///
    /// [RFC 9113 §5.4.2]: https://www.rfc-editor.org/rfc/rfc9113#section-5.4.2
    Stream {
        /// The stream to reset.
        stream_id: StreamId,
        /// The error code to send in RST_STREAM.
        reason: Reason,
        /// What went wrong, for logs.
        detail: &'static str,
    },
}

impl Error {
    /// Creates a connection error.
    pub fn connection(reason: Reason, detail: &'static str) -> Error {
        Error::Connection { reason, detail }
    }

    /// Creates a stream error on `stream_id`.
    pub fn stream(stream_id: StreamId, reason: Reason, detail: &'static str) -> Error {
        Error::Stream {
            stream_id,
            reason,
            detail,
        }
    }

    /// Returns the error code to put on the wire.
    pub fn reason(&self) -> Reason {
        match *self {
            Error::Connection { reason, .. } | Error::Stream { reason, .. } => reason,
        }
    }

    /// Returns true if the whole connection must be closed (GOAWAY), false for one stream.
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection { .. })
    }

    /// Returns the stream to reset for a stream error, `None` for a connection error.
    pub fn stream_id(&self) -> Option<StreamId> {
        match *self {
            Error::Connection { .. } => None,
            Error::Stream { stream_id, .. } => Some(stream_id),
        }
    }

    /// Returns the human-readable detail.
    pub fn detail(&self) -> &'static str {
        match *self {
            Error::Connection { detail, .. } | Error::Stream { detail, .. } => detail,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connection { reason, detail } => {
                write!(f, "connection error {reason}: {detail}")
            }
            Error::Stream {
                stream_id,
                reason,
                detail,
            } => write!(f, "stream error {reason} on stream {stream_id}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_displays_name_or_unknown_code() {
        assert_eq!(Reason::PROTOCOL_ERROR.to_string(), "PROTOCOL_ERROR");
        assert_eq!(Reason::HTTP_1_1_REQUIRED.to_string(), "HTTP_1_1_REQUIRED");
        assert_eq!(Reason(0x42).to_string(), "unknown error code 0x42");
        assert_eq!(format!("{:?}", Reason::CANCEL), "CANCEL");
        assert_eq!(format!("{:?}", Reason(0x42)), "Reason(0x42)");
        assert_eq!(Reason(0x42).description(), "unknown error code");
        assert_eq!(Reason::from(8u32), Reason::CANCEL);
        assert_eq!(u32::from(Reason::CANCEL), 8);
    }

    #[test]
    fn error_reports_scope_reason_and_stream() {
        let c = Error::connection(Reason::FRAME_SIZE_ERROR, "too big");
        assert!(c.is_connection());
        assert_eq!(c.reason(), Reason::FRAME_SIZE_ERROR);
        assert_eq!(c.stream_id(), None);
        assert_eq!(c.to_string(), "connection error FRAME_SIZE_ERROR: too big");
        let s = Error::stream(3, Reason::PROTOCOL_ERROR, "self dependency");
        assert!(!s.is_connection());
        assert_eq!(s.stream_id(), Some(3));
        assert_eq!(s.detail(), "self dependency");
        assert_eq!(
            s.to_string(),
            "stream error PROTOCOL_ERROR on stream 3: self dependency"
        );
    }
}
