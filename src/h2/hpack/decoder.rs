//! Header block decoding (RFC 7541 §3, §6).

use bytes::Bytes;

use super::table::{static_header, static_name, DynamicTable, STATIC_LEN};
use super::{huffman, DecodeError, Header};

/// Most continuation bytes an integer may use: 5 × 7 bits covers every 32-bit value.
const MAX_CONTINUATION_BYTES: usize = 5;

/// Decodes an integer with an `prefix`-bit prefix (1..=8) starting at `buf[*pos]`, and
/// advances `pos` past it (RFC 7541 §5.1).
///
/// # Errors
///
/// [`DecodeError::Truncated`] if `buf` ends first, [`DecodeError::IntegerOverflow`] if the
/// value does not fit in 32 bits or uses more than 5 continuation bytes.
#[inline]
pub(super) fn decode_int(buf: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, DecodeError> {
    debug_assert!((1..=8).contains(&prefix));
    let mask: u8 = 0xff >> (8 - prefix.clamp(1, 8));
    let first = *buf.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    if first & mask < mask {
        return Ok(usize::from(first & mask));
    }
    decode_int_continued(buf, pos, mask)
}

/// The continuation bytes of an integer whose prefix is all ones (`mask`).
fn decode_int_continued(buf: &[u8], pos: &mut usize, mask: u8) -> Result<usize, DecodeError> {
    let mut value = u64::from(mask);
    for i in 0..MAX_CONTINUATION_BYTES {
        let b = *buf.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value)
                .map(|v| v as usize)
                .map_err(|_| DecodeError::IntegerOverflow);
        }
    }
    Err(DecodeError::IntegerOverflow)
}

/// Decodes header blocks from one peer (RFC 7541 §3).
///
/// One per connection: blocks must be decoded in the order they arrive, each one whole
/// (HEADERS or PUSH_PROMISE plus its CONTINUATION frames, RFC 9113 §4.3).
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The largest size update we accept: our SETTINGS_HEADER_TABLE_SIZE, once acked.
    limit: usize,
    /// Set when the limit was lowered below the table's size: the next block must start with
    /// a size update at most this large (RFC 7541 §4.2).
    required_update: Option<usize>,
    /// The connection error that broke the decoder, returned again on every later call.
    failed: Option<DecodeError>,
}

