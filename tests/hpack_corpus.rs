//! The hpack-test-case corpus (github.com/http2jp/hpack-test-case) against our HPACK.
//!
//! For every implementation's folder with wire data, each story's blocks are decoded in order
//! with one decoder (the dynamic table carries across cases) and compared with the expected
//! headers. Then every story's headers, from every folder including `raw-data`, are encoded by
//! our encoder in four modes (Huffman on/off × indexing on/off) and decoded back.
//!
//! The corpus lives outside the repository: `$GRPC_SYNC_SHARED/hpack-test-case`. Without
//! `GRPC_SYNC_SHARED` the test is skipped (CI sets it); with it set, a missing corpus fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use grpc_sync::h2::hpack::{Decoder, Encoder, Header};

// ---------------------------------------------------------------------------------------------
// A tiny JSON reader: enough for the corpus files (objects, arrays, strings, integers).

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_usize(&self) -> Option<usize> {
        match self {
            Json::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as usize),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            pos: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    fn err(&self, what: &str) -> String {
        format!("JSON: {what} at byte {}", self.pos)
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unknown literal"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    fields.push((key, self.value()?));
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(fields));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(
                    self.s.get(self.pos),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap();
                text.parse()
                    .map(Json::Number)
                    .map_err(|_| self.err("bad number"))
            }
            _ => Err(self.err("expected a value")),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = *self
                .s
                .get(self.pos)
                .ok_or_else(|| self.err("open string"))?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|_| self.err("bad UTF-8")),
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.pos)
                        .ok_or_else(|| self.err("open escape"))?;
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code)
                                && self.s[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xd800) << 10)
                                    + (low.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            char::from_u32(code).ok_or_else(|| self.err("bad code point"))?
                        }
                        _ => return Err(self.err("unknown escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }
}

#[test]
fn json_reader_reads_what_the_corpus_uses() {
    let v = Parser::parse(
        r#" {"a": [1, 2.5, -3], "b": "x\"\\\/\u00e9\ud83d\ude00", "c": {}, "d": [], "e": true, "f": null} "#,
    )
    .unwrap();
    assert_eq!(v.get("a").unwrap().as_array().unwrap().len(), 3);
    assert_eq!(v.get("b").unwrap().as_str(), Some("x\"\\/\u{e9}\u{1f600}"));
    assert_eq!(v.get("e"), Some(&Json::Bool(true)));
    assert_eq!(v.get("f"), Some(&Json::Null));
    assert!(Parser::parse("{\"a\": }").is_err());
    assert!(Parser::parse("[1, 2").is_err());
}

// ---------------------------------------------------------------------------------------------
// The corpus

struct Case {
    seqno: usize,
    header_table_size: Option<usize>,
    wire: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn read_story(path: &Path) -> Result<Vec<Case>, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let json = Parser::parse(&text)?;
    let cases = json
        .get("cases")
        .and_then(Json::as_array)
        .ok_or("no \"cases\" array")?;
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let headers = c
                .get("headers")
                .and_then(Json::as_array)
                .ok_or("case without \"headers\"")?
                .iter()
                .map(|h| match h {
                    Json::Object(fields) if fields.len() == 1 => {
                        let (name, value) = &fields[0];
                        let value = value.as_str().ok_or("header value is not a string")?;
                        Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
                    }
                    _ => Err("header is not a one-field object".to_string()),
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Case {
                seqno: c.get("seqno").and_then(Json::as_usize).unwrap_or(i),
                header_table_size: c.get("header_table_size").and_then(Json::as_usize),
                wire: c.get("wire").and_then(Json::as_str).map(hex).transpose()?,
                headers,
            })
        })
        .collect()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

fn pairs(headers: &[Header]) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_vec(), h.value.to_vec()))
        .collect()
}

fn show(list: &[(Vec<u8>, Vec<u8>)]) -> String {
    list.iter()
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect::<Vec<_>>()
        .join("\n    ")
}

/// Decodes the story's wire blocks in order; returns the number of cases decoded.
fn decode_story(name: &str, cases: &[Case], failures: &mut Vec<String>) -> usize {
    let mut d = Decoder::new(4096);
    let mut decoded = 0;
    for case in cases {
        let Some(wire) = &case.wire else { continue };
        if let Some(n) = case.header_table_size {
            d.set_max_table_size(n);
        }
        let mut got = Vec::new();
        match d.decode(wire, usize::MAX, |h| got.push(h)) {
            Ok(()) if pairs(&got) == case.headers => decoded += 1,
            Ok(()) => {
                failures.push(format!(
                    "{name} seqno {}: decoded\n    {}\nexpected\n    {}",
                    case.seqno,
                    show(&pairs(&got)),
                    show(&case.headers)
                ));
                return decoded;
            }
            Err(e) => {
                failures.push(format!("{name} seqno {}: {e}", case.seqno));
                return decoded;
            }
        }
    }
    decoded
}

