//! HPACK: header compression for HTTP/2 (RFC 7541).
//!
//! A [`Decoder`] turns header blocks received from the peer into [`Header`]s; an [`Encoder`]
//! turns headers into blocks to send. Each side keeps a dynamic table (RFC 7541 §2.3.2) that
//! must stay in step with the peer's, so a connection has exactly one of each, and blocks are
//! decoded and encoded in the order they travel on the wire.
//!
//! ```
//! use bytes::BytesMut;
//! use grpc_sync::h2::hpack::{Decoder, Encoder, Header};
//!
//! let mut encoder = Encoder::new();
//! let mut block = BytesMut::new();
//! encoder.encode(
//!     [(&b":method"[..], &b"POST"[..]), (b":path", b"/helloworld.Greeter/SayHello")],
//!     &mut block,
//! );
//!
//! let mut decoder = Decoder::new(4096);
//! let mut headers = Vec::new();
//! decoder.decode(&block, 16 * 1024, |h| headers.push(h)).unwrap();
//! assert_eq!(headers[1], Header::new(":path", "/helloworld.Greeter/SayHello"));
//! ```
//!
//! The decoder never panics on bad input: every violation of RFC 7541 is a [`DecodeError`],
//! and all but one of them ([`DecodeError::HeaderListTooLarge`]) are connection errors of type
//! `COMPRESSION_ERROR` (RFC 9113 §4.3).

use std::fmt;

use bytes::Bytes;

use crate::h2::error::Reason;

mod decoder;
mod encoder;
mod huffman;
mod huffman_table;
mod table;

pub use decoder::Decoder;
pub use encoder::Encoder;

/// One header field. `sensitive` = never-indexed on the wire (decoded or to encode).
///
/// Names and values are bytes: HPACK does not care about their contents (RFC 7541 §5.2).
/// A decoded field has `sensitive` set when it came as a literal never indexed (RFC 7541
/// §6.2.3); a field to encode with `sensitive` set is sent that way, so that intermediaries
/// keep it out of their tables too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name, e.g. `:path` or `content-type`.
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
    /// Never to be put in a compression table (RFC 7541 §7.1.3).
    pub sensitive: bool,
}

impl Header {
    /// A field from two static byte strings, without allocating.
    pub fn from_static(name: &'static [u8], value: &'static [u8]) -> Header {
        Header::new(Bytes::from_static(name), Bytes::from_static(value))
    }

    /// The value of the first field named `name` in `headers`.
    pub fn find<'a>(headers: &'a [Header], name: &[u8]) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|h| h.name.as_ref() == name)
            .map(|h| h.value.as_ref())
    }

    /// Creates a field that may be indexed.
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// Creates a field that is sent as never indexed (RFC 7541 §6.2.3), e.g. a credential.
    pub fn new_sensitive(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            sensitive: true,
        }
    }

    /// Returns the field's size as counted by table and header-list limits: name length +
    /// value length + 32 (RFC 7541 §4.1, RFC 9113 §6.5.2).
    pub fn size(&self) -> usize {
        field_size(&self.name, &self.value)
    }
}

/// RFC 7541 §4.1 size of a field.
fn field_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// Why a header block could not be decoded (RFC 7541).
///
/// All variants but [`HeaderListTooLarge`](DecodeError::HeaderListTooLarge) leave the
/// decoder's table out of step with the peer's encoder: they are connection errors, and the
/// decoder keeps returning the same error afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// An integer does not fit in 32 bits or uses more than 5 continuation bytes
    /// (RFC 7541 §5.1).
    IntegerOverflow,
    /// The block ends in the middle of a representation.
    Truncated,
    /// An index that is 0 or past the end of the dynamic table (RFC 7541 §2.3.3).
    InvalidIndex(usize),
    /// A Huffman string contains EOS, or ends in padding longer than 7 bits or not made of
    /// ones (RFC 7541 §5.2).
    InvalidHuffman,
    /// A dynamic table size update after the first field of a block (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
    /// A dynamic table size update above the limit we advertised (RFC 7541 §6.3).
    SizeUpdateTooLarge,
    /// We lowered our limit, and the next block did not start with a size update at most
    /// that low (RFC 7541 §4.2).
    SizeUpdateMissing,
    /// The decoded header list is over the given limit (RFC 9113 §6.5.2). The whole block
    /// was processed, so the table is still in step: only the stream is affected.
    HeaderListTooLarge,
}

impl DecodeError {
    /// Returns the HTTP/2 error code to close with: `COMPRESSION_ERROR` (a connection error,
    /// RFC 9113 §4.3), except `PROTOCOL_ERROR` for [`HeaderListTooLarge`](Self::HeaderListTooLarge)
    /// (a stream error).
    pub fn reason(&self) -> Reason {
        match self {
            DecodeError::HeaderListTooLarge => Reason::PROTOCOL_ERROR,
            _ => Reason::COMPRESSION_ERROR,
        }
    }

    /// Returns true if the connection must be closed (the tables are out of step); false if
    /// only the stream is affected.
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, DecodeError::HeaderListTooLarge)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::IntegerOverflow => f.write_str("HPACK integer overflows"),
            DecodeError::Truncated => f.write_str("HPACK header block is truncated"),
            DecodeError::InvalidIndex(i) => write!(f, "HPACK index {i} is invalid"),
            DecodeError::InvalidHuffman => f.write_str("HPACK Huffman string is invalid"),
            DecodeError::SizeUpdateNotAtStart => {
                f.write_str("HPACK dynamic table size update after the first field")
            }
            DecodeError::SizeUpdateTooLarge => {
                f.write_str("HPACK dynamic table size update above the advertised limit")
            }
            DecodeError::SizeUpdateMissing => {
                f.write_str("HPACK dynamic table size update missing after the limit was lowered")
            }
            DecodeError::HeaderListTooLarge => f.write_str("header list too large"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
