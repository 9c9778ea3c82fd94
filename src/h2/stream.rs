//! Stream states ([RFC 9113 §5.1]) and per-stream bookkeeping, plus the checks that make a
//! request, response or trailer section malformed ([RFC 9113 §8.1.1], [§8.2], [§8.3]).
//!
//! We never send nor accept server push (a client advertises SETTINGS_ENABLE_PUSH = 0 and a
//! server never sends PUSH_PROMISE), so the "reserved" states of §5.1 are never entered and
//! are not represented.
//!
//! ```text
//!                          +--------+
//!                  send H  |        |  recv H
//!                 ,--------+  idle  +--------.
//!                /         |        |         \
//!               v          +--------+          v
//!        +----------+          |           +----------+
//!        |  half-   |          | send H/   |  half-   |
//!        |  closed  |<--.      | recv H    |  closed  |
//!        |  (local) |   |      v           | (remote) |
//!        +----------+   | +--------+       +----------+
//!            |   ^      `-+  open  +----.      |   ^
//!   recv ES  |   | send ES |        | recv ES  | send ES
//!            |   `---------+--------+    `-----'
//!            v                                 v
//!        +------------------------------------------+
//!        |  closed  (also: send R / recv R anywhere)|
//!        +------------------------------------------+
//! ```
//!
//! [RFC 9113 §5.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.1
//! [RFC 9113 §8.1.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.1.1
//! [§8.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2
//! [§8.3]: https://www.rfc-editor.org/rfc/rfc9113#section-8.3

use super::error::Reason;
use super::flow::{RecvWindow, SendWindow};
use super::frame::StreamId;
use super::hpack::Header;

/// The state of one stream ([RFC 9113 §5.1]).
///
/// [RFC 9113 §5.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.1
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not yet used.
    Idle,
    /// Both sides may send.
    Open,
    /// We have sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer has sent END_STREAM; we may still send.
    HalfClosedRemote,
    /// Neither side may send; `Cause` says how it ended.
    Closed(Cause),
}

/// How a stream came to be closed; it decides how late frames on it are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Both sides sent END_STREAM. A late DATA is a stream error STREAM_CLOSED, a late HEADERS
    /// a connection error STREAM_CLOSED.
    EndStream,
    /// We sent RST_STREAM (or refused or discarded the stream). The peer may have frames in
    /// flight: they are ignored ([RFC 9113 §5.1], "closed").
    ///
    /// [RFC 9113 §5.1]: https://www.rfc-editor.org/rfc/rfc9113#section-5.1
    LocalReset(Reason),
    /// The peer sent RST_STREAM. Any later frame but PRIORITY is a stream error STREAM_CLOSED,
    /// except another RST_STREAM, which is ignored (never answered with one, RFC 9113 §5.4.2).
    RemoteReset(Reason),
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state the stream was in.
    pub from: State,
}

impl State {
    /// Returns true if we may still send DATA or HEADERS.
    pub fn can_send(&self) -> bool {
        matches!(self, State::Open | State::HalfClosedRemote)
    }

    /// Returns true if the peer may still send DATA or HEADERS.
    pub fn can_recv(&self) -> bool {
        matches!(self, State::Open | State::HalfClosedLocal)
    }

