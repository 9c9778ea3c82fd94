//! The HPACK decoder (`h2::hpack::Decoder`) on a sequence of arbitrary header blocks.
//!
//! Input: one byte choosing the decoder's table size and header list limit, then blocks:
//! each starts with a control byte (bit 7: lower/raise the size-update limit first, as when
//! a new SETTINGS_HEADER_TABLE_SIZE is acked) and a 2-byte length, then that many bytes.
//!
//! Properties: never panics; the table never grows past its maximum; an error other than
//! `HeaderListTooLarge` is sticky; every block that decodes re-encodes (with an `Encoder`
//! that keeps its own table across blocks) to a block that decodes to the same fields.

use bytes::BytesMut;
use grpc_sync::h2::hpack::{DecodeError, Decoder, Encoder, Header};

const TABLE_SIZES: [usize; 8] = [0, 1, 32, 64, 256, 4096, 16384, 65536];
const LIST_LIMITS: [usize; 4] = [usize::MAX, 16 << 10, 256, 0];

/// Runs one input (the fuzz target's whole body).
pub fn run(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let table = TABLE_SIZES[usize::from(sel & 7)];
    let list_limit = LIST_LIMITS[usize::from((sel >> 3) & 3)];
    let huffman = sel & 0x20 == 0;
    let indexing = sel & 0x40 == 0;
    let mut dec = Decoder::new(table);

    // The mirror: what decoded is re-encoded and decoded again.
    let mut enc = Encoder::new();
    enc.set_huffman(huffman);
    enc.set_indexing(indexing);
    let mut mirror = Decoder::new(4096);
    let mut broken: Option<DecodeError> = None;

    while rest.len() >= 3 {
        let ctl = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let block = &rest[3..3 + len];
        rest = &rest[3 + len..];
        if ctl & 0x80 != 0 {
            dec.set_max_table_size(TABLE_SIZES[usize::from(ctl & 7)]);
        }
        if ctl & 0x40 != 0 {
            // The peer's SETTINGS_HEADER_TABLE_SIZE changes for the mirror's encoder; the
            // mirror decoder's limit is our 4096.
            enc.set_max_table_size(TABLE_SIZES[usize::from((ctl >> 3) & 7)].min(4096));
        }
        let mut fields = Vec::new();
        let res = dec.decode(block, list_limit, |h| fields.push(h));
        assert!(
            dec.table_size() <= dec.max_table_size(),
            "table over its maximum"
        );
        if let Some(prev) = broken {
            assert_eq!(res, Err(prev), "decoder error is not sticky");
            continue;
        }
        match res {
            Ok(()) => {
                let size: usize = fields.iter().map(Header::size).sum();
                assert!(size <= list_limit, "list over the limit accepted");
                let mut out = BytesMut::new();
                enc.encode_headers(fields.iter(), &mut out);
                let mut again = Vec::new();
                mirror
                    .decode(&out, usize::MAX, |h| again.push(h))
                    .unwrap_or_else(|e| panic!("re-encoded block does not decode: {e}"));
                assert_eq!(fields.len(), again.len(), "field count after round trip");
                for (a, b) in fields.iter().zip(&again) {
                    assert_eq!(
                        (&a.name, &a.value),
                        (&b.name, &b.value),
                        "field after round trip"
                    );
                    assert!(
                        !a.sensitive || b.sensitive,
                        "never-indexed field lost its flag"
                    );
                }
                assert!(mirror.table_size() <= mirror.max_table_size());
            }
            Err(DecodeError::HeaderListTooLarge) => {
                let size: usize = fields.iter().map(Header::size).sum();
                assert!(size <= list_limit, "fields past the limit were passed on");
            }
            Err(e) => {
                let _ = e.to_string();
                let _ = e.reason();
                broken = Some(e);
            }
        }
    }
}
