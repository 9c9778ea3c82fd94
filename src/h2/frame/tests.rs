//! Tests that cut across frame types: buffering, limits, byte-by-byte feeding, garbage.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::h2::error::{Error, Reason};

/// Builds one raw frame, bypassing every encoder check.
pub(super) fn frame_bytes(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    let len = (payload.len() as u32).to_be_bytes();
    buf.put_slice(&len[1..]);
    buf.put_u8(kind);
    buf.put_u8(flags);
    buf.put_u32(stream_id);
    buf.put_slice(payload);
    buf
}

/// Decodes exactly one complete frame that fills `buf` (frame size limit: 2^24 - 1).
pub(super) fn decode_one(buf: &mut BytesMut) -> Result<Frame, Error> {
    let len = buf.len();
    let result = decode(buf, MAX_MAX_FRAME_SIZE).map(|f| f.expect("a complete frame"));
    if result.is_ok() || matches!(result, Err(Error::Stream { .. })) {
        assert!(
            buf.is_empty(),
            "the {len}-byte frame was not fully consumed"
        );
    }
    result
}

/// Decodes every frame in `buf`, which must hold whole valid frames only.
pub(super) fn decode_all(buf: &mut BytesMut) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = decode(buf, MAX_MAX_FRAME_SIZE).expect("valid frames") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "trailing bytes: {:?}", &buf[..]);
    frames
}

/// Decodes everything decodable in `buf`, recording stream errors and stopping at the first
/// connection error.
fn drain(buf: &mut BytesMut, max: u32, out: &mut Vec<Result<Frame, Error>>) -> bool {
    loop {
        let before = buf.len();
        match decode(buf, max) {
            Ok(None) => return true,
            Ok(Some(frame)) => out.push(Ok(frame)),
            Err(e) if e.is_connection() => {
                out.push(Err(e));
                return false;
            }
            Err(e) => out.push(Err(e)),
        }
        assert!(buf.len() < before, "decode made no progress");
    }
}

/// A mix of every frame type, including one that is a stream error.
fn sample_stream() -> BytesMut {
    let mut buf = BytesMut::new();
    Settings {
        max_concurrent_streams: Some(100),
        initial_window_size: Some(1 << 20),
        ..Settings::default()
    }
    .encode(&mut buf);
    Settings::ack().encode(&mut buf);
    encode_header_block(&mut buf, 1, &[0x82; 40], false, 16);
    encode_data(&mut buf, 1, b"hello", false);
    Data::new(1, &b"padded"[..], true).encode_padded(7, &mut buf);
    Headers {
        priority: Some(PrioritySpec {
            dependency: 1,
            exclusive: false,
            weight: 3,
        }),
        ..Headers::new(3, &b"\x83"[..], true, true)
    }
    .encode_padded(2, &mut buf);
    buf.put_slice(&frame_bytes(kind::WINDOW_UPDATE, 0, 3, &[0, 0, 0, 0])); // stream error
    Priority {
        stream_id: 5,
        spec: PrioritySpec {
            dependency: 3,
            exclusive: true,
            weight: 0,
        },
    }
    .encode(&mut buf);
    RstStream::new(3, Reason::CANCEL).encode(&mut buf);
    PushPromise {
        stream_id: 1,
        promised_id: 2,
        fragment: Bytes::from_static(b"\x82"),
        end_headers: true,
    }
    .encode(&mut buf);
    Ping::new([1; 8]).encode(&mut buf);
    WindowUpdate::new(0, 65_535).encode(&mut buf);
    Unknown {
        kind: 0xfa,
        flags: 0xff,
        stream_id: 9,
        payload: Bytes::from_static(b"grease"),
    }
    .encode(&mut buf);
    GoAway::new(5, Reason::NO_ERROR, &b"bye"[..]).encode(&mut buf);
    buf
}

