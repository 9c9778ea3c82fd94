//! HPACK (RFC 7541). (placeholder)
