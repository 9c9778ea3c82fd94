//! gRPC-Web in a real browser: headless Chromium loads the route_guide page (examples/web/:
//! connect-web's gRPC-Web transport, code from protoc-gen-es, bundled with esbuild) from a
//! loopback origin of its own, and the page calls GetFeature and ListFeatures on our server,
//! with no proxy; the test reads what the page rendered, including the code and message of a
//! call with a bad argument. The same page from another origin, not on the CORS allow-list,
//! gets nothing.
//!
//! Provisioning (Chromium with apt as root on Debian/Ubuntu, `npm ci` into target/web-test,
//! the page's build) is `tests/support/browser.rs`; `GRPC_SYNC_SKIP_SYSTEM_TESTS=1` skips the
//! test where they cannot be had.

#[path = "../examples/common/mod.rs"]
mod common;
mod support;

use std::process::Command;
use std::time::Duration;

use common::pb::route_guide::route_guide_server::RouteGuideServer;
use common::route_guide::{in_rectangle, load_db, standard_rectangle, RouteGuideService};
use grpc_sync::{GrpcWebConfig, Server};
use serde_json::Value as Json;

/// The whole browser run, at most (Chromium's start included).
const DRIVER_DEADLINE: Duration = Duration::from_secs(120);

fn text<'a>(page: &'a Json, key: &str) -> &'a str {
    page.get(key).and_then(Json::as_str).unwrap_or("")
}

#[test]
fn a_browser_page_calls_route_guide_through_grpc_web_and_another_origin_is_refused() {
    let Some(browser) = support::browser::browser_or_skip() else {
        return;
    };
    let db = load_db().unwrap();
    let page_port = common::web_page::serve(browser.dist.clone(), "127.0.0.1:0").unwrap();
    let other_port = common::web_page::serve(browser.dist.clone(), "127.0.0.1:0").unwrap();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let server = Server::builder()
        .grpc_web(GrpcWebConfig::new().allow_origin(&page_origin))
        .add_service(RouteGuideServer::new(RouteGuideService::new(db.clone())))
        .build();
    let port = server.add_insecure_port("127.0.0.1:0").unwrap();
    server.start().unwrap();

    let grpc = format!("http://127.0.0.1:{port}");
    let allowed = format!("{page_origin}/?auto=1&server={grpc}");
    let refused = format!("http://127.0.0.1:{other_port}/?auto=1&server={grpc}");
    let mut cmd = Command::new("node");
    cmd.arg(browser.driver())
        .arg(&browser.chromium)
        .arg(&allowed)
        .arg(&refused)
        .current_dir(&browser.dir);
    let out = support::provision::run_with_deadline(cmd, DRIVER_DEADLINE, "the browser driver");
    out.assert_success("the browser driver (node drive.mjs)");
    let line = out.stdout.lines().last().unwrap_or("");
    let pages = serde_json::from_str::<Json>(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    let pages = pages.as_array().expect("an array of pages");
    let (ok, other) = (&pages[0], &pages[1]);
    let context = format!("page: {ok:?}\nother origin: {other:?}");

    // GetFeature, as the page renders it.
    assert_eq!(
        text(ok, "feature"),
        "Berkshire Valley Management Area Trail, Jefferson, NJ, USA (at 40.9146, -74.6189)",
        "{context}"
    );
    // ListFeatures: every feature of the rectangle, streamed, in order.
    // The page lists the standard rectangle's features.
    let rect = standard_rectangle();
    let want: Vec<&str> = db
        .iter()
        .filter(|f| f.location.is_some_and(|p| in_rectangle(&rect, &p)))
        .map(|f| {
            if f.name.is_empty() {
                "(unnamed)"
            } else {
                f.name.as_str()
            }
        })
        .collect();
    assert!(want.len() > 10);
    assert_eq!(
        text(ok, "count"),
        format!("{} features", want.len()),
        "{context}"
    );
    let shown: Vec<&str> = ok
        .get("features")
        .and_then(Json::as_array)
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(shown.len(), want.len());
    for (s, name) in shown.iter().zip(&want) {
        assert!(s.starts_with(&format!("{name} at ")), "{s} / {name}");
    }
    // The error call: its code and message, as the server sent them.
    assert_eq!(
        text(ok, "error"),
        "INVALID_ARGUMENT (3): point (1000000000, 0) is off the globe: latitude and longitude \
         are in 1e-7 degrees, within ±90 and ±180 degrees",
        "{context}"
    );

    // The other origin: CORS refused every call (the browser reports a failed fetch).
    assert!(text(other, "feature").starts_with("error: "), "{context}");
    assert!(
        text(other, "count").starts_with("error after 0 features"),
        "{context}"
    );
    assert!(
        !text(other, "error").starts_with("INVALID_ARGUMENT"),
        "{context}"
    );
    assert!(other
        .get("features")
        .and_then(Json::as_array)
        .unwrap()
        .is_empty());
}
