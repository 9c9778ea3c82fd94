//! The static table (RFC 7541 §2.3.1, Appendix A) and the dynamic table (RFC 7541 §2.3.2, §4).

use std::collections::VecDeque;

use bytes::Bytes;

use super::Header;

/// Number of entries in the static table; dynamic entries start at index 62.
pub(super) const STATIC_LEN: usize = 61;

/// The static table (RFC 7541 Appendix A); `STATIC[i - 1]` is index `i`.
pub(super) static STATIC: [(&str, &str); STATIC_LEN] = [
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

/// The lowest static index whose name is `name`.
fn static_name_index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b":status" => 8,
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// What the static table holds for a field.
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
pub(super) fn static_lookup(name: &[u8], value: &[u8]) -> StaticMatch {
    let Some(first) = static_name_index(name) else {
        return StaticMatch::None;
    };
    for (i, (n, v)) in STATIC.iter().enumerate().skip(first - 1) {
        if n.as_bytes() != name {
            break;
        }
        if v.as_bytes() == value {
            return StaticMatch::Field(i + 1);
        }
    }
    StaticMatch::Name(first)
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
            assert_eq!(static_name_index(n.as_bytes()), Some(first));
        }
        assert_eq!(static_lookup(b":method", b"PUT"), StaticMatch::Name(2));
        assert_eq!(static_lookup(b":status", b"500"), StaticMatch::Field(14));
        assert_eq!(static_lookup(b"x-custom", b""), StaticMatch::None);
        assert_eq!(static_header(0), None);
        assert_eq!(static_header(62), None);
        assert_eq!(static_header(61).unwrap().name, "www-authenticate");
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
