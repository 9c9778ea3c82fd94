//! Message compression: the `grpc-encoding` codings this crate speaks (gzip, deflate and
//! identity), negotiation with `grpc-accept-encoding`, and bounded decompression.
//!
//! gRPC compresses message by message: the request or response headers name one coding in
//! `grpc-encoding`, and each message's compressed flag (the first byte of its 5-byte prefix)
//! says whether that message went through it. A peer lists what it can read in
//! `grpc-accept-encoding`. See gRPC's `doc/compression.md` and PROTOCOL-HTTP2.
//!
//! `deflate` is the zlib format (RFC 1950), as grpc-core, grpc-java and grpc-go produce it;
//! `gzip` is RFC 1952. Both use flate2's pure-Rust backend (miniz_oxide).
//!
//! Decompression stops reading at the receive limit: a small message that inflates to
//! gigabytes costs at most `limit + 1` bytes of memory before it is refused.
//!
//! ```
//! use grpc_sync::compression::{compress, decompress, CompressionEncoding};
//! let data = vec![0u8; 10_000];
//! let mut wire = bytes::BytesMut::new();
//! compress(CompressionEncoding::Gzip, &data, &mut wire).unwrap();
//! assert!(wire.len() < 100);
//! let back = decompress(CompressionEncoding::Gzip, &wire, 4 * 1024 * 1024).unwrap();
//! assert_eq!(&back[..], &data[..]);
//! ```

use std::fmt;
use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

use crate::status::Status;

/// A message coding named by `grpc-encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompressionEncoding {
    /// No compression (`identity`).
    Identity,
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as every gRPC implementation sends it.
    Deflate,
}

/// The `grpc-accept-encoding` value this crate sends: every coding it can read.
pub const ACCEPT_ENCODING: &str = "gzip,deflate,identity";

impl CompressionEncoding {
    /// Every coding this crate supports, in order of preference.
    pub const ALL: [CompressionEncoding; 3] = [
        CompressionEncoding::Gzip,
        CompressionEncoding::Deflate,
        CompressionEncoding::Identity,
    ];

    /// The name on the wire: `identity`, `gzip`, `deflate`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionEncoding::Identity => "identity",
            CompressionEncoding::Gzip => "gzip",
            CompressionEncoding::Deflate => "deflate",
        }
    }

    /// The coding named `name` (case-insensitive, surrounding spaces ignored), if supported.
    pub fn from_name(name: &[u8]) -> Option<CompressionEncoding> {
        let name = name.trim_ascii();
        // Exact lowercase names first (what every peer sends), then any case.
        match name {
            b"identity" => return Some(CompressionEncoding::Identity),
            b"gzip" => return Some(CompressionEncoding::Gzip),
            b"deflate" => return Some(CompressionEncoding::Deflate),
            _ => {}
        }
        CompressionEncoding::ALL
            .into_iter()
            .find(|e| name.eq_ignore_ascii_case(e.as_str().as_bytes()))
    }

    /// Whether this is a real compression (not identity).
    pub fn is_compressed(self) -> bool {
        self != CompressionEncoding::Identity
    }

    fn bit(self) -> u8 {
        match self {
            CompressionEncoding::Identity => 1,
            CompressionEncoding::Gzip => 2,
            CompressionEncoding::Deflate => 4,
        }
    }
}

impl fmt::Display for CompressionEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of codings a peer accepts, parsed from its `grpc-accept-encoding`.
///
/// Identity is always accepted. Names this crate does not know are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptEncoding(u8);

impl AcceptEncoding {
    /// Identity only: what a peer that sent no `grpc-accept-encoding` is assumed to read.
    pub const IDENTITY: AcceptEncoding = AcceptEncoding(1);

    /// Parses a header value such as `gzip, deflate, identity`; `None` means identity only.
    pub fn parse(header: Option<&[u8]>) -> AcceptEncoding {
        let mut set = AcceptEncoding::IDENTITY;
        // What grpc-core, grpc-go and this crate send, parsed once per request otherwise.
        match header {
            Some(b"identity,deflate,gzip") | Some(b"identity, deflate, gzip") => {
                return AcceptEncoding(1 | 2 | 4)
            }
            Some(b"gzip") | Some(b"identity,gzip") | Some(b"identity, gzip") => {
                return AcceptEncoding(1 | 2)
            }
            _ => {}
        }
        if let Some(v) = header {
            for name in v.split(|&b| b == b',') {
                if let Some(e) = CompressionEncoding::from_name(name) {
                    set.0 |= e.bit();
                }
            }
        }
        set
    }

