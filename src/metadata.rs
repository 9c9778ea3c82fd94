//! Custom metadata: the application's own header fields on a call.
//!
//! Keys are lowercase ASCII made of `0-9 a-z _ - .` (gRPC `PROTOCOL-HTTP2.md`, "Custom-Metadata").
//! A key ending in `-bin` holds a binary value, base64-encoded on the wire and raw bytes in
//! memory; any other key holds an ASCII value of printable characters (0x20..=0x7E).
//!
//! # Checked inserts
//!
//! [`MetadataMap::insert`], [`append`](MetadataMap::append), [`insert_bin`](MetadataMap::insert_bin)
//! and [`append_bin`](MetadataMap::append_bin) check the key and value and return
//! `Result<(), InvalidMetadata>`; they never panic. Upper-case ASCII letters in a key are
//! accepted and stored lowercase, and lookups ignore ASCII case, so `"Authorization"` and
//! `"authorization"` name the same entry. In a handler, `?` turns an [`InvalidMetadata`] into
//! an INTERNAL [`Status`]:
//!
//! ```
//! use grpc_sync::{MetadataMap, Status};
//! fn trailers() -> Result<MetadataMap, Status> {
//!     let mut md = MetadataMap::new();
//!     md.insert("ip", "127.0.0.1")?;
//!     md.insert_bin("trace-bin", &[0x0a, 0x01][..])?;
//!     Ok(md)
//! }
//! let md = trailers().unwrap();
//! assert_eq!(md.get("ip"), Some("127.0.0.1"));
//! assert_eq!(md.get_bin("trace-bin").as_deref(), Some(&[0x0a, 0x01][..]));
//! ```
//!
//! Reserved names (pseudo-headers, `content-type`, `te`, the gRPC protocol's own `grpc-*`
//! fields and HTTP/1 connection headers) cannot be inserted and are left out by
//! [`MetadataMap::from_headers`]; `user-agent` is kept, as grpcio shows it to handlers.

use std::fmt;

use bytes::Bytes;

use crate::h2::hpack::Header;
use crate::status::Status;

/// Names that carry the protocol itself, never custom metadata.
const RESERVED: &[&str] = &[
    "content-type",
    "te",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-message-type",
    // Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2).
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is a header field that belongs to the protocol rather than to the
/// application: a pseudo-header (`:path`...), `content-type`, `te`, the gRPC fields
/// (`grpc-status`, `grpc-message`, `grpc-status-details-bin`, `grpc-timeout`,
/// `grpc-encoding`, `grpc-accept-encoding`, `grpc-message-type`) or an HTTP/1 connection
/// header. Case-insensitive.
///
/// ```
/// use grpc_sync::metadata::is_reserved_header;
/// assert!(is_reserved_header(b":path") && is_reserved_header(b"grpc-timeout"));
/// assert!(!is_reserved_header(b"user-agent") && !is_reserved_header(b"x-user"));
/// ```
pub fn is_reserved_header(name: &[u8]) -> bool {
    // HTTP/2 field names are lowercase: match those exactly (the compiler switches on the
    // length), and compare ignoring case only for names with an uppercase letter.
    match name {
        [b':', ..] => true,
        b"content-type"
        | b"te"
        | b"grpc-status"
        | b"grpc-message"
        | b"grpc-status-details-bin"
        | b"grpc-timeout"
        | b"grpc-encoding"
        | b"grpc-accept-encoding"
        | b"grpc-message-type"
        | b"connection"
        | b"keep-alive"
        | b"proxy-connection"
        | b"transfer-encoding"
        | b"upgrade" => true,
        _ if !name.iter().any(u8::is_ascii_uppercase) => false,
        _ => RESERVED
            .iter()
            .any(|r| r.as_bytes().eq_ignore_ascii_case(name)),
    }
}

/// Whether `key` names a binary (`-bin`) entry.
fn is_bin(key: &[u8]) -> bool {
    key.len() >= 4 && key[key.len() - 4..].eq_ignore_ascii_case(b"-bin")
}

fn is_key_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.')
}