/// Encodes the story's headers and decodes them back in one mode; returns the number of
/// cases that round-tripped.
fn round_trip_story(
    name: &str,
    cases: &[Case],
    huffman: bool,
    indexing: bool,
    failures: &mut Vec<String>,
) -> usize {
    let mut e = Encoder::new();
    e.set_huffman(huffman);
    e.set_indexing(indexing);
    let mut d = Decoder::new(4096);
    let mut done = 0;
    for case in cases {
        if let Some(n) = case.header_table_size {
            e.set_max_table_size(n);
            d.set_max_table_size(n);
        }
        let mut block = BytesMut::new();
        e.encode(
            case.headers.iter().map(|(n, v)| (&n[..], &v[..])),
            &mut block,
        );
        let mut got = Vec::new();
        let mode = format!("huffman={huffman} indexing={indexing}");
        match d.decode(&block, usize::MAX, |h| got.push(h)) {
            Ok(()) if pairs(&got) == case.headers => done += 1,
            Ok(()) => {
                failures.push(format!(
                    "{name} seqno {} ({mode}): round trip differs",
                    case.seqno
                ));
                return done;
            }
            Err(err) => {
                failures.push(format!("{name} seqno {} ({mode}): {err}", case.seqno));
                return done;
            }
        }
    }
    done
}

#[derive(Default)]
struct Totals {
    stories: usize,
    wire_stories: usize,
    cases: usize,
    decoded: usize,
    round_tripped: usize,
    failures: Vec<String>,
}

/// Decodes one story's wire data (if any) and round-trips its headers in four modes.
fn check_story(name: &str, path: &Path, t: &mut Totals) {
    let cases = match read_story(path) {
        Ok(cases) => cases,
        Err(e) => {
            t.failures.push(format!("{name}: {e}"));
            return;
        }
    };
    t.stories += 1;
    t.cases += cases.len();
    if cases.iter().any(|c| c.wire.is_some()) {
        t.wire_stories += 1;
        t.decoded += decode_story(name, &cases, &mut t.failures);
    }
    for (huffman, indexing) in [(false, false), (false, true), (true, false), (true, true)] {
        t.round_tripped += round_trip_story(name, &cases, huffman, indexing, &mut t.failures);
    }
}

#[test]
fn hpack_test_case_corpus() {
    let Some(shared) = std::env::var_os("GRPC_SYNC_SHARED") else {
        println!("GRPC_SYNC_SHARED not set: HPACK corpus test skipped (CI sets it)");
        return;
    };
    let root = Path::new(&shared).join("hpack-test-case");
    assert!(
        root.is_dir(),
        "GRPC_SYNC_SHARED is set but {} is not a directory: the HPACK corpus is missing",
        root.display()
    );

    // Every story file, in a stable order.
    let mut folders = 0;
    let mut story_files = Vec::new();
    for folder in sorted_entries(&root) {
        if !folder.is_dir() {
            continue;
        }
        folders += 1;
        for path in sorted_entries(&folder) {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("story_") && file.ends_with(".json") {
                let name = format!("{}/{file}", folder.file_name().unwrap().to_string_lossy());
                story_files.push((name, path));
            }
        }
    }

    // Stories are independent: spread them over the cores.
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<Totals> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut t = Totals::default();
                    while let Some((name, path)) =
                        story_files.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        check_story(name, path, &mut t);
                    }
                    t
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Totals::default();
    for t in results {
        total.stories += t.stories;
        total.wire_stories += t.wire_stories;
        total.cases += t.cases;
        total.decoded += t.decoded;
        total.round_tripped += t.round_tripped;
        total.failures.extend(t.failures);
    }
    total.failures.sort();
    let Totals {
        stories,
        wire_stories,
        cases: cases_total,
        decoded,
        round_tripped,
        failures,
    } = total;

    println!(
        "hpack-test-case: {folders} folders, {stories} stories ({wire_stories} with wire data), \
         {cases_total} cases"
    );
    println!("  decoded from wire:   {decoded} cases");
    println!(
        "  round-tripped:       {round_tripped} case encodings ({} cases x 4 modes)",
        round_tripped / 4
    );
    assert!(
        failures.is_empty(),
        "{} failures; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stories > 0 && decoded > 0,
        "the corpus at {} is empty",
        root.display()
    );
}