    /// Whether the peer can read `encoding`.
    pub fn accepts(self, encoding: CompressionEncoding) -> bool {
        self.0 & encoding.bit() != 0
    }
}

/// Why a message could not be compressed or decompressed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CompressionError {
    /// The decompressed message is larger than the receive limit; inflation stopped there.
    TooLarge {
        /// The receive limit, in bytes.
        limit: usize,
    },
    /// The compressed bytes are not valid for their coding.
    Corrupt {
        /// The coding named by `grpc-encoding`.
        encoding: CompressionEncoding,
        /// What the decoder reported.
        source: io::Error,
    },
    /// The coding failed while compressing.
    Compress(io::Error),
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionError::TooLarge { limit } => write!(
                f,
                "received message larger than max (decompressed size over {limit})"
            ),
            CompressionError::Corrupt { encoding, source } => {
                write!(f, "failed to decompress a {encoding} message: {source}")
            }
            CompressionError::Compress(e) => write!(f, "failed to compress a message: {e}"),
        }
    }
}

impl std::error::Error for CompressionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CompressionError::TooLarge { .. } => None,
            CompressionError::Corrupt { source, .. } => Some(source),
            CompressionError::Compress(e) => Some(e),
        }
    }
}

impl From<CompressionError> for Status {
    /// Over the limit: RESOURCE_EXHAUSTED; anything else: INTERNAL (as grpc-core reports it).
    fn from(e: CompressionError) -> Status {
        match e {
            CompressionError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
            _ => Status::internal(e.to_string()),
        }
    }
}

/// Appends `data` compressed with `encoding` to `dst` (identity copies it).
///
/// # Errors
///
/// [`CompressionError::Compress`] if the encoder fails (it does not for in-memory buffers).
pub fn compress(
    encoding: CompressionEncoding,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), CompressionError> {
    let writer = dst.writer();
    let level = Compression::default();
    match encoding {
        CompressionEncoding::Identity => {
            let mut w = writer;
            w.write_all(data).map_err(CompressionError::Compress)
        }
        CompressionEncoding::Gzip => {
            let mut e = GzEncoder::new(writer, level);
            e.write_all(data).map_err(CompressionError::Compress)?;
            e.finish().map(|_| ()).map_err(CompressionError::Compress)
        }
        CompressionEncoding::Deflate => {
            let mut e = ZlibEncoder::new(writer, level);
            e.write_all(data).map_err(CompressionError::Compress)?;
            e.finish().map(|_| ()).map_err(CompressionError::Compress)
        }
    }
}

/// Decompresses one message, refusing (and stopping inflation) once it passes `limit` bytes.
///
/// # Errors
///
/// [`CompressionError::TooLarge`] past the limit (at most `limit + 1` bytes are inflated);
/// [`CompressionError::Corrupt`] for bytes that are not valid for the coding.
pub fn decompress(
    encoding: CompressionEncoding,
    data: &[u8],
    limit: usize,
) -> Result<Bytes, CompressionError> {
    let reader: Box<dyn Read + '_> = match encoding {
        CompressionEncoding::Identity => return check_len(Bytes::copy_from_slice(data), limit),
        CompressionEncoding::Gzip => Box::new(GzDecoder::new(data)),
        CompressionEncoding::Deflate => Box::new(ZlibDecoder::new(data)),
    };
    let cap = limit.saturating_add(1);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(cap).min(1 << 20));
    reader
        .take(cap as u64)
        .read_to_end(&mut out)
        .map_err(|source| CompressionError::Corrupt { encoding, source })?;
    check_len(Bytes::from(out), limit)
}

