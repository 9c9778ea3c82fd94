//! Scripted tests of the sans-IO HTTP/2 connection (RFC 9113), one per rule, the attack
//! tests for every defence, and deterministic client/server pair tests.

#[path = "support/h2.rs"]
mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use grpc_sync::h2::conn::{
    Connection, Event, Role, SendError, DRAIN_PING_PAYLOAD, MAX_STREAM_ID, PREFACE,
};
use grpc_sync::h2::error::Reason;
use grpc_sync::h2::frame::{kind, Frame, Settings};
use grpc_sync::h2::hpack::Header;
use grpc_sync::h2::settings::Config;
use grpc_sync::h2::stream::State;
use support::*;

fn rsts(frames: &[Frame]) -> Vec<(u32, Reason)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::RstStream(r) => Some((r.stream_id, r.reason)),
            _ => None,
        })
        .collect()
}

// ----- connection preface and SETTINGS ---------------------------------------------------

#[test]
fn client_sends_preface_settings_and_connection_window_update() {
    let mut conn = Connection::new(Role::Client, Config::default());
    let mut out = conn.take_output();
    assert!(out.starts_with(PREFACE));
    let _ = out.split_to(PREFACE.len());
    let mut frames = Vec::new();
    while let Some(f) = grpc_sync::h2::frame::decode(&mut out, 1 << 20).unwrap() {
        frames.push(f);
    }
    match &frames[..] {
        [Frame::Settings(s), Frame::WindowUpdate(w)] => {
            assert_eq!(s.enable_push, Some(false));
            assert_eq!(s.initial_window_size, Some(1 << 20));
            assert_eq!(s.max_concurrent_streams, Some(100));
            assert_eq!(w.stream_id, 0);
            assert_eq!(w.increment, (4 << 20) - 65_535);
        }
        other => panic!("unexpected opening frames {other:?}"),
    }
}