fn is_ascii_value(value: &[u8]) -> bool {
    value.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// Why a key or value cannot be metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidMetadata {
    /// The key is empty or has a character outside `0-9 a-z A-Z _ - .`.
    InvalidKey {
        /// The key as given.
        key: String,
    },
    /// The key is reserved for the protocol (see [`is_reserved_header`]).
    ReservedKey {
        /// The key as given.
        key: String,
    },
    /// An ASCII value has a byte outside the printable range 0x20..=0x7E.
    InvalidValue {
        /// The key the value was for.
        key: String,
    },
    /// A binary value was given for a key that does not end in `-bin`.
    NotBinaryKey {
        /// The key as given.
        key: String,
    },
    /// An ASCII value was given for a key that ends in `-bin`.
    BinaryKey {
        /// The key as given.
        key: String,
    },
}

impl fmt::Display for InvalidMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidMetadata::InvalidKey { key } => write!(
                f,
                "invalid metadata key {key:?}: keys are non-empty and use only 0-9 a-z _ - ."
            ),
            InvalidMetadata::ReservedKey { key } => {
                write!(f, "metadata key {key:?} is reserved for the protocol")
            }
            InvalidMetadata::InvalidValue { key } => write!(
                f,
                "invalid value for metadata key {key:?}: ASCII values use only printable \
                 characters 0x20..=0x7E (use a \"-bin\" key for binary data)"
            ),
            InvalidMetadata::NotBinaryKey { key } => write!(
                f,
                "binary metadata value for key {key:?}, which does not end in \"-bin\""
            ),
            InvalidMetadata::BinaryKey { key } => write!(
                f,
                "ASCII metadata value for key {key:?}, which ends in \"-bin\" (use insert_bin)"
            ),
        }
    }
}

impl std::error::Error for InvalidMetadata {}

impl From<InvalidMetadata> for Status {
    /// Invalid metadata is a programming error on this side: INTERNAL.
    fn from(err: InvalidMetadata) -> Status {
        Status::internal(err.to_string())
    }
}

/// Checks `key` and returns it lowercase, ready to store.
fn checked_key(key: &str, binary: bool) -> Result<Bytes, InvalidMetadata> {
    let bytes = key.as_bytes();
    let err = |f: fn(String) -> InvalidMetadata| Err(f(key.to_owned()));
    if bytes.is_empty() || !bytes.iter().all(|&b| is_key_byte(b.to_ascii_lowercase())) {
        return err(|key| InvalidMetadata::InvalidKey { key });
    }
    if is_reserved_header(bytes) {
        return err(|key| InvalidMetadata::ReservedKey { key });
    }
    match (binary, is_bin(bytes)) {
        (true, false) => return err(|key| InvalidMetadata::NotBinaryKey { key }),
        (false, true) => return err(|key| InvalidMetadata::BinaryKey { key }),
        _ => {}
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        Ok(Bytes::from(key.to_ascii_lowercase()))
    } else {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

/// One value, as [`MetadataMap::iter`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// The value of an ASCII key.
    Ascii(&'a str),
    /// The decoded value of a `-bin` key.
    Binary(&'a Bytes),
}

impl<'a> MetadataValue<'a> {
    /// The value's bytes: the text of an ASCII value, the raw bytes of a binary one.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            MetadataValue::Ascii(s) => s.as_bytes(),
            MetadataValue::Binary(b) => b,
        }
    }

    /// The text of an ASCII value; `None` for a binary one.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            MetadataValue::Ascii(s) => Some(s),
            MetadataValue::Binary(_) => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    /// Lowercase, valid key characters only (so also valid UTF-8).
    key: Bytes,
    /// Printable ASCII for ASCII keys; raw bytes for `-bin` keys.
    value: Bytes,
}

impl Entry {
    fn key_str(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    fn matches(&self, key: &str) -> bool {
        self.key.eq_ignore_ascii_case(key.as_bytes())
    }

    fn value(&self) -> MetadataValue<'_> {
        if is_bin(&self.key) {
            MetadataValue::Binary(&self.value)
        } else {
            MetadataValue::Ascii(std::str::from_utf8(&self.value).unwrap_or_default())
        }
    }
}

/// An ordered multimap of metadata: the custom header fields (or trailer fields) of a call.
///
/// Entries keep the order they were added in; a key may have several values
/// ([`append`](MetadataMap::append)). See the [module docs](self) for the rules on keys and
/// values.
///
/// ```
/// use grpc_sync::MetadataMap;
/// let mut md = MetadataMap::new();
/// md.append("x-tag", "a").unwrap();
/// md.append("x-tag", "b").unwrap();
/// assert_eq!(md.get_all("x-tag").collect::<Vec<_>>(), ["a", "b"]);
/// assert!(md.insert("bad key", "v").is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetadataMap {
    entries: Vec<Entry>,
}

