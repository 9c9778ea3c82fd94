//! RFC 7541 Appendix C examples, error rules, truncation and garbage tests.

use bytes::BytesMut;

use super::encoder::encode_int;
use super::{decoder::decode_int, DecodeError, Decoder, Encoder, Header};
use crate::h2::error::Reason;

const NO_LIMIT: usize = usize::MAX;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<Header>, DecodeError> {
    let mut out = Vec::new();
    d.decode(block, NO_LIMIT, |h| out.push(h)).map(|()| out)
}

fn pairs(headers: &[Header]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                String::from_utf8_lossy(&h.name).into_owned(),
                String::from_utf8_lossy(&h.value).into_owned(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn table_pairs(fields: Vec<(&[u8], &[u8])>) -> Vec<(String, String)> {
    fields
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn encode_pairs(e: &mut Encoder, list: &[(&str, &str)]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    e.encode(
        list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        &mut dst,
    );
    dst.to_vec()
}

// ---------------------------------------------------------------------------------------------
// C.1 Integer representation examples

fn int_bytes(value: usize, prefix: u8) -> Vec<u8> {
    let mut dst = Vec::new();
    encode_int(value, prefix, 0, &mut dst);
    dst
}

#[test]
fn c1_1_encoding_10_using_a_5_bit_prefix() {
    assert_eq!(int_bytes(10, 5), [0x0a]);
    let mut pos = 0;
    assert_eq!(decode_int(&[0xea], &mut pos, 5), Ok(10)); // high bits are not part of it
    assert_eq!(pos, 1);
}

#[test]
fn c1_2_encoding_1337_using_a_5_bit_prefix() {
    assert_eq!(int_bytes(1337, 5), [0x1f, 0x9a, 0x0a]);
    let mut pos = 0;
    assert_eq!(decode_int(&[0x1f, 0x9a, 0x0a], &mut pos, 5), Ok(1337));
    assert_eq!(pos, 3);
}

#[test]
fn c1_3_encoding_42_starting_at_an_octet_boundary() {
    assert_eq!(int_bytes(42, 8), [0x2a]);
    let mut pos = 0;
    assert_eq!(decode_int(&[0x2a], &mut pos, 8), Ok(42));
    // Boundaries of every prefix size round-trip.
    for prefix in 1..=8u8 {
        for v in [
            0,
            1,
            30,
            31,
            126,
            127,
            128,
            254,
            255,
            256,
            16_383,
            16_384,
            u32::MAX as usize,
        ] {
            let b = int_bytes(v, prefix);
            let mut pos = 0;
            assert_eq!(decode_int(&b, &mut pos, prefix), Ok(v), "{v} / {prefix}");
            assert_eq!(pos, b.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// C.2 Header field representation examples

#[test]
fn c2_1_literal_header_field_with_indexing() {
    let wire = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    let mut d = Decoder::new(4096);
    let headers = decode(&mut d, &wire).unwrap();
    assert_eq!(headers, [Header::new("custom-key", "custom-header")]);
    assert_eq!(
        table_pairs(d.table().fields()),
        owned(&[("custom-key", "custom-header")])
    );
    assert_eq!(d.table_size(), 55);
    // Our encoder makes the same choice: a new name, indexed.
    let mut e = Encoder::new();
    e.set_huffman(false);
    assert_eq!(
        encode_pairs(&mut e, &[("custom-key", "custom-header")]),
        wire
    );
    assert_eq!(e.table_size(), 55);
}

#[test]
fn c2_2_literal_header_field_without_indexing() {
    let wire = hex("040c 2f73 616d 706c 652f 7061 7468");
    let mut d = Decoder::new(4096);
    let headers = decode(&mut d, &wire).unwrap();
    assert_eq!(headers, [Header::new(":path", "/sample/path")]);
    assert!(!headers[0].sensitive);
    assert_eq!(d.table_len(), 0);
    // By design our encoder indexes :path (it repeats on every call of a method), so its
    // bytes differ (0x44 instead of 0x04); check the round trip instead.
    let mut e = Encoder::new();
    e.set_huffman(false);
    let ours = encode_pairs(&mut e, &[(":path", "/sample/path")]);
    assert_eq!(ours[0], 0x44);
    assert_eq!(ours[1..], wire[1..]);
    assert_eq!(decode(&mut Decoder::new(4096), &ours).unwrap(), headers);
}

#[test]
fn c2_3_literal_header_field_never_indexed() {
    let wire = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let mut d = Decoder::new(4096);
    let headers = decode(&mut d, &wire).unwrap();
    assert_eq!(headers, [Header::new_sensitive("password", "secret")]);
    assert_eq!(d.table_len(), 0);
    let mut e = Encoder::new();
    e.set_huffman(false);
    let mut dst = BytesMut::new();
    e.encode_headers(&headers, &mut dst);
    assert_eq!(dst[..], wire[..]);
    assert_eq!(e.table_len(), 0);
}

#[test]
fn c2_4_indexed_header_field() {
    let wire = hex("82");
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &wire).unwrap(),
        [Header::new(":method", "GET")]
    );
    assert_eq!(d.table_len(), 0);
    assert_eq!(
        encode_pairs(&mut Encoder::new(), &[(":method", "GET")]),
        wire
    );
}

// ---------------------------------------------------------------------------------------------
// C.3 - C.6: sequences of blocks sharing one dynamic table

struct Example {
    wire: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// Dynamic table after the block, newest first.
    table: &'static [(&'static str, &'static str)],
    size: usize,
    /// Our encoder's bytes, where they differ from the RFC's by design.
    ours: Option<&'static str>,
}

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQUEST_TABLE_1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQUEST_TABLE_2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQUEST_TABLE_3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const C3: [Example; 3] = [
    Example {
        wire: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        headers: REQUEST_1,
        table: REQUEST_TABLE_1,
        size: 57,
        ours: None,
    },
    Example {
        wire: "8286 84be 5808 6e6f 2d63 6163 6865",
        headers: REQUEST_2,
        table: REQUEST_TABLE_2,
        size: 110,
        ours: None,
    },
    Example {
        wire: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        headers: REQUEST_3,
        table: REQUEST_TABLE_3,
        size: 164,
        ours: None,
    },
];

const C4: [Example; 3] = [
    Example {
        wire: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        headers: REQUEST_1,
        table: REQUEST_TABLE_1,
        size: 57,
        ours: None,
    },
    Example {
        wire: "8286 84be 5886 a8eb 1064 9cbf",
        headers: REQUEST_2,
        table: REQUEST_TABLE_2,
        size: 110,
        ours: None,
    },
    Example {
        wire: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        headers: REQUEST_3,
        table: REQUEST_TABLE_3,
        size: 164,
        ours: None,
    },
];

const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RESPONSE_TABLE_1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESPONSE_TABLE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESPONSE_TABLE_3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

const C5: [Example; 3] = [
    Example {
        wire: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
               2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
               6c65 2e63 6f6d",
        headers: RESPONSE_1,
        table: RESPONSE_TABLE_1,
        size: 222,
        ours: None,
    },
    Example {
        wire: "4803 3330 37c1 c0bf",
        headers: RESPONSE_2,
        table: RESPONSE_TABLE_2,
        size: 222,
        ours: None,
    },
    Example {
        wire: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
               54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
               5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
               3d31",
        headers: RESPONSE_3,
        table: RESPONSE_TABLE_3,
        size: 215,
        ours: None,
    },
];

const C6: [Example; 3] = [
    Example {
        wire: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
               2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        headers: RESPONSE_1,
        table: RESPONSE_TABLE_1,
        size: 222,
        ours: None,
    },
    Example {
        wire: "4883 640e ffc1 c0bf",
        headers: RESPONSE_2,
        table: RESPONSE_TABLE_2,
        size: 222,
        // "307" is 3 bytes raw and 3 bytes Huffman-coded; we use Huffman only when it is
        // strictly shorter (RFC 7541 §5.2 leaves the choice to the encoder), so it goes raw.
        ours: Some("4803 3330 37c1 c0bf"),
    },
    Example {
        wire: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
               77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
               9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        headers: RESPONSE_3,
        table: RESPONSE_TABLE_3,
        size: 215,
        ours: None,
    },
];

/// Decodes examples `0..=upto` in order into one decoder, checking each; then encodes the
/// same headers with one encoder and checks that it produces the RFC's bytes (our indexing
/// choices agree with the RFC's for all of C.3 to C.6) and the same table.
fn check_sequence(examples: &[Example], upto: usize, table_size: usize, huffman: bool) {
    let mut d = Decoder::new(table_size);
    let mut e = Encoder::new();
    e.set_huffman(huffman);
    e.set_max_table_size(table_size);
    for (i, ex) in examples[..=upto].iter().enumerate() {
        let wire = hex(ex.wire);
        let headers = decode(&mut d, &wire).unwrap();
        assert_eq!(pairs(&headers), owned(ex.headers), "example {i} headers");
        assert!(headers.iter().all(|h| !h.sensitive));
        assert_eq!(
            table_pairs(d.table().fields()),
            owned(ex.table),
            "example {i} table"
        );
        assert_eq!(d.table_size(), ex.size, "example {i} table size");

        let mut ours = encode_pairs(&mut e, ex.headers);
        if i == 0 && table_size != 4096 {
            // The encoder announces the smaller table first: a size update of `table_size`
            // (RFC 7541 §6.3), which the RFC's examples leave out.
            let mut update = Vec::new();
            encode_int(table_size, 5, 0x20, &mut update);
            assert_eq!(ours[..update.len()], update[..]);
            ours.drain(..update.len());
        }
        let expected = ex.ours.map_or_else(|| wire.clone(), hex);
        assert_eq!(ours, expected, "example {i} encoded bytes");
        if ex.ours.is_some() {
            let mut check = Decoder::new(table_size);
            for prev in &examples[..i] {
                decode(&mut check, &hex(prev.wire)).unwrap();
            }
            assert_eq!(
                pairs(&decode(&mut check, &ours).unwrap()),
                owned(ex.headers)
            );
        }
        assert_eq!(
            table_pairs(e.table().fields()),
            owned(ex.table),
            "example {i} encoder table"
        );
        assert_eq!(e.table_size(), ex.size);
    }
}

#[test]
fn c3_1_first_request_without_huffman() {
    check_sequence(&C3, 0, 4096, false);
}

#[test]
fn c3_2_second_request_without_huffman() {
    check_sequence(&C3, 1, 4096, false);
}

#[test]
fn c3_3_third_request_without_huffman() {
    check_sequence(&C3, 2, 4096, false);
}

#[test]
fn c4_1_first_request_with_huffman() {
    check_sequence(&C4, 0, 4096, true);
}

#[test]
fn c4_2_second_request_with_huffman() {
    check_sequence(&C4, 1, 4096, true);
}

#[test]
fn c4_3_third_request_with_huffman() {
    check_sequence(&C4, 2, 4096, true);
}

#[test]
fn c5_1_first_response_without_huffman() {
    check_sequence(&C5, 0, 256, false);
}

#[test]
fn c5_2_second_response_without_huffman_evicts() {
    check_sequence(&C5, 1, 256, false);
}

#[test]
fn c5_3_third_response_without_huffman_evicts() {
    check_sequence(&C5, 2, 256, false);
}

#[test]
fn c6_1_first_response_with_huffman() {
    check_sequence(&C6, 0, 256, true);
}

#[test]
fn c6_2_second_response_with_huffman_evicts() {
    check_sequence(&C6, 1, 256, true);
}

#[test]
fn c6_3_third_response_with_huffman_evicts() {
    check_sequence(&C6, 2, 256, true);
}

// ---------------------------------------------------------------------------------------------
// Decoder errors, one per rule

#[test]
fn size_update_after_first_field_is_compression_error() {
    let mut d = Decoder::new(4096);
    let err = decode(&mut d, &[0x82, 0x3f, 0xe1, 0x1f]).unwrap_err();
    assert_eq!(err, DecodeError::SizeUpdateNotAtStart);
    assert_eq!(err.reason(), Reason::COMPRESSION_ERROR);
    assert!(err.is_connection_error());
}

#[test]
fn size_updates_at_start_are_applied_in_order() {
    let mut d = Decoder::new(4096);
    decode(&mut d, &hex(C3[0].wire)).unwrap();
    assert_eq!(d.table_len(), 1);
    // 0 (evicts everything) then back to 4096, then a field.
    let headers = decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap();
    assert_eq!(headers, [Header::new(":method", "GET")]);
    assert_eq!((d.table_len(), d.max_table_size()), (0, 4096));
    // A block made only of a size update is fine too.
    decode(&mut d, &[0x3f, 0xe1, 0x01]).unwrap();
    assert_eq!(d.max_table_size(), 256);
}

#[test]
fn size_update_above_advertised_limit_is_error() {
    let mut d = Decoder::new(4096);
    // 4097 = 31 + 4066: 0x3f 0xe2 0x1f.
    assert_eq!(
        decode(&mut d, &[0x3f, 0xe2, 0x1f]),
        Err(DecodeError::SizeUpdateTooLarge)
    );
    let mut d = Decoder::new(100);
    assert_eq!(
        decode(&mut d, &[0x3f, 0x46]),
        Err(DecodeError::SizeUpdateTooLarge)
    ); // 101
    let mut d = Decoder::new(100);
    assert!(decode(&mut d, &[0x3f, 0x45]).is_ok()); // 100
}

#[test]
fn size_update_missing_after_limit_lowered_is_error() {
    let mut d = Decoder::new(4096);
    d.set_max_table_size(1024);
    assert_eq!(decode(&mut d, &[0x82]), Err(DecodeError::SizeUpdateMissing));

    // An update, but not low enough to honour the lowest limit that was acked.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    assert_eq!(
        decode(&mut d, &[0x3f, 0xe1, 0x1f, 0x82]),
        Err(DecodeError::SizeUpdateMissing)
    );

    // Minimum then final: accepted, and not required again afterwards.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    assert!(decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).is_ok());
    assert!(decode(&mut d, &[0x82]).is_ok());

    // Raising the limit requires nothing.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(8192);
    assert!(decode(&mut d, &[0x82]).is_ok());
}

#[test]
fn huffman_eos_in_string_is_error() {
    // Literal without indexing, new name "a" (Huffman 0x1f), value: EOS + padding (4 bytes).
    let block = [0x00, 0x81, 0x1f, 0x84, 0xff, 0xff, 0xff, 0xff];
    let err = decode(&mut Decoder::new(4096), &block).unwrap_err();
    assert_eq!(err, DecodeError::InvalidHuffman);
    assert_eq!(err.reason(), Reason::COMPRESSION_ERROR);
}

#[test]
fn huffman_padding_longer_than_7_bits_is_error() {
    // Value "a" followed by a whole byte of padding.
    let block = [0x00, 0x81, 0x1f, 0x82, 0x1f, 0xff];
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(DecodeError::InvalidHuffman)
    );
    // The same without the extra byte is fine.
    let block = [0x00, 0x81, 0x1f, 0x81, 0x1f];
    assert_eq!(
        decode(&mut Decoder::new(4096), &block).unwrap(),
        [Header::new("a", "a")]
    );
}

#[test]
fn huffman_padding_not_all_ones_is_error() {
    let block = [0x00, 0x81, 0x1f, 0x81, 0x1e];
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(DecodeError::InvalidHuffman)
    );
}

#[test]
fn index_zero_is_error() {
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x80]),
        Err(DecodeError::InvalidIndex(0))
    );
}

