//! gRPC status codes and the [`Status`] every failed call carries.
//!
//! A call ends with `grpc-status` (a decimal [`Code`]), an optional `grpc-message`
//! (percent-encoded UTF-8) and an optional `grpc-status-details-bin` (base64), all in the
//! trailers; [`Status::to_trailers`] and [`Status::from_trailers`] convert between a `Status`
//! and those header fields. See gRPC's `PROTOCOL-HTTP2.md` and `doc/statuscodes.md`.

use std::fmt;

use bytes::Bytes;

use crate::h2::hpack::Header;
use crate::metadata::{base64_decode, base64_encode, MetadataMap};

/// The header carrying the status code.
pub const GRPC_STATUS: &str = "grpc-status";
/// The header carrying the percent-encoded status message.
pub const GRPC_MESSAGE: &str = "grpc-message";
/// The header carrying the binary status details (usually a `google.rpc.Status`).
pub const GRPC_STATUS_DETAILS_BIN: &str = "grpc-status-details-bin";

/// A gRPC status code (`doc/statuscodes.md`).
///
/// ```
/// use grpc_sync::Code;
/// assert_eq!(Code::from_i32(3), Code::InvalidArgument);
/// assert_eq!(Code::InvalidArgument.as_str(), "INVALID_ARGUMENT");
/// assert_eq!(Code::from_i32(42), Code::Unknown);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Code {
    /// Not an error; returned on success.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, or an error from another address space with an unknown code.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity that a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted (a quota, a message size limit, ...).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation's execution.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported (unknown service or method).
    Unimplemented = 12,
    /// Internal error: some invariant expected by the underlying system was broken.
    Internal = 13,
    /// The service is currently unavailable; a retry may succeed.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

/// Every code, in numeric order.
const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The `grpc-status` header value of each code, so sending a status never formats a number.
const CODE_VALUES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

impl Code {
    /// Every code, from `Ok` (0) to `Unauthenticated` (16).
    pub const ALL: [Code; 17] = ALL_CODES;

    /// The code with number `value`; numbers outside 0..=16 are [`Code::Unknown`], as the
    /// gRPC spec asks of a client that receives a code it does not know.
    pub fn from_i32(value: i32) -> Code {
        usize::try_from(value)
            .ok()
            .and_then(|i| ALL_CODES.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// Parses a `grpc-status` header value: `None` unless it is 1 to 10 ASCII digits.
    /// A well-formed number outside 0..=16 is [`Code::Unknown`].
    ///
    /// ```
    /// use grpc_sync::Code;
    /// assert_eq!(Code::from_header_value(b"14"), Some(Code::Unavailable));
    /// assert_eq!(Code::from_header_value(b"99"), Some(Code::Unknown));
    /// assert_eq!(Code::from_header_value(b"x"), None);
    /// ```
    pub fn from_header_value(value: &[u8]) -> Option<Code> {
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = value
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        Some(i32::try_from(n).map_or(Code::Unknown, Code::from_i32))
    }

    /// The code's `grpc-status` header value: its number in decimal.
    pub fn header_value(self) -> &'static str {
        CODE_VALUES[self as usize]
    }

    /// The code's canonical name, e.g. `"INVALID_ARGUMENT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// A one-line description of what the code means.
    pub fn description(self) -> &'static str {
        match self {
            Code::Ok => "The operation completed successfully",
            Code::Cancelled => "The operation was cancelled",
            Code::Unknown => "Unknown error",
            Code::InvalidArgument => "Client specified an invalid argument",
            Code::DeadlineExceeded => "Deadline expired before operation could complete",
            Code::NotFound => "Some requested entity was not found",
            Code::AlreadyExists => "Some entity that we attempted to create already exists",
            Code::PermissionDenied => {
                "The caller does not have permission to execute the specified operation"
            }
            Code::ResourceExhausted => "Some resource has been exhausted",
            Code::FailedPrecondition => {
                "The system is not in a state required for the operation's execution"
            }
            Code::Aborted => "The operation was aborted",
            Code::OutOfRange => "Operation was attempted past the valid range",
            Code::Unimplemented => "Operation is not implemented or not supported",
            Code::Internal => "Internal error",
            Code::Unavailable => "The service is currently unavailable",
            Code::DataLoss => "Unrecoverable data loss or corruption",
            Code::Unauthenticated => "The request does not have valid authentication credentials",
        }
    }
}