    /// Returns true once the stream is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, State::Closed(_))
    }

    /// Opens an idle stream because we send HEADERS (END_STREAM if `end_stream`).
    ///
    /// # Errors
    ///
    /// [`InvalidTransition`] unless idle.
    pub fn send_open(&mut self, end_stream: bool) -> Result<(), InvalidTransition> {
        match self {
            State::Idle => {
                *self = if end_stream {
                    State::HalfClosedLocal
                } else {
                    State::Open
                };
                Ok(())
            }
            _ => Err(InvalidTransition { from: *self }),
        }
    }

    /// Opens an idle stream because the peer sends HEADERS (END_STREAM if `end_stream`).
    ///
    /// # Errors
    ///
    /// [`InvalidTransition`] unless idle.
    pub fn recv_open(&mut self, end_stream: bool) -> Result<(), InvalidTransition> {
        match self {
            State::Idle => {
                *self = if end_stream {
                    State::HalfClosedRemote
                } else {
                    State::Open
                };
                Ok(())
            }
            _ => Err(InvalidTransition { from: *self }),
        }
    }

    /// Records that we sent END_STREAM.
    ///
    /// # Errors
    ///
    /// [`InvalidTransition`] if we may not send on this stream.
    pub fn send_end_stream(&mut self) -> Result<(), InvalidTransition> {
        *self = match self {
            State::Open => State::HalfClosedLocal,
            State::HalfClosedRemote => State::Closed(Cause::EndStream),
            _ => return Err(InvalidTransition { from: *self }),
        };
        Ok(())
    }

    /// Records that the peer sent END_STREAM.
    ///
    /// # Errors
    ///
    /// [`InvalidTransition`] if the peer may not send on this stream.
    pub fn recv_end_stream(&mut self) -> Result<(), InvalidTransition> {
        *self = match self {
            State::Open => State::HalfClosedRemote,
            State::HalfClosedLocal => State::Closed(Cause::EndStream),
            _ => return Err(InvalidTransition { from: *self }),
        };
        Ok(())
    }

    /// Records that we sent RST_STREAM with `reason` (allowed in any state).
    pub fn send_reset(&mut self, reason: Reason) {
        *self = State::Closed(Cause::LocalReset(reason));
    }

    /// Records that the peer sent RST_STREAM with `reason` (allowed in any state).
    pub fn recv_reset(&mut self, reason: Reason) {
        *self = State::Closed(Cause::RemoteReset(reason));
    }
}

/// Where a stream is in receiving its message: decides what the next HEADERS means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvPhase {
    /// Nothing received yet: the next HEADERS is the request or response head.
    Head,
    /// The head arrived: DATA may follow, and a HEADERS is the trailer section.
    Body,
}

/// One active (or recently closed, not yet released) stream.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The stream's identifier.
    pub id: StreamId,
    /// Its §5.1 state.
    pub state: State,
    /// What we may still send on it.
    pub send_window: SendWindow,
    /// What the peer may still send on it.
    pub recv_window: RecvWindow,
    /// DATA payload octets delivered to the application and not yet released by it.
    pub unreleased: u32,
    /// Whether the (final) head has been received.
    pub recv_phase: RecvPhase,
    /// Octets still expected according to content-length, if the peer sent one.
    pub content_length: Option<u64>,
    /// We sent a HEAD request on it (its response has no content whatever content-length says).
    pub head_request: bool,
    /// We opened it.
    pub local: bool,
}

impl Stream {
    /// Creates an idle stream with the given initial windows.
    pub fn new(id: StreamId, local: bool, send_window: u32, recv_window: RecvWindow) -> Stream {
        Stream {
            id,
            state: State::Idle,
            send_window: SendWindow::new(send_window),
            recv_window,
            unreleased: 0,
            recv_phase: RecvPhase::Head,
            content_length: None,
            head_request: false,
            local,
        }
    }
}

/// Why a header section is malformed; every case is a stream error PROTOCOL_ERROR
/// ([RFC 9113 §8.1.1]).
///
/// [RFC 9113 §8.1.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.1.1
pub type Malformed = &'static str;

/// What the request head tells the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadInfo {
    /// The content-length value, if present.
    pub content_length: Option<u64>,
    /// The response :status (0 for a request).
    pub status: u16,
}

impl HeadInfo {
    /// Returns true for a 1xx response, which another head follows.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Class of each byte in a field name (RFC 9113 §8.2.1): 0 = allowed, [`NAME_UPPER`] =
/// uppercase ASCII, [`NAME_INVALID`] = control, space, DEL, non-ASCII or `:`.
static NAME_CLASS: [u8; 256] = name_classes();

const NAME_UPPER: u8 = 1;
const NAME_INVALID: u8 = 2;

const fn name_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = if b <= 0x20 || b >= 0x7f || b == b':' as usize {
            NAME_INVALID
        } else if b >= b'A' as usize && b <= b'Z' as usize {
            NAME_UPPER
        } else {
            0
        };
        b += 1;
    }
    t
}

