//! Huffman coding of string literals (RFC 7541 §5.2, Appendix B).

use bytes::{BufMut, BytesMut};

use super::huffman_table::{ACCEPT, DECODE, EMIT, ENCODE, FAIL};
use super::DecodeError;

/// Returns the length in bytes of `src` once Huffman-coded, padding included.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| ENCODE[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `src` to `dst`, padded with the most significant bits of
/// EOS (all ones) to a whole byte (RFC 7541 §5.2).
pub(super) fn encode(src: &[u8], dst: &mut BytesMut) {
    // `acc` holds `bits` pending bits in its low end; at most 7 + 30 are ever pending.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = ENCODE[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.put_u8(((acc << pad) as u8) | (0xff >> bits));
    }
}

/// Decodes a Huffman-coded string into `dst`.
///
/// # Errors
///
/// [`DecodeError::InvalidHuffman`] if the string contains EOS, or ends in padding that is
/// longer than 7 bits or not all ones (RFC 7541 §5.2).
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    // Every symbol is at least 5 bits long, so the output is at most 8/5 of the input.
    dst.reserve(src.len() * 8 / 5 + 1);
    let mut state = 0usize;
    let mut accept = true;
    for &b in src {
        for nibble in [b >> 4, b & 0x0f] {
            let (next, flags, sym) = DECODE[state][nibble as usize];
            if flags & FAIL != 0 {
                return Err(DecodeError::InvalidHuffman);
            }
            if flags & EMIT != 0 {
                dst.push(sym);
            }
            state = next as usize;
            accept = flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(DecodeError::InvalidHuffman)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(s, &mut dst);
        assert_eq!(dst.len(), encoded_len(s));
        dst.to_vec()
    }

    fn dec(s: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        decode(s, &mut out).map(|()| out)
    }

    #[test]
    fn rfc_strings_encode_to_rfc_bytes() {
        // RFC 7541 C.4.1 and C.6.1.
        assert_eq!(
            enc(b"www.example.com"),
            [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]
        );
        assert_eq!(enc(b"no-cache"), [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]);
        assert_eq!(enc(b"302"), [0x64, 0x02]);
        assert_eq!(enc(b""), [0u8; 0]);
    }

    #[test]
    fn encode_table_is_a_complete_canonical_prefix_code() {
        // Kraft equality (complete), and codes counting up in (length, symbol) order
        // (canonical, as RFC 7541 Appendix B is): catches a hand-edited table.
        let kraft: u64 = ENCODE.iter().map(|&(_, len)| 1u64 << (30 - len)).sum();
        assert_eq!(kraft, 1 << 30);
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (ENCODE[s].1, s));
        for pair in order.windows(2) {
            let (a, b) = (ENCODE[pair[0]], ENCODE[pair[1]]);
            assert_eq!(b.0, (a.0 + 1) << (b.1 - a.1), "symbols {pair:?}");
        }
        assert_eq!(ENCODE[256], (0x3fff_ffff, 30));
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(dec(&enc(&all)).unwrap(), all);
        for b in 0..=255u8 {
            for n in 1..=9 {
                let s = vec![b; n];
                assert_eq!(dec(&enc(&s)).unwrap(), s, "byte {b} x{n}");
            }
        }
    }

    #[test]
    fn huffman_eos_in_string_is_error() {
        // 'a' (00011) then EOS (30 ones), padded: 00011111 11111111 11111111 11111111 11111000...
        // EOS is 30 bits; the decoder sees it whole before the string ends.
        let mut bits: u64 = 0b00011;
        bits = (bits << 30) | 0x3fff_ffff;
        let total = 35;
        let padded = (bits << (40 - total)) | ((1 << (40 - total)) - 1);
        let bytes = padded.to_be_bytes()[3..].to_vec();
        assert_eq!(dec(&bytes), Err(DecodeError::InvalidHuffman));
        // EOS alone, padded to 32 bits with ones.
        assert_eq!(
            dec(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::InvalidHuffman)
        );
    }

    #[test]
    fn huffman_padding_longer_than_7_bits_is_error() {
        // 'a' = 00011 then 11 padding (valid), then a whole extra byte of ones (invalid).
        assert_eq!(dec(&[0x1f]).unwrap(), b"a");
        assert_eq!(dec(&[0x1f, 0xff]), Err(DecodeError::InvalidHuffman));
        // A lone byte of ones: 8 bits of padding.
        assert_eq!(dec(&[0xff]), Err(DecodeError::InvalidHuffman));
    }

    #[test]
    fn huffman_padding_not_all_ones_is_error() {
        // 'a' = 00011 then padding 110 instead of 111.
        assert_eq!(dec(&[0x1e]), Err(DecodeError::InvalidHuffman));
        // 'a' then padding 000: decodes as "a0" prefix... '0' is 00000 (5 bits), so 3 zero
        // bits are an incomplete code, not padding.
        assert_eq!(dec(&[0x18]), Err(DecodeError::InvalidHuffman));
    }
}