fn check_len(b: Bytes, limit: usize) -> Result<Bytes, CompressionError> {
    if b.len() > limit {
        Err(CompressionError::TooLarge { limit })
    } else {
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_fast_paths_match_the_general_parse() {
        // The same sets written so that they miss the fast path (case, spacing).
        let cases: [(&[u8], &[u8]); 5] = [
            (b"identity,deflate,gzip", b"Identity ,deflate,GZIP"),
            (b"identity, deflate, gzip", b"gzip,deflate,identity "),
            (b"gzip", b" gzip"),
            (b"identity,gzip", b"IDENTITY,gzip"),
            (b"identity, gzip", b"gzip ,identity"),
        ];
        for (fast, slow) in cases {
            assert_eq!(
                AcceptEncoding::parse(Some(fast)),
                AcceptEncoding::parse(Some(slow)),
                "{}",
                String::from_utf8_lossy(fast)
            );
        }
        assert_eq!(
            CompressionEncoding::from_name(b"GZip"),
            Some(CompressionEncoding::Gzip)
        );
    }
    use crate::Code;

    fn sample() -> Vec<u8> {
        (0..50_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        for enc in CompressionEncoding::ALL {
            let data = sample();
            let mut wire = BytesMut::new();
            compress(enc, &data, &mut wire).unwrap();
            if enc.is_compressed() {
                assert!(wire.len() < data.len(), "{enc} did not shrink");
            }
            let back = decompress(enc, &wire, data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{enc}");
            // Empty messages round-trip too.
            let mut wire = BytesMut::new();
            compress(enc, b"", &mut wire).unwrap();
            assert!(decompress(enc, &wire, 0).unwrap().is_empty());
        }
    }

    #[test]
    fn formats_are_gzip_and_zlib() {
        let mut gz = BytesMut::new();
        compress(CompressionEncoding::Gzip, b"x", &mut gz).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut zl = BytesMut::new();
        compress(CompressionEncoding::Deflate, b"x", &mut zl).unwrap();
        assert_eq!(zl[0] & 0x0f, 8, "zlib header: CM = 8 (deflate)");
        assert_eq!(u16::from_be_bytes([zl[0], zl[1]]) % 31, 0);
    }

    #[test]
    fn bomb_stops_inflating_at_the_limit() {
        // 64 MiB of zeros compresses to about 64 KiB.
        let big = vec![0u8; 64 << 20];
        for enc in [CompressionEncoding::Gzip, CompressionEncoding::Deflate] {
            let mut wire = BytesMut::new();
            compress(enc, &big, &mut wire).unwrap();
            assert!(wire.len() < 1 << 20);
            let err = decompress(enc, &wire, 4 << 20).unwrap_err();
            assert!(matches!(err, CompressionError::TooLarge { limit } if limit == 4 << 20));
            let status = Status::from(err);
            assert_eq!(status.code(), Code::ResourceExhausted);
        }
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let data = vec![7u8; 1000];
        let mut wire = BytesMut::new();
        compress(CompressionEncoding::Gzip, &data, &mut wire).unwrap();
        assert_eq!(
            decompress(CompressionEncoding::Gzip, &wire, 1000)
                .unwrap()
                .len(),
            1000
        );
        assert!(decompress(CompressionEncoding::Gzip, &wire, 999).is_err());
        assert!(decompress(CompressionEncoding::Identity, &data, 999).is_err());
    }

    #[test]
    fn corrupt_input_is_internal() {
        let err = decompress(CompressionEncoding::Gzip, b"not gzip at all", 100).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }));
        assert!(err.to_string().contains("gzip"), "{err}");
        assert_eq!(Status::from(err).code(), Code::Internal);
        let err = decompress(CompressionEncoding::Deflate, b"\x00\x01\x02", 100).unwrap_err();
        assert_eq!(Status::from(err).code(), Code::Internal);
    }

    #[test]
    fn names_and_accept_lists() {
        assert_eq!(
            CompressionEncoding::from_name(b" GZip "),
            Some(CompressionEncoding::Gzip)
        );
        assert_eq!(CompressionEncoding::from_name(b"snappy"), None);
        let a = AcceptEncoding::parse(Some(b"identity, deflate, gzip"));
        assert!(CompressionEncoding::ALL.iter().all(|&e| a.accepts(e)));
        let a = AcceptEncoding::parse(Some(b"snappy,deflate"));
        assert!(a.accepts(CompressionEncoding::Deflate));
        assert!(a.accepts(CompressionEncoding::Identity));
        assert!(!a.accepts(CompressionEncoding::Gzip));
        assert_eq!(AcceptEncoding::parse(None), AcceptEncoding::IDENTITY);
        for e in CompressionEncoding::ALL {
            assert!(ACCEPT_ENCODING.contains(e.as_str()));
        }
    }
}
