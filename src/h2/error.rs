//! HTTP/2 error codes (RFC 9113 §7).
//!
//! Minimal stand-in written by the HPACK helper so that `hpack` compiles on its own branch;
//! the frames helper owns this file and its full version replaces this one at merge.

/// An HTTP/2 error code (RFC 9113 §7). Open newtype: unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reason(pub u32);

impl Reason {
    /// The endpoint detected an unspecific protocol error (RFC 9113 §7).
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// The endpoint is unable to maintain the field section compression context (RFC 9113 §7).
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
}