#[test]
fn index_past_dynamic_table_is_error() {
    let mut d = Decoder::new(4096);
    // Empty table: 62 is past the end.
    assert_eq!(decode(&mut d, &[0xbe]), Err(DecodeError::InvalidIndex(62)));
    let mut d = Decoder::new(4096);
    decode(&mut d, &hex(C3[0].wire)).unwrap();
    assert_eq!(
        decode(&mut d, &[0xbe]).unwrap(),
        [Header::new(":authority", "www.example.com")]
    );
    assert_eq!(decode(&mut d, &[0xbf]), Err(DecodeError::InvalidIndex(63)));
}

#[test]
fn literal_name_index_past_table_is_error() {
    // Literal with incremental indexing, name index 62, empty table.
    let err = decode(&mut Decoder::new(4096), &[0x7e, 0x01, b'x']).unwrap_err();
    assert_eq!(err, DecodeError::InvalidIndex(62));
    // Never indexed, name index 0x0f + 0x7f = 142.
    let err = decode(&mut Decoder::new(4096), &[0x1f, 0x7f, 0x00]).unwrap_err();
    assert_eq!(err, DecodeError::InvalidIndex(142));
}

#[test]
fn integer_overflow_is_error() {
    let mut d = Decoder::new(4096);
    // Index 127 + 2^35-ish: more than 32 bits.
    let block = [0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(decode(&mut d, &block), Err(DecodeError::IntegerOverflow));
    // Six continuation bytes, even if they are zeros.
    let mut pos = 0;
    assert_eq!(
        decode_int(&[0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos, 7),
        Err(DecodeError::IntegerOverflow)
    );
    // u32::MAX itself is representable (and then an invalid index).
    let mut max = Vec::new();
    encode_int(u32::MAX as usize, 7, 0x80, &mut max);
    assert_eq!(
        decode(&mut Decoder::new(4096), &max),
        Err(DecodeError::InvalidIndex(u32::MAX as usize))
    );
    // One more than u32::MAX overflows.
    let mut over = Vec::new();
    encode_int(u32::MAX as usize + 1, 7, 0x80, &mut over);
    assert_eq!(
        decode(&mut Decoder::new(4096), &over),
        Err(DecodeError::IntegerOverflow)
    );
}

#[test]
fn string_longer_than_block_is_truncated() {
    // Name of length 10 with 3 bytes present.
    let block = [0x00, 0x0a, b'a', b'b', b'c'];
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(DecodeError::Truncated)
    );
    // Length u32::MAX.
    let mut block = vec![0x00];
    encode_int(u32::MAX as usize, 7, 0, &mut block);
    assert_eq!(
        decode(&mut Decoder::new(4096), &block),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn header_list_over_limit_is_reported_and_table_stays_in_sync() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let big = [
        Header::new("x-one", "1"),             // 38
        Header::new("x-two", vec![b'2'; 100]), // 137 -> 175 > 100
        Header::new("x-three", "3"),           // delivered? no: past the limit
        Header::new(":authority", "example.org"),
    ];
    let mut block = BytesMut::new();
    e.encode_headers(&big, &mut block);
    let mut got = Vec::new();
    let err = d.decode(&block, 100, |h| got.push(h)).unwrap_err();
    assert_eq!(err, DecodeError::HeaderListTooLarge);
    assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    assert!(!err.is_connection_error());
    // Only the fields within the limit were handed out.
    assert_eq!(got, big[..1]);
    // The table has all four fields, as the encoder's does.
    assert_eq!(d.table_len(), 4);
    assert_eq!(d.table().fields(), e.table().fields());
    // The next block refers to them and decodes fine.
    let mut block = BytesMut::new();
    e.encode_headers(&big, &mut block);
    assert_eq!(block.len(), 4, "all four fields are indexed now");
    let mut got = Vec::new();
    d.decode(&block, NO_LIMIT, |h| got.push(h)).unwrap();
    assert_eq!(got, big);
}

#[test]
fn header_list_limit_is_inclusive_and_counts_rfc_size() {
    let headers = [Header::new("a", "b"), Header::new("cc", "dd")]; // 34 + 36
    let mut block = BytesMut::new();
    Encoder::new().encode_headers(&headers, &mut block);
    let mut got = Vec::new();
    Decoder::new(4096)
        .decode(&block, 70, |h| got.push(h))
        .unwrap();
    assert_eq!(got, headers);
    let mut got = Vec::new();
    let err = Decoder::new(4096).decode(&block, 69, |h| got.push(h));
    assert_eq!(err, Err(DecodeError::HeaderListTooLarge));
    assert_eq!(got, headers[..1]);
}

#[test]
fn connection_errors_are_sticky() {
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &[0x80]), Err(DecodeError::InvalidIndex(0)));
    assert_eq!(decode(&mut d, &[0x82]), Err(DecodeError::InvalidIndex(0)));
    // HeaderListTooLarge is not.
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(&[0x82], 10, |_| {}),
        Err(DecodeError::HeaderListTooLarge)
    );
    assert!(d.decode(&[0x82], 100, |_| {}).is_ok());
}