impl Decoder {
    /// Creates a decoder whose dynamic table, and the limit for size updates, is
    /// `max_table_size` bytes: our SETTINGS_HEADER_TABLE_SIZE (4096 unless we say otherwise,
    /// RFC 9113 §6.5.2).
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            limit: max_table_size,
            required_update: None,
            failed: None,
        }
    }

    /// Sets the limit for size updates: call it when the peer acknowledges a new
    /// SETTINGS_HEADER_TABLE_SIZE of ours (RFC 7541 §4.2).
    ///
    /// If the limit is lower than the table's current maximum size, the next block must start
    /// with a size update to at most `n`; otherwise decoding it fails with
    /// [`DecodeError::SizeUpdateMissing`].
    pub fn set_max_table_size(&mut self, n: usize) {
        self.limit = n;
        if n < self.table.max_size() {
            self.required_update = Some(self.required_update.map_or(n, |r| r.min(n)));
        }
    }

    /// Returns the dynamic table's current size (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Returns the dynamic table's current maximum size, as last set by the peer (RFC 7541
    /// §4.2).
    pub fn max_table_size(&self) -> usize {
        self.table.max_size()
    }

    /// Returns the number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one complete header block, calling `f` per field in order (RFC 7541 §3.2).
    ///
    /// Header list size (sum of [`Header::size`]) over `max_header_list_size` →
    /// `Err(HeaderListTooLarge)` — but the block is still fully processed so the dynamic
    /// table stays in sync (a stream error only). `f` is not called for the field that
    /// crosses the limit nor for any after it, so memory stays bounded.
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`]. Apart from `HeaderListTooLarge`, the decoder is then broken for
    /// good (the connection must close with `COMPRESSION_ERROR`) and later calls return the
    /// same error.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_header_list_size: usize,
        mut f: impl FnMut(Header),
    ) -> Result<(), DecodeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.decode_block(block, max_header_list_size, &mut f) {
            Ok(true) => Ok(()),
            Ok(false) => Err(DecodeError::HeaderListTooLarge),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Decodes `block`; returns whether the header list stayed within `max_list`.
    fn decode_block(
        &mut self,
        block: &[u8],
        max_list: usize,
        f: &mut impl FnMut(Header),
    ) -> Result<bool, DecodeError> {
        let mut pos = 0;

        // Dynamic table size updates come first (RFC 7541 §4.2).
        let mut smallest_update: Option<usize> = None;
        while let Some(&b) = block.get(pos) {
            if b & 0xe0 != 0x20 {
                break;
            }
            let size = decode_int(block, &mut pos, 5)?;
            if size > self.limit {
                return Err(DecodeError::SizeUpdateTooLarge);
            }
            smallest_update = Some(smallest_update.map_or(size, |s| s.min(size)));
            self.table.set_max_size(size, |_| {});
        }
        if let Some(required) = self.required_update {
            match smallest_update {
                Some(s) if s <= required => self.required_update = None,
                _ => return Err(DecodeError::SizeUpdateMissing),
            }
        }

        let mut list_size = 0usize;
        let mut within = true;
        while let Some(&b) = block.get(pos) {
            let header = if b & 0x80 != 0 {
                // Indexed field (RFC 7541 §6.1).
                let index = decode_int(block, &mut pos, 7)?;
                self.get(index)?
            } else if b & 0x40 != 0 {
                // Literal with incremental indexing (RFC 7541 §6.2.1).
                let header = self.literal(block, &mut pos, 6, false)?;
                self.table.insert(header.clone(), |_| {});
                header
            } else if b & 0x20 != 0 {
                return Err(DecodeError::SizeUpdateNotAtStart);
            } else {
                // Literal without indexing (0000) or never indexed (0001) (RFC 7541 §6.2.2-3).
                self.literal(block, &mut pos, 4, b & 0x10 != 0)?
            };
            list_size = list_size.saturating_add(header.size());
            if list_size > max_list {
                within = false;
            }
            if within {
                f(header);
            }
        }
        Ok(within)
    }

    /// Returns the field at HPACK index `index` (RFC 7541 §2.3.3).
    #[inline]
    fn get(&self, index: usize) -> Result<Header, DecodeError> {
        if index <= STATIC_LEN {
            return static_header(index).ok_or(DecodeError::InvalidIndex(index));
        }
        self.table
            .get(index - STATIC_LEN - 1)
            .cloned()
            .ok_or(DecodeError::InvalidIndex(index))
    }

    /// Returns the name of the field at HPACK index `index`, without touching its value.
    #[inline]
    fn name_at(&self, index: usize) -> Result<Bytes, DecodeError> {
        if index <= STATIC_LEN {
            return static_name(index).ok_or(DecodeError::InvalidIndex(index));
        }
        self.table
            .get(index - STATIC_LEN - 1)
            .map(|h| h.name.clone())
            .ok_or(DecodeError::InvalidIndex(index))
    }

    /// Reads a literal field whose name index has a `prefix`-bit prefix (RFC 7541 §6.2).
    #[inline]
    fn literal(
        &self,
        block: &[u8],
        pos: &mut usize,
        prefix: u8,
        sensitive: bool,
    ) -> Result<Header, DecodeError> {
        let name_index = decode_int(block, pos, prefix)?;
        let name = if name_index == 0 {
            read_string(block, pos)?
        } else {
            self.name_at(name_index)?
        };
        let value = read_string(block, pos)?;
        Ok(Header {
            name,
            value,
            sensitive,
        })
    }
}

/// Huffman strings that decode to less than this are decoded on the stack (one exact
/// allocation for the result); longer ones into a `Vec`.
const STACK_DECODE: usize = 128;

/// Reads a string literal, Huffman-coded or not (RFC 7541 §5.2).
fn read_string(block: &[u8], pos: &mut usize) -> Result<Bytes, DecodeError> {
    let huffman = block.get(*pos).ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)?;
    let end = pos.checked_add(len).ok_or(DecodeError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(DecodeError::Truncated)?;
    *pos = end;
    if !huffman {
        return Ok(Bytes::copy_from_slice(raw));
    }
    if huffman::max_decoded_len(raw.len()) < STACK_DECODE {
        let mut buf = [0u8; STACK_DECODE];
        let n = huffman::decode_into(raw, &mut buf)?;
        return Ok(Bytes::copy_from_slice(&buf[..n]));
    }
    let mut out = Vec::new();
    huffman::decode(raw, &mut out)?;
    // A boxed slice becomes `Bytes` without a second allocation (a `Vec` with spare
    // capacity would need one for its shared header).
    Ok(Bytes::from(out.into_boxed_slice()))
}
