//! The small parsers of values that come from the network (or from users): `grpc-timeout`,
//! metadata from header fields (ASCII and `-bin`), status from trailers, channel targets,
//! `grpc-encoding`/`grpc-accept-encoding`, `grpc-message` percent-decoding.
//!
//! Input: one byte choosing the parser, then its input. Header lists are encoded as
//! `[flags][name len][name][value len][value]...`; flag bit 0 appends `-bin` to the name.
//!
//! Properties: never panics; `decode(encode(d)) >= d` for timeouts; metadata and status
//! survive `to_headers`/`to_trailers` and back unchanged.

use bytes::Bytes;
use grpc_sync::client::Target;
use grpc_sync::compression::{AcceptEncoding, CompressionEncoding};
use grpc_sync::h2::hpack::Header;
use grpc_sync::metadata::MetadataMap;
use grpc_sync::status::{percent_decode_message, percent_encode_message, Code, Status};
use grpc_sync::timeout::{decode_grpc_timeout, encode_grpc_timeout};

fn headers(mut data: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let take = |data: &mut &[u8]| -> Vec<u8> {
        let Some((&n, rest)) = data.split_first() else {
            return Vec::new();
        };
        let n = usize::from(n).min(rest.len());
        let (a, b) = rest.split_at(n);
        *data = b;
        a.to_vec()
    };
    while let Some((&flags, rest)) = data.split_first() {
        data = rest;
        let mut name = take(&mut data);
        if flags & 1 != 0 {
            name.extend_from_slice(b"-bin");
        }
        let value = take(&mut data);
        out.push(if flags & 2 != 0 {
            Header::new_sensitive(name, value)
        } else {
            Header::new(name, value)
        });
    }
    out
}

fn entries(m: &MetadataMap) -> Vec<(String, Vec<u8>)> {
    m.iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Runs one input (the fuzz target's whole body).
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 6 {
        0 => {
            if let Ok(d) = decode_grpc_timeout(rest) {
                let enc = encode_grpc_timeout(d);
                let back = decode_grpc_timeout(enc.as_bytes())
                    .unwrap_or_else(|e| panic!("{enc:?} (from {d:?}) does not decode: {e}"));
                assert!(back >= d, "{enc:?} decodes to {back:?} < {d:?}");
            } else if let Err(e) = decode_grpc_timeout(rest) {
                let _ = e.to_string();
            }
        }
        1 => {
            let map = MetadataMap::from_headers(&headers(rest));
            let mut out = Vec::new();
            map.to_headers(&mut out);
            let again = MetadataMap::from_headers(&out);
            assert_eq!(entries(&map), entries(&again), "metadata round trip");
            for (k, _) in entries(&map) {
                let _ = (map.get(&k), map.get_bin(&k), map.get_all(&k).count());
            }
        }
        2 => {
            if let Some(s) = Status::from_trailers(&headers(rest)) {
                let _ = (s.to_string(), format!("{s:?}"));
                let mut out = Vec::new();
                s.to_trailers(&mut out);
                let t = Status::from_trailers(&out).expect("to_trailers has grpc-status");
                assert_eq!(s.code(), t.code(), "status code round trip");
                assert_eq!(s.message(), t.message(), "status message round trip");
                assert_eq!(s.details(), t.details(), "status details round trip");
                assert_eq!(
                    entries(s.metadata()),
                    entries(t.metadata()),
                    "status metadata"
                );
            }
        }
        3 => {
            let s = String::from_utf8_lossy(rest);
            if let Ok(t) = Target::parse(&s) {
                let _ = t.authority();
            } else if let Err(e) = Target::parse(&s) {
                let _ = e.to_string();
            }
        }
        4 => {
            let m = percent_decode_message(rest);
            assert_eq!(
                percent_decode_message(percent_encode_message(&m).as_bytes()),
                m
            );
            let _ = Code::from_header_value(rest).map(|c| (c.as_str(), c.header_value()));
            if rest.len() >= 2 {
                let _ = Status::from_http_status(u16::from_le_bytes([rest[0], rest[1]]));
                let _ = Status::from_h2_reason(u32::from(rest[0]) << 8 | u32::from(rest[1]));
            }
        }
        _ => {
            let _ = CompressionEncoding::from_name(rest);
            let a = AcceptEncoding::parse(Some(rest));
            for e in CompressionEncoding::ALL {
                let _ = a.accepts(e);
            }
            let _ = Bytes::copy_from_slice(rest);
        }
    }
}