impl MetadataMap {
    /// An empty map.
    pub fn new() -> MetadataMap {
        MetadataMap::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> MetadataMap {
        MetadataMap {
            entries: Vec::with_capacity(n),
        }
    }

    /// The number of entries (a key with two values counts twice).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Sets the ASCII value of `key`, replacing any values it had.
    ///
    /// # Errors
    ///
    /// [`InvalidMetadata`] if the key is invalid, reserved or ends in `-bin`, or the value
    /// has a byte outside 0x20..=0x7E; the map is then unchanged.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let entry = Self::ascii_entry(key, value)?;
        self.replace(entry);
        Ok(())
    }

    /// Adds an ASCII value for `key`, after any it already has.
    ///
    /// # Errors
    ///
    /// As [`insert`](MetadataMap::insert).
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let entry = Self::ascii_entry(key, value)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Sets the binary value of `key` (which must end in `-bin`), replacing any it had.
    ///
    /// # Errors
    ///
    /// [`InvalidMetadata`] if the key is invalid, reserved or does not end in `-bin`.
    pub fn insert_bin(
        &mut self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), InvalidMetadata> {
        let key = checked_key(key, true)?;
        self.replace(Entry {
            key,
            value: value.into(),
        });
        Ok(())
    }

    /// Adds a binary value for `key` (which must end in `-bin`), after any it already has.
    ///
    /// # Errors
    ///
    /// As [`insert_bin`](MetadataMap::insert_bin).
    pub fn append_bin(
        &mut self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), InvalidMetadata> {
        let key = checked_key(key, true)?;
        self.entries.push(Entry {
            key,
            value: value.into(),
        });
        Ok(())
    }

    fn ascii_entry(key: &str, value: &str) -> Result<Entry, InvalidMetadata> {
        let key = checked_key(key, false)?;
        if !is_ascii_value(value.as_bytes()) {
            return Err(InvalidMetadata::InvalidValue {
                key: String::from_utf8_lossy(&key).into_owned(),
            });
        }
        Ok(Entry {
            key,
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
    }

    /// Puts `entry` where the key's first value was (or at the end) and drops the others.
    fn replace(&mut self, entry: Entry) {
        match self.entries.iter().position(|e| e.key == entry.key) {
            Some(i) => {
                let key = entry.key.clone();
                self.entries[i] = entry;
                let mut index = 0;
                self.entries.retain(|e| {
                    let keep = index <= i || e.key != key;
                    index += 1;
                    keep
                });
            }
            None => self.entries.push(entry),
        }
    }

    /// The first ASCII value of `key`; `None` if there is none or `key` is a `-bin` key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.matches(key))
            .find_map(|e| match e.value() {
                MetadataValue::Ascii(s) => Some(s),
                MetadataValue::Binary(_) => None,
            })
    }

    /// The first binary value of the `-bin` key `key`.
    pub fn get_bin(&self, key: &str) -> Option<Bytes> {
        self.entries
            .iter()
            .filter(|e| e.matches(key))
            .find_map(|e| match e.value() {
                MetadataValue::Binary(b) => Some(b.clone()),
                MetadataValue::Ascii(_) => None,
            })
    }

    /// Every ASCII value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.matches(key))
            .filter_map(|e| match e.value() {
                MetadataValue::Ascii(s) => Some(s),
                MetadataValue::Binary(_) => None,
            })
    }

