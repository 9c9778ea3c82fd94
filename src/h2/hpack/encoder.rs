//! Header block encoding (RFC 7541 §3, §6), with an indexing policy tuned for gRPC.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use bytes::{Bytes, BytesMut};

use super::table::{
    field_hash, finish, hash_bytes, static_field_index, static_name_index, DynamicTable, STATIC_LEN,
};
use super::{field_size, huffman, Header};

/// The table size both sides start with (RFC 9113 §6.5.2), and the largest table the encoder
/// uses unless told otherwise.
const DEFAULT_TABLE_SIZE: usize = 4096;

/// Appends an integer with a `prefix`-bit prefix (1..=8) to `dst`; `flags` fills the bits of
/// the first byte above the prefix (RFC 7541 §5.1).
#[inline]
pub(super) fn encode_int(value: usize, prefix: u8, flags: u8, dst: &mut Vec<u8>) {
    debug_assert!((1..=8).contains(&prefix));
    let mask = (1usize << prefix) - 1;
    if value < mask {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// How a field name is treated when its exact field is not in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Literal with incremental indexing: the field is likely to repeat.
    Index,
    /// The value changes from call to call: index the first field with this name so that
    /// later ones can refer to the name, then send literals without indexing.
    IndexNameOnce,
    /// Never indexed (RFC 7541 §6.2.3): credentials, and fields marked sensitive.
    Never,
}

/// The indexing policy for a field name.
fn policy(name: &[u8]) -> Policy {
    match name {
        b"authorization" | b"proxy-authorization" => Policy::Never,
        b"grpc-timeout"
        | b"grpc-message"
        | b"grpc-status-details-bin"
        | b"grpc-previous-rpc-attempts"
        | b"grpc-retry-pushback-ms"
        | b"content-length" => Policy::IndexNameOnce,
        _ => Policy::Index,
    }
}

/// A hasher for keys that are already hashes ([`field_hash`], [`name_hash`]): the maps
/// cost one multiply-free lookup instead of SipHash. The keys come from fields that we send,
/// never from a peer's headers, and each map holds at most one entry per dynamic table entry
/// (at most 128), so hash flooding (HashDoS) is not a concern here.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashIndex = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

/// A block grows in this scratch buffer, then goes to the output in one copy; a buffer that
/// grew larger than this for a big block is not kept.
const SCRATCH_KEEP: usize = 4096;

/// Encodes header blocks for one peer (RFC 7541 §3).
///
/// One per connection: blocks must be sent in the order they are encoded. Indexing policy:
///
/// * a field found whole in the static or dynamic table is sent as an index (one byte for the
///   fields a gRPC connection repeats on every call);
/// * `:path`, `:authority`, `content-type`, `te`, `user-agent`, `grpc-*` and user metadata are
///   literals with incremental indexing, so that they are one byte the next time;
/// * fields whose value changes per call (`grpc-timeout`, `grpc-message`,
///   `grpc-status-details-bin`, `content-length`, …) index only their first occurrence, so the
///   name is in the table, then go as literals without indexing that refer to the name;
/// * `sensitive` fields, `authorization` and `proxy-authorization` are never indexed
///   (RFC 7541 §7.1.3);
/// * a field larger than 3/4 of the table is not indexed (it would flush the table);
/// * a string is Huffman-coded only when that is shorter (RFC 7541 §5.2).
///
/// Finding a field costs a hash and a map lookup, not a scan of the table.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// Hash of (name, value) → sequence number of the newest entry with that hash.
    fields: HashIndex,
    /// Hash of name → sequence number of the newest entry with that hash.
    names: HashIndex,
    /// (field hash, name hash) of each table entry, oldest first, to clean the maps on
    /// eviction.
    hashes: VecDeque<(u64, u64)>,
    /// The peer's SETTINGS_HEADER_TABLE_SIZE.
    peer_max: usize,
    /// The largest table we are willing to keep, whatever the peer allows.
    limit: usize,
    /// Size updates to emit at the start of the next block: (smallest, final).
    pending: Option<(usize, usize)>,
    huffman: bool,
    indexing: bool,
    /// Where a block is built before it is appended to the caller's buffer.
    scratch: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// Creates an encoder with a 4096-byte table, Huffman coding when shorter, and indexing on
    /// (RFC 7541 §2.3.2, RFC 9113 §6.5.2).
    pub fn new() -> Encoder {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            fields: HashIndex::default(),
            names: HashIndex::default(),
            hashes: VecDeque::new(),
            peer_max: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
            pending: None,
            huffman: true,
            indexing: true,
            scratch: Vec::new(),
        }
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE: the table is resized to
    /// `min(n, table size limit)` and a size update is emitted at the start of the next block
    /// (RFC 7541 §4.2, §6.3).
    ///
    /// If the size went down and back up before the next block, both the smallest and the
    /// final size are emitted, as the RFC requires.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.peer_max = n;
        self.resize();
    }

    /// Sets the largest table this encoder keeps, whatever the peer allows (default 4096).
    ///
    /// A larger table rarely pays for gRPC, whose repeated fields fit in 4 KiB, and each
    /// table costs memory per connection.
    pub fn set_table_size_limit(&mut self, n: usize) {
        self.limit = n;
        self.resize();
    }

    /// Turns Huffman coding of strings on (the default: when shorter) or off.
    pub fn set_huffman(&mut self, on: bool) {
        self.huffman = on;
    }

    /// Turns adding fields to the dynamic table on (the default) or off. When off, fields go
    /// as indexes only if already in a table, else as literals without indexing.
    pub fn set_indexing(&mut self, on: bool) {
        self.indexing = on;
    }

    /// Returns the dynamic table's current size (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Returns the number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Appends one header block. Names/values are bytes; the encoder decides indexing
    /// (indexes :path, content-type, te, grpc-*, user metadata; never-indexed for `sensitive`).
    ///
    /// Names should already be lowercase (RFC 9113 §8.2.1); the encoder does not check.
    pub fn encode<'a>(
        &mut self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        dst: &mut BytesMut,
    ) {
        let mut buf = self.start_block();
        for (name, value) in headers {
            self.encode_field(name, value, false, &mut buf);
        }
        self.finish_block(buf, dst);
    }

    /// Appends one header block, like [`encode`](Self::encode), honouring each field's
    /// `sensitive` flag.
    pub fn encode_headers<'a>(
        &mut self,
        headers: impl IntoIterator<Item = &'a Header>,
        dst: &mut BytesMut,
    ) {
        let mut buf = self.start_block();
        for h in headers {
            self.encode_field(&h.name, &h.value, h.sensitive, &mut buf);
        }
        self.finish_block(buf, dst);
    }

    /// Takes the scratch buffer and writes pending dynamic table size updates into it.
    fn start_block(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        self.size_updates(&mut buf);
        buf
    }

    /// Appends the block to `dst` and keeps the buffer for the next block.
    fn finish_block(&mut self, buf: Vec<u8>, dst: &mut BytesMut) {
        dst.extend_from_slice(&buf);
        if buf.capacity() <= SCRATCH_KEEP {
            self.scratch = buf;
        }
    }

    fn resize(&mut self) {
        let size = self.peer_max.min(self.limit);
        self.pending = match self.pending {
            None if size == self.table.max_size() => None,
            None => Some((size, size)),
            Some((smallest, _)) => Some((smallest.min(size), size)),
        };
    }

    /// Emits pending dynamic table size updates (RFC 7541 §6.3).
    fn size_updates(&mut self, dst: &mut Vec<u8>) {
        let Some((smallest, last)) = self.pending.take() else {
            return;
        };
        if smallest < last {
            encode_int(smallest, 5, 0x20, dst);
            self.set_table_max(smallest);
        }
        encode_int(last, 5, 0x20, dst);
        self.set_table_max(last);
    }

    fn set_table_max(&mut self, size: usize) {
        let (hashes, fields, names) = (&mut self.hashes, &mut self.fields, &mut self.names);
        self.table
            .set_max_size(size, |seq| forget(hashes, fields, names, seq));
    }

    fn encode_field(&mut self, name: &[u8], value: &[u8], sensitive: bool, dst: &mut Vec<u8>) {
        // One pass over the name serves both hashes.
        let name_state = hash_bytes(0, name);
        let fh = finish(hash_bytes(name_state, value));
        if !sensitive {
            // A never-indexed name (`policy`) must not go as an index either. The dynamic
            // table never holds one (such fields are not inserted), so only static hits need
            // the check: `authorization` and `proxy-authorization` with an empty value.
            let found = match static_field_index(name, value, fh) {
                Some(i) => (policy(name) != Policy::Never).then_some(i),
                None => self.find_field(name, value, fh),
            };
            if let Some(index) = found {
                encode_int(index, 7, 0x80, dst);
                return;
            }
        }
        let policy = if sensitive {
            Policy::Never
        } else {
            policy(name)
        };
        let nh = finish(name_state);
        let name_index = static_name_index(name, nh).or_else(|| self.find_name(name, nh));
        let max = self.table.max_size();
        let index = self.indexing
            && match policy {
                Policy::Index => true,
                Policy::IndexNameOnce => name_index.is_none(),
                Policy::Never => false,
            }
            && field_size(name, value).saturating_mul(4) <= max.saturating_mul(3);
        let (flags, prefix) = match (index, policy) {
            (true, _) => (0x40, 6),              // RFC 7541 §6.2.1
            (false, Policy::Never) => (0x10, 4), // §6.2.3
            (false, _) => (0x00, 4),             // §6.2.2
        };
        match name_index {
            Some(i) => encode_int(i, prefix, flags, dst),
            None => {
                dst.push(flags);
                self.write_string(name, dst);
            }
        }
        self.write_string(value, dst);
        if index {
            self.insert(name, value, fh, nh);
        }
    }

    /// HPACK index of the newest dynamic entry equal to (name, value), whose
    /// [`field_hash`] is `fh`.
    fn find_field(&self, name: &[u8], value: &[u8], fh: u64) -> Option<usize> {
        let seq = *self.fields.get(&fh)?;
        let (back, h) = self.table.by_seq(seq)?;
        (h.name == name && h.value == value).then_some(STATIC_LEN + 1 + back)
    }

    /// HPACK index of the newest dynamic entry named `name`, whose name hash is `nh`.
    fn find_name(&self, name: &[u8], nh: u64) -> Option<usize> {
        let seq = *self.names.get(&nh)?;
        let (back, h) = self.table.by_seq(seq)?;
        (h.name == name).then_some(STATIC_LEN + 1 + back)
    }

    fn insert(&mut self, name: &[u8], value: &[u8], fh: u64, nh: u64) {
        debug_assert_eq!(fh, field_hash(name, value));
        let header = Header::new(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        let (hashes, fields, names) = (&mut self.hashes, &mut self.fields, &mut self.names);
        let inserted = self
            .table
            .insert(header, |seq| forget(hashes, fields, names, seq));
        // The policy never indexes a field larger than the table, so it always goes in.
        if let Some(seq) = inserted {
            self.hashes.push_back((fh, nh));
            self.fields.insert(fh, seq);
            self.names.insert(nh, seq);
        }
    }

    /// Appends a string literal, Huffman-coded if that is on and shorter (RFC 7541 §5.2).
    fn write_string(&self, s: &[u8], dst: &mut Vec<u8>) {
        if self.huffman {
            let len = huffman::encoded_len(s);
            if len < s.len() {
                encode_int(len, 7, 0x80, dst);
                huffman::encode(s, dst);
                return;
            }
        }
        encode_int(s.len(), 7, 0, dst);
        dst.extend_from_slice(s);
    }
}

/// Drops the map entries of the evicted entry `seq` (the oldest), unless a newer entry with
/// the same hash replaced them.
fn forget(
    hashes: &mut VecDeque<(u64, u64)>,
    fields: &mut HashIndex,
    names: &mut HashIndex,
    seq: u64,
) {
    let Some((fh, nh)) = hashes.pop_front() else {
        return;
    };
    if fields.get(&fh) == Some(&seq) {
        fields.remove(&fh);
    }
    if names.get(&nh) == Some(&seq) {
        names.remove(&nh);
    }
}
