//! Replays every saved fuzz input through the fuzz targets' own bodies (`fuzz/harness/`,
//! which the libFuzzer entries in `fuzz/fuzz_targets/` call), so that a plain `cargo test`
//! on the stable toolchain catches a regression on any input fuzzing ever found, without
//! cargo-fuzz or sanitizers.
//!
//! For each target it reads, if they exist, `fuzz/seeds/<target>/` (a minimized corpus, kept
//! in git), `fuzz/regressions/<target>/` (inputs of fixed bugs, kept in git) and the local
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` that `scripts/fuzz.sh` leaves
//! behind (git ignores them). A failing input is named with the panic it caused; replay it
//! under the fuzzer with `cargo fuzz run -O <target> <file>` (see `fuzz/README.md`).

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The folders under `fuzz/` that hold inputs, one subfolder per target.
const FOLDERS: [&str; 4] = ["seeds", "regressions", "artifacts", "corpus"];

/// A local corpus can grow to tens of thousands of inputs: past this much time on one target
/// the rest of `corpus/` is skipped (saying so). Everything else is always replayed.
const CORPUS_BUDGET: Duration = Duration::from_secs(10);

/// The files of `dir`, sorted, or nothing if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

fn replay(target: &str) {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target} in fuzz/harness/mod.rs"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for folder in FOLDERS {
        let files = inputs(&root.join(folder).join(target));
        let started = Instant::now();
        let mut replayed = 0;
        for file in &files {
            if folder == "corpus" && started.elapsed() > CORPUS_BUDGET {
                break;
            }
            let data = std::fs::read(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
                failures.push(format!("{}: {}", file.display(), panic_text(&*p)));
            }
            replayed += 1;
        }
        if replayed < files.len() {
            eprintln!(
                "{target}: replayed {replayed} of the {} inputs in fuzz/corpus/{target} \
                 within {CORPUS_BUDGET:?}",
                files.len()
            );
        }
        counts.push(format!("{folder} {replayed}"));
    }
    eprintln!("{target}: {}", counts.join(", "));
    assert!(
        failures.is_empty(),
        "{} saved input(s) of {target} fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn conn_client() {
    replay("conn_client");
}

#[test]
fn conn_server() {
    replay("conn_server");
}

#[test]
fn frame_decode() {
    replay("frame_decode");
}

#[test]
fn hpack_decode() {
    replay("hpack_decode");
}

#[test]
fn message_decoder() {
    replay("message_decoder");
}

#[test]
fn small_parsers() {
    replay("small_parsers");
}

#[test]
fn every_target_is_replayed() {
    let tested = [
        "conn_client",
        "conn_server",
        "frame_decode",
        "hpack_decode",
        "message_decoder",
        "small_parsers",
    ];
    let known: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(known, tested, "a target without its #[test] here");
}
