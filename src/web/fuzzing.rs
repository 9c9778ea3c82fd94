//! Entry points for the `web` fuzz target (fuzz/fuzz_targets/web.rs): the crate's HTTP/1.1
//! parser, its bridge and its base64 decoder are internal, so the target reaches them through
//! these functions. Not API: hidden from the docs, no stability promise.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::h2::conn::{Connection, Event, Role};
use crate::h2::hpack::Header;
use crate::h2::settings::Config;
use crate::web::bridge::{Bridge, Limits};
use crate::web::codec::{base64_encode_padded, Base64Decoder};
use crate::web::http1::{Item, Parser};

/// Parses `input` as HTTP/1.1 requests whole and in pieces cut at `cuts`; panics if one
/// fails and the other does not, if they succeed with different items or body bytes, or if a
/// body exceeds its limit. (Two failures may differ in status: a head over the size limit
/// is 431 while partial, 400 once a bad byte after the limit has come.)
pub fn http1_parser(input: &[u8], cuts: &[usize]) {
    let whole = parse(input, &[]);
    let split = parse(input, cuts);
    assert_eq!(
        whole.2.is_some(),
        split.2.is_some(),
        "{whole:?} / {split:?}"
    );
    if whole.2.is_none() {
        assert_eq!(
            whole, split,
            "the same input, cut differently, parsed differently"
        );
    }
}

fn parse(input: &[u8], cuts: &[usize]) -> (Vec<Item>, Vec<u8>, Option<u16>) {
    let mut p = Parser::new(1024, 300);
    let (mut items, mut body) = (Vec::new(), Vec::new());
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain(std::iter::once(input.len())) {
        p.push(&input[from..cut]);
        from = cut;
        loop {
            match p.next() {
                Ok(Some(Item::Body(b))) => {
                    body.extend_from_slice(&b);
                    // Base64 bodies may be 4/3 as long, plus some padding.
                    assert!(body.len() <= 300usize.div_ceil(3) * 4 + 1024);
                }
                Ok(Some(Item::End)) => {
                    items.push(Item::End);
                    p.resume();
                }
                Ok(Some(it)) => items.push(it),
                Ok(None) => break,
                Err(e) => return (items, body, Some(e.status)),
            }
        }
    }
    (items, body, None)
}

/// Feeds `chunks` to an HTTP/1.1 bridge in front of a server machine that answers every
/// request (a head, some data, the end), moving bytes both ways after each chunk and letting
/// timers pass. Must not panic.
pub fn http1_bridge(chunks: &[&[u8]]) {
    let t0 = Instant::now();
    let limits = Limits {
        max_head: 2048,
        max_body: 512,
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    };
    let mut bridge = Bridge::new(false, limits, t0);
    let mut server = Connection::new(Role::Server, Config::default());
    let head = [
        Header::from_static(b":status", b"200"),
        Header::from_static(b"content-type", b"application/grpc-web+proto"),
    ];
    for (i, chunk) in chunks.iter().enumerate() {
        let now = t0 + Duration::from_secs(i as u64 * 3);
        bridge.recv_client(chunk, now);
        for _ in 0..8 {
            let to_server = bridge.take_for_server();
            if server.recv(&to_server, now).is_err() {
                return;
            }
            while let Some(ev) = server.poll_event() {
                if let Event::Headers {
                    stream_id,
                    end_stream: true,
                    ..
                }
                | Event::Data {
                    stream_id,
                    end_stream: true,
                    ..
                } = ev
                {
                    let _ = server.send_headers(stream_id, &head, false);
                    let _ = server.send_data(stream_id, b"\0\0\0\0\0", true);
                }
            }
            let to_client = server.output().split();
            if to_client.is_empty() && !bridge.has_input_for_server() {
                break;
            }
            bridge.recv_server(&to_client, now);
        }
        let _ = bridge.take_out();
        if let Some(t) = bridge.poll_timeout() {
            bridge.handle_timeout(t);
        }
        if bridge.is_closing() {
            return;
        }
    }
}

/// Decodes `text` as a gRPC-Web text body, whole and cut at `cuts`; panics if the two
/// disagree; and checks that `text` itself, encoded, decodes back.
pub fn base64(text: &[u8], cuts: &[usize]) {
    let decode = |cuts: &[usize]| -> Option<Vec<u8>> {
        let mut d = Base64Decoder::default();
        let mut out = BytesMut::new();
        let mut from = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(text.len())).collect();
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain(std::iter::once(text.len())) {
            d.push(&text[from..cut], &mut out).ok()?;
            from = cut;
        }
        d.finish().ok()?;
        Some(out.to_vec())
    };
    assert_eq!(decode(&[]), decode(cuts));
    let mut enc = BytesMut::new();
    base64_encode_padded(text, &mut enc);
    let mut d = Base64Decoder::default();
    let mut out = BytesMut::new();
    d.push(&enc, &mut out).expect("our own base64");
    d.finish().expect("our own base64");
    assert_eq!(&out[..], text);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_points_run() {
        let req = b"POST /a.B/C HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST / HTTP/1.1\r\n\r\n";
        for cut in 0..req.len() {
            super::http1_parser(req, &[cut, cut + 7]);
        }
        super::http1_bridge(&[&req[..20], &req[20..], b"garbage\r\n\r\n"]);
        super::base64(b"Zm9vYg==Zm8=", &[3, 9]);
    }
}