#[test]
fn decode_errors_display_and_reason() {
    let all = [
        DecodeError::IntegerOverflow,
        DecodeError::Truncated,
        DecodeError::InvalidIndex(70),
        DecodeError::InvalidHuffman,
        DecodeError::SizeUpdateNotAtStart,
        DecodeError::SizeUpdateTooLarge,
        DecodeError::SizeUpdateMissing,
    ];
    for e in all {
        assert_eq!(e.reason(), Reason::COMPRESSION_ERROR);
        assert!(e.is_connection_error());
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(
        DecodeError::InvalidIndex(70).to_string(),
        "HPACK index 70 is invalid"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(DecodeError::Truncated);
    assert!(boxed.to_string().contains("truncated"));
}

// ---------------------------------------------------------------------------------------------
// Truncation and garbage

/// Encodes `headers` one field per call into one buffer, so the field boundaries are known.
fn encode_with_boundaries(e: &mut Encoder, headers: &[Header]) -> (Vec<u8>, Vec<usize>) {
    let mut dst = BytesMut::new();
    let mut ends = vec![0];
    for h in headers {
        e.encode_headers([h], &mut dst);
        ends.push(dst.len());
    }
    (dst.to_vec(), ends)
}

fn grpc_request() -> Vec<Header> {
    vec![
        Header::new(":method", "POST"),
        Header::new(":scheme", "http"),
        Header::new(":path", "/helloworld.Greeter/SayHello"),
        Header::new(":authority", "localhost:50051"),
        Header::new("content-type", "application/grpc"),
        Header::new("te", "trailers"),
        Header::new("user-agent", "grpc-sync/0.1"),
        Header::new("grpc-timeout", "1S"),
        Header::new("grpc-accept-encoding", "identity,gzip"),
        Header::new_sensitive("x-token", "s3cr3t\u{e9}"),
        Header::new("x-bin-bin", vec![0u8, 0xff, 0x80, 0x7f]),
    ]
}

#[test]
fn every_prefix_of_a_block_is_ok_at_field_boundaries_else_truncated() {
    for (huffman, indexing) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut e = Encoder::new();
        e.set_huffman(huffman);
        e.set_indexing(indexing);
        let headers = grpc_request();
        // Second block: the dynamic table is warm, so indexed fields are in it too.
        let (first, _) = encode_with_boundaries(&mut e, &headers);
        let (block, ends) = encode_with_boundaries(&mut e, &headers);
        for cut in 0..=block.len() {
            let mut d = Decoder::new(4096);
            decode(&mut d, &first).unwrap();
            let result = decode(&mut d, &block[..cut]);
            match ends.iter().position(|&end| end == cut) {
                Some(n) => assert_eq!(result.unwrap(), headers[..n], "cut {cut}"),
                None => assert_eq!(result, Err(DecodeError::Truncated), "cut {cut}"),
            }
        }
    }
}

#[test]
fn every_prefix_of_rfc_examples_never_panics() {
    for examples in [&C3, &C4, &C5, &C6] {
        for ex in examples.iter() {
            let wire = hex(ex.wire);
            for cut in 0..wire.len() {
                let mut d = Decoder::new(4096);
                let _ = decode(&mut d, &wire[..cut]);
            }
        }
    }
}

/// xorshift64: deterministic pseudo-random numbers without a dependency.
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

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[test]
fn garbage_never_panics() {
    // Bytes that start representations, plus fully random ones.
    const INTERESTING: [u8; 16] = [
        0x80, 0x81, 0xbe, 0xbf, 0xff, 0x40, 0x7f, 0x3f, 0x20, 0x10, 0x1f, 0x00, 0x0f, 0x7e, 0x85,
        0xc0,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut d = Decoder::new(4096);
    let mut errors = 0;
    for _ in 0..30_000 {
        let len = rng.below(40);
        let block: Vec<u8> = (0..len)
            .map(|_| match rng.below(3) {
                0 => INTERESTING[rng.below(INTERESTING.len())],
                _ => rng.byte(),
            })
            .collect();
        let limit = if rng.below(4) == 0 { 64 } else { NO_LIMIT };
        if d.decode(&block, limit, |_| {}).is_err() {
            errors += 1;
            d = Decoder::new(4096);
        }
    }
    assert!(errors > 1000, "the garbage is mostly invalid ({errors})");
}

#[test]
fn mutated_valid_blocks_never_panic() {
    let mut rng = Rng(42);
    let mut seeds: Vec<Vec<u8>> = [&C3, &C4, &C5, &C6]
        .iter()
        .flat_map(|exs| exs.iter().map(|ex| hex(ex.wire)))
        .collect();
    let mut e = Encoder::new();
    for _ in 0..2 {
        let mut dst = BytesMut::new();
        e.encode_headers(&grpc_request(), &mut dst);
        seeds.push(dst.to_vec());
    }
    for _ in 0..20_000 {
        let mut block = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            if block.is_empty() {
                break;
            }
            let i = rng.below(block.len());
            match rng.below(4) {
                0 => block[i] = rng.byte(),
                1 => block[i] ^= 1 << rng.below(8),
                2 => block.truncate(i),
                _ => block.insert(i, rng.byte()),
            }
        }
        let mut d = Decoder::new(if rng.below(2) == 0 { 256 } else { 4096 });
        let _ = d.decode(&block, NO_LIMIT, |_| {});
        let _ = d.decode(&block, 200, |_| {});
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder

#[test]
fn header_size_is_name_plus_value_plus_32() {
    assert_eq!(Header::new("custom-key", "custom-header").size(), 55);
    assert_eq!(Header::new("", "").size(), 32);
}

#[test]
fn encoder_emits_size_update_at_next_block_start() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    decode(&mut d, &encode_pairs(&mut e, REQUEST_3)).unwrap();
    assert_eq!(e.table_len(), 2);
    e.set_max_table_size(40);
    d.set_max_table_size(40);
    let block = encode_pairs(&mut e, &[(":method", "GET")]);
    assert_eq!(block, [0x3f, 0x09, 0x82]); // 40 = 31 + 9: both entries (57, 54) go
    assert_eq!(
        decode(&mut d, &block).unwrap(),
        [Header::new(":method", "GET")]
    );
    assert_eq!((e.table_len(), d.table_len()), (0, 0));
    // Only once.
    assert_eq!(encode_pairs(&mut e, &[(":method", "GET")]), [0x82]);
}

#[test]
fn encoder_emits_minimum_then_final_size_update() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    decode(&mut d, &encode_pairs(&mut e, REQUEST_3)).unwrap();
    // Lowered to 0, then back to 4096 before the next block: both must be sent.
    e.set_max_table_size(0);
    d.set_max_table_size(0);
    e.set_max_table_size(4096);
    d.set_max_table_size(4096);
    let block = encode_pairs(&mut e, &[(":method", "GET")]);
    assert_eq!(block, [0x20, 0x3f, 0xe1, 0x1f, 0x82]);
    decode(&mut d, &block).unwrap();
    assert_eq!(
        (e.table_len(), d.table_len(), d.max_table_size()),
        (0, 0, 4096)
    );
    // Lowered twice: only the last, lowest value.
    e.set_max_table_size(1000);
    e.set_max_table_size(500);
    assert_eq!(encode_pairs(&mut e, &[]), [0x3f, 0xd5, 0x03]); // 500 = 31 + 469
}

#[test]
fn encoder_caps_its_table_at_its_own_limit() {
    let mut e = Encoder::new();
    // The peer allows more than we keep: nothing to announce.
    e.set_max_table_size(1 << 20);
    assert_eq!(encode_pairs(&mut e, &[(":method", "GET")]), [0x82]);
    e.set_table_size_limit(8192);
    let block = encode_pairs(&mut e, &[]);
    let mut d = Decoder::new(4096);
    d.set_max_table_size(1 << 20);
    decode(&mut d, &block).unwrap();
    assert_eq!(d.max_table_size(), 8192);
}

#[test]
fn encoder_makes_repeated_grpc_requests_one_byte_per_field() {
    let headers = grpc_request();
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let mut first = BytesMut::new();
    e.encode_headers(&headers, &mut first);
    assert_eq!(decode(&mut d, &first).unwrap(), headers);
    let mut second = BytesMut::new();
    e.encode_headers(&headers, &mut second);
    assert_eq!(decode(&mut d, &second).unwrap(), headers);
    // Everything is an index except the sensitive x-token, a literal never indexed that
    // refers to no table name (1 + 1 + 7 + 1 + 8 bytes at most).
    let non_sensitive = headers.len() - 1;
    assert!(second.len() <= non_sensitive + 18, "{} bytes", second.len());
    assert!(second[..non_sensitive - 1].iter().all(|b| b & 0x80 != 0));
}

#[test]
fn encoder_indexes_only_the_name_of_per_call_fields() {
    let mut e = Encoder::new();
    e.set_huffman(false);
    let mut d = Decoder::new(4096);
    let b1 = encode_pairs(&mut e, &[("grpc-timeout", "100m")]);
    assert_eq!(b1[0], 0x40, "first one is indexed, with a new name");
    let b2 = encode_pairs(&mut e, &[("grpc-timeout", "99m")]);
    assert_eq!(
        b2[0], 0x0f,
        "then literals without indexing that refer to the name (62)"
    );
    assert_eq!(b2[1], 62 - 15);
    let b3 = encode_pairs(&mut e, &[("grpc-timeout", "100m")]);
    assert_eq!(b3, [0x80 | 62], "the indexed value is still found");
    assert_eq!(e.table_len(), 1);
    // content-length has a static name: never indexed at all.
    let b4 = encode_pairs(&mut e, &[("content-length", "12")]);
    assert_eq!(b4, [0x0f, 28 - 15, 2, b'1', b'2']);
    for b in [b1, b2, b3, b4] {
        decode(&mut d, &b).unwrap();
    }
    assert_eq!(d.table().fields(), e.table().fields());
}

#[test]
fn encoder_sends_sensitive_fields_never_indexed() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let headers = [
        Header::new_sensitive("x-secret", "hunter2"),
        Header::new_sensitive(":method", "GET"), // even a static field
        Header::new("authorization", "Bearer abc"),
    ];
    let mut block = BytesMut::new();
    e.encode_headers(&headers, &mut block);
    assert_eq!(e.table_len(), 0);
    let got = decode(&mut d, &block).unwrap();
    assert_eq!(d.table_len(), 0);
    assert!(got.iter().all(|h| h.sensitive));
    assert_eq!(pairs(&got), pairs(&headers));
    // A static name is still referred to by index: never indexed (0x10) with name index 2
    // (:method), and 0x1f 0x08 = name index 15 + 8 = 23 (authorization).
    let mut block = BytesMut::new();
    e.encode_headers(&headers[1..2], &mut block);
    assert_eq!(block[0], 0x12);
    let mut block = BytesMut::new();
    e.encode_headers(&headers[2..3], &mut block);
    assert_eq!(block[..2], [0x1f, 0x08]);
}