    /// Every binary value of the `-bin` key `key`, in order.
    pub fn get_all_bin<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.matches(key))
            .filter_map(|e| match e.value() {
                MetadataValue::Binary(b) => Some(b),
                MetadataValue::Ascii(_) => None,
            })
    }

    /// Whether `key` has at least one value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.matches(key))
    }

    /// Removes every value of `key`; returns whether there was any.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| !e.matches(key));
        self.entries.len() != before
    }

    /// Every entry in order, as (lowercase key, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, MetadataValue<'_>)> + '_ {
        self.entries.iter().map(|e| (e.key_str(), e.value()))
    }

    /// Every key in order, once per value.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(Entry::key_str)
    }

    /// Appends every entry of `other` after this map's own.
    pub fn merge(&mut self, other: MetadataMap) {
        self.entries.extend(other.entries);
    }

    /// Collects the custom metadata from received header fields (request headers, response
    /// headers or trailers).
    ///
    /// Reserved fields ([`is_reserved_header`]) are left out; `user-agent` is kept. Input
    /// from the network never makes this fail: a field whose name is not a valid key, an
    /// ASCII value with a byte outside 0x20..=0x7E, or a `-bin` value that is not base64
    /// is skipped. `-bin` values accept base64 with or without padding, and several
    /// comma-separated values in one field (as an HTTP intermediary may join them).
    pub fn from_headers(headers: &[Header]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for h in headers {
            let name = &h.name;
            if name.is_empty() || !name.iter().all(|&b| is_key_byte(b)) || is_reserved_header(name)
            {
                continue;
            }
            if is_bin(name) {
                for part in h.value.split(|&b| b == b',') {
                    if let Some(value) = base64_decode(part.trim_ascii()) {
                        map.entries.push(Entry {
                            key: name.clone(),
                            value: Bytes::from(value),
                        });
                    }
                }
            } else if is_ascii_value(&h.value) {
                map.entries.push(Entry {
                    key: name.clone(),
                    value: h.value.clone(),
                });
            }
        }
        map
    }

    /// Appends one header field per entry: ASCII values as they are, `-bin` values
    /// base64-encoded without padding (as gRPC implementations send them).
    pub fn to_headers(&self, out: &mut Vec<Header>) {
        out.reserve(self.entries.len());
        for e in &self.entries {
            let value = if is_bin(&e.key) {
                Bytes::from(base64_encode(&e.value))
            } else {
                e.value.clone()
            };
            out.push(Header::new(e.key.clone(), value));
        }
    }
}

impl fmt::Debug for MetadataMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            match v {
                MetadataValue::Ascii(s) => m.entry(&k, &s),
                MetadataValue::Binary(b) => m.entry(&k, b),
            };
        }
        m.finish()
    }
}

pub(crate) const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `input` as standard base64 (RFC 4648 §4) without padding.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    let sym = |v: u32| char::from(BASE64_ALPHABET[(v & 0x3f) as usize]);
    let mut chunks = input.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend([sym(n >> 18), sym(n >> 12), sym(n >> 6), sym(n)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend([sym(n >> 18), sym(n >> 12)]);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend([sym(n >> 18), sym(n >> 12), sym(n >> 6)]);
        }
        _ => {}
    }
    out
}

