//! The static table (RFC 7541 §2.3.1, Appendix A) and the dynamic table (RFC 7541 §2.3.2, §4).

use std::collections::VecDeque;

use bytes::Bytes;

use super::Header;

/// Number of entries in the static table; dynamic entries start at index 62.
pub(super) const STATIC_LEN: usize = 61;

/// The static table (RFC 7541 Appendix A); `STATIC[i - 1]` is index `i`.
pub(super) static STATIC: [(&str, &str); STATIC_LEN] = STATIC_ENTRIES;

/// [`STATIC`] as a constant, for the hash indexes built at compile time.
const STATIC_ENTRIES: [(&str, &str); STATIC_LEN] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Returns static entry `index` (1..=61) as a header, without allocating.
pub(super) fn static_header(index: usize) -> Option<Header> {
    let (name, value) = STATIC.get(index.checked_sub(1)?)?;
    Some(Header {
        name: Bytes::from_static(name.as_bytes()),
        value: Bytes::from_static(value.as_bytes()),
        sensitive: false,
    })
}

/// Returns the name of static entry `index` (1..=61), without allocating.
pub(super) fn static_name(index: usize) -> Option<Bytes> {
    let (name, _) = STATIC.get(index.checked_sub(1)?)?;
    Some(Bytes::from_static(name.as_bytes()))
}

// ----- hashing ---------------------------------------------------------------------------
//
// A fast non-cryptographic hash (FxHash-style) for the encoder's lookups. It only ever sees
// fields that we send, never a peer's, and the maps it feeds hold at most one entry per
// dynamic table entry (at most 4096 / 32 = 128), so hash flooding is not a concern. It is a
// `const fn` so that the static table's indexes below are built at compile time with the
// same function the encoder uses at run time.

const K: u64 = 0x517c_c1b7_2722_0a95;

const fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// Folds `bytes` into `h`: eight bytes at a time, then 4, 2 and 1, then the length.
pub(super) const fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut rest = bytes;
    while let Some((w, tail)) = rest.split_first_chunk::<8>() {
        h = mix(h, u64::from_le_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        h = mix(h, u32::from_le_bytes(*w) as u64);
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        h = mix(h, u16::from_le_bytes(*w) as u64);
        rest = tail;
    }
    if let [b] = rest {
        h = mix(h, *b as u64);
    }
    mix(h, bytes.len() as u64)
}

/// Final avalanche, so that the low bits a table uses depend on every input bit.
pub(super) const fn finish(h: u64) -> u64 {
    let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Hash of a field name; `hash_bytes(0, name)` is the common start of both hashes.
pub(super) const fn name_hash(name: &[u8]) -> u64 {
    finish(hash_bytes(0, name))
}

/// Hash of a whole field.
pub(super) const fn field_hash(name: &[u8], value: &[u8]) -> u64 {
    finish(hash_bytes(hash_bytes(0, name), value))
}

// ----- static table indexes ------------------------------------------------------------------

/// Slots of the static table's hash indexes: a power of two, over twice the 61 entries, so
/// that a miss usually stops at the first, empty, slot.
const SLOTS: usize = 128;

/// Field hash → static index (open addressing, linear probing; 0 = empty slot).
static STATIC_BY_FIELD: [u8; SLOTS] = build_index(true);

/// Name hash → lowest static index with that name (same layout).
static STATIC_BY_NAME: [u8; SLOTS] = build_index(false);

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn build_index(by_field: bool) -> [u8; SLOTS] {
    let mut slots = [0u8; SLOTS];
    let mut i = 0;
    while i < STATIC_LEN {
        let (name, value) = STATIC_ENTRIES[i];
        // Entries with the same name are adjacent: index a name at its first entry only.
        let repeat = !by_field && i > 0 && str_eq(STATIC_ENTRIES[i - 1].0, name);
        if !repeat {
            let h = if by_field {
                field_hash(name.as_bytes(), value.as_bytes())
            } else {
                name_hash(name.as_bytes())
            };
            let mut slot = h as usize % SLOTS;
            while slots[slot] != 0 {
                slot = (slot + 1) % SLOTS;
            }
            slots[slot] = (i + 1) as u8;
        }
        i += 1;
    }
    slots
}

/// Probes `index` from `hash` for an entry that `matches`; there is always an empty slot.
#[inline]
fn probe(index: &[u8; SLOTS], hash: u64, matches: impl Fn(&str, &str) -> bool) -> Option<usize> {
    let mut slot = hash as usize % SLOTS;
    loop {
        let i = usize::from(index[slot]);
        let (name, value) = STATIC.get(i.checked_sub(1)?)?;
        if matches(name, value) {
            return Some(i);
        }
        slot = (slot + 1) % SLOTS;
    }
}

/// The static index of the field (`name`, `value`) whose [`field_hash`] is `hash`.
#[inline]
pub(super) fn static_field_index(name: &[u8], value: &[u8], hash: u64) -> Option<usize> {
    probe(&STATIC_BY_FIELD, hash, |n, v| {
        n.as_bytes() == name && v.as_bytes() == value
    })
}

/// The lowest static index with name `name`, whose [`name_hash`] is `hash`.
#[inline]
pub(super) fn static_name_index(name: &[u8], hash: u64) -> Option<usize> {
    probe(&STATIC_BY_NAME, hash, |n, _| n.as_bytes() == name)
}

/// What the static table holds for a field.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StaticMatch {
    /// Neither the name nor the field.
    None,
    /// The name, at this index (the lowest one with that name).
    Name(usize),
    /// The whole field, at this index.
    Field(usize),
}