#[test]
fn encoder_uses_huffman_only_when_shorter() {
    let mut e = Encoder::new();
    e.set_indexing(false);
    // Lowercase text shrinks under Huffman.
    let b = encode_pairs(&mut e, &[("x-a", "aaaaaaaa")]);
    assert_eq!(b[b.len() - 6], 0x85, "value: Huffman, 5 bytes");
    // Bytes above 0x7f grow under Huffman: sent raw.
    let value = [0xf0u8, 0xf1, 0xf2, 0xf3];
    let mut dst = BytesMut::new();
    e.encode([(&b"x-b"[..], &value[..])], &mut dst);
    assert_eq!(dst[dst.len() - 5..], [0x04, 0xf0, 0xf1, 0xf2, 0xf3]);
}

#[test]
fn encoder_with_indexing_off_adds_nothing() {
    let mut e = Encoder::new();
    e.set_indexing(false);
    let mut d = Decoder::new(4096);
    for _ in 0..3 {
        let block = encode_pairs(&mut e, REQUEST_3);
        assert_eq!(pairs(&decode(&mut d, &block).unwrap()), owned(REQUEST_3));
    }
    assert_eq!((e.table_len(), d.table_len()), (0, 0));
}

#[test]
fn encoder_does_not_index_fields_larger_than_three_quarters_of_the_table() {
    let mut e = Encoder::new();
    e.set_max_table_size(256);
    let mut d = Decoder::new(256);
    let big = "v".repeat(200); // 4 + 200 + 32 = 236 > 192
    let block = encode_pairs(&mut e, &[("x-big", &big), ("x-small", "s")]);
    decode(&mut d, &block).unwrap();
    assert_eq!(table_pairs(e.table().fields()), owned(&[("x-small", "s")]));
    assert_eq!(d.table().fields(), e.table().fields());
}

