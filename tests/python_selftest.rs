//! Python grpcio against Python grpcio, through the Rust harness in `tests/support/python.rs`.
//!
//! No grpc-sync code runs here: these tests prove that the harness (interpreter, code
//! generation, server start-up, client runs) and the Python scripts work, so that an interop
//! failure elsewhere points at grpc-sync and not at the test rig.

mod support;

use support::python::{self, PythonServer};

#[test]
fn missing_interpreter_is_reported_clearly() {
    let err = python::interpreter_from(None).unwrap_err();
    assert_eq!(
        err,
        "GRPC_SYNC_PYTHON is not set: run `bash scripts/test.sh`, which installs grpcio into target/pyenv"
    );
    let err = python::interpreter_from(Some("/nonexistent/python3".into())).unwrap_err();
    assert!(err.contains("/nonexistent/python3 does not exist"), "{err}");
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