/// Checks a field name's characters ([RFC 9113 §8.2.1]): a table lookup per byte, OR-ed
/// together, four bytes at a time; the first offending byte names the error.
///
/// [RFC 9113 §8.2.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.1
fn check_name(name: &[u8]) -> Result<(), Malformed> {
    let class = |b: u8| NAME_CLASS[usize::from(b)];
    let mut chunks = name.chunks_exact(4);
    let mut acc = 0u8;
    for c in &mut chunks {
        acc |= class(c[0]) | class(c[1]) | class(c[2]) | class(c[3]);
    }
    for &b in chunks.remainder() {
        acc |= class(b);
    }
    if acc == 0 {
        return Ok(());
    }
    // Rare: report the first bad byte, as a byte-by-byte scan would.
    match name.iter().map(|&b| class(b)).find(|&c| c != 0) {
        Some(NAME_UPPER) => Err("uppercase character in field name"),
        _ => Err("invalid character in field name"),
    }
}

/// Checks one regular (non-pseudo) field: name characters, value characters, and the
/// connection-specific fields HTTP/2 forbids ([RFC 9113 §8.2.1], [§8.2.2]).
///
/// [RFC 9113 §8.2.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.1
/// [§8.2.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.2
fn check_regular(h: &Header) -> Result<(), Malformed> {
    let name = &h.name[..];
    if name.is_empty() {
        return Err("empty field name");
    }
    check_name(name)?;
    check_value(&h.value)?;
    // Slice patterns compare lengths first: most names cost a few integer compares here.
    match name {
        b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade" => {
            Err("connection-specific header field")
        }
        b"te" if !h.value.eq_ignore_ascii_case(b"trailers") => {
            Err("te header field other than \"trailers\"")
        }
        _ => Ok(()),
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of a byte of the result is set if that byte of `w` is NUL, CR or LF (exact
/// for the lowest such byte, and zero only if there is none: the classic SWAR zero-byte test,
/// applied to `w`, `w ^ CR…CR` and `w ^ LF…LF`).
#[inline]
fn nul_cr_lf_bits(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(LO) & !x;
    (zero(w) | zero(w ^ (LO * u64::from(b'\r'))) | zero(w ^ (LO * u64::from(b'\n')))) & HI
}

/// 1 for NUL, CR and LF, else 0.
static NUL_CR_LF: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0] = 1;
    t[b'\r' as usize] = 1;
    t[b'\n' as usize] = 1;
    t
};

/// Checks a field value ([RFC 9113 §8.2.1]): no NUL, CR or LF (eight bytes at a time, the
/// rest by table), and no leading or trailing space or tab.
///
/// [RFC 9113 §8.2.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.1
#[inline]
fn check_value(v: &[u8]) -> Result<(), Malformed> {
    let mut words = v.chunks_exact(8);
    let mut bad = 0u64;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        bad |= nul_cr_lf_bits(u64::from_le_bytes(b));
    }
    for &b in words.remainder() {
        bad |= u64::from(NUL_CR_LF[usize::from(b)]);
    }
    if bad != 0 {
        return Err("NUL, CR or LF in field value");
    }
    if let (Some(first), Some(last)) = (v.first(), v.last()) {
        if matches!(first, b' ' | b'\t') || matches!(last, b' ' | b'\t') {
            return Err("field value starts or ends with whitespace");
        }
    }
    Ok(())
}

fn parse_content_length(v: &[u8], current: Option<u64>) -> Result<Option<u64>, Malformed> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err("invalid content-length");
    }
    let n = v
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    match current {
        Some(c) if c != n => Err("conflicting content-length values"),
        _ => Ok(Some(n)),
    }
}

