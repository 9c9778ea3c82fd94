//! Huffman coding of string literals (RFC 7541 §5.2, Appendix B).

use super::huffman_table::{ACCEPT, DECODE, EMIT, ENCODE, FAIL, STATE_MASK, SYMBOL_SHIFT};
use super::DecodeError;

/// Returns the length in bytes of `src` once Huffman-coded, padding included.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| ENCODE[b as usize].1 as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `src` to `dst`, padded with the most significant bits of
/// EOS (all ones) to a whole byte (RFC 7541 §5.2).
pub(super) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    // `acc` holds `bits` pending bits in its low end; at most 7 + 30 are ever pending.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = ENCODE[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.push(((acc << pad) as u8) | (0xff >> bits));
    }
}

/// The most bytes `src_len` bytes of Huffman code can decode to: every symbol is at least 5
/// bits long.
pub(super) fn max_decoded_len(src_len: usize) -> usize {
    src_len.saturating_mul(8) / 5
}

/// Decodes a Huffman-coded string into `out`, which must be longer than
/// [`max_decoded_len`]`(src.len())`, and returns the decoded length.
///
/// A nibble at a time through [`DECODE`]: each step writes the entry's symbol at the output
/// position whether or not the entry emits one and advances by the EMIT bit, so the loop
/// has no data-dependent branch; FAIL is tested once, on the OR of all entries, and the
/// padding rule on the last entry's ACCEPT bit.
///
/// # Errors
///
/// [`DecodeError::InvalidHuffman`] if the string contains EOS, or ends in padding that is
/// longer than 7 bits or not all ones (RFC 7541 §5.2).
pub(super) fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    debug_assert!(out.len() > max_decoded_len(src.len()));
    let mut n = 0usize;
    let mut state = 0u32;
    let mut seen = 0u32;
    // An empty string is valid.
    let mut last = ACCEPT;
    let mut step = |state: u32, nibble: u8| {
        // The mask keeps the index in bounds without a check: the table has 4096 entries.
        let e = DECODE[(state | u32::from(nibble)) as usize & 0xfff];
        // At most one symbol per 5 bits of input, so `n` stays below `out.len()`.
        if let Some(slot) = out.get_mut(n) {
            *slot = (e >> SYMBOL_SHIFT) as u8;
        }
        n += (e & EMIT != 0) as usize;
        e
    };
    for &b in src {
        let hi = step(state, b >> 4);
        let lo = step(hi & STATE_MASK, b & 0x0f);
        seen |= hi | lo;
        state = lo & STATE_MASK;
        last = lo;
    }
    if seen & FAIL != 0 || last & ACCEPT == 0 {
        return Err(DecodeError::InvalidHuffman);
    }
    Ok(n)
}

