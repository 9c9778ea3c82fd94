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
use serde_json::Value;

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

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn read_story(path: &Path) -> Result<Vec<Case>, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let cases = json
        .get("cases")
        .and_then(Value::as_array)
        .ok_or("no \"cases\" array")?;
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let headers = c
                .get("headers")
                .and_then(Value::as_array)
                .ok_or("case without \"headers\"")?
                .iter()
                .map(|h| match h {
                    Value::Object(fields) if fields.len() == 1 => {
                        let (name, value) = fields.iter().next().expect("one field");
                        let value = value.as_str().ok_or("header value is not a string")?;
                        Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
                    }
                    _ => Err("header is not a one-field object".to_string()),
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Case {
                seqno: c.get("seqno").and_then(as_usize).unwrap_or(i),
                header_table_size: c.get("header_table_size").and_then(as_usize),
                wire: c.get("wire").and_then(Value::as_str).map(hex).transpose()?,
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