/// Validates a request head ([RFC 9113 §8.3.1]).
///
/// Exactly one each of `:method`, `:scheme` and a non-empty `:path` (CONNECT: `:authority`
/// and neither of the others), at most one `:authority`, no other pseudo-header, pseudo-headers
/// before regular fields, and every regular field valid.
///
/// # Errors
///
/// A [`Malformed`] description: the caller resets the stream with PROTOCOL_ERROR.
///
/// [RFC 9113 §8.3.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.3.1
pub fn validate_request(headers: &[Header]) -> Result<HeadInfo, Malformed> {
    let mut method: Option<&[u8]> = None;
    let (mut scheme, mut path, mut authority) = (false, false, false);
    let mut regular_seen = false;
    let mut info = HeadInfo::default();
    for h in headers {
        let name = &h.name[..];
        if name.first() == Some(&b':') {
            if regular_seen {
                return Err("pseudo-header field after a regular field");
            }
            let seen = match name {
                b":method" => {
                    let dup = method.is_some();
                    method = Some(&h.value);
                    dup
                }
                b":scheme" => std::mem::replace(&mut scheme, true),
                b":path" => {
                    if h.value.is_empty() {
                        return Err("empty :path");
                    }
                    std::mem::replace(&mut path, true)
                }
                b":authority" => std::mem::replace(&mut authority, true),
                _ => return Err("unknown or response pseudo-header in a request"),
            };
            if seen {
                return Err("duplicate pseudo-header field");
            }
            check_value(&h.value)?;
        } else {
            regular_seen = true;
            check_regular(h)?;
            if name == b"content-length" {
                info.content_length = parse_content_length(&h.value, info.content_length)?;
            }
        }
    }
    match method {
        None => Err("missing :method"),
        Some(b"CONNECT") => {
            if scheme || path || !authority {
                Err("CONNECT request needs :authority and no :scheme or :path")
            } else {
                Ok(info)
            }
        }
        Some(_) if !scheme || !path => Err("missing :scheme or :path"),
        Some(_) => Ok(info),
    }
}

/// Validates a response head ([RFC 9113 §8.3.2]): exactly one three-digit `:status` and no
/// other pseudo-header, before regular fields; 101 is not allowed in HTTP/2 ([§8.6]).
///
/// # Errors
///
/// A [`Malformed`] description: the caller resets the stream with PROTOCOL_ERROR.
///
/// [RFC 9113 §8.3.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.3.2
/// [§8.6]: https://www.rfc-editor.org/rfc/rfc9113#section-8.6
pub fn validate_response(headers: &[Header]) -> Result<HeadInfo, Malformed> {
    let mut info = HeadInfo::default();
    let mut regular_seen = false;
    for h in headers {
        let name = &h.name[..];
        if name.first() == Some(&b':') {
            if regular_seen {
                return Err("pseudo-header field after a regular field");
            }
            if name != b":status" {
                return Err("unknown or request pseudo-header in a response");
            }
            if info.status != 0 {
                return Err("duplicate :status");
            }
            let v = &h.value[..];
            if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) || v[0] == b'0' {
                return Err("invalid :status");
            }
            info.status = v
                .iter()
                .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
            if info.status == 101 {
                return Err(":status 101 is not allowed in HTTP/2");
            }
        } else {
            regular_seen = true;
            check_regular(h)?;
            if name == b"content-length" {
                info.content_length = parse_content_length(&h.value, info.content_length)?;
            }
        }
    }
    if info.status == 0 {
        return Err("missing :status");
    }
    Ok(info)
}