#[test]
fn frame_longer_than_max_frame_size_is_rejected_from_its_head_alone() {
    let mut head = BytesMut::new();
    Head::new(kind::DATA, 0, 1, DEFAULT_MAX_FRAME_SIZE + 1).encode(&mut head);
    assert_eq!(head.len(), FRAME_HEADER_LEN);
    let err = decode(&mut head, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert!(err.is_connection());
    assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    // The same rule applies to frames on stream 0 and to unknown types.
    for kind in [kind::SETTINGS, 0xee] {
        let mut head = BytesMut::new();
        Head::new(kind, 0, 0, MAX_MAX_FRAME_SIZE).encode(&mut head);
        let err = decode(&mut head, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }
}

#[test]
fn frame_of_exactly_max_frame_size_is_accepted() {
    let payload = vec![7u8; DEFAULT_MAX_FRAME_SIZE as usize];
    let mut buf = BytesMut::new();
    encode_data(&mut buf, 1, &payload, false);
    match decode(&mut buf, DEFAULT_MAX_FRAME_SIZE) {
        Ok(Some(Frame::Data(d))) => assert_eq!(d.payload.len(), payload.len()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn incomplete_frame_returns_none_consumes_nothing_and_reserves_the_rest() {
    let mut full = BytesMut::new();
    encode_data(&mut full, 1, &[1; 1000], false);
    for cut in [0, 1, 8, 9, 10, 1008] {
        let mut buf = BytesMut::from(&full[..cut]);
        assert_eq!(decode(&mut buf, DEFAULT_MAX_FRAME_SIZE), Ok(None));
        assert_eq!(&buf[..], &full[..cut]);
        if cut >= FRAME_HEADER_LEN {
            assert!(buf.capacity() >= full.len());
        }
    }
}

#[test]
fn unknown_frame_type_is_returned_as_unknown() {
    let mut buf = frame_bytes(0x20, 0x3, 0x8000_0007, b"whatever");
    assert_eq!(
        decode_one(&mut buf),
        Ok(Frame::Unknown(Unknown {
            kind: 0x20,
            flags: 0x3,
            stream_id: 7,
            payload: Bytes::from_static(b"whatever"),
        }))
    );
}

#[test]
fn unknown_flags_are_ignored() {
    // 0xf6 sets every undefined DATA flag but neither PADDED nor END_STREAM.
    let mut buf = frame_bytes(kind::DATA, 0xf6, 1, b"x");
    assert_eq!(
        decode_one(&mut buf),
        Ok(Frame::Data(Data::new(1, &b"x"[..], false)))
    );
    let mut buf = frame_bytes(kind::PING, 0xfe, 0, &[0; 8]);
    assert_eq!(decode_one(&mut buf), Ok(Frame::Ping(Ping::new([0; 8]))));
}

#[test]
fn stream_id_reserved_bit_is_ignored_on_read_and_zero_on_write() {
    let mut buf = frame_bytes(kind::DATA, 0, 0x8000_0003, b"ab");
    let frame = decode_one(&mut buf).unwrap();
    assert_eq!(frame.stream_id(), 3);
    let mut out = BytesMut::new();
    Data::new(0xffff_ffff, &b"ab"[..], false).encode(&mut out);
    assert_eq!(&out[5..9], &[0x7f, 0xff, 0xff, 0xff]);
    // A frame whose only stream id bit is the reserved one is on stream 0.
    let mut buf = frame_bytes(kind::DATA, 0, 0x8000_0000, b"ab");
    assert_eq!(
        decode_one(&mut buf).unwrap_err().reason(),
        Reason::PROTOCOL_ERROR
    );
}

#[test]
fn frame_accessors_report_stream_and_kind() {
    let frames: Vec<Frame> = vec![
        Data::new(1, Bytes::new(), false).into(),
        Headers::new(3, Bytes::new(), false, true).into(),
        Settings::ack().into(),
        Ping::new([0; 8]).into(),
        GoAway::new(1, Reason::NO_ERROR, Bytes::new()).into(),
        WindowUpdate::new(5, 1).into(),
        RstStream::new(7, Reason::CANCEL).into(),
    ];
    let ids: Vec<_> = frames.iter().map(Frame::stream_id).collect();
    assert_eq!(ids, [1, 3, 0, 0, 0, 5, 7]);
    let kinds: Vec<_> = frames.iter().map(Frame::kind).collect();
    assert_eq!(kinds, [0, 1, 4, 6, 7, 8, 3]);
}

#[test]
fn every_frame_type_round_trips_through_frame_encode() {
    let mut buf = sample_stream();
    let mut results = Vec::new();
    assert!(drain(&mut buf, DEFAULT_MAX_FRAME_SIZE, &mut results));
    let frames: Vec<Frame> = results.into_iter().filter_map(Result::ok).collect();
    let mut again = BytesMut::new();
    for frame in &frames {
        frame.encode(&mut again);
    }
    let frames_again = decode_all(&mut again);
    // Padding is not re-encoded, so compare everything but DATA's flow length.
    let normalize = |f: &Frame| match f {
        Frame::Data(d) => Frame::Data(Data::new(d.stream_id, d.payload.clone(), d.end_stream)),
        other => other.clone(),
    };
    let a: Vec<_> = frames.iter().map(normalize).collect();
    let b: Vec<_> = frames_again.iter().map(normalize).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 15);
    let mut kinds: Vec<u8> = a.iter().map(Frame::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xfa],
        "every frame type is covered"
    );
}

#[test]
fn byte_by_byte_input_gives_the_same_frames_as_all_at_once() {
    let input = sample_stream();

    let mut all = Vec::new();
    let mut buf = input.clone();
    assert!(drain(&mut buf, DEFAULT_MAX_FRAME_SIZE, &mut all));
    assert!(buf.is_empty());
    assert_eq!(all.iter().filter(|r| r.is_err()).count(), 1);

    let mut one_by_one = Vec::new();
    let mut buf = BytesMut::new();
    for &byte in input.iter() {
        buf.put_u8(byte);
        assert!(drain(&mut buf, DEFAULT_MAX_FRAME_SIZE, &mut one_by_one));
    }
    assert!(buf.is_empty());
    assert_eq!(one_by_one, all);
}

#[test]
fn every_split_point_gives_the_same_frames_as_all_at_once() {
    let input = sample_stream();
    let mut all = Vec::new();
    drain(&mut input.clone(), DEFAULT_MAX_FRAME_SIZE, &mut all);
    for split in 0..=input.len() {
        let mut got = Vec::new();
        let mut buf = BytesMut::from(&input[..split]);
        drain(&mut buf, DEFAULT_MAX_FRAME_SIZE, &mut got);
        buf.put_slice(&input[split..]);
        drain(&mut buf, DEFAULT_MAX_FRAME_SIZE, &mut got);
        assert_eq!(got, all, "split at {split}");
    }
}

#[test]
fn connection_error_fed_byte_by_byte_is_reported_once_complete() {
    // A PING with a bad length is only judged when its whole payload has arrived.
    let input = frame_bytes(kind::PING, 0, 0, &[0; 9]);
    let mut buf = BytesMut::new();
    for (i, &byte) in input.iter().enumerate() {
        buf.put_u8(byte);
        let result = decode(&mut buf, DEFAULT_MAX_FRAME_SIZE);
        if i + 1 < input.len() {
            assert_eq!(result, Ok(None));
        } else {
            assert_eq!(result.unwrap_err().reason(), Reason::FRAME_SIZE_ERROR);
        }
    }
}

/// xorshift64*: a tiny deterministic PRNG so the garbage test needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A 32-bit value biased towards the edges of the fields that hold one: zero, the
    /// frame's own stream id, the reserved bit, window and frame size limits.
    fn word(&mut self, stream_id: u32) -> u32 {
        let choices = [
            0,
            1,
            stream_id,
            stream_id | 0x8000_0000,
            0x8000_0000,
            MAX_WINDOW_SIZE,
            MAX_WINDOW_SIZE + 1,
            DEFAULT_MAX_FRAME_SIZE - 1,
            DEFAULT_MAX_FRAME_SIZE,
            MAX_MAX_FRAME_SIZE + 1,
            u32::MAX,
            self.next() as u32,
        ];
        choices[self.below(choices.len() as u64) as usize]
    }

    /// A byte biased towards the values that matter in frame payloads (zero, small ids and
    /// setting identifiers, the reserved bit, all ones).
    fn byte(&mut self) -> u8 {
        match self.below(3) {
            0 => self.next() as u8,
            _ => [0, 0, 0, 1, 2, 3, 4, 5, 6, 0x40, 0x80, 0xff][self.below(12) as usize],
        }
    }
}

#[test]
fn garbage_in_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0usize;
    let mut kinds_seen = std::collections::BTreeSet::<u8>::new();
    let mut details_seen = std::collections::BTreeSet::<&str>::new();
    for _ in 0..20_000 {
        let mut input = BytesMut::new();
        // A few frames with plausible heads and payloads made of interesting values, so that
        // every per-type parser and its error paths are reached, not just the length check.
        for _ in 0..rng.below(4) + 1 {
            let kind = rng.below(12) as u8;
            let flags = rng.next() as u8;
            let stream_id = match rng.below(3) {
                0 => 0,
                1 => rng.below(4) as u32,
                _ => rng.next() as u32,
            };
            let target = [0, 1, 3, 4, 5, 6, 8, 12, 20, 64][rng.below(10) as usize];
            let mut body = BytesMut::new();
            while body.len() < target {
                match rng.below(5) {
                    0 => body.put_u8(rng.byte()),
                    1 => body.put_u16(rng.below(8) as u16),
                    2 => body.put_u32(rng.word(stream_id)),
                    3 => {
                        // Priority fields: dependency and weight.
                        body.put_u32(rng.word(stream_id));
                        body.put_u8(rng.byte());
                    }
                    _ => {
                        // A whole SETTINGS entry.
                        body.put_u16(rng.below(8) as u16);
                        body.put_u32(rng.word(stream_id));
                    }
                }
            }
            let len = match rng.below(8) {
                0 => rng.below(0x100_0000) as u32,
                1 => rng.below(80) as u32,
                _ => body.len() as u32,
            };
            Head::new(kind, flags, stream_id, len).encode(&mut input);
            input.put_slice(&body);
        }
        // And sometimes pure noise.
        if rng.below(4) == 0 {
            for b in input.iter_mut() {
                *b = rng.next() as u8;
            }
        }
        let max = [DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE, 0, 64][rng.below(4) as usize];
        let mut out = Vec::new();
        // Whole input, then again fed in random chunks: both must agree and never panic.
        drain(&mut input.clone(), max, &mut out);
        let mut chunked = Vec::new();
        let mut buf = BytesMut::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = (rng.below(rest.len() as u64) + 1) as usize;
            buf.put_slice(&rest[..n]);
            rest = &rest[n..];
            if !drain(&mut buf, max, &mut chunked) {
                break;
            }
        }
        assert_eq!(chunked, out);
        for r in &out {
            match r {
                Ok(f) => {
                    decoded += 1;
                    kinds_seen.insert(f.kind().min(10));
                }
                Err(e) => {
                    details_seen.insert(e.detail());
                }
            }
        }
    }
    // The input generator must reach every parser and most error paths, or the test is weak.
    assert!(decoded > 1_000, "only {decoded} frames parsed");
    assert_eq!(kinds_seen.len(), 11, "frame kinds parsed: {kinds_seen:?}");
    assert_eq!(details_seen.len(), 26, "errors reached: {details_seen:#?}");
}