impl From<i32> for Code {
    fn from(value: i32) -> Code {
        Code::from_i32(value)
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code as i32
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a call that did not succeed: a [`Code`], a message for people, optional
/// binary details and the trailing metadata that came with it.
///
/// Handlers return it as their error; clients receive it as theirs.
///
/// ```
/// use grpc_sync::{Code, Status};
/// let status = Status::invalid_argument("cannot divide by 0");
/// assert_eq!(status.code(), Code::InvalidArgument);
/// assert_eq!(status.message(), "cannot divide by 0");
/// assert_eq!(
///     status.to_string(),
///     "status: INVALID_ARGUMENT, message: \"cannot divide by 0\""
/// );
/// ```
#[derive(Clone)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
    metadata: MetadataMap,
}

macro_rules! code_constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and `message`, no details and no metadata.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
            metadata: MetadataMap::new(),
        }
    }

    code_constructors! {
        /// A [`Code::Ok`] status (rarely useful: success is `Ok(..)`).
        ok => Ok,
        /// A [`Code::Cancelled`] status.
        cancelled => Cancelled,
        /// A [`Code::Unknown`] status.
        unknown => Unknown,
        /// A [`Code::InvalidArgument`] status.
        invalid_argument => InvalidArgument,
        /// A [`Code::DeadlineExceeded`] status.
        deadline_exceeded => DeadlineExceeded,
        /// A [`Code::NotFound`] status.
        not_found => NotFound,
        /// A [`Code::AlreadyExists`] status.
        already_exists => AlreadyExists,
        /// A [`Code::PermissionDenied`] status.
        permission_denied => PermissionDenied,
        /// A [`Code::ResourceExhausted`] status.
        resource_exhausted => ResourceExhausted,
        /// A [`Code::FailedPrecondition`] status.
        failed_precondition => FailedPrecondition,
        /// A [`Code::Aborted`] status.
        aborted => Aborted,
        /// A [`Code::OutOfRange`] status.
        out_of_range => OutOfRange,
        /// A [`Code::Unimplemented`] status.
        unimplemented => Unimplemented,
        /// A [`Code::Internal`] status.
        internal => Internal,
        /// A [`Code::Unavailable`] status.
        unavailable => Unavailable,
        /// A [`Code::DataLoss`] status.
        data_loss => DataLoss,
        /// A [`Code::Unauthenticated`] status.
        unauthenticated => Unauthenticated,
    }

    /// The status for a response that carried HTTP status `http_status` and no `grpc-status`,
    /// per gRPC's `doc/http-grpc-status-mapping.md`: 400 → INTERNAL, 401 → UNAUTHENTICATED,
    /// 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, anything
    /// else (200 included: a real success carries `grpc-status`) → UNKNOWN.
    ///
    /// ```
    /// use grpc_sync::{Code, Status};
    /// assert_eq!(Status::from_http_status(503).code(), Code::Unavailable);
    /// assert_eq!(Status::from_http_status(418).code(), Code::Unknown);
    /// ```
    pub fn from_http_status(http_status: u16) -> Status {
        let code = match http_status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        };
        Status::new(
            code,
            format!("unexpected HTTP status code received from server: {http_status}"),
        )
    }

    /// The status for a stream reset by the peer with HTTP/2 error code `reason`
    /// (RST_STREAM, RFC 9113 §7), per the "Errors" table of gRPC's `PROTOCOL-HTTP2.md`:
    /// CANCEL → CANCELLED, REFUSED_STREAM → UNAVAILABLE, ENHANCE_YOUR_CALM →
    /// RESOURCE_EXHAUSTED, INADEQUATE_SECURITY → PERMISSION_DENIED, other known codes →
    /// INTERNAL, unknown codes → UNKNOWN.
    ///
    /// ```
    /// use grpc_sync::{Code, Status};
    /// assert_eq!(Status::from_h2_reason(0x8).code(), Code::Cancelled);
    /// ```
    pub fn from_h2_reason(reason: u32) -> Status {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        let code = match reason {
            0x7 => Code::Unavailable,
            0x8 => Code::Cancelled,
            0xb => Code::ResourceExhausted,
            0xc => Code::PermissionDenied,
            0x0..=0xd => Code::Internal,
            _ => Code::Unknown,
        };
        let message = match NAMES.get(reason as usize) {
            Some(name) => format!("stream terminated by RST_STREAM with error code: {name}"),
            None => format!("stream terminated by RST_STREAM with error code: {reason:#x}"),
        };
        Status::new(code, message)
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message for people (already percent-decoded).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The binary details (`grpc-status-details-bin`), empty when there are none.
    pub fn details(&self) -> &Bytes {
        &self.details
    }

    /// The metadata sent along with the status: the trailers, less the `grpc-status`,
    /// `grpc-message` and `grpc-status-details-bin` fields.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The metadata, to add to before the status is sent.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// This status with binary details, sent as `grpc-status-details-bin`.
    pub fn with_details(mut self, details: impl Into<Bytes>) -> Status {
        self.details = details.into();
        self
    }

    /// This status with `metadata`, sent in the trailers next to it.
    pub fn with_metadata(mut self, metadata: MetadataMap) -> Status {
        self.metadata = metadata;
        self
    }

    /// The `grpc-status` value and, unless the message is empty, the percent-encoded
    /// `grpc-message` value.
    ///
    /// ```
    /// use grpc_sync::Status;
    /// let (status, message) = Status::not_found("100% gone").to_header_values();
    /// assert_eq!(&status[..], b"5");
    /// assert_eq!(message.as_deref(), Some(&b"100%25 gone"[..]));
    /// ```
    pub fn to_header_values(&self) -> (Bytes, Option<Bytes>) {
        let status = Bytes::from_static(self.code.header_value().as_bytes());
        let message = if self.message.is_empty() {
            None
        } else {
            Some(Bytes::from(percent_encode_message(&self.message)))
        };
        (status, message)
    }

    /// Appends the header fields that carry this status: `grpc-status`, then `grpc-message`
    /// (if the message is not empty), `grpc-status-details-bin` (if there are details,
    /// base64 without padding), then the metadata.
    ///
    /// ```
    /// use grpc_sync::Status;
    /// let mut trailers = Vec::new();
    /// Status::invalid_argument("cannot divide by 0").to_trailers(&mut trailers);
    /// let back = Status::from_trailers(&trailers).unwrap();
    /// assert_eq!(back.message(), "cannot divide by 0");
    /// ```
    pub fn to_trailers(&self, out: &mut Vec<Header>) {
        let (status, message) = self.to_header_values();
        out.push(Header::new(
            Bytes::from_static(GRPC_STATUS.as_bytes()),
            status,
        ));
        if let Some(message) = message {
            out.push(Header::new(
                Bytes::from_static(GRPC_MESSAGE.as_bytes()),
                message,
            ));
        }
        if !self.details.is_empty() {
            out.push(Header::new(
                Bytes::from_static(GRPC_STATUS_DETAILS_BIN.as_bytes()),
                base64_encode(&self.details),
            ));
        }
        self.metadata.to_headers(out);
    }

    /// Reads a status from trailers (or from the headers of a trailers-only response).
    ///
    /// `None` when there is no `grpc-status` field. A `grpc-status` that is not a number
    /// gives INTERNAL ("malformed grpc-status"); a number outside 0..=16 gives UNKNOWN with
    /// the message that came with it. The message is percent-decoded leniently
    /// ([`percent_decode_message`]); details that are not valid base64 are dropped; the
    /// other fields become the status's metadata ([`MetadataMap::from_headers`]).
    pub fn from_trailers(headers: &[Header]) -> Option<Status> {
        let mut code = None;
        let mut message = None;
        let mut details = Bytes::new();
        for h in headers {
            match &h.name[..] {
                b"grpc-status" => code = Some(h.value.clone()),
                b"grpc-message" => message = Some(percent_decode_message(&h.value)),
                b"grpc-status-details-bin" => {
                    if let Some(d) = base64_decode(&h.value) {
                        details = Bytes::from(d);
                    }
                }
                _ => {}
            }
        }
        let raw_code = code?;
        let (code, message) = match Code::from_header_value(&raw_code) {
            Some(code) => (code, message.unwrap_or_default()),
            None => (
                Code::Internal,
                format!(
                    "malformed grpc-status: {:?}",
                    String::from_utf8_lossy(&raw_code)
                ),
            ),
        };
        Some(Status {
            code,
            message,
            details,
            metadata: MetadataMap::from_headers(headers),
        })
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Status");
        d.field("code", &self.code).field("message", &self.message);
        if !self.details.is_empty() {
            d.field("details", &self.details);
        }
        if !self.metadata.is_empty() {
            d.field("metadata", &self.metadata);
        }
        d.finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status: {}, message: {:?}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

impl From<std::io::Error> for Status {
    /// Maps an I/O error from the transport to a status. Most errors a socket gives (refused,
    /// reset, broken pipe, unexpected EOF, timed out, ...) mean the peer cannot be reached
    /// and become UNAVAILABLE, as gRPC reports transport failures; `InvalidData` and
    /// `InvalidInput` become INTERNAL, `OutOfMemory` RESOURCE_EXHAUSTED, `Unsupported`
    /// UNIMPLEMENTED. Call deadlines are reported as DEADLINE_EXCEEDED by the call layer,
    /// not through I/O errors.
    fn from(err: std::io::Error) -> Status {
        use std::io::ErrorKind;
        let code = match err.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput => Code::Internal,
            ErrorKind::OutOfMemory => Code::ResourceExhausted,
            ErrorKind::Unsupported => Code::Unimplemented,
            _ => Code::Unavailable,
        };
        Status::new(code, format!("transport error: {err}"))
    }
}

/// Percent-encodes a status message for `grpc-message` (gRPC `PROTOCOL-HTTP2.md`): every
/// byte of its UTF-8 outside 0x20..=0x7E, and `%` itself, becomes `%XX` (upper-case hex).
///
/// ```
/// use grpc_sync::status::percent_encode_message;
/// assert_eq!(percent_encode_message("a\tb ☺ 100%"), "a%09b %E2%98%BA 100%25");
/// ```
pub fn percent_encode_message(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = message.as_bytes();
    if bytes.iter().all(|&b| !needs_percent(b)) {
        return message.to_owned();
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for &b in bytes {
        if needs_percent(b) {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn needs_percent(b: u8) -> bool {
    !(0x20..=0x7e).contains(&b) || b == b'%'
}

/// Decodes a `grpc-message` value; never fails. `%XX` (either hex case) becomes the byte
/// XX; a `%` not followed by two hex digits is kept as it is; the bytes are then read as
/// UTF-8 with invalid sequences replaced by U+FFFD, as gRPC asks of receivers.
///
/// ```
/// use grpc_sync::status::percent_decode_message;
/// assert_eq!(percent_decode_message(b"%E2%98%BA ok"), "☺ ok");
/// assert_eq!(percent_decode_message(b"100% sure %zz"), "100% sure %zz");
/// ```
pub fn percent_decode_message(value: &[u8]) -> String {
    if !value.contains(&b'%') {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%' && i + 2 < value.len() {
            if let (Some(hi), Some(lo)) = (hex_val(value[i + 1]), hex_val(value[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What a panic carried, in words (for the status a caught panic turns into).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &'static str, value: &'static str) -> Header {
        Header::new(name.as_bytes(), value.as_bytes())
    }

    #[test]
    fn every_code_round_trips_through_i32_and_header_value() {
        for (i, code) in Code::ALL.iter().enumerate() {
            assert_eq!(*code as i32, i as i32);
            assert_eq!(Code::from_i32(i as i32), *code);
            assert_eq!(i32::from(*code), i as i32);
            assert_eq!(Code::from(i as i32), *code);
            assert_eq!(
                Code::from_header_value(code.header_value().as_bytes()),
                Some(*code)
            );
            assert_eq!(code.header_value(), i.to_string());
        }
    }

    #[test]
    fn unknown_code_numbers_map_to_unknown() {
        for n in [-1, 17, 100, i32::MAX, i32::MIN] {
            assert_eq!(Code::from_i32(n), Code::Unknown);
        }
        assert_eq!(Code::from_header_value(b"17"), Some(Code::Unknown));
        assert_eq!(Code::from_header_value(b"9999999999"), Some(Code::Unknown));
        assert_eq!(
            Code::from_header_value(b"007"),
            Some(Code::PermissionDenied)
        );
    }

    #[test]
    fn malformed_code_header_values_are_rejected() {
        for v in [
            &b""[..],
            b" 1",
            b"1 ",
            b"-1",
            b"+1",
            b"0x1",
            b"12345678901",
            b"abc",
        ] {
            assert_eq!(Code::from_header_value(v), None, "{v:?}");
        }
    }

    #[test]
    fn code_names_are_the_canonical_upper_snake_case() {
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (code, name) in Code::ALL.iter().zip(names) {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.to_string(), name);
            assert!(!code.description().is_empty());
        }
    }

    #[test]
    fn constructors_set_their_code() {
        let made = [
            Status::ok("m"),
            Status::cancelled("m"),
            Status::unknown("m"),
            Status::invalid_argument("m"),
            Status::deadline_exceeded("m"),
            Status::not_found("m"),
            Status::already_exists("m"),
            Status::permission_denied("m"),
            Status::resource_exhausted("m"),
            Status::failed_precondition("m"),
            Status::aborted("m"),
            Status::out_of_range("m"),
            Status::unimplemented("m"),
            Status::internal("m"),
            Status::unavailable("m"),
            Status::data_loss("m"),
            Status::unauthenticated("m"),
        ];
        for (status, code) in made.iter().zip(Code::ALL) {
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "m");
            assert!(status.details().is_empty());
            assert!(status.metadata().is_empty());
        }
    }

    #[test]
    fn display_names_the_code_and_quotes_the_message() {
        let s = Status::invalid_argument("cannot divide by 0");
        assert_eq!(
            s.to_string(),
            "status: INVALID_ARGUMENT, message: \"cannot divide by 0\""
        );
        let dbg = format!("{s:?}");
        assert!(dbg.contains("InvalidArgument") && dbg.contains("cannot divide by 0"));
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(s);
        assert!(e.to_string().starts_with("status: INVALID_ARGUMENT"));
    }

    #[test]
    fn every_code_round_trips_through_trailers() {
        for code in Code::ALL {
            let status = Status::new(code, format!("message for {code}"));
            let mut trailers = Vec::new();
            status.to_trailers(&mut trailers);
            let back = Status::from_trailers(&trailers).unwrap();
            assert_eq!(back.code(), code);
            assert_eq!(back.message(), status.message());
        }
    }

    #[test]
    fn trailers_carry_details_base64_without_padding_and_metadata() {
        let mut md = MetadataMap::new();
        md.insert("x-trailer", "yes").unwrap();
        md.insert_bin("x-trailer-bin", &b"\x00\x01\x02\x03"[..])
            .unwrap();
        let status = Status::aborted("try again")
            .with_details(&b"\x08\x0a\xff"[..])
            .with_metadata(md.clone());
        let mut trailers = Vec::new();
        status.to_trailers(&mut trailers);
        assert_eq!(trailers[0], header("grpc-status", "10"));
        assert_eq!(trailers[1], header("grpc-message", "try again"));
        assert_eq!(trailers[2], header("grpc-status-details-bin", "CAr/"));
        assert_eq!(trailers.len(), 5);
        let back = Status::from_trailers(&trailers).unwrap();
        assert_eq!(&back.details()[..], b"\x08\x0a\xff");
        assert_eq!(back.metadata(), &md);
    }

    #[test]
    fn empty_message_sends_no_grpc_message() {
        let mut trailers = Vec::new();
        Status::ok("").to_trailers(&mut trailers);
        assert_eq!(trailers, vec![header("grpc-status", "0")]);
        assert_eq!(Status::ok("").to_header_values().1, None);
    }

    #[test]
    fn from_trailers_without_grpc_status_is_none() {
        assert!(Status::from_trailers(&[]).is_none());
        assert!(Status::from_trailers(&[header("grpc-message", "lonely")]).is_none());
    }

    #[test]
    fn from_trailers_with_malformed_status_is_internal() {
        let s = Status::from_trailers(&[header("grpc-status", "OK")]).unwrap();
        assert_eq!(s.code(), Code::Internal);
        assert!(s.message().contains("malformed grpc-status"));
        let s = Status::from_trailers(&[header("grpc-status", "42"), header("grpc-message", "x")])
            .unwrap();
        assert_eq!((s.code(), s.message()), (Code::Unknown, "x"));
    }

    #[test]
    fn from_trailers_accepts_padded_details_and_drops_invalid_ones() {
        let s = Status::from_trailers(&[
            header("grpc-status", "3"),
            header("grpc-status-details-bin", "AAE="),
        ])
        .unwrap();
        assert_eq!(&s.details()[..], b"\x00\x01");
        let s = Status::from_trailers(&[
            header("grpc-status", "3"),
            header("grpc-status-details-bin", "!!!"),
        ])
        .unwrap();
        assert!(s.details().is_empty());
    }

    #[test]
    fn percent_encoding_leaves_printable_ascii_alone() {
        assert_eq!(
            percent_encode_message("cannot divide by 0"),
            "cannot divide by 0"
        );
        let printable: String = (0x20u8..=0x7e)
            .filter(|&b| b != b'%')
            .map(char::from)
            .collect();
        assert_eq!(percent_encode_message(&printable), printable);
        assert_eq!(percent_encode_message("%"), "%25");
        assert_eq!(percent_encode_message("\x7f\x1f"), "%7F%1F");
    }

    #[test]
    fn percent_encoding_matches_the_interop_special_status_message() {
        // From the interop test case "special_status_message".
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
        let encoded = percent_encode_message(message);
        assert_eq!(
            encoded,
            "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA and non-BMP %F0%9F%98%88%09%0A"
        );
        assert_eq!(percent_decode_message(encoded.as_bytes()), message);
        let status = Status::unknown(message);
        let mut trailers = Vec::new();
        status.to_trailers(&mut trailers);
        assert_eq!(Status::from_trailers(&trailers).unwrap().message(), message);
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode_message(b"%"), "%");
        assert_eq!(percent_decode_message(b"%4"), "%4");
        assert_eq!(percent_decode_message(b"a%4g"), "a%4g");
        assert_eq!(percent_decode_message(b"%%41"), "%A");
        assert_eq!(percent_decode_message(b"%e2%98%ba"), "☺");
        // A lone continuation byte and a truncated sequence become U+FFFD.
        assert_eq!(percent_decode_message(b"x%80y"), "x\u{fffd}y");
        assert_eq!(percent_decode_message(b"%E2%98"), "\u{fffd}");
        // Raw non-ASCII bytes that arrived unencoded are read as UTF-8 too.
        assert_eq!(percent_decode_message("☺".as_bytes()), "☺");
        assert_eq!(percent_decode_message(b"\xff"), "\u{fffd}");
    }

    #[test]
    fn percent_encoding_round_trips_every_char_class() {
        let all: String = (0u32..0x3000)
            .chain([0x1F608, 0x10FFFF])
            .filter_map(char::from_u32)
            .collect();
        assert_eq!(
            percent_decode_message(percent_encode_message(&all).as_bytes()),
            all
        );
    }

    #[test]
    fn http_status_maps_per_grpc_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (302, Code::Unknown),
            (415, Code::Unknown),
            (500, Code::Unknown),
            (0, Code::Unknown),
        ];
        for (http, code) in table {
            let s = Status::from_http_status(http);
            assert_eq!(s.code(), code, "HTTP {http}");
            assert!(s.message().contains(&http.to_string()));
        }
    }

    #[test]
    fn h2_reset_reasons_map_per_grpc_table() {
        let table = [
            (0x0, Code::Internal),
            (0x1, Code::Internal),
            (0x2, Code::Internal),
            (0x3, Code::Internal),
            (0x4, Code::Internal),
            (0x6, Code::Internal),
            (0x7, Code::Unavailable),
            (0x8, Code::Cancelled),
            (0x9, Code::Internal),
            (0xa, Code::Internal),
            (0xb, Code::ResourceExhausted),
            (0xc, Code::PermissionDenied),
            (0xd, Code::Internal),
            (0x42, Code::Unknown),
        ];
        for (reason, code) in table {
            assert_eq!(Status::from_h2_reason(reason).code(), code, "{reason:#x}");
        }
        assert!(Status::from_h2_reason(8).message().ends_with("CANCEL"));
        assert!(Status::from_h2_reason(0x42).message().ends_with("0x42"));
    }

    #[test]
    fn io_errors_map_to_transport_codes() {
        use std::io::{Error, ErrorKind};
        let cases = [
            (ErrorKind::ConnectionRefused, Code::Unavailable),
            (ErrorKind::ConnectionReset, Code::Unavailable),
            (ErrorKind::BrokenPipe, Code::Unavailable),
            (ErrorKind::UnexpectedEof, Code::Unavailable),
            (ErrorKind::TimedOut, Code::Unavailable),
            (ErrorKind::InvalidData, Code::Internal),
            (ErrorKind::OutOfMemory, Code::ResourceExhausted),
            (ErrorKind::Unsupported, Code::Unimplemented),
        ];
        for (kind, code) in cases {
            let s = Status::from(Error::new(kind, "boom"));
            assert_eq!(s.code(), code, "{kind:?}");
            assert!(s.message().contains("boom"));
        }
    }

    #[test]
    fn metadata_mut_adds_to_sent_trailers() {
        let mut s = Status::internal("oops");
        s.metadata_mut().insert("retry-after", "5").unwrap();
        let mut trailers = Vec::new();
        s.to_trailers(&mut trailers);
        assert!(trailers.contains(&header("retry-after", "5")));
    }
}