/// Looks a field up in the static table.
#[cfg(test)]
pub(super) fn static_lookup(name: &[u8], value: &[u8]) -> StaticMatch {
    if let Some(i) = static_field_index(name, value, field_hash(name, value)) {
        return StaticMatch::Field(i);
    }
    match static_name_index(name, name_hash(name)) {
        Some(i) => StaticMatch::Name(i),
        None => StaticMatch::None,
    }
}

/// The dynamic table (RFC 7541 §2.3.2, §4): newest entry first, evicted oldest first.
///
/// Every inserted entry gets a sequence number (0, 1, 2, … in insertion order) so that the
/// encoder can remember where a field lives without rescanning the table.
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    /// Oldest at the front, newest at the back.
    entries: VecDeque<Header>,
    /// Sum of `Header::size` of the entries (RFC 7541 §4.1).
    size: usize,
    /// Current maximum size, as last set by a size update (RFC 7541 §4.2).
    max_size: usize,
    /// How many entries were ever inserted: the next sequence number.
    inserted: u64,
}

impl DynamicTable {
    /// Creates an empty table with maximum size `max_size`.
    pub(super) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            inserted: 0,
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Current size in RFC 7541 §4.1 terms.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Entry `i`, counting from 0 = newest (HPACK index `62 + i`).
    pub(crate) fn get(&self, i: usize) -> Option<&Header> {
        let pos = self.entries.len().checked_sub(i + 1)?;
        self.entries.get(pos)
    }

    /// The entries, newest first, as `(name, value)` pairs (for tests and debugging).
    #[cfg(test)]
    pub(crate) fn fields(&self) -> Vec<(&[u8], &[u8])> {
        self.entries
            .iter()
            .rev()
            .map(|h| (&h.name[..], &h.value[..]))
            .collect()
    }

    /// Sequence number of the newest entry, if any.
    fn newest_seq(&self) -> Option<u64> {
        self.inserted
            .checked_sub(1)
            .filter(|_| !self.entries.is_empty())
    }

    /// Entry with sequence number `seq` and its 0-based position from the newest, if it is
    /// still in the table.
    pub(super) fn by_seq(&self, seq: u64) -> Option<(usize, &Header)> {
        let newest = self.newest_seq()?;
        let back = usize::try_from(newest.checked_sub(seq)?).ok()?;
        self.get(back).map(|h| (back, h))
    }

    /// Inserts `header` as the newest entry, evicting as needed (RFC 7541 §4.4). An entry
    /// larger than the maximum size empties the table and is not inserted. `evicted` is
    /// called with each evicted entry's sequence number, oldest first. Returns the new
    /// entry's sequence number if it was inserted.
    pub(super) fn insert(&mut self, header: Header, mut evicted: impl FnMut(u64)) -> Option<u64> {
        let size = header.size();
        if size > self.max_size {
            self.evict_to(0, &mut evicted);
            return None;
        }
        self.evict_to(self.max_size - size, &mut evicted);
        self.size += size;
        self.entries.push_back(header);
        self.inserted += 1;
        Some(self.inserted - 1)
    }

