//! Python grpcio against Python grpcio, through the Rust harness in `tests/support/python.rs`.
//!
//! No grpc-sync code runs here: these tests prove that the harness (provisioning the
//! interpreter, code generation, server start-up, client runs) and the Python scripts work, so
//! that an interop failure elsewhere points at grpc-sync and not at the test rig.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use support::provision;
use support::python::{self, PythonServer};

/// A folder of its own under `target/tmp` for one test of this binary.
fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()))
}

#[test]
fn a_bad_grpc_sync_python_is_reported_clearly() {
    assert!(provision::python_override(None).is_none());
    assert!(provision::python_override(Some("".into())).is_none());
    let err = provision::python_override(Some("/nonexistent/python3".into()))
        .expect("a value is an override")
        .unwrap_err();
    assert!(
        err.contains("GRPC_SYNC_PYTHON=/nonexistent/python3 does not exist"),
        "{err}"
    );
}

#[test]
fn provisioning_without_python3_fails_saying_what_to_install() {
    let venv = scratch("no-python3");
    let err = provision::provision_python(
        "/nonexistent/python3".as_ref(),
        &venv,
        &provision::requirements(),
    )
    .unwrap_err();
    assert!(
        err.contains("`/nonexistent/python3` was not found") && err.contains("install Python 3"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&venv);
    let _ = fs::remove_file(provision::lock_path(&venv));
}

#[test]
fn provisioners_racing_on_one_folder_install_it_once() {
    const RACERS: usize = 8;
    let dir = scratch("race");
    let _ = fs::remove_dir_all(&dir);
    let done = dir.join("done");
    let installs = AtomicUsize::new(0);
    let start = Barrier::new(RACERS);
    thread::scope(|s| {
        for _ in 0..RACERS {
            s.spawn(|| {
                start.wait();
                let ready =
                    || fs::read_to_string(&done).map_err(|e| format!("{}: {e}", done.display()));
                let got = provision::once_under_lock(&dir, ready, || {
                    installs.fetch_add(1, Ordering::SeqCst);
                    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    fs::write(&done, "installed").map_err(|e| e.to_string())
                });
                assert_eq!(got.as_deref(), Ok("installed"));
            });
        }
    });
    assert_eq!(installs.load(Ordering::SeqCst), 1);
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_file(provision::lock_path(&dir));
}

#[test]
fn the_provisioned_python_imports_grpcio() {
    let mut check = std::process::Command::new(python::python());
    check.args(["-c", provision::PYTHON_IMPORT_CHECK]);
    provision::run_with_deadline(check, provision::CHECK_DEADLINE, "the import check")
        .assert_success("the import check");
}

#[test]
fn python_helloworld_client_against_python_helloworld_server() {
    let server = PythonServer::start("helloworld");
    let out = python::run_client("helloworld", server.port(), None);
    out.assert_success("clients.py --service helloworld against servers.py --service helloworld");
    assert!(
        out.stdout.contains("ok say_hello: "),
        "the say_hello case did not run\n{out}"
    );
    assert!(out.failures().is_empty(), "{out}");
}

#[test]
fn python_client_runs_one_case_at_a_time() {
    let server = PythonServer::start("helloworld");
    for case in ["say_hello", "deadline_exceeded"] {
        let out = python::run_client("helloworld", server.port(), Some(case));
        out.assert_success(case);
        assert!(
            out.stdout
                .lines()
                .all(|l| l.starts_with(&format!("ok {case}: "))),
            "only {case} should have run\n{out}"
        );
    }
}

#[test]
fn python_clients_against_python_server_with_all_services() {
    let server = PythonServer::start("all");
    let out = python::run_client("all", server.port(), None);
    out.assert_success("clients.py --service all against servers.py --service all");
}