/// Validates a trailer section ([RFC 9113 §8.1]): no pseudo-header, every field valid.
///
/// # Errors
///
/// A [`Malformed`] description: the caller resets the stream with PROTOCOL_ERROR.
///
/// [RFC 9113 §8.1]: https://www.rfc-editor.org/rfc/rfc9113#section-8.1
pub fn validate_trailers(headers: &[Header]) -> Result<(), Malformed> {
    for h in headers {
        if h.name.first() == Some(&b':') {
            return Err("pseudo-header field in trailers");
        }
        check_regular(h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(list: &[(&'static str, &'static str)]) -> Vec<Header> {
        list.iter()
            .map(|&(n, v)| Header::new(n.as_bytes(), v.as_bytes()))
            .collect()
    }

    fn request() -> Vec<Header> {
        hs(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/pkg.Svc/Method"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ])
    }

    #[test]
    fn open_then_end_stream_both_ways_closes() {
        let mut s = State::Idle;
        s.recv_open(false).unwrap();
        assert_eq!(s, State::Open);
        s.recv_end_stream().unwrap();
        assert_eq!(s, State::HalfClosedRemote);
        assert!(s.can_send() && !s.can_recv());
        s.send_end_stream().unwrap();
        assert_eq!(s, State::Closed(Cause::EndStream));
    }

    #[test]
    fn send_open_with_end_stream_is_half_closed_local() {
        let mut s = State::Idle;
        s.send_open(true).unwrap();
        assert_eq!(s, State::HalfClosedLocal);
        assert!(!s.can_send() && s.can_recv());
        assert!(s.send_end_stream().is_err());
        s.recv_end_stream().unwrap();
        assert!(s.is_closed());
    }

    #[test]
    fn open_twice_is_invalid() {
        let mut s = State::Open;
        assert_eq!(
            s.recv_open(false),
            Err(InvalidTransition { from: State::Open })
        );
        assert!(s.send_open(false).is_err());
    }

    #[test]
    fn end_stream_on_half_closed_remote_from_peer_is_invalid() {
        let mut s = State::HalfClosedRemote;
        assert!(s.recv_end_stream().is_err());
    }

    #[test]
    fn reset_closes_from_any_state() {
        for mut s in [
            State::Idle,
            State::Open,
            State::HalfClosedLocal,
            State::HalfClosedRemote,
        ] {
            s.send_reset(Reason::CANCEL);
            assert_eq!(s, State::Closed(Cause::LocalReset(Reason::CANCEL)));
        }
        let mut s = State::Open;
        s.recv_reset(Reason::CANCEL);
        assert_eq!(s, State::Closed(Cause::RemoteReset(Reason::CANCEL)));
    }

    #[test]
    fn valid_request_passes() {
        assert_eq!(validate_request(&request()), Ok(HeadInfo::default()));
    }

    #[test]
    fn request_missing_or_duplicate_pseudo_headers_is_malformed() {
        let mut r = request();
        r.remove(0);
        assert!(validate_request(&r).is_err());
        let mut r = request();
        r.insert(1, Header::new(&b":path"[..], &b"/x"[..]));
        assert!(validate_request(&r).is_err());
        let mut r = request();
        r[2].value = bytes::Bytes::new();
        assert!(validate_request(&r).is_err());
    }

    #[test]
    fn pseudo_header_after_regular_is_malformed() {
        let mut r = request();
        r.push(Header::new(&b":authority"[..], &b"x"[..]));
        assert!(validate_request(&r).is_err());
    }

    #[test]
    fn uppercase_and_connection_specific_names_are_malformed() {
        for (n, v) in [
            ("Content-Type", "x"),
            ("connection", "close"),
            ("keep-alive", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("te", "gzip"),
            ("bad name", "x"),
            ("x", "a\r\nb"),
            ("x", " lead"),
        ] {
            let mut r = request();
            r.push(Header::new(n.as_bytes(), v.as_bytes()));
            assert!(validate_request(&r).is_err(), "{n}: {v}");
        }
    }

    #[test]
    fn response_pseudo_header_in_request_is_malformed() {
        let mut r = request();
        r.insert(0, Header::new(&b":status"[..], &b"200"[..]));
        assert!(validate_request(&r).is_err());
    }

    #[test]
    fn connect_request_needs_authority_only() {
        let r = hs(&[(":method", "CONNECT"), (":authority", "h:443")]);
        assert!(validate_request(&r).is_ok());
        let r = hs(&[(":method", "CONNECT"), (":authority", "h"), (":path", "/")]);
        assert!(validate_request(&r).is_err());
    }

    #[test]
    fn response_status_rules() {
        let ok = validate_response(&hs(&[(":status", "200"), ("content-length", "5")]));
        assert_eq!(
            ok,
            Ok(HeadInfo {
                content_length: Some(5),
                status: 200
            })
        );
        assert!(validate_response(&hs(&[("x", "y")])).is_err());
        assert!(validate_response(&hs(&[(":status", "200"), (":status", "200")])).is_err());
        assert!(validate_response(&hs(&[(":status", "20")])).is_err());
        assert!(validate_response(&hs(&[(":status", "101")])).is_err());
        assert!(validate_response(&hs(&[(":status", "200"), (":path", "/")])).is_err());
        assert!(validate_response(&hs(&[(":status", "100")]))
            .unwrap()
            .is_informational());
    }

    #[test]
    fn trailers_reject_pseudo_headers() {
        assert!(validate_trailers(&hs(&[("grpc-status", "0")])).is_ok());
        assert!(validate_trailers(&hs(&[(":status", "200")])).is_err());
        assert!(validate_trailers(&hs(&[("Grpc-Status", "0")])).is_err());
    }

    /// The straightforward byte-by-byte checks the fast ones must agree with, error text
    /// included.
    fn reference_check_regular(h: &Header) -> Result<(), Malformed> {
        let name = &h.name[..];
        if name.is_empty() {
            return Err("empty field name");
        }
        for &b in name {
            if b.is_ascii_uppercase() {
                return Err("uppercase character in field name");
            }
            if b <= 0x20 || b >= 0x7f || b == b':' {
                return Err("invalid character in field name");
            }
        }
        reference_check_value(&h.value)?;
        let specific: [&[u8]; 5] = [
            b"connection",
            b"proxy-connection",
            b"keep-alive",
            b"transfer-encoding",
            b"upgrade",
        ];
        if specific.contains(&name) {
            return Err("connection-specific header field");
        }
        if name == b"te" && !h.value.eq_ignore_ascii_case(b"trailers") {
            return Err("te header field other than \"trailers\"");
        }
        Ok(())
    }

    fn reference_check_value(v: &[u8]) -> Result<(), Malformed> {
        if v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err("NUL, CR or LF in field value");
        }
        if let (Some(first), Some(last)) = (v.first(), v.last()) {
            if matches!(first, b' ' | b'\t') || matches!(last, b' ' | b'\t') {
                return Err("field value starts or ends with whitespace");
            }
        }
        Ok(())
    }

    /// xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Mostly harmless bytes, with the interesting ones often enough to hit every case.
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            const SPECIAL: &[u8] = b"\0\r\n \t:AZaz-\x7f\x80\xff\x20\x21\x40\x5b\x7e";
            (0..len)
                .map(|_| match self.next() % 16 {
                    0 => SPECIAL[(self.next() % SPECIAL.len() as u64) as usize],
                    1 => self.next() as u8,
                    _ => b"abcdefghijklmnopqrstuvwxyz-_.0123456789"[(self.next() % 39) as usize],
                })
                .collect()
        }
    }

    #[test]
    fn fast_field_checks_agree_with_byte_by_byte_checks() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for i in 0..200_000 {
            let (nl, vl) = ((rng.next() % 24) as usize, (rng.next() % 40) as usize);
            let (name, value) = (rng.bytes(nl), rng.bytes(vl));
            let h = Header::new(name.clone(), value.clone());
            assert_eq!(check_regular(&h), reference_check_regular(&h), "{i}: {h:?}");
            assert_eq!(
                check_value(&value),
                reference_check_value(&value),
                "{value:?}"
            );
        }
        // Every byte at every position of values of every length up to 24.
        for len in 1..=24 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'x'; len];
                    v[pos] = b;
                    assert_eq!(check_value(&v), reference_check_value(&v), "{v:?}");
                    let h = Header::new(v.clone(), &b"v"[..]);
                    assert_eq!(check_regular(&h), reference_check_regular(&h), "{v:?}");
                }
            }
        }
        // The first offending name byte decides the message.
        for name in [&b"aB:"[..], b"a:B", b"A", b"\x80A", b"Connection", b"te"] {
            let h = Header::new(name, &b"x"[..]);
            assert_eq!(check_regular(&h), reference_check_regular(&h), "{name:?}");
        }
        for name in [
            "connection",
            "proxy-connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
            "tf",
            "connectioN",
        ] {
            for value in ["trailers", "TRAILERS", "gzip", ""] {
                let h = Header::new(name.as_bytes(), value.as_bytes());
                assert_eq!(
                    check_regular(&h),
                    reference_check_regular(&h),
                    "{name}: {value}"
                );
            }
        }
    }

    #[test]
    fn conflicting_content_length_is_malformed() {
        let mut r = request();
        r.push(Header::new(&b"content-length"[..], &b"5"[..]));
        r.push(Header::new(&b"content-length"[..], &b"6"[..]));
        assert!(validate_request(&r).is_err());
    }
}