#[test]
fn server_rejects_invalid_preface_with_protocol_error() {
    let mut p = Peer::server_raw(Config::default());
    p.take_frames();
    let _ = p.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn server_accepts_preface_split_anywhere() {
    let mut p = Peer::server_raw(Config::default());
    let mut hello = BytesMut::from(&PREFACE[..]);
    hello.extend_from_slice(&settings(Settings::default()));
    for b in hello.iter() {
        p.send(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(p.drain_events(), vec![Event::RemoteSettings]);
}

#[test]
fn first_frame_not_settings_is_protocol_error() {
    let mut p = Peer::server_raw(Config::default());
    let mut hello = BytesMut::from(&PREFACE[..]);
    hello.extend_from_slice(&ping([0; 8]));
    let _ = p.send(&hello);
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn settings_are_acknowledged_and_applied() {
    let mut p = Peer::server();
    let s = Settings {
        max_concurrent_streams: Some(7),
        max_frame_size: Some(20_000),
        ..Settings::default()
    };
    p.send(&settings(s)).unwrap();
    let frames = p.take_frames();
    assert!(matches!(&frames[..], [Frame::Settings(a)] if a.ack));
    assert_eq!(p.drain_events(), vec![Event::RemoteSettings]);
    assert_eq!(p.conn.remote_settings().max_concurrent_streams, 7);
    assert_eq!(p.conn.remote_settings().max_frame_size, 20_000);
}

#[test]
fn client_receiving_enable_push_is_protocol_error() {
    let mut p = Peer::client();
    let _ = p.send(&settings(Settings {
        enable_push: Some(true),
        ..Settings::default()
    }));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn server_accepts_enable_push_from_client() {
    let mut p = Peer::server();
    p.send(&settings(Settings {
        enable_push: Some(true),
        ..Settings::default()
    }))
    .unwrap();
    assert!(p.conn.remote_settings().enable_push);
    p.assert_alive();
}

#[test]
fn header_table_size_setting_reaches_the_encoder() {
    let mut p = Peer::server();
    p.send(&settings(Settings {
        header_table_size: Some(0),
        ..Settings::default()
    }))
    .unwrap();
    p.open(1, true);
    p.take_frames();
    p.conn.send_headers(1, &response(), false).unwrap();
    let frames = p.take_frames();
    let Frame::Headers(h) = &frames[0] else {
        panic!("{frames:?}")
    };
    // The block starts with a dynamic table size update to 0 (001xxxxx).
    assert_eq!(h.fragment[0], 0x20);
    p.dec.set_max_table_size(0);
    let got = p.decode_block(&h.fragment.clone());
    assert_eq!(got, response());
}

#[test]
fn initial_window_size_change_adjusts_open_streams() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&settings(Settings {
        initial_window_size: Some(100),
        ..Settings::default()
    }))
    .unwrap();
    p.conn.send_headers(1, &response(), false).unwrap();
    assert_eq!(p.conn.send_capacity(1), 100);
    assert_eq!(p.conn.send_data(1, &[0; 60], false), Ok(60));
    // Shrinking below what is in flight makes the window negative.
    p.send(&settings(Settings {
        initial_window_size: Some(10),
        ..Settings::default()
    }))
    .unwrap();
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(p.conn.send_data(1, &[0; 10], false), Ok(0));
    p.send(&window_update(1, 55)).unwrap();
    assert_eq!(p.conn.send_capacity(1), 5);
    // Growing it again is announced to every stream.
    p.drain_events();
    p.send(&settings(Settings {
        initial_window_size: Some(1000),
        ..Settings::default()
    }))
    .unwrap();
    assert_eq!(p.conn.send_capacity(1), 995);
    assert!(p
        .drain_events()
        .contains(&Event::SendCapacity { stream_id: 0 }));
}

#[test]
fn initial_window_size_overflow_is_flow_control_error() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&window_update(1, (1 << 31) - 1 - 65_535)).unwrap();
    let _ = p.send(&settings(Settings {
        initial_window_size: Some(65_536),
        ..Settings::default()
    }));
    p.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn our_settings_bind_the_peer_only_after_its_ack() {
    let config = Config {
        initial_window_size: 1000,
        ..Config::default()
    };
    let mut p = Peer::server_raw(config);
    let mut hello = BytesMut::from(&PREFACE[..]);
    hello.extend_from_slice(&settings(Settings::default()));
    p.send(&hello).unwrap();
    p.take_frames();
    // Before the ACK the peer may still use the initial 65 535.
    p.open(1, false);
    p.send(&data(1, &[7; 2000], false)).unwrap();
    p.expect_quiet();
    p.drain_events();
    p.send(&settings_ack()).unwrap();
    // Stream 1 went to 1000 - 2000 with the peer; ours follows.
    assert_eq!(p.conn.stream_recv_window(1), Some(-1000));
    p.open(3, false);
    p.send(&data(3, &[7; 1000], false)).unwrap();
    p.expect_quiet();
    p.drain_events();
    p.open(5, false);
    p.send(&data(5, &[7; 1001], false)).unwrap();
    p.expect_rst(5, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn unsolicited_settings_ack_is_ignored() {
    let mut p = Peer::server();
    p.send(&settings_ack()).unwrap();
    p.assert_alive();
}

#[test]
fn limits_bind_the_first_flight_before_our_settings_are_acked() {
    let config = Config {
        max_concurrent_streams: 2,
        ..Config::default()
    };
    let mut p = Peer::server_raw(config);
    let mut flight = BytesMut::from(&PREFACE[..]);
    flight.extend_from_slice(&settings(Settings::default()));
    for id in [1, 3, 5] {
        flight.extend_from_slice(&p.headers(id, &request(), false));
    }
    // An HPACK bomb too: "x: a×4000" in the table, then referenced 100 times.
    let mut block = vec![0x83, 0x86, 0x84, 0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e];
    block.extend(std::iter::repeat_n(b'a', 4000));
    block.extend(std::iter::repeat_n(0xbe, 100));
    flight.extend_from_slice(&headers_frame(7, &block, true, true));
    p.send(&flight).unwrap();
    let frames = p.take_frames();
    assert_eq!(rsts(&frames), vec![(5, Reason::REFUSED_STREAM)]);
    assert!(frames
        .iter()
        .any(|f| matches!(f, Frame::Headers(h) if h.stream_id == 7 && h.end_stream)));
    let heads = p
        .drain_events()
        .iter()
        .filter(|e| matches!(e, Event::Headers { .. }))
        .count();
    assert_eq!(heads, 2);
}

// ----- stream states (RFC 9113 §5.1) -------------------------------------------------------

#[test]
fn data_on_idle_stream_is_connection_protocol_error() {
    let mut p = Peer::server();
    let _ = p.send(&data(1, b"x", false));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn rst_stream_on_idle_stream_is_connection_protocol_error() {
    let mut p = Peer::server();
    let _ = p.send(&rst(1, Reason::CANCEL));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn window_update_on_idle_stream_is_connection_protocol_error() {
    let mut p = Peer::server();
    let _ = p.send(&window_update(1, 10));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn window_update_of_zero_on_idle_stream_is_connection_protocol_error() {
    let mut p = Peer::server();
    let _ = p.send(&window_update(1, 0));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn priority_depending_on_itself_is_stream_error_and_keeps_the_stream_idle() {
    let mut p = Peer::server();
    p.send(&priority(1, 1)).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    p.open(1, true);
}

#[test]
fn continuation_on_idle_stream_is_connection_protocol_error() {
    let mut p = Peer::server();
    let b = p.block(&request());
    let _ = p.send(&continuation(1, &b, true));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn data_on_half_closed_remote_is_stream_closed_error() {
    let mut p = Peer::server();
    p.open(1, true);
    p.send(&data(1, b"late", true)).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
    assert_eq!(
        p.drain_events(),
        vec![
            Event::Reset {
                stream_id: 1,
                reason: Reason::STREAM_CLOSED,
                remote: false
            },
            Event::StreamClosed { stream_id: 1 }
        ]
    );
}

#[test]
fn headers_on_half_closed_remote_is_stream_closed_error() {
    let mut p = Peer::server();
    p.open(1, true);
    let f = p.headers(1, &trailers(), true);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn headers_on_closed_stream_is_stream_closed_error() {
    let mut p = Peer::server();
    p.open(1, true);
    p.conn.send_headers(1, &response(), true).unwrap();
    assert!(p
        .drain_events()
        .contains(&Event::StreamClosed { stream_id: 1 }));
    let f = p.headers(1, &trailers(), true);
    let _ = p.send(&f);
    p.expect_goaway(Reason::STREAM_CLOSED);
}

#[test]
fn data_on_closed_stream_is_stream_closed_error() {
    let mut p = Peer::server();
    p.open(1, true);
    p.conn.send_headers(1, &response(), true).unwrap();
    p.take_frames();
    p.send(&data(1, b"x", true)).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn frames_after_our_reset_are_ignored_but_count_against_the_connection_window() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.reset(1, Reason::CANCEL);
    assert_eq!(p.drain_events(), vec![Event::StreamClosed { stream_id: 1 }]);
    assert_eq!(rsts(&p.take_frames()), vec![(1, Reason::CANCEL)]);
    let before = p.conn.connection_recv_window();
    p.send(&cat(&[
        data(1, &[1; 1000], false),
        window_update(1, 5),
        rst(1, Reason::CANCEL),
    ]))
    .unwrap();
    let f = p.headers(1, &trailers(), true);
    p.send(&f).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    // Counted, and given back at once (pending until a batch is due).
    assert_eq!(p.conn.connection_recv_window(), before - 1000);
    // The discarded trailers still went through HPACK: a later block decodes.
    p.open(3, true);
}

#[test]
fn frames_after_peer_reset_are_stream_closed_error() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    assert_eq!(
        p.drain_events(),
        vec![
            Event::Reset {
                stream_id: 1,
                reason: Reason::CANCEL,
                remote: true
            },
            Event::StreamClosed { stream_id: 1 }
        ]
    );
    p.send(&data(1, b"x", false)).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn window_update_and_rst_on_closed_stream_are_ignored() {
    let mut p = Peer::server();
    p.open(1, true);
    p.conn.send_headers(1, &response(), true).unwrap();
    p.take_frames();
    p.send(&cat(&[window_update(1, 100), rst(1, Reason::NO_ERROR)]))
        .unwrap();
    p.expect_quiet();
}

#[test]
fn decreasing_stream_id_is_protocol_error() {
    let mut p = Peer::server();
    p.open(5, false);
    let f = p.headers(3, &request(), true);
    let _ = p.send(&f);
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn reused_stream_id_is_an_error() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    p.drain_events();
    // Stream 1 was reset by the peer: reopening it is a STREAM_CLOSED error.
    let f = p.headers(1, &request(), true);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
}

#[test]
fn even_stream_id_from_client_is_protocol_error() {
    let mut p = Peer::server();
    let f = p.headers(2, &request(), true);
    let _ = p.send(&f);
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn headers_from_server_on_unopened_stream_is_protocol_error() {
    let mut p = Peer::client();
    let f = p.headers(2, &response(), true);
    let _ = p.send(&f);
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn push_promise_at_client_is_protocol_error() {
    let mut p = Peer::client();
    let id = p.conn.open_stream(&request(), true).unwrap();
    let mut payload = vec![0, 0, 0, 2];
    payload.extend_from_slice(&p.block(&request()));
    let _ = p.send(&raw(kind::PUSH_PROMISE, 0x4, id, &payload));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn push_promise_at_server_is_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let _ = p.send(&raw(kind::PUSH_PROMISE, 0x4, 1, &[0, 0, 0, 2, 0x82]));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn max_concurrent_streams_exceeded_is_refused_stream_and_hpack_stays_in_sync() {
    let mut p = Peer::server_with(Config {
        max_concurrent_streams: 2,
        ..Config::default()
    });
    p.open(1, false);
    p.open(3, false);
    // A new header (indexed by the peer's encoder) on the refused stream...
    let mut req = request();
    req.push(Header::new(&b"x-custom"[..], &b"value"[..]));
    let f = p.headers(5, &req, false);
    p.send(&f).unwrap();
    p.expect_rst(5, Reason::REFUSED_STREAM);
    assert!(p.drain_events().is_empty());
    // ...is in the decoder's table: once a slot frees up, a block that refers to it works.
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    p.drain_events();
    let f = p.headers(7, &req, true);
    p.send(&f).unwrap();
    match &p.drain_events()[..] {
        [Event::Headers { headers, .. }] => assert_eq!(headers, &req),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rst_stream_from_peer_emits_reset_and_frees_the_slot() {
    let mut p = Peer::server_with(Config {
        max_concurrent_streams: 1,
        ..Config::default()
    });
    p.open(1, false);
    assert_eq!(p.conn.open_streams(), 1);
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    assert_eq!(p.conn.open_streams(), 0);
    assert!(!p.conn.is_stream_open(1));
    p.drain_events();
    p.open(3, false);
}

// ----- CONTINUATION, PRIORITY, unknown frames ------------------------------------------------

#[test]
fn headers_split_over_continuation_are_reassembled() {
    let mut p = Peer::server();
    let b = p.block(&request());
    let (a, rest) = b.split_at(3);
    let (c, d) = rest.split_at(2);
    p.send(&cat(&[
        headers_frame(1, a, true, false),
        continuation(1, c, false),
        continuation(1, d, true),
    ]))
    .unwrap();
    match &p.drain_events()[..] {
        [Event::Headers {
            stream_id: 1,
            headers,
            end_stream: true,
        }] => assert_eq!(headers, &request()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn frame_interleaved_in_header_block_is_protocol_error() {
    let mut p = Peer::server();
    let b = p.block(&request());
    let _ = p.send(&cat(&[
        headers_frame(1, &b[..2], true, false),
        ping([0; 8]),
    ]));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn continuation_on_another_stream_is_protocol_error() {
    let mut p = Peer::server();
    let b = p.block(&request());
    let _ = p.send(&cat(&[
        headers_frame(1, &b[..2], true, false),
        continuation(3, &b[2..], true),
    ]));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn priority_frame_interleaved_in_header_block_is_protocol_error() {
    let mut p = Peer::server();
    let b = p.block(&request());
    let _ = p.send(&cat(&[
        headers_frame(1, &b[..2], true, false),
        priority(1, 0),
    ]));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn continuation_without_headers_is_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let _ = p.send(&continuation(1, &[0x82], true));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn priority_frames_are_parsed_and_ignored() {
    let mut p = Peer::server();
    p.send(&priority(1, 0)).unwrap();
    p.send(&priority(9, 3)).unwrap();
    // PRIORITY does not open stream 9: a lower id may still open.
    let b = p.block(&request());
    p.send(&headers_with_priority(3, &b, 0, true)).unwrap();
    assert!(matches!(
        &p.drain_events()[..],
        [Event::Headers { stream_id: 3, .. }]
    ));
    p.expect_quiet();
}

#[test]
fn headers_depending_on_itself_is_stream_error_and_hpack_stays_in_sync() {
    let mut p = Peer::server();
    let mut req = request();
    req.push(Header::new(&b"x-new"[..], &b"indexed"[..]));
    let b = p.block(&req);
    p.send(&headers_with_priority(1, &b, 1, true)).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    let f = p.headers(3, &req, true);
    p.send(&f).unwrap();
    match &p.drain_events()[..] {
        [Event::Headers { headers, .. }] => assert_eq!(headers, &req),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_frames_are_ignored() {
    let mut p = Peer::server();
    p.send(&raw(0x42, 0xff, 0, b"whatever")).unwrap();
    p.send(&raw(0x42, 0, 7, b"")).unwrap();
    p.expect_quiet();
    p.open(1, true);
}

// ----- malformed messages (RFC 9113 §8.1.1, §8.3) -------------------------------------------

fn malformed_request(req: &[Header]) {
    let mut p = Peer::server();
    let f = p.headers(1, req, true);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    // The application never saw the stream.
    assert!(p.drain_events().is_empty());
    p.open(3, true);
}

#[test]
fn request_missing_pseudo_header_is_stream_protocol_error() {
    let mut req = request();
    req.retain(|h| &h.name[..] != b":path");
    malformed_request(&req);
}

#[test]
fn request_duplicate_pseudo_header_is_stream_protocol_error() {
    let mut req = request();
    req.insert(0, Header::new(&b":method"[..], &b"GET"[..]));
    malformed_request(&req);
}

#[test]
fn uppercase_header_name_is_stream_protocol_error() {
    let mut req = request();
    req.push(Header::new(&b"X-Upper"[..], &b"v"[..]));
    malformed_request(&req);
}

#[test]
fn connection_specific_header_is_stream_protocol_error() {
    let mut req = request();
    req.push(Header::new(&b"connection"[..], &b"keep-alive"[..]));
    malformed_request(&req);
}

#[test]
fn te_other_than_trailers_is_stream_protocol_error() {
    let mut req = request();
    req.retain(|h| &h.name[..] != b"te");
    req.push(Header::new(&b"te"[..], &b"gzip"[..]));
    malformed_request(&req);
}

#[test]
fn pseudo_header_after_regular_header_is_stream_protocol_error() {
    let mut req = request();
    let path = req.remove(2);
    req.push(path);
    malformed_request(&req);
}

#[test]
fn pseudo_header_in_trailers_is_stream_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let f = p.headers(1, &hs(&[(":path", "/"), ("x", "y")]), true);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    assert_eq!(
        p.drain_events()[0],
        Event::Reset {
            stream_id: 1,
            reason: Reason::PROTOCOL_ERROR,
            remote: false
        }
    );
}

#[test]
fn trailers_without_end_stream_is_stream_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let f = p.headers(1, &trailers(), false);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn content_length_mismatch_is_stream_protocol_error() {
    let mut p = Peer::server();
    let mut req = request();
    req.push(Header::new(&b"content-length"[..], &b"3"[..]));
    let f = p.headers(1, &req, false);
    p.send(&f).unwrap();
    p.drain_events();
    p.send(&data(1, b"four", true)).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn response_data_before_headers_is_stream_protocol_error() {
    let mut p = Peer::client();
    let id = p.conn.open_stream(&request(), true).unwrap();
    p.send(&data(id, b"x", true)).unwrap();
    p.expect_rst(id, Reason::PROTOCOL_ERROR);
}

#[test]
fn informational_response_is_skipped() {
    let mut p = Peer::client();
    let id = p.conn.open_stream(&request(), true).unwrap();
    let f = cat(&[
        p.headers(id, &hs(&[(":status", "100")]), false),
        p.headers(id, &response(), false),
    ]);
    p.send(&f).unwrap();
    match &p.drain_events()[..] {
        [Event::Headers { headers, .. }] => assert_eq!(headers, &response()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_hpack_block_is_compression_error() {
    let mut p = Peer::server();
    // Indexed field 0x7f... pointing far past the tables.
    let _ = p.send(&headers_frame(1, &[0xff, 0x80, 0x01], true, true));
    p.expect_goaway(Reason::COMPRESSION_ERROR);
}

// ----- flow control --------------------------------------------------------------------------

#[test]
fn send_data_never_exceeds_connection_window() {
    let mut p = Peer::server();
    for id in [1, 3] {
        p.open(id, false);
        p.conn.send_headers(id, &response(), false).unwrap();
    }
    p.send(&settings(Settings {
        initial_window_size: Some(1 << 20),
        ..Settings::default()
    }))
    .unwrap();
    let body = vec![9u8; 50_000];
    assert_eq!(p.conn.send_data(1, &body, false), Ok(50_000));
    assert_eq!(p.conn.send_capacity(3), 65_535 - 50_000);
    assert_eq!(p.conn.send_data(3, &body, true), Ok(65_535 - 50_000));
    assert_eq!(p.conn.send_data(3, &body, true), Ok(0));
    assert_eq!(
        p.conn.stream_state(3),
        Some(State::Open),
        "END_STREAM not sent"
    );
    let sent: usize = p
        .take_frames()
        .iter()
        .map(|f| match f {
            Frame::Data(d) => {
                assert!(!d.end_stream);
                d.payload.len()
            }
            _ => 0,
        })
        .sum();
    assert_eq!(sent, 65_535);
    p.drain_events();
    p.send(&window_update(0, 100)).unwrap();
    assert_eq!(p.drain_events(), vec![Event::SendCapacity { stream_id: 0 }]);
    assert_eq!(p.conn.send_capacity(3), 100);
}

#[test]
fn send_data_never_exceeds_stream_window() {
    let mut p = Peer::server();
    p.send(&settings(Settings {
        initial_window_size: Some(10),
        ..Settings::default()
    }))
    .unwrap();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    assert_eq!(p.conn.send_data(1, b"0123456789abcdef", true), Ok(10));
    assert_eq!(p.conn.send_capacity(1), 0);
    p.drain_events();
    p.send(&window_update(1, 6)).unwrap();
    assert_eq!(p.drain_events(), vec![Event::SendCapacity { stream_id: 1 }]);
    assert_eq!(p.conn.send_data(1, b"abcdef", true), Ok(6));
    let frames = p.take_frames();
    assert!(
        matches!(frames.last(), Some(Frame::Data(d)) if d.end_stream && &d.payload[..] == b"abcdef")
    );
}

#[test]
fn send_data_splits_at_peer_max_frame_size() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    assert_eq!(p.conn.send_data(1, &[1; 40_000], true), Ok(40_000));
    let sizes: Vec<(usize, bool)> = p
        .take_frames()
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some((d.payload.len(), d.end_stream)),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![(16_384, false), (16_384, false), (7_232, true)]);
}

fn data_frames(frames: &[Frame]) -> Vec<(u32, Vec<u8>, bool)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some((d.stream_id, d.payload.to_vec(), d.end_stream)),
            _ => None,
        })
        .collect()
}

#[test]
fn consecutive_sends_coalesce_into_one_data_frame_until_output_is_taken() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    assert_eq!(p.conn.send_data(1, b"abc", false), Ok(3));
    assert_eq!(p.conn.send_data(1, b"de", false), Ok(2));
    assert_eq!(p.conn.send_data(1, b"f", true), Ok(1));
    assert_eq!(
        data_frames(&p.take_frames()),
        vec![(1, b"abcdef".to_vec(), true)]
    );
}

#[test]
fn coalescing_stops_at_max_frame_size_and_after_the_output_is_taken() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    assert_eq!(p.conn.send_data(1, &[1; 16_000], false), Ok(16_000));
    assert_eq!(p.conn.send_data(1, &[2; 1_000], false), Ok(1_000));
    let frames = data_frames(&p.take_frames());
    let sizes: Vec<usize> = frames.iter().map(|f| f.1.len()).collect();
    assert_eq!(sizes, vec![16_384, 616]);
    assert_eq!(&frames[0].1[15_999..16_001], &[1, 2]);
    // Taken output is gone: the next message starts a new frame.
    assert_eq!(p.conn.send_data(1, b"x", false), Ok(1));
    assert_eq!(
        data_frames(&p.take_frames()),
        vec![(1, b"x".to_vec(), false)]
    );
}

#[test]
fn coalescing_never_crosses_streams_or_other_frames() {
    let mut p = Peer::server();
    p.open(1, false);
    p.open(3, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.conn.send_headers(3, &response(), false).unwrap();
    p.take_frames();
    p.conn.send_data(1, b"a", false).unwrap();
    p.conn.send_data(3, b"b", false).unwrap();
    p.conn.send_data(1, b"c", false).unwrap();
    p.conn.ping([7; 8]);
    p.conn.send_data(1, b"d", false).unwrap();
    p.conn
        .send_trailers(1, &[Header::new(&b"grpc-status"[..], &b"0"[..])])
        .unwrap();
    let frames = p.take_frames();
    assert_eq!(
        data_frames(&frames),
        vec![
            (1, b"a".to_vec(), false),
            (3, b"b".to_vec(), false),
            (1, b"c".to_vec(), false),
            (1, b"d".to_vec(), false),
        ]
    );
    let kinds: Vec<u8> = frames.iter().map(Frame::kind).collect();
    assert_eq!(
        kinds,
        vec![
            kind::DATA,
            kind::DATA,
            kind::DATA,
            kind::PING,
            kind::DATA,
            kind::HEADERS
        ]
    );
}

#[test]
fn coalesced_frames_respect_flow_control() {
    let mut p = Peer::server();
    p.send(&settings(Settings {
        initial_window_size: Some(10),
        ..Settings::default()
    }))
    .unwrap();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    assert_eq!(p.conn.send_data(1, b"012345", false), Ok(6));
    assert_eq!(p.conn.send_data(1, b"6789ab", false), Ok(4));
    assert_eq!(
        data_frames(&p.take_frames()),
        vec![(1, b"0123456789".to_vec(), false)]
    );
}

#[test]
fn send_data_with_writes_in_place_and_coalesces() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    let cap = p.conn.send_capacity(1);
    assert_eq!(
        p.conn.send_data_with(1, 3, |b| b.extend_from_slice(b"abc")),
        Ok(true)
    );
    assert_eq!(p.conn.send_data(1, b"de", false), Ok(2));
    assert_eq!(
        p.conn.send_data_with(1, 1, |b| b.extend_from_slice(b"f")),
        Ok(true)
    );
    assert_eq!(p.conn.send_capacity(1), cap - 6);
    assert_eq!(
        data_frames(&p.take_frames()),
        vec![(1, b"abcdef".to_vec(), false)]
    );
}

#[test]
fn send_data_with_declines_what_does_not_fit_and_bad_writers() {
    let mut p = Peer::server();
    p.send(&settings(Settings {
        initial_window_size: Some(20_000),
        ..Settings::default()
    }))
    .unwrap();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    p.take_frames();
    let never = |_: &mut BytesMut| panic!("must not be called");
    // Over the window, over one frame, empty: declined, nothing written.
    assert_eq!(p.conn.send_data_with(1, 20_001, never), Ok(false));
    assert_eq!(p.conn.send_data_with(1, 16_385, never), Ok(false));
    assert_eq!(p.conn.send_data_with(1, 0, never), Ok(false));
    assert!(!p.conn.has_output());
    // A writer that writes a different length is undone, in a new frame or an open one.
    assert_eq!(
        p.conn.send_data_with(1, 4, |b| b.extend_from_slice(b"abc")),
        Ok(false)
    );
    assert!(!p.conn.has_output());
    assert_eq!(p.conn.send_data(1, b"xy", false), Ok(2));
    assert_eq!(
        p.conn.send_data_with(1, 2, |b| b.extend_from_slice(b"abc")),
        Ok(false)
    );
    // The open frame still grows after the undo.
    assert_eq!(
        p.conn.send_data_with(1, 1, |b| b.extend_from_slice(b"z")),
        Ok(true)
    );
    assert_eq!(p.conn.send_capacity(1), 20_000 - 3);
    assert_eq!(
        data_frames(&p.take_frames()),
        vec![(1, b"xyz".to_vec(), false)]
    );
    assert_eq!(p.conn.send_data_with(3, 1, never), Err(SendError::Closed));
}

/// Sends four 15 000-octet DATA frames on stream 1 in one `recv`; returns their payloads.
fn recv_four_frames(p: &mut Peer, fill: u8) -> Vec<Bytes> {
    let frames: Vec<BytesMut> = (0..4).map(|_| data(1, &[fill; 15_000], false)).collect();
    p.send(&cat(&frames)).unwrap();
    p.drain_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data),
            _ => None,
        })
        .collect()
}

#[test]
fn receive_buffers_are_reused_once_the_application_drops_their_frames() {
    let mut p = Peer::server();
    p.open(1, false);
    let first = recv_four_frames(&mut p, 1);
    let second = recv_four_frames(&mut p, 2);
    let third = recv_four_frames(&mut p, 3);
    assert!(first.iter().all(|d| d[..] == [1; 15_000][..]));
    let first_ptr = first[0].as_ptr();
    // The first buffer is free again, the third still in use: the next read goes to the first.
    drop(first);
    drop(second);
    let fourth = recv_four_frames(&mut p, 4);
    assert_eq!(fourth[0].as_ptr(), first_ptr);
    assert!(fourth.iter().all(|d| d[..] == [4; 15_000][..]));
    assert!(third.iter().all(|d| d[..] == [3; 15_000][..]));
    // Everything dropped: the current buffer is reclaimed in place.
    let current = fourth[0].as_ptr();
    drop(third);
    drop(fourth);
    let fifth = recv_four_frames(&mut p, 5);
    assert_eq!(fifth[0].as_ptr(), current);
    assert!(fifth.iter().all(|d| d[..] == [5; 15_000][..]));
}

#[test]
fn frames_split_across_buffer_changes_arrive_whole() {
    let mut p = Peer::server();
    p.open(1, false);
    let frames: Vec<BytesMut> = (0..40u8).map(|i| data(1, &[i; 9_999], false)).collect();
    let wire = cat(&frames);
    let mut held = Vec::new();
    for chunk in wire.chunks(7_001) {
        p.send(chunk).unwrap();
        for e in p.drain_events() {
            if let Event::Data { data, .. } = e {
                held.push(data);
            }
        }
        // Drop some, keep some: buffers go in and out of use.
        if held.len() % 3 == 0 {
            held.drain(..held.len() / 2);
        }
    }
    p.assert_alive();
    let total: usize = held.iter().map(Bytes::len).sum();
    assert!(total > 0);
    for d in &held {
        assert_eq!(d.len(), 9_999);
        assert!(d.iter().all(|&b| b == d[0]));
    }
}

#[test]
fn large_header_block_is_split_into_continuation_frames() {
    let mut p = Peer::server();
    p.open(1, false);
    let mut head = response();
    head.push(Header::new(&b"x-big"[..], Bytes::from(vec![b'a'; 40_000])));
    p.conn.send_headers(1, &head, false).unwrap();
    let frames = p.take_frames();
    let kinds: Vec<u8> = frames.iter().map(Frame::kind).collect();
    assert_eq!(kinds[0], kind::HEADERS);
    assert!(kinds[1..].iter().all(|&k| k == kind::CONTINUATION));
    assert!(kinds.len() >= 2);
}

#[test]
fn send_headers_over_peer_header_list_limit_is_refused() {
    let mut p = Peer::client();
    p.send(&settings(Settings {
        max_header_list_size: Some(100),
        ..Settings::default()
    }))
    .unwrap();
    let mut req = request();
    req.push(Header::new(&b"x-big"[..], Bytes::from(vec![b'a'; 200])));
    assert_eq!(
        p.conn.open_stream(&req, true),
        Err(SendError::HeaderListTooLarge)
    );
}

#[test]
fn data_beyond_connection_window_is_flow_control_error() {
    let mut p = Peer::server_with(Config {
        connection_window_size: 65_535,
        initial_window_size: 1 << 20,
        ..Config::default()
    });
    p.open(1, false);
    p.open(3, false);
    p.send(&data(1, &[0; 16_384], false)).unwrap();
    p.send(&data(1, &[0; 16_384], false)).unwrap();
    p.send(&data(3, &[0; 16_384], false)).unwrap();
    p.send(&data(3, &[0; 16_383], false)).unwrap();
    let _ = p.send(&data(3, &[0; 1], false));
    p.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn data_beyond_stream_window_is_stream_flow_control_error() {
    let mut p = Peer::server_with(Config {
        initial_window_size: 100,
        ..Config::default()
    });
    p.open(1, false);
    p.open(3, false);
    p.send(&data(1, &[0; 100], false)).unwrap();
    p.send(&data(1, &[0; 1], false)).unwrap();
    p.expect_rst(1, Reason::FLOW_CONTROL_ERROR);
    // Stream 3 is untouched.
    p.send(&data(3, &[5; 100], true)).unwrap();
    let ev = p.drain_events();
    assert!(ev.contains(&Event::Data {
        stream_id: 3,
        data: Bytes::from(vec![5; 100]),
        end_stream: true
    }));
}

#[test]
fn padding_counts_against_flow_control() {
    let mut p = Peer::server_with(Config {
        initial_window_size: 100,
        ..Config::default()
    });
    p.open(1, false);
    // 10 payload + 1 pad length + 89 padding = 100: exactly the window.
    p.send(&data_padded(1, &[1; 10], 89, false)).unwrap();
    // The padding (90 octets) is released at once: half the window, so announced.
    assert_eq!(p.conn.stream_recv_window(1), Some(90));
    let ev = p.drain_events();
    assert!(matches!(&ev[..], [Event::Data { data, .. }] if data.len() == 10));
    assert!(p.take_frames().iter().any(|f| matches!(f,
        Frame::WindowUpdate(w) if w.stream_id == 1 && w.increment == 90)));
    p.send(&data_padded(1, &[1; 10], 89, false)).unwrap();
    p.expect_rst(1, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn window_update_of_zero_on_stream_is_stream_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&window_update(1, 0)).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn window_update_of_zero_on_connection_is_protocol_error() {
    let mut p = Peer::server();
    let _ = p.send(&window_update(0, 0));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn stream_window_pushed_past_max_is_stream_flow_control_error() {
    let mut p = Peer::server();
    p.open(1, false);
    p.open(3, false);
    p.send(&window_update(1, (1 << 31) - 1)).unwrap();
    p.expect_rst(1, Reason::FLOW_CONTROL_ERROR);
    p.conn.send_headers(3, &response(), true).unwrap();
}

#[test]
fn connection_window_pushed_past_max_is_flow_control_error() {
    let mut p = Peer::server();
    p.send(&window_update(0, (1 << 31) - 1 - 65_535)).unwrap();
    let _ = p.send(&window_update(0, 1));
    p.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn release_capacity_batches_window_updates() {
    let mut p = Peer::server();
    p.open(1, false);
    // 1 MiB stream window, 4 MiB connection window: nothing until half the stream window is
    // released (the connection's update waits for 1 MiB, see `RecvWindow::take_update`).
    for _ in 0..40 {
        p.send(&data(1, &[0; 16_384], false)).unwrap();
    }
    p.drain_events();
    for _ in 0..31 {
        p.conn.release_capacity(1, 16_384);
    }
    assert!(
        p.take_frames().is_empty(),
        "no update before half the window"
    );
    p.conn.release_capacity(1, 16_384);
    let frames = p.take_frames();
    match &frames[..] {
        [Frame::WindowUpdate(w)] => {
            assert_eq!((w.stream_id, w.increment), (1, 32 * 16_384));
        }
        other => panic!("{other:?}"),
    }
    // Releasing more than was received is ignored.
    p.conn.release_capacity(1, 10 << 20);
    let frames = p.take_frames();
    assert!(frames.iter().all(|f| matches!(f, Frame::WindowUpdate(_))));
    assert_eq!(
        p.conn.stream_recv_window(1),
        Some((1 << 20) - 40 * 16_384 + 32 * 16_384)
    );
}

#[test]
fn reset_returns_unreleased_data_to_the_connection_window() {
    let mut p = Peer::server_with(Config {
        connection_window_size: 100_000,
        ..Config::default()
    });
    p.open(1, false);
    p.send(&data(1, &[0; 16_000], false)).unwrap();
    p.send(&data(1, &[0; 16_000], false)).unwrap();
    p.send(&data(1, &[0; 16_000], false)).unwrap();
    p.send(&data(1, &[0; 16_000], false)).unwrap();
    p.take_frames();
    p.conn.reset(1, Reason::CANCEL);
    let frames = p.take_frames();
    assert!(frames.iter().any(|f| matches!(f,
        Frame::WindowUpdate(w) if w.stream_id == 0 && w.increment == 64_000)));
    assert_eq!(p.conn.connection_recv_window(), 100_000);
}

// ----- PING and GOAWAY ------------------------------------------------------------------------

#[test]
fn ping_is_acknowledged_with_the_same_payload() {
    let mut p = Peer::server();
    p.send(&ping(*b"12345678")).unwrap();
    let frames = p.take_frames();
    assert!(matches!(&frames[..], [Frame::Ping(q)] if q.ack && q.payload == *b"12345678"));
}

#[test]
fn ping_ack_is_reported() {
    let mut p = Peer::client();
    p.conn.ping(*b"rtt-ping");
    let frames = p.take_frames();
    assert!(matches!(&frames[..], [Frame::Ping(q)] if !q.ack));
    p.send(&pong(*b"rtt-ping")).unwrap();
    assert_eq!(
        p.drain_events(),
        vec![Event::PingAck {
            payload: *b"rtt-ping"
        }]
    );
}

#[test]
fn goaway_refuses_streams_above_last_stream_id() {
    let mut p = Peer::client();
    let a = p.conn.open_stream(&request(), true).unwrap();
    let b = p.conn.open_stream(&request(), true).unwrap();
    let c = p.conn.open_stream(&request(), true).unwrap();
    assert_eq!((a, b, c), (1, 3, 5));
    p.send(&goaway(1, Reason::NO_ERROR)).unwrap();
    assert_eq!(
        p.drain_events(),
        vec![
            Event::GoAway {
                last_stream_id: 1,
                reason: Reason::NO_ERROR,
                debug: Bytes::new()
            },
            Event::Refused { stream_id: 3 },
            Event::StreamClosed { stream_id: 3 },
            Event::Refused { stream_id: 5 },
            Event::StreamClosed { stream_id: 5 },
        ]
    );
    assert_eq!(
        p.conn.open_stream(&request(), true),
        Err(SendError::GoingAway)
    );
    assert!(!p.conn.can_open_stream());
    assert!(!p.conn.is_closed());
    // Stream 1 completes; then the connection is done.
    let f = p.headers(1, &response(), true);
    p.send(&f).unwrap();
    assert!(p.conn.is_closed());
}

#[test]
fn goaway_raising_last_stream_id_is_protocol_error() {
    let mut p = Peer::client();
    p.send(&goaway(1, Reason::NO_ERROR)).unwrap();
    let _ = p.send(&goaway(3, Reason::NO_ERROR));
    p.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn server_graceful_goaway_is_two_step() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.go_away(Reason::NO_ERROR, b"bye");
    let frames = p.take_frames();
    match &frames[..] {
        [Frame::GoAway(g), Frame::Ping(q)] => {
            assert_eq!(g.last_stream_id, MAX_STREAM_ID);
            assert_eq!(g.reason, Reason::NO_ERROR);
            assert!(!q.ack);
            assert_eq!(q.payload, DRAIN_PING_PAYLOAD);
        }
        other => panic!("{other:?}"),
    }
    // A request in flight before the client saw the GOAWAY is still served.
    p.open(3, true);
    p.send(&pong(DRAIN_PING_PAYLOAD)).unwrap();
    let frames = p.take_frames();
    assert!(
        matches!(&frames[..], [Frame::GoAway(g)] if g.last_stream_id == 3 && &g.debug_data[..] == b"bye")
    );
    assert!(
        p.drain_events().is_empty(),
        "the drain PING is not reported"
    );
    // Later streams are ignored (their headers still decoded).
    let f = p.headers(5, &request(), false);
    p.send(&f).unwrap();
    p.send(&data(5, b"x", true)).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    // Streams 1 and 3 finish, then the connection is closed.
    p.conn.send_headers(3, &response(), true).unwrap();
    assert!(!p.conn.is_closed());
    p.send(&data(1, b"", true)).unwrap();
    p.conn.send_headers(1, &response(), true).unwrap();
    assert!(p.conn.is_closed());
}

#[test]
fn goaway_with_error_closes_the_connection() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.go_away(Reason::INTERNAL_ERROR, b"boom");
    let frames = p.take_frames();
    assert!(
        matches!(&frames[..], [Frame::GoAway(g)] if g.reason == Reason::INTERNAL_ERROR && g.last_stream_id == 1)
    );
    assert!(p.conn.is_closed());
    assert!(p.send(&ping([0; 8])).is_err());
    assert_eq!(p.conn.send_data(1, b"x", true), Err(SendError::Closed));
}

#[test]
fn open_stream_respects_peer_max_concurrent_streams() {
    let mut p = Peer::client();
    p.send(&settings(Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    }))
    .unwrap();
    let id = p.conn.open_stream(&request(), true).unwrap();
    assert!(!p.conn.can_open_stream());
    assert_eq!(
        p.conn.open_stream(&request(), true),
        Err(SendError::StreamLimit)
    );
    let f = p.headers(id, &response(), true);
    p.send(&f).unwrap();
    assert!(p.conn.can_open_stream());
    assert_eq!(p.conn.open_stream(&request(), true), Ok(3));
}

#[test]
fn open_stream_on_server_is_wrong_role() {
    let mut p = Peer::server();
    assert_eq!(
        p.conn.open_stream(&request(), true),
        Err(SendError::WrongRole)
    );
}

#[test]
fn stream_error_leaves_other_streams_untouched() {
    let mut p = Peer::server();
    p.open(1, false);
    p.open(3, false);
    let f = p.headers(1, &hs(&[("Bad", "x")]), true);
    p.send(&f).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    p.drain_events();
    p.send(&data(3, b"fine", true)).unwrap();
    assert_eq!(
        p.drain_events(),
        vec![Event::Data {
            stream_id: 3,
            data: Bytes::from_static(b"fine"),
            end_stream: true
        }]
    );
    p.conn.send_headers(3, &response(), false).unwrap();
    assert_eq!(p.conn.send_data(3, b"ok", false), Ok(2));
}

// ----- defences ----------------------------------------------------------------------------

#[test]
fn continuation_flood_is_enhance_your_calm_with_bounded_memory() {
    let mut p = Peer::server();
    let limit = Config::default().header_block_limit();
    let b = p.block(&request());
    p.send(&headers_frame(1, &b, false, false)).unwrap();
    let chunk = vec![0x82u8; 16_000];
    let mut sent = b.len();
    loop {
        let r = p.send(&continuation(1, &chunk, false));
        sent += chunk.len();
        if r.is_err() {
            break;
        }
        assert!(
            sent <= limit,
            "buffered {sent} octets past the {limit} limit"
        );
    }
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_continuation_flood_is_enhance_your_calm() {
    let mut p = Peer::server();
    let b = p.block(&request());
    p.send(&headers_frame(1, &b, false, false)).unwrap();
    let mut flood = BytesMut::new();
    for _ in 0..=Config::default().max_empty_frames {
        flood.extend_from_slice(&continuation(1, &[], false));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_headers_flood_is_enhance_your_calm() {
    let mut p = Peer::server();
    let mut flood = headers_frame(1, &[], false, false);
    for _ in 0..Config::default().max_empty_frames {
        flood.extend_from_slice(&continuation(1, &[], false));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_data_flood_is_enhance_your_calm() {
    let mut p = Peer::server();
    p.open(1, false);
    let mut flood = BytesMut::new();
    for _ in 0..=Config::default().max_empty_frames {
        flood.extend_from_slice(&data(1, &[], false));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_frames_interleaved_with_content_are_tolerated() {
    let mut p = Peer::server();
    p.open(1, false);
    for _ in 0..500 {
        p.send(&data(1, &[], false)).unwrap();
        p.send(&data(1, b"x", false)).unwrap();
    }
    p.assert_alive();
}

#[test]
fn hpack_bomb_is_answered_431_and_hpack_stays_in_sync() {
    let mut p = Peer::server();
    // :method POST, :scheme http, :path /, then "x: a×4000" added to the dynamic table,
    // then 100 one-octet references to it: ~4 KB on the wire, ~400 KB decoded.
    let mut block = vec![0x83, 0x86, 0x84, 0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e];
    block.extend(std::iter::repeat_n(b'a', 4000));
    block.extend(std::iter::repeat_n(0xbe, 100));
    p.send(&headers_frame(1, &block, true, true)).unwrap();
    let frames = p.take_frames();
    match &frames[..] {
        [Frame::Headers(h)] => {
            assert_eq!(h.stream_id, 1);
            assert!(h.end_stream);
            let got = p.decode_block(&h.fragment.clone());
            assert_eq!(got, hs(&[(":status", "431")]));
        }
        other => panic!("{other:?}"),
    }
    assert!(p.drain_events().is_empty());
    // The table entry is there: one reference to it decodes.
    p.send(&headers_frame(3, &[0x83, 0x86, 0x84, 0xbe], true, true))
        .unwrap();
    match &p.drain_events()[..] {
        [Event::Headers { headers, .. }] => {
            assert_eq!(headers.last().unwrap().value.len(), 4000)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_trailers_are_stream_protocol_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let big = hs(&[("x-big", &"a".repeat(20_000))]);
    let b = p.block(&big);
    let mut frames = headers_frame(1, &b[..10_000], true, false);
    frames.extend_from_slice(&continuation(1, &b[10_000..], true));
    p.send(&frames).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
}

#[test]
fn rapid_reset_gets_goaway_enhance_your_calm() {
    let mut p = Peer::server_with(Config {
        max_resets_per_second: 10,
        ..Config::default()
    });
    let mut id = 1;
    let result = loop {
        let f = cat(&[p.headers(id, &request(), false), rst(id, Reason::CANCEL)]);
        if let Err(e) = p.send(&f) {
            break e;
        }
        id += 2;
        assert!(id < 100, "never limited");
    };
    assert_eq!(result.reason(), Reason::ENHANCE_YOUR_CALM);
    assert_eq!(id, 21, "the 11th reset within a second is one too many");
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn resets_below_the_rate_limit_are_fine() {
    let mut p = Peer::server_with(Config {
        max_resets_per_second: 10,
        ..Config::default()
    });
    for i in 0..100u32 {
        let id = 2 * i + 1;
        let f = cat(&[p.headers(id, &request(), false), rst(id, Reason::CANCEL)]);
        p.send(&f).unwrap();
        p.advance(Duration::from_millis(150));
    }
    p.assert_alive();
}

#[test]
fn provoked_stream_errors_count_as_resets() {
    let mut p = Peer::server_with(Config {
        max_resets_per_second: 10,
        ..Config::default()
    });
    let mut id = 1;
    let result = loop {
        // Each malformed request makes us send RST_STREAM.
        let f = p.headers(id, &hs(&[(":method", "GET")]), true);
        if let Err(e) = p.send(&f) {
            break e;
        }
        id += 2;
        assert!(id < 100, "never limited");
    };
    assert_eq!(result.reason(), Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn settings_flood_is_enhance_your_calm() {
    let mut p = Peer::server();
    let mut flood = BytesMut::new();
    for _ in 0..=Config::default().max_pending_control_frames {
        flood.extend_from_slice(&settings(Settings::default()));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn ping_flood_is_enhance_your_calm() {
    let mut p = Peer::server();
    let mut flood = BytesMut::new();
    for _ in 0..=Config::default().max_pending_control_frames {
        flood.extend_from_slice(&ping([1; 8]));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

#[test]
fn pings_are_fine_when_the_output_is_drained() {
    // Ping enforcement off: this is about the control-frame limit only.
    let mut config = Config::default();
    config.keepalive.max_ping_strikes = 0;
    let mut p = Peer::server_with(config);
    for _ in 0..5 {
        let mut burst = BytesMut::new();
        for _ in 0..600 {
            burst.extend_from_slice(&ping([1; 8]));
        }
        p.send(&burst).unwrap();
        assert_eq!(p.take_frames().len(), 600);
    }
}

#[test]
fn frame_larger_than_max_frame_size_is_frame_size_error() {
    let mut p = Peer::server();
    p.open(1, false);
    let f = data(1, &[0; 16_385], false);
    // Rejected from its header alone: the payload is never buffered.
    let _ = p.send(&f[..9]);
    p.expect_goaway(Reason::FRAME_SIZE_ERROR);
}

#[test]
fn errors_are_sticky() {
    let mut p = Peer::server();
    let _ = p.send(&data(1, b"x", false));
    let first = p.last.clone().unwrap_err();
    assert_eq!(p.send(&ping([0; 8])).unwrap_err(), first);
    assert_eq!(p.conn.error(), Some(&first));
}

#[test]
fn events_are_the_same_for_every_split_point() {
    let mut script = Peer::server_raw(Config::default());
    let b = script.block(&request());
    let t = script.block(&trailers());
    let mut input = BytesMut::from(&PREFACE[..]);
    for f in [
        settings(Settings::default()),
        settings_ack(),
        headers_frame(1, &b[..4], false, false),
        continuation(1, &b[4..], true),
        data_padded(1, b"hello", 7, false),
        priority(1, 0),
        data(1, b" world", false),
        headers_frame(1, &t, true, true),
        ping(*b"pingpong"),
    ] {
        input.extend_from_slice(&f);
    }
    let run = |chunks: &[&[u8]]| {
        let mut p = Peer::server_raw(Config::default());
        for c in chunks {
            p.send(c).unwrap();
        }
        (p.drain_events(), p.take_frames())
    };
    let whole = run(&[&input]);
    assert_eq!(whole.0.len(), 5, "{:?}", whole.0);
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(run(&[a, b]), whole, "split at {i}");
    }
}

/// Random frame sequences never panic, and the connection either carries on or fails with a
/// GOAWAY. Most frames are well-formed with random parameters (so the state machine gets
/// deep); some are raw garbage.
#[test]
fn random_frames_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut survived = 0;
    for round in 0..600 {
        let server = round % 2 == 0;
        let mut p = if server {
            let mut p = Peer::server();
            p.open(1, false);
            p.open(3, false);
            p
        } else {
            let mut p = Peer::client();
            let _ = p.conn.open_stream(&request(), false);
            let _ = p.conn.open_stream(&request(), true);
            p
        };
        let mut next_id = 5;
        for _ in 0..60 {
            let r = next();
            let id = match r % 32 {
                0..=14 => 1,
                15..=28 => 3,
                29 => next_id,
                30 => 0,
                _ => 2,
            };
            let small = (r >> 8) as u32 % 70_000;
            let eos = r & (1 << 20) != 0;
            let frame = match (r >> 24) % 32 {
                0..=9 => data(id, &vec![b'd'; (small % 3000) as usize], eos),
                10 => data_padded(id, b"pad", (r >> 40) as u8, eos),
                11..=16 => {
                    if server && id == next_id {
                        next_id += 2;
                    }
                    let h = match (r >> 40) % 3 {
                        0 => request(),
                        1 => response(),
                        _ => trailers(),
                    };
                    p.headers(id, &h, eos)
                }
                17 | 18 => {
                    let b = p.block(&trailers());
                    cat(&[
                        headers_frame(id, &b[..2], eos, false),
                        continuation(id, &b[2..], true),
                    ])
                }
                19 => rst(id, Reason((r >> 40) as u32 % 14)),
                20..=23 => window_update(id, small),
                24 | 25 => settings(Settings {
                    initial_window_size: Some(small),
                    max_concurrent_streams: Some(small % 5),
                    ..Settings::default()
                }),
                26 | 27 => ping(r.to_be_bytes()),
                28 => goaway(small % 7, Reason::NO_ERROR),
                29 | 30 => priority(id, (r >> 40) as u32 % 5),
                _ => {
                    let len = ((r >> 32) % 24) as usize;
                    let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    raw((r >> 40) as u8 % 11, (r >> 48) as u8, id, &payload)
                }
            };
            let _ = p.send(&frame);
            for e in p.drain_events() {
                if let Event::Data {
                    stream_id, data, ..
                } = e
                {
                    p.conn.release_capacity(stream_id, data.len());
                }
            }
            if p.conn.is_closed() {
                break;
            }
            survived += 1;
            match next() % 4 {
                0 => {
                    let _ = p.conn.send_data(1, &[0; 20_000], eos);
                }
                1 => {
                    let _ = p.conn.send_headers(3, &trailers(), true);
                }
                2 => p.conn.reset(1, Reason::CANCEL),
                _ => {
                    let _ = p.conn.open_stream(&request(), false);
                }
            }
        }
        p.take_frames();
    }
    eprintln!("{survived} frames processed before the connection closed");
    assert!(survived > 3000, "only {survived} frames before errors");
}

#[test]
fn connection_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Connection>();
}

// ----- RFC 9113 rules, one scripted test each ------------------------------------------------
//
// Late frames on reset and half-closed streams (§5.1, §6.1) and their flow-control accounting
// (§6.9), content-length (§8.1.1), window limits (§6.9.1, §6.9.2), PRIORITY (§5.1, §6.3) and
// the empty-frame flood.

/// A server under test whose connection receive window is the RFC's initial 65 535 octets, so
/// that a few frames exhaust it.
fn small_window_server() -> Peer {
    Peer::server_with(Config {
        connection_window_size: 65_535,
        ..Config::default()
    })
}

/// Plays a well-behaved peer that keeps sending DATA on `id`, a stream the connection no
/// longer accepts DATA on, four connection windows' worth in all, sending only what its view
/// of the connection window allows. Each frame must be counted against the connection window
/// and given back with WINDOW_UPDATE on stream 0 (RFC 9113 §6.9), or the peer stalls. Returns
/// the RST_STREAMs the connection sent meanwhile.
fn late_data_on(p: &mut Peer, id: u32) -> Vec<(u32, Reason)> {
    const FRAME: usize = 16_000;
    let start = p.conn.connection_recv_window();
    let mut peer_view = start;
    let mut resets = Vec::new();
    for i in 0..16 {
        assert!(
            peer_view >= FRAME as i64,
            "connection window leaked: the peer may send {peer_view} after {i} frames"
        );
        let before = p.conn.connection_recv_window();
        p.send(&data(id, &[9; FRAME], false)).unwrap();
        peer_view -= FRAME as i64;
        let frames = p.take_frames();
        let granted: i64 = frames
            .iter()
            .filter_map(|f| match f {
                Frame::WindowUpdate(w) if w.stream_id == 0 => Some(i64::from(w.increment)),
                _ => None,
            })
            .sum();
        // Counted against the window, whatever became of the frame.
        assert_eq!(
            p.conn.connection_recv_window(),
            before - FRAME as i64 + granted
        );
        peer_view += granted;
        resets.extend(rsts(&frames));
    }
    assert_eq!(p.conn.connection_recv_window(), peer_view);
    assert!(peer_view >= start - FRAME as i64 * 2, "{peer_view}");
    resets
}

#[test]
fn data_after_our_reset_is_ignored_and_its_connection_window_comes_back() {
    let mut p = small_window_server();
    p.open(1, false);
    p.conn.reset(1, Reason::CANCEL);
    assert_eq!(rsts(&p.take_frames()), vec![(1, Reason::CANCEL)]);
    p.drain_events();
    // §5.1: frames the peer sent before it saw our RST_STREAM are ignored, not answered.
    assert_eq!(late_data_on(&mut p, 1), vec![]);
    assert!(p.drain_events().is_empty());
    p.open(3, true);
}

#[test]
fn data_after_peer_reset_is_stream_closed_once_and_its_connection_window_comes_back() {
    let mut p = small_window_server();
    p.open(1, false);
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    p.drain_events();
    // §5.1: any frame but PRIORITY after the peer's RST_STREAM is a STREAM_CLOSED stream
    // error; once we have answered with RST_STREAM, later frames are in flight and ignored.
    assert_eq!(late_data_on(&mut p, 1), vec![(1, Reason::STREAM_CLOSED)]);
    assert!(p.drain_events().is_empty());
    p.open(3, true);
}

#[test]
fn data_on_half_closed_remote_is_stream_closed_once_and_its_connection_window_comes_back() {
    let mut p = small_window_server();
    p.open(1, true);
    // §5.1 half-closed (remote), §6.1: DATA after END_STREAM is a STREAM_CLOSED stream error.
    assert_eq!(late_data_on(&mut p, 1), vec![(1, Reason::STREAM_CLOSED)]);
    assert_eq!(
        p.drain_events(),
        vec![
            Event::Reset {
                stream_id: 1,
                reason: Reason::STREAM_CLOSED,
                remote: false
            },
            Event::StreamClosed { stream_id: 1 }
        ]
    );
    assert_eq!(
        p.conn.send_headers(1, &response(), true),
        Err(SendError::Closed)
    );
    p.open(3, true);
}

#[test]
fn data_on_half_closed_remote_returns_its_unreleased_data_too() {
    let mut p = small_window_server();
    p.open(1, false);
    p.send(&cat(&[
        data(1, &[1; 15_000], false),
        data(1, &[1; 15_000], true),
    ]))
    .unwrap();
    p.drain_events();
    // 30 000 octets are owed to the application (not released), 15 000 more arrive late.
    p.send(&data(1, &[2; 15_000], false)).unwrap();
    let frames = p.take_frames();
    assert_eq!(rsts(&frames), vec![(1, Reason::STREAM_CLOSED)]);
    // Both are given back: the late frame at once, the unreleased octets with the stream.
    assert!(frames.iter().any(|f| matches!(f,
        Frame::WindowUpdate(w) if w.stream_id == 0 && w.increment == 45_000)));
    assert_eq!(p.conn.connection_recv_window(), 65_535);
    // Releasing the old octets now changes nothing.
    p.conn.release_capacity(1, 30_000);
    assert_eq!(p.conn.connection_recv_window(), 65_535);
    p.expect_quiet();
}

#[test]
fn window_update_after_peer_reset_is_stream_closed_but_priority_and_rst_are_not() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&rst(1, Reason::CANCEL)).unwrap();
    p.drain_events();
    // PRIORITY is allowed on a closed stream; RST_STREAM is never answered with RST_STREAM
    // (§5.4.2), so a second one is ignored.
    p.send(&cat(&[priority(1, 0), rst(1, Reason::CANCEL)]))
        .unwrap();
    p.expect_quiet();
    // Anything else after the peer's RST_STREAM is a STREAM_CLOSED stream error (§5.1)...
    p.send(&window_update(1, 100)).unwrap();
    p.expect_rst(1, Reason::STREAM_CLOSED);
    // ... answered once: what follows was in flight when our RST_STREAM left.
    p.send(&window_update(1, 100)).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    p.open(3, true);
}

#[test]
fn client_data_after_server_reset_is_stream_closed() {
    let mut p = Peer::client();
    let id = p.conn.open_stream(&request(), false).unwrap();
    let f = p.headers(id, &response(), false);
    p.send(&f).unwrap();
    p.send(&rst(id, Reason::INTERNAL_ERROR)).unwrap();
    p.take_frames();
    assert_eq!(
        p.drain_events()[1..],
        [
            Event::Reset {
                stream_id: id,
                reason: Reason::INTERNAL_ERROR,
                remote: true
            },
            Event::StreamClosed { stream_id: id }
        ]
    );
    p.send(&data(id, b"late", false)).unwrap();
    p.expect_rst(id, Reason::STREAM_CLOSED);
    p.send(&data(id, b"later", false)).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
}

#[test]
fn client_data_on_half_closed_remote_is_stream_closed() {
    let mut p = Peer::client();
    // The request body is still going out when a trailers-only response ends the server's
    // side: the stream is half-closed (remote) at the client.
    let id = p.conn.open_stream(&request(), false).unwrap();
    let f = p.headers(id, &hs(&[(":status", "200"), ("grpc-status", "0")]), true);
    p.send(&f).unwrap();
    p.drain_events();
    assert_eq!(p.conn.stream_state(id), Some(State::HalfClosedRemote));
    let before = p.conn.connection_recv_window();
    p.send(&data(id, b"late", false)).unwrap();
    p.expect_rst(id, Reason::STREAM_CLOSED);
    assert_eq!(p.conn.connection_recv_window(), before - 4);
    assert_eq!(
        p.drain_events(),
        vec![
            Event::Reset {
                stream_id: id,
                reason: Reason::STREAM_CLOSED,
                remote: false
            },
            Event::StreamClosed { stream_id: id }
        ]
    );
}

/// Opens `id` with a request declaring `content-length: len` and no END_STREAM.
fn open_with_content_length(p: &mut Peer, id: u32, len: &str) {
    let mut req = request();
    req.push(Header::new(
        &b"content-length"[..],
        Bytes::copy_from_slice(len.as_bytes()),
    ));
    let f = p.headers(id, &req, false);
    p.send(&f).unwrap();
    assert!(matches!(
        &p.drain_events()[..],
        [Event::Headers { stream_id, .. }] if *stream_id == id
    ));
}

fn protocol_error_reset(id: u32) -> Vec<Event> {
    vec![
        Event::Reset {
            stream_id: id,
            reason: Reason::PROTOCOL_ERROR,
            remote: false,
        },
        Event::StreamClosed { stream_id: id },
    ]
}

#[test]
fn data_beyond_content_length_is_stream_protocol_error_before_end_stream() {
    let mut p = Peer::server();
    open_with_content_length(&mut p, 1, "3");
    p.send(&data(1, b"ab", false)).unwrap();
    p.expect_quiet();
    assert_eq!(p.drain_events().len(), 1);
    // §8.1.1: one octet too many is malformed at once, END_STREAM or not.
    let before = p.conn.connection_recv_window();
    p.send(&data(1, b"cd", false)).unwrap();
    p.expect_rst(1, Reason::PROTOCOL_ERROR);
    assert_eq!(p.drain_events(), protocol_error_reset(1));
    assert_eq!(p.conn.connection_recv_window(), before - 2);
    p.assert_alive();
}

#[test]
fn end_stream_short_of_content_length_is_stream_protocol_error() {
    let mut p = Peer::server();
    for (id, last) in [(1, &b""[..]), (3, b"c")] {
        open_with_content_length(&mut p, id, "5");
        p.send(&data(id, b"ab", false)).unwrap();
        p.drain_events();
        p.send(&data(id, last, true)).unwrap();
        p.expect_rst(id, Reason::PROTOCOL_ERROR);
        assert_eq!(p.drain_events(), protocol_error_reset(id));
    }
    // Ending with trailers instead of DATA.
    open_with_content_length(&mut p, 5, "5");
    p.send(&data(5, b"abcd", false)).unwrap();
    p.drain_events();
    let f = p.headers(5, &trailers(), true);
    p.send(&f).unwrap();
    p.expect_rst(5, Reason::PROTOCOL_ERROR);
    assert_eq!(p.drain_events(), protocol_error_reset(5));
    p.assert_alive();
}

#[test]
fn content_length_counts_payload_not_padding() {
    let mut p = Peer::server();
    open_with_content_length(&mut p, 1, "5");
    p.send(&cat(&[
        data_padded(1, b"abc", 40, false),
        data_padded(1, b"de", 7, true),
    ]))
    .unwrap();
    p.expect_quiet();
    let ev = p.drain_events();
    assert!(matches!(
        &ev[..],
        [
            Event::Data {
                end_stream: false,
                ..
            },
            Event::Data {
                end_stream: true,
                ..
            }
        ]
    ));
}

#[test]
fn client_response_content_length_mismatch_is_stream_protocol_error() {
    let mut p = Peer::client();
    for (len, body) in [("2", &b"abc"[..]), ("4", b"ab")] {
        let id = p.conn.open_stream(&request(), true).unwrap();
        let f = p.headers(
            id,
            &hs(&[(":status", "200"), ("content-length", len)]),
            false,
        );
        p.send(&f).unwrap();
        p.drain_events();
        p.send(&data(id, body, true)).unwrap();
        p.expect_rst(id, Reason::PROTOCOL_ERROR);
        assert_eq!(p.drain_events(), protocol_error_reset(id));
    }
}

#[test]
fn stream_window_may_reach_max_but_not_pass_it() {
    let mut p = Peer::server();
    p.open(1, false);
    p.open(3, false);
    p.send(&window_update(1, MAX_STREAM_ID - 65_535)).unwrap();
    p.expect_quiet();
    assert_eq!(p.drain_events(), vec![Event::SendCapacity { stream_id: 1 }]);
    // §6.9.1: past 2^31 - 1 the stream is reset with FLOW_CONTROL_ERROR, the rest lives on.
    p.send(&window_update(1, 1)).unwrap();
    p.expect_rst(1, Reason::FLOW_CONTROL_ERROR);
    assert_eq!(
        p.drain_events(),
        vec![
            Event::Reset {
                stream_id: 1,
                reason: Reason::FLOW_CONTROL_ERROR,
                remote: false
            },
            Event::StreamClosed { stream_id: 1 }
        ]
    );
    p.conn.send_headers(3, &response(), true).unwrap();
    // On stream 0 it is a connection error.
    p.send(&window_update(0, MAX_STREAM_ID - 65_535)).unwrap();
    let _ = p.send(&window_update(0, 1));
    p.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn client_stream_window_pushed_past_max_is_stream_flow_control_error() {
    let mut p = Peer::client();
    let id = p.conn.open_stream(&request(), false).unwrap();
    p.send(&window_update(id, MAX_STREAM_ID)).unwrap();
    p.expect_rst(id, Reason::FLOW_CONTROL_ERROR);
    p.assert_alive();
}

#[test]
fn window_update_on_half_closed_local_stream_is_not_checked_against_a_stale_window() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&window_update(1, MAX_STREAM_ID - 65_535)).unwrap();
    // Our side is done: the send window is no longer active (§6.9.2), so a SETTINGS change
    // no longer moves it...
    p.conn.send_headers(1, &response(), true).unwrap();
    p.send(&settings(Settings {
        initial_window_size: Some(0),
        ..Settings::default()
    }))
    .unwrap();
    p.take_frames();
    p.drain_events();
    // ... while a peer that still adjusts it may top it up to 2^31 - 1 again: not an error.
    p.send(&window_update(1, 65_535)).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    assert_eq!(p.conn.stream_state(1), Some(State::HalfClosedLocal));
    p.send(&data(1, b"rest", true)).unwrap();
    assert!(matches!(
        &p.drain_events()[..],
        [Event::Data { .. }, Event::StreamClosed { stream_id: 1 }]
    ));
}

#[test]
fn lowered_initial_window_makes_the_send_window_negative_until_window_updates_lift_it() {
    let mut p = Peer::server();
    // A large connection window, so that only the stream window limits.
    p.send(&window_update(0, 1 << 20)).unwrap();
    p.open(1, false);
    p.conn.send_headers(1, &response(), false).unwrap();
    assert_eq!(p.conn.send_data(1, &[0; 70_000], false), Ok(65_535));
    assert_eq!(p.conn.send_capacity(1), 0);
    let conn_capacity = p.conn.connection_send_capacity();
    p.take_frames();
    p.drain_events();
    // §6.9.2: 65 535 → 16 384 with the whole window in flight: -49 151.
    p.send(&settings(Settings {
        initial_window_size: Some(16_384),
        ..Settings::default()
    }))
    .unwrap();
    assert!(matches!(&p.take_frames()[..], [Frame::Settings(a)] if a.ack));
    assert_eq!(p.drain_events(), vec![Event::RemoteSettings]);
    assert_eq!(p.conn.send_capacity(1), 0);
    // The connection window is not touched by SETTINGS.
    assert_eq!(p.conn.connection_send_capacity(), conn_capacity);
    // Still at or below zero: no capacity, and no SendCapacity event to wake a sender for
    // nothing.
    p.send(&window_update(1, 49_151)).unwrap();
    assert_eq!(p.conn.send_capacity(1), 0);
    assert_eq!(p.conn.send_data(1, b"x", false), Ok(0));
    assert!(p.drain_events().is_empty());
    // Above zero: exactly the positive part.
    p.send(&window_update(1, 1000)).unwrap();
    assert_eq!(p.drain_events(), vec![Event::SendCapacity { stream_id: 1 }]);
    assert_eq!(p.conn.send_capacity(1), 1000);
    assert_eq!(p.conn.send_data(1, &[7; 1500], false), Ok(1000));
    assert_eq!(p.conn.send_capacity(1), 0);
    let frames = p.take_frames();
    assert!(matches!(&frames[..], [Frame::Data(d)] if d.payload.len() == 1000));
    // From a negative window even a 2^31 - 1 increment is no overflow.
    p.send(&settings(Settings {
        initial_window_size: Some(0),
        ..Settings::default()
    }))
    .unwrap();
    p.send(&window_update(1, MAX_STREAM_ID)).unwrap();
    assert_eq!(
        p.conn.send_capacity(1),
        conn_capacity - 1000 // the connection window now limits
    );
    p.assert_alive();
}

#[test]
fn initial_window_increase_past_max_on_half_closed_remote_stream_is_flow_control_error() {
    let mut p = Peer::server();
    p.open(1, true);
    p.send(&window_update(1, MAX_STREAM_ID - 65_535)).unwrap();
    let _ = p.send(&settings(Settings {
        initial_window_size: Some(65_536),
        ..Settings::default()
    }));
    p.expect_goaway(Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn priority_on_half_closed_remote_stream_is_accepted_and_the_response_goes_out() {
    let mut p = Peer::server();
    p.open(1, true);
    p.send(&cat(&[priority(1, 0), priority(1, 7)])).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    assert_eq!(p.conn.stream_state(1), Some(State::HalfClosedRemote));
    p.conn.send_headers(1, &response(), false).unwrap();
    p.send(&priority(1, 0)).unwrap();
    assert_eq!(p.conn.send_data(1, b"hello", false), Ok(5));
    p.send(&priority(1, 0)).unwrap();
    p.conn.send_trailers(1, &trailers()).unwrap();
    let frames = p.take_frames();
    match &frames[..] {
        [Frame::Headers(h), Frame::Data(d), Frame::Headers(t)] => {
            assert!(h.stream_id == 1 && !h.end_stream);
            assert!(d.stream_id == 1 && &d.payload[..] == b"hello" && !d.end_stream);
            assert!(t.stream_id == 1 && t.end_stream);
            let (h, t) = (h.fragment.clone(), t.fragment.clone());
            assert_eq!(p.decode_block(&h), response());
            assert_eq!(p.decode_block(&t), trailers());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.drain_events(), vec![Event::StreamClosed { stream_id: 1 }]);
    // And on the closed stream.
    p.send(&priority(1, 0)).unwrap();
    p.expect_quiet();
}

#[test]
fn priority_on_idle_stream_neither_opens_it_nor_errs() {
    let mut p = Peer::server();
    p.send(&priority(5, 0)).unwrap();
    p.expect_quiet();
    assert!(p.drain_events().is_empty());
    assert_eq!(p.conn.stream_state(5), None);
    assert_eq!(p.conn.last_stream_id(), 0);
    assert_eq!(p.conn.open_streams(), 0);
    // Nothing was opened: 3, below 5, may still open (were 5 open, 3 would be closed), and
    // then 5 itself.
    p.open(3, true);
    p.open(5, true);
    // Client side: PRIORITY from the server on an idle (even or odd) id is ignored too.
    let mut c = Peer::client();
    c.send(&cat(&[priority(1, 0), priority(2, 0)])).unwrap();
    c.expect_quiet();
    assert_eq!(c.conn.open_stream(&request(), true), Ok(1));
}

#[test]
fn empty_end_stream_data_flood_on_a_reset_stream_is_enhance_your_calm() {
    let mut p = Peer::server();
    p.open(1, false);
    p.conn.reset(1, Reason::CANCEL);
    p.take_frames();
    // Ignored as in flight (§5.1), but still empty frames: they count like any other.
    let mut flood = BytesMut::new();
    for _ in 0..=Config::default().max_empty_frames {
        flood.extend_from_slice(&data(1, &[], true));
    }
    let _ = p.send(&flood);
    p.expect_goaway(Reason::ENHANCE_YOUR_CALM);
}

// ----- client/server pairs over in-memory pipes ----------------------------------------------

fn unary_round_trip(byte_by_byte: bool) {
    let mut pair = Pair::with(Config::default(), Config::default(), byte_by_byte);
    let id = pair.client.open_stream(&request(), false).unwrap();
    assert_eq!(
        pair.client.send_data(id, b"\0\0\0\0\x05hello", true),
        Ok(10)
    );
    pair.pump();
    let mut ev = std::mem::take(&mut pair.server_events);
    ev.retain(|e| !matches!(e, Event::RemoteSettings | Event::SendCapacity { .. }));
    let data: Vec<u8> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        matches!(&ev[0], Event::Headers { stream_id: 1, headers, end_stream: false } if headers == &request())
    );
    assert_eq!(data, b"\0\0\0\0\x05hello");
    assert!(matches!(
        ev.last(),
        Some(Event::Data {
            end_stream: true,
            ..
        })
    ));
    pair.server.release_capacity(id, 10);

    pair.server.send_headers(id, &response(), false).unwrap();
    pair.server.send_data(id, b"\0\0\0\0\x02ok", false).unwrap();
    pair.server.send_headers(id, &trailers(), true).unwrap();
    pair.pump();
    let ev: Vec<Event> = std::mem::take(&mut pair.client_events)
        .into_iter()
        .filter(|e| !matches!(e, Event::RemoteSettings | Event::SendCapacity { .. }))
        .collect();
    assert_eq!(
        ev,
        vec![
            Event::Headers {
                stream_id: 1,
                headers: response(),
                end_stream: false
            },
            Event::Data {
                stream_id: 1,
                data: Bytes::from_static(b"\0\0\0\0\x02ok"),
                end_stream: false
            },
            Event::Headers {
                stream_id: 1,
                headers: trailers(),
                end_stream: true
            },
            Event::StreamClosed { stream_id: 1 },
        ]
    );
    assert!(pair
        .server_events
        .contains(&Event::StreamClosed { stream_id: 1 }));
    pair.client.release_capacity(id, 7);
    assert_eq!(pair.client.open_streams(), 0);
    assert_eq!(pair.server.open_streams(), 0);
}

#[test]
fn pair_request_response_with_trailers() {
    unary_round_trip(false);
}

#[test]
fn pair_request_response_fed_byte_by_byte() {
    unary_round_trip(true);
}

#[test]
fn pair_trailers_only_response() {
    let mut pair = Pair::new();
    let id = pair.client.open_stream(&request(), true).unwrap();
    pair.pump();
    let head = hs(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "12"),
    ]);
    pair.server.send_headers(id, &head, true).unwrap();
    pair.pump();
    assert!(pair.client_events.contains(&Event::Headers {
        stream_id: id,
        headers: head,
        end_stream: true
    }));
    assert!(pair
        .client_events
        .contains(&Event::StreamClosed { stream_id: id }));
}

#[test]
fn pair_large_body_needs_window_updates() {
    let mut pair = Pair::new();
    let id = pair.client.open_stream(&request(), false).unwrap();
    let body: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut received = Vec::with_capacity(body.len());
    let mut done = false;
    let mut rounds = 0;
    while !done {
        rounds += 1;
        assert!(
            rounds < 1000,
            "stalled at {sent} sent, {} received",
            received.len()
        );
        if sent < body.len() {
            sent += pair
                .client
                .send_data(id, &body[sent..], true)
                .unwrap_or_else(|e| {
                    panic!(
                        "{e:?}: client {:?}, server {:?}",
                        pair.client.error(),
                        pair.server.error()
                    )
                });
        }
        pair.pump();
        for e in std::mem::take(&mut pair.server_events) {
            if let Event::Data {
                data, end_stream, ..
            } = e
            {
                received.extend_from_slice(&data);
                pair.server.release_capacity(id, data.len());
                done |= end_stream;
            }
        }
        pair.pump();
    }
    assert_eq!(received.len(), body.len());
    assert!(received == body);
    assert!(rounds > 2, "6 MB cannot fit in the initial windows");
}

#[test]
fn pair_graceful_goaway_shutdown() {
    let mut pair = Pair::new();
    let id = pair.client.open_stream(&request(), false).unwrap();
    pair.pump();
    pair.server.go_away(Reason::NO_ERROR, b"restart");
    pair.pump();
    let goaways: Vec<u32> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::GoAway { last_stream_id, .. } => Some(*last_stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(goaways, vec![MAX_STREAM_ID, 1]);
    assert_eq!(
        pair.client.open_stream(&request(), true),
        Err(SendError::GoingAway)
    );
    // The open call completes normally.
    pair.client.send_data(id, b"", true).unwrap();
    pair.server.send_headers(id, &response(), false).unwrap();
    pair.server.send_headers(id, &trailers(), true).unwrap();
    pair.pump();
    assert!(pair
        .client_events
        .contains(&Event::StreamClosed { stream_id: id }));
    assert!(pair.client.is_closed());
    assert!(pair.server.is_closed());
    assert!(pair.client.error().is_none() && pair.server.error().is_none());
}

#[test]
fn pair_many_concurrent_streams_interleave() {
    let mut pair = Pair::new();
    let ids: Vec<u32> = (0..50)
        .map(|_| pair.client.open_stream(&request(), false).unwrap())
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        pair.client
            .send_data(id, format!("msg{i}").as_bytes(), true)
            .unwrap();
    }
    pair.pump();
    for &id in ids.iter().rev() {
        pair.server.send_headers(id, &response(), false).unwrap();
        pair.server.send_data(id, b"r", false).unwrap();
        pair.server.send_headers(id, &trailers(), true).unwrap();
    }
    pair.pump();
    let closed = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::StreamClosed { .. }))
        .count();
    assert_eq!(closed, 50);
    assert_eq!(pair.client.open_streams(), 0);
}

#[test]
fn pair_client_cancel_resets_the_server_stream() {
    let mut pair = Pair::new();
    let id = pair.client.open_stream(&request(), false).unwrap();
    pair.pump();
    pair.client.reset(id, Reason::CANCEL);
    pair.pump();
    assert!(pair.server_events.contains(&Event::Reset {
        stream_id: id,
        reason: Reason::CANCEL,
        remote: true
    }));
    assert_eq!(
        pair.server.send_headers(id, &response(), true),
        Err(SendError::Closed)
    );
}

#[test]
fn settings_not_acknowledged_in_time_is_settings_timeout() {
    // RFC 9113 §6.5.3: the timer starts at the first input and is served on a virtual clock.
    let mut p = Peer::server_raw(Config::default());
    assert_eq!(
        p.conn.poll_timeout(),
        None,
        "no clock before the first input"
    );
    let mut hello = BytesMut::from(&PREFACE[..]);
    hello.extend_from_slice(&settings(Settings::default()));
    p.send(&hello).unwrap();
    let due = p.conn.poll_timeout().expect("waiting for our SETTINGS ACK");
    assert_eq!(due, p.now + Duration::from_secs(10));
    p.advance(Duration::from_secs(9));
    p.conn.handle_timeout(p.now).unwrap();
    p.take_frames();
    p.advance(Duration::from_secs(1));
    p.last = p.conn.handle_timeout(p.now);
    p.expect_goaway(Reason::SETTINGS_TIMEOUT);
    assert_eq!(p.conn.poll_timeout(), None);
}

#[test]
fn an_acknowledged_settings_stops_the_timer() {
    let mut p = Peer::server();
    assert_eq!(p.conn.poll_timeout(), None);
    p.advance(Duration::from_secs(3600));
    p.conn.handle_timeout(p.now).unwrap();
    p.assert_alive();
    let mut q = Peer::server_raw(Config {
        settings_timeout: None,
        ..Config::default()
    });
    let mut hello = BytesMut::from(&PREFACE[..]);
    hello.extend_from_slice(&settings(Settings::default()));
    q.send(&hello).unwrap();
    assert_eq!(q.conn.poll_timeout(), None, "turned off");
}

/// A server under test with BDP probing on, handshake done, windows of 64 KiB.
fn bdp_server() -> Peer {
    let config = Config {
        initial_window_size: 65_535,
        connection_window_size: 65_535,
        ..Config::default()
    };
    Peer::with_bdp(Role::Server, config).handshaken()
}

#[test]
fn bdp_a_probe_rides_on_data_and_a_window_limited_sample_grows_the_windows() {
    let mut p = bdp_server();
    p.open(1, false);
    p.send(&data(1, &[7; 16_000], false)).unwrap();
    let probe = p
        .take_frames()
        .into_iter()
        .find_map(|f| match f {
            Frame::Ping(ping) if !ping.ack => Some(ping.payload),
            _ => None,
        })
        .expect("a PING with the first DATA");
    // More DATA before the ACK: 48 000 octets in the round trip (over 2/3 of the window).
    p.send(&data(1, &[7; 16_000], false)).unwrap();
    p.send(&data(1, &[7; 16_000], false)).unwrap();
    assert!(
        !p.take_frames()
            .iter()
            .any(|f| matches!(f, Frame::Ping(g) if !g.ack)),
        "one probe at a time"
    );
    p.advance(Duration::from_millis(20));
    p.send(&pong(probe)).unwrap();
    let frames = p.take_frames();
    let grown = frames.iter().find_map(|f| match f {
        Frame::Settings(s) if !s.ack => s.initial_window_size,
        _ => None,
    });
    assert_eq!(grown, Some(96_000), "twice the sample: {frames:?}");
    let conn_update = frames.iter().find_map(|f| match f {
        Frame::WindowUpdate(w) if w.stream_id == 0 => Some(w.increment),
        _ => None,
    });
    assert_eq!(conn_update, Some(96_000 - 65_535));
    assert!(
        p.drain_events()
            .iter()
            .all(|e| !matches!(e, Event::PingAck { .. })),
        "the probe's ACK is ours, not the application's"
    );
    // The open stream's window grew at once: 96 000 − 48 000 octets may still come.
    assert_eq!(p.conn.stream_recv_window(1), Some(48_000));
}

#[test]
fn bdp_probing_off_sends_no_probe() {
    let mut p = Peer::server();
    p.open(1, false);
    p.send(&data(1, &[7; 16_000], false)).unwrap();
    assert!(!p.take_frames().iter().any(|f| matches!(f, Frame::Ping(_))));
}