/// Decodes a Huffman-coded string, appending it to `dst` (see [`decode_into`]).
///
/// # Errors
///
/// [`DecodeError::InvalidHuffman`] as for [`decode_into`]; `dst` is then unchanged.
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = dst.len();
    dst.resize(start + max_decoded_len(src.len()) + 1, 0);
    match decode_into(src, &mut dst[start..]) {
        Ok(n) => {
            dst.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut dst = Vec::new();
        encode(s, &mut dst);
        assert_eq!(dst.len(), encoded_len(s));
        dst
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

    /// A bit-at-a-time decoder built from ENCODE alone (not from DECODE): the oracle the
    /// table-driven decoder is checked against.
    fn reference_decode(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
        thread_local! {
            static CODES: std::collections::HashMap<(u32, u8), u16> = ENCODE
                .iter()
                .enumerate()
                .map(|(sym, &(code, len))| ((code, len), sym as u16))
                .collect();
        }
        CODES.with(|codes| reference_decode_with(codes, src))
    }

    fn reference_decode_with(
        codes: &std::collections::HashMap<(u32, u8), u16>,
        src: &[u8],
    ) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        let (mut code, mut len) = (0u32, 0u8);
        for &b in src {
            for i in (0..8).rev() {
                code = (code << 1) | u32::from((b >> i) & 1);
                len += 1;
                match codes.get(&(code, len)) {
                    Some(256) => return Err(DecodeError::InvalidHuffman),
                    Some(&sym) => {
                        out.push(sym as u8);
                        (code, len) = (0, 0);
                    }
                    None => {}
                }
            }
        }
        // Padding: at most 7 bits, all ones.
        if len > 7 || code != (1 << len) - 1 {
            return Err(DecodeError::InvalidHuffman);
        }
        Ok(out)
    }

    /// Decodes with the smallest output buffer `decode_into` accepts.
    fn dec_tight(s: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = vec![0u8; max_decoded_len(s.len()) + 1];
        decode_into(s, &mut out).map(|n| out[..n].to_vec())
    }

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
    }

    #[test]
    fn table_decoder_agrees_with_bitwise_decoder_on_random_input() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut ok = 0;
        for i in 0..30_000 {
            let len = (rng.next() % 40) as usize;
            let input: Vec<u8> = match i % 4 {
                // Random bytes: mostly invalid, some valid.
                0 => (0..len).map(|_| rng.next() as u8).collect(),
                // Valid codings of random strings, printable or any byte.
                1 | 2 => {
                    let s: Vec<u8> = (0..len)
                        .map(|_| {
                            let b = rng.next() as u8;
                            if i % 4 == 1 {
                                b' ' + b % 95
                            } else {
                                b
                            }
                        })
                        .collect();
                    enc(&s)
                }
                // Valid codings with one bit flipped or bytes of ones appended.
                _ => {
                    let s: Vec<u8> = (0..len).map(|_| b'a' + rng.next() as u8 % 26).collect();
                    let mut e = enc(&s);
                    if e.is_empty() || rng.next() % 2 == 0 {
                        e.extend(std::iter::repeat_n(0xff, 1 + rng.next() as usize % 4));
                    } else {
                        let bit = rng.next() as usize % (e.len() * 8);
                        e[bit / 8] ^= 0x80 >> (bit % 8);
                    }
                    e
                }
            };
            let want = reference_decode(&input);
            ok += usize::from(want.is_ok());
            assert_eq!(dec(&input), want, "{input:02x?}");
            assert_eq!(dec_tight(&input), want, "{input:02x?}");
        }
        assert!(ok > 12_000 && ok < 27_000, "{ok}");
    }

    #[test]
    fn every_padding_is_checked_exactly() {
        // Each symbol of each length, followed by each possible padding of 0..=15 bits.
        for (sym, &(code, len)) in ENCODE.iter().enumerate().take(256) {
            for pad_len in 0..=15u32 {
                for pad in [0u64, (1 << pad_len) - 1, ((1 << pad_len) - 1) & !1] {
                    let total = u32::from(len) + pad_len;
                    if total % 8 != 0 {
                        continue;
                    }
                    let bits = (u64::from(code) << pad_len) | pad;
                    let bytes = bits.to_be_bytes()[8 - total as usize / 8..].to_vec();
                    assert_eq!(
                        dec(&bytes),
                        reference_decode(&bytes),
                        "{sym} {pad_len} {pad:b}"
                    );
                }
            }
        }
        // Output exactly as long as the bound (all 5-bit symbols) fits the tight buffer.
        let zeros = enc(b"00000000");
        assert_eq!(zeros.len(), 5);
        assert_eq!(dec_tight(&zeros).unwrap(), b"00000000");
    }

    #[test]
    fn failed_decode_leaves_dst_unchanged() {
        let mut out = b"kept".to_vec();
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(DecodeError::InvalidHuffman)
        );
        assert_eq!(out, b"kept");
        decode(&enc(b"abc"), &mut out).unwrap();
        assert_eq!(out, b"keptabc");
    }
}