fn random_headers(rng: &mut Rng, n: usize) -> Vec<Header> {
    const NAMES: [&str; 12] = [
        ":path",
        ":authority",
        "content-type",
        "grpc-timeout",
        "grpc-message",
        "x-request-id",
        "user-agent",
        "cookie",
        "x-custom-bin",
        "authorization",
        ":status",
        "te",
    ];
    (0..n)
        .map(|_| {
            let name: Vec<u8> = if rng.below(3) == 0 {
                (0..1 + rng.below(12))
                    .map(|_| b'a' + rng.below(26) as u8)
                    .collect()
            } else {
                NAMES[rng.below(NAMES.len())].as_bytes().to_vec()
            };
            let value: Vec<u8> = match rng.below(4) {
                0 => Vec::new(),
                1 => (0..rng.below(8))
                    .map(|_| b'0' + rng.below(3) as u8)
                    .collect(),
                2 => (0..rng.below(300)).map(|_| rng.byte()).collect(),
                _ => (0..rng.below(40))
                    .map(|_| b' ' + rng.below(95) as u8)
                    .collect(),
            };
            let mut h = Header::new(name, value);
            h.sensitive = rng.below(10) == 0;
            h
        })
        .collect()
}

#[test]
fn random_header_lists_round_trip_in_every_mode_with_table_size_changes() {
    let mut rng = Rng(7);
    for (huffman, indexing) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut e = Encoder::new();
        e.set_huffman(huffman);
        e.set_indexing(indexing);
        let mut d = Decoder::new(4096);
        for round in 0..400 {
            if round % 37 == 5 {
                let sizes = [0, 64, 256, 1000, 4096, 8192];
                for _ in 0..1 + rng.below(2) {
                    let n = sizes[rng.below(sizes.len())];
                    e.set_max_table_size(n);
                    d.set_max_table_size(n);
                }
            }
            let n = rng.below(12);
            let headers = random_headers(&mut rng, n);
            let mut block = BytesMut::new();
            e.encode_headers(&headers, &mut block);
            let got = decode(&mut d, &block).unwrap();
            // authorization is always sent never indexed, so it comes back sensitive.
            let expected: Vec<Header> = headers
                .iter()
                .map(|h| {
                    let mut h = h.clone();
                    h.sensitive |= h.name == "authorization";
                    h
                })
                .collect();
            assert_eq!(got, expected, "round {round}");
            assert_eq!(d.table().fields(), e.table().fields(), "round {round}");
            assert!(e.table_size() <= e.table().max_size());
        }
    }
}