    /// Sets the maximum size, evicting as needed (RFC 7541 §4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize, mut evicted: impl FnMut(u64)) {
        self.max_size = max_size;
        self.evict_to(max_size, &mut evicted);
    }

    fn evict_to(&mut self, target: usize, evicted: &mut impl FnMut(u64)) {
        while self.size > target {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.size -= old.size();
            // The oldest entry's sequence number: `inserted - (len before pop)`.
            evicted(self.inserted - self.entries.len() as u64 - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table_has_61_entries_and_lookup_agrees() {
        assert_eq!(STATIC.len(), 61);
        for (i, (n, v)) in STATIC.iter().enumerate() {
            let found = static_lookup(n.as_bytes(), v.as_bytes());
            assert_eq!(found, StaticMatch::Field(i + 1), "{n}: {v}");
            let first = STATIC.iter().position(|(m, _)| m == n).unwrap() + 1;
            assert_eq!(
                static_name_index(n.as_bytes(), name_hash(n.as_bytes())),
                Some(first)
            );
        }
        assert_eq!(static_lookup(b":method", b"PUT"), StaticMatch::Name(2));
        assert_eq!(static_lookup(b":status", b"500"), StaticMatch::Field(14));
        assert_eq!(static_lookup(b"x-custom", b""), StaticMatch::None);
        assert_eq!(static_header(0), None);
        assert_eq!(static_header(62), None);
        assert_eq!(static_header(61).unwrap().name, "www-authenticate");
    }

    /// The hash indexes answer exactly what a scan of the static table answers.
    #[test]
    fn static_indexes_agree_with_a_scan() {
        let scan = |name: &[u8], value: &[u8]| {
            let field = STATIC
                .iter()
                .position(|(n, v)| n.as_bytes() == name && v.as_bytes() == value);
            let first = STATIC.iter().position(|(n, _)| n.as_bytes() == name);
            match (field, first) {
                (Some(i), _) => StaticMatch::Field(i + 1),
                (None, Some(i)) => StaticMatch::Name(i + 1),
                (None, None) => StaticMatch::None,
            }
        };
        let mut names: Vec<&[u8]> = STATIC.iter().map(|(n, _)| n.as_bytes()).collect();
        names.extend([
            &b""[..],
            b":",
            b":statu",
            b":status2",
            b"content-typ",
            b"grpc-status",
            b"te",
            b"x-custom-metadata-key",
        ]);
        let mut values: Vec<&[u8]> = STATIC.iter().map(|(_, v)| v.as_bytes()).collect();
        values.extend([&b"POST2"[..], b"20", b"application/grpc", b"trailers"]);
        for &n in &names {
            for &v in &values {
                assert_eq!(static_lookup(n, v), scan(n, v), "{n:?} {v:?}");
            }
        }
        // Both indexes are filled: every static entry (and every distinct name) is in one.
        assert_eq!(
            STATIC_BY_FIELD.iter().filter(|&&i| i != 0).count(),
            STATIC_LEN
        );
        let distinct = STATIC
            .iter()
            .enumerate()
            .filter(|&(i, (n, _))| i == 0 || STATIC[i - 1].0 != *n)
            .count();
        assert_eq!(STATIC_BY_NAME.iter().filter(|&&i| i != 0).count(), distinct);
    }

    #[test]
    fn hash_reads_every_byte_and_the_length() {
        // Each tail length (8, 4, 2, 1 byte steps) and a trailing zero byte all change it.
        let data = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut seen = std::collections::HashSet::new();
        for len in 0..=data.len() {
            assert!(seen.insert(name_hash(&data[..len])), "{len}");
            let mut flipped = data[..len].to_vec();
            if let Some(last) = flipped.last_mut() {
                *last ^= 1;
                assert_ne!(name_hash(&flipped), name_hash(&data[..len]));
            }
        }
        assert_ne!(name_hash(b"a"), name_hash(b"a\0"));
        assert_ne!(field_hash(b"ab", b"c"), field_hash(b"a", b"bc"));
    }

    #[test]
    fn dynamic_table_evicts_oldest_by_rfc_size() {
        let mut t = DynamicTable::new(100);
        let mut gone = Vec::new();
        t.insert(Header::new("a", "1"), |s| gone.push(s)); // 34
        t.insert(Header::new("b", "2"), |s| gone.push(s)); // 34 -> 68
        assert_eq!((t.len(), t.size()), (2, 68));
        t.insert(Header::new("cc", "33"), |s| gone.push(s)); // 36: evicts "a"
        assert_eq!(gone, [0]);
        assert_eq!(t.fields(), [(&b"cc"[..], &b"33"[..]), (b"b", b"2")]);
        assert_eq!(t.size(), 70);
        assert_eq!(t.by_seq(2).unwrap().0, 0);
        assert_eq!(t.by_seq(1).unwrap().0, 1);
        assert!(t.by_seq(0).is_none());
        assert!(t.by_seq(3).is_none());
        // Too big for the table: empties it.
        t.insert(Header::new("x", vec![b'y'; 100]), |s| gone.push(s));
        assert_eq!(gone, [0, 1, 2]);
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(Header::new("d", "4"), |_| {});
        assert_eq!(t.by_seq(3).unwrap().1.name, "d");
        t.set_max_size(0, |s| gone.push(s));
        assert_eq!(gone, [0, 1, 2, 3]);
        assert_eq!(t.get(0), None);
    }
}
