//! HPACK (RFC 7541).
//!
//! Minimal stand-in carrying only the [`Header`] type as the contract declares it, so that the
//! gRPC protocol layer compiles on its own branch; the hpack branch replaces this file at merge.

use bytes::Bytes;

/// One header field. `sensitive` = never-indexed on the wire (decoded or to encode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name, lowercase for HTTP/2.
    pub name: Bytes,
    /// The field value.
    pub value: Bytes,
    /// Never indexed on the wire (RFC 7541 §6.2.3).
    pub sensitive: bool,
}

impl Header {
    /// A header field that may be indexed.
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// The size the field counts for in tables and header lists: name + value + 32
    /// (RFC 7541 §4.1).
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}