#[test]
fn encoder_keeps_finding_fields_after_evictions() {
    // A small table and many distinct fields: the position map must forget evicted entries
    // and keep the newest of duplicates.
    let mut e = Encoder::new();
    e.set_max_table_size(200);
    let mut d = Decoder::new(200);
    for i in 0..300 {
        let value = format!("{}", i % 7);
        let list = [("x-k", value.as_str()), ("x-k", "0")];
        let block = encode_pairs(&mut e, &list);
        assert_eq!(pairs(&decode(&mut d, &block).unwrap()), owned(&list));
        assert_eq!(d.table().fields(), e.table().fields());
        // The second field is always already in the table (inserted by this or an earlier
        // block) unless the first one just evicted it.
        assert!(
            block.last().unwrap() & 0x80 != 0 || block.len() > 4,
            "block {i}: {block:x?}"
        );
    }
}

#[test]
fn never_indexed_names_are_never_sent_as_an_index() {
    // Both are whole static entries with an empty value (indexes 23 and 49), and a sensitive
    // field equal to a dynamic entry: each still goes as a never-indexed literal.
    let mut e = Encoder::new();
    let mut block = BytesMut::new();
    e.encode([(&b"x-key"[..], &b"v"[..])], &mut block);
    for (name, value, sensitive) in [
        (&b"authorization"[..], &b""[..], false),
        (b"proxy-authorization", b"", false),
        (b"x-key", b"v", true),
    ] {
        block.clear();
        let h = if sensitive {
            Header::new_sensitive(name, value)
        } else {
            Header::new(name, value)
        };
        e.encode_headers([&h], &mut block);
        // 0001xxxx: literal never indexed (RFC 7541 §6.2.3).
        assert_eq!(block[0] & 0xf0, 0x10, "{h:?}: {block:02x?}");
    }
}
