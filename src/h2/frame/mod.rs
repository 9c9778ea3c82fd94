//! Frame codec (RFC 9113 §4, §6). (placeholder)