pub(crate) fn base64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard base64, padded or not; `None` if `input` is not base64. Bits left over
/// in the last symbol are ignored, as most decoders do.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let pad = input.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 || (pad > 0 && input.len() % 4 != 0) {
        return None;
    }
    let data = &input[..input.len() - pad];
    if data.len() % 4 == 1 || (pad > 0 && (data.len() + pad) % 4 != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let mut chunks = data.chunks(4);
    for c in &mut chunks {
        let mut n = 0u32;
        for &b in c {
            n = n << 6 | base64_value(b)?;
        }
        match c.len() {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            3 => out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]),
            2 => out.push((n >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_match_in_any_case_and_only_those() {
        for r in RESERVED {
            assert!(is_reserved_header(r.as_bytes()), "{r}");
            assert!(is_reserved_header(r.to_ascii_uppercase().as_bytes()), "{r}");
        }
        assert!(is_reserved_header(b":path"));
        for other in [
            &b"x-custom"[..],
            b"user-agent",
            b"grpc-trace-bin",
            b"",
            b"Content-Typo",
        ] {
            assert!(!is_reserved_header(other), "{other:?}");
        }
    }

    fn h(name: &'static str, value: &'static str) -> Header {
        Header::new(name.as_bytes(), value.as_bytes())
    }

    #[test]
    fn base64_matches_rfc4648_vectors_without_padding() {
        let vectors = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn base64_decode_accepts_padded_input() {
        for (padded, plain) in [
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
        ] {
            assert_eq!(base64_decode(padded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn base64_decode_rejects_invalid_input() {
        for bad in [
            "Z", "Zg=", "Zg===", "Z===", "Zm9v=", "Zm-v", "Zm_v", "Zm9 v", "=", "Zg==Zg", "Zm8==",
        ] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_round_trips_every_byte_and_length() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in 0..all.len() {
            let enc = base64_encode(&all[..len]);
            assert!(!enc.contains('='));
            assert_eq!(base64_decode(enc.as_bytes()).unwrap(), &all[..len]);
        }
    }

    #[test]
    fn valid_keys_are_accepted_and_lowercased() {
        let mut md = MetadataMap::new();
        md.insert("abc-xyz_0.9", "v").unwrap();
        md.insert("Authorization", "Bearer t").unwrap();
        assert_eq!(
            md.keys().collect::<Vec<_>>(),
            ["abc-xyz_0.9", "authorization"]
        );
        assert_eq!(md.get("AUTHORIZATION"), Some("Bearer t"));
        md.insert("user-agent", "mine").unwrap();
    }

    #[test]
    fn invalid_keys_are_rejected_with_invalid_key() {
        let mut md = MetadataMap::new();
        for key in ["", "a b", "a:b", "ключ", "a/b", "a\tb", "a\u{0}"] {
            assert!(
                matches!(md.insert(key, "v"), Err(InvalidMetadata::InvalidKey { .. })),
                "{key:?}"
            );
        }
        assert!(md.is_empty());
    }

    #[test]
    fn reserved_keys_are_rejected() {
        let mut md = MetadataMap::new();
        for key in [
            "grpc-status",
            "grpc-timeout",
            "content-type",
            "te",
            "Content-Type",
            "connection",
        ] {
            assert!(
                matches!(
                    md.insert(key, "v"),
                    Err(InvalidMetadata::ReservedKey { .. })
                ),
                "{key:?}"
            );
        }
        assert!(matches!(
            md.insert(":path", "/x"),
            Err(InvalidMetadata::InvalidKey { .. })
        ));
        assert!(matches!(
            md.insert_bin("grpc-status-details-bin", Bytes::new()),
            Err(InvalidMetadata::ReservedKey { .. })
        ));
    }

    #[test]
    fn ascii_values_must_be_printable() {
        let mut md = MetadataMap::new();
        md.insert("k", " !~ printable ").unwrap();
        md.insert("empty", "").unwrap();
        for bad in ["a\nb", "tab\t", "\u{7f}", "é"] {
            let err = md.insert("k", bad).unwrap_err();
            assert_eq!(err, InvalidMetadata::InvalidValue { key: "k".into() });
        }
        assert_eq!(md.get("k"), Some(" !~ printable "));
    }

    #[test]
    fn bin_suffix_decides_the_value_kind() {
        let mut md = MetadataMap::new();
        assert!(matches!(
            md.insert("x-bin", "text"),
            Err(InvalidMetadata::BinaryKey { .. })
        ));
        assert!(matches!(
            md.insert_bin("x", &b"\x00"[..]),
            Err(InvalidMetadata::NotBinaryKey { .. })
        ));
        md.insert_bin("X-Bin", &b"\x00\xff"[..]).unwrap();
        assert_eq!(md.get_bin("x-bin").as_deref(), Some(&b"\x00\xff"[..]));
        assert_eq!(md.get("x-bin"), None);
        assert_eq!(md.get_bin("y-bin"), None);
    }

    #[test]
    fn invalid_metadata_becomes_internal_status() {
        let err = MetadataMap::new().insert("a b", "v").unwrap_err();
        assert!(err.to_string().contains("\"a b\""));
        let status = Status::from(err);
        assert_eq!(status.code(), crate::Code::Internal);
    }

    #[test]
    fn insert_replaces_all_values_in_place_and_append_keeps_them() {
        let mut md = MetadataMap::new();
        md.append("a", "1").unwrap();
        md.append("b", "2").unwrap();
        md.append("a", "3").unwrap();
        md.append("c", "4").unwrap();
        assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(md.get("a"), Some("1"));
        md.insert("a", "5").unwrap();
        let pairs: Vec<_> = md
            .iter()
            .map(|(k, v)| (k, std::str::from_utf8(v.as_bytes()).unwrap()))
            .collect();
        assert_eq!(pairs, [("a", "5"), ("b", "2"), ("c", "4")]);
        assert!(md.remove("B"));
        assert!(!md.remove("b"));
        assert!(!md.contains_key("b"));
        assert_eq!(md.len(), 2);
        let mut other = MetadataMap::new();
        other.append("a", "6").unwrap();
        md.merge(other);
        assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["5", "6"]);
        md.clear();
        assert!(md.is_empty());
    }

    #[test]
    fn from_headers_skips_reserved_and_keeps_user_agent() {
        let headers = [
            h(":method", "POST"),
            h(":path", "/pkg.Svc/Method"),
            h(":authority", "localhost"),
            h("content-type", "application/grpc"),
            h("te", "trailers"),
            h("grpc-timeout", "1S"),
            h("grpc-encoding", "identity"),
            h("grpc-accept-encoding", "gzip"),
            h("grpc-status", "0"),
            h("grpc-message", "x"),
            h("grpc-status-details-bin", "AA"),
            h("user-agent", "grpc-python/1.60"),
            h("x-custom", "v"),
            h("grpc-trace-bin", "AAEC"),
        ];
        let md = MetadataMap::from_headers(&headers);
        assert_eq!(
            md.keys().collect::<Vec<_>>(),
            ["user-agent", "x-custom", "grpc-trace-bin"]
        );
        assert_eq!(md.get("user-agent"), Some("grpc-python/1.60"));
        assert_eq!(
            md.get_bin("grpc-trace-bin").as_deref(),
            Some(&[0, 1, 2][..])
        );
    }

    #[test]
    fn from_headers_skips_invalid_entries_from_the_network() {
        let headers = [
            Header::new(&b"x-bad\xff"[..], &b"v"[..]),
            Header::new(&b"X-Upper"[..], &b"v"[..]),
            Header::new(&b"x-ctl"[..], &b"a\x01b"[..]),
            Header::new(&b"x-high"[..], &b"\xc3\xa9"[..]),
            h("x-bad-bin", "not base64!"),
            h("x-ok", "fine"),
        ];
        let md = MetadataMap::from_headers(&headers);
        assert_eq!(md.keys().collect::<Vec<_>>(), ["x-ok"]);
    }

    #[test]
    fn from_headers_decodes_bin_padded_unpadded_and_comma_joined() {
        let headers = [
            h("a-bin", "AAE="),
            h("b-bin", "AAE"),
            h("c-bin", "AQ==, Ag,Aw"),
            h("d-bin", ""),
        ];
        let md = MetadataMap::from_headers(&headers);
        assert_eq!(md.get_bin("a-bin").as_deref(), Some(&[0, 1][..]));
        assert_eq!(md.get_bin("b-bin").as_deref(), Some(&[0, 1][..]));
        let c: Vec<_> = md.get_all_bin("c-bin").map(|b| b.to_vec()).collect();
        assert_eq!(c, [vec![1], vec![2], vec![3]]);
        assert_eq!(md.get_bin("d-bin").as_deref(), Some(&[][..]));
    }

    #[test]
    fn to_headers_sends_bin_unpadded_and_round_trips() {
        let mut md = MetadataMap::new();
        md.insert("x-ascii", "hello world").unwrap();
        md.append_bin("x-bin", &b"\xfa\xce"[..]).unwrap();
        md.append_bin("x-bin", Bytes::new()).unwrap();
        let mut out = Vec::new();
        md.to_headers(&mut out);
        assert_eq!(
            out,
            [
                h("x-ascii", "hello world"),
                h("x-bin", "+s4"),
                h("x-bin", "")
            ]
        );
        assert_eq!(MetadataMap::from_headers(&out), md);
    }

    #[test]
    fn debug_shows_keys_and_values() {
        let mut md = MetadataMap::new();
        md.insert("k", "v").unwrap();
        assert_eq!(format!("{md:?}"), "{\"k\": \"v\"}");
    }
}
