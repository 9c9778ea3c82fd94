//! SETTINGS frames ([RFC 9113 §6.5]).
//!
//! [RFC 9113 §6.5]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    flags, frame_len, kind, read_u32, require_connection, Head, DEFAULT_MAX_FRAME_SIZE,
    FRAME_HEADER_LEN, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
};
use crate::h2::error::{Error, Reason};

/// Typed SETTINGS; unknown identifiers are ignored on decode ([RFC 9113 §6.5.2]).
///
/// A field is `Some` when the frame carries that setting. When one frame names a setting more
/// than once, the last value wins, as processing them in order would give. An ACK frame
/// (`ack: true`) carries no settings: on encode the fields are ignored.
///
/// [RFC 9113 §6.5.2]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5.2
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// ACK: this frame acknowledges the peer's SETTINGS.
    pub ack: bool,
    /// SETTINGS_HEADER_TABLE_SIZE (0x1): the largest HPACK dynamic table the sender accepts.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH (0x2): whether the sender accepts PUSH_PROMISE.
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3): how many streams the sender lets the peer open.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4): the initial stream window, at most 2^31 − 1.
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE (0x5): the largest frame payload the sender accepts,
    /// 2^14..=2^24 − 1.
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6): advisory limit on uncompressed field list size.
    pub max_header_list_size: Option<u32>,
}

impl Settings {
    /// Identifier of SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// Identifier of SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// Identifier of SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// Identifier of SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// Identifier of SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// Identifier of SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

    /// Returns a SETTINGS frame with the ACK flag and no settings.
    pub fn ack() -> Settings {
        Settings {
            ack: true,
            ..Settings::default()
        }
    }

    /// Returns true if no setting is present (ACK or not).
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }

    /// Copies every setting present in `newer` into `self`, leaving the others as they are.
    ///
    /// Useful to keep the peer's current settings as successive SETTINGS frames arrive.
    pub fn merge(&mut self, newer: &Settings) {
        fn take<T: Copy>(dst: &mut Option<T>, src: Option<T>) {
            if src.is_some() {
                *dst = src;
            }
        }
        take(&mut self.header_table_size, newer.header_table_size);
        take(&mut self.enable_push, newer.enable_push);
        take(
            &mut self.max_concurrent_streams,
            newer.max_concurrent_streams,
        );
        take(&mut self.initial_window_size, newer.initial_window_size);
        take(&mut self.max_frame_size, newer.max_frame_size);
        take(&mut self.max_header_list_size, newer.max_header_list_size);
    }

    /// Iterates over the present settings as `(identifier, value)`, in identifier order.
    pub fn entries(&self) -> impl Iterator<Item = (u16, u32)> {
        [
            (Self::HEADER_TABLE_SIZE, self.header_table_size),
            (Self::ENABLE_PUSH, self.enable_push.map(u32::from)),
            (Self::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (Self::INITIAL_WINDOW_SIZE, self.initial_window_size),
            (Self::MAX_FRAME_SIZE, self.max_frame_size),
            (Self::MAX_HEADER_LIST_SIZE, self.max_header_list_size),
        ]
        .into_iter()
        .filter_map(|(id, value)| value.map(|v| (id, v)))
    }

    /// Parses a SETTINGS frame from its header and payload ([RFC 9113 §6.5]).
    ///
    /// # Errors
    ///
    /// All are connection errors: a non-zero stream id (PROTOCOL_ERROR); ACK with a payload,
    /// or a length that is not a multiple of 6 (FRAME_SIZE_ERROR); SETTINGS_ENABLE_PUSH other
    /// than 0 or 1 (PROTOCOL_ERROR); SETTINGS_INITIAL_WINDOW_SIZE above 2^31 − 1
    /// (FLOW_CONTROL_ERROR); SETTINGS_MAX_FRAME_SIZE outside 2^14..=2^24 − 1
    /// (PROTOCOL_ERROR). Whether the *peer* may set ENABLE_PUSH to 1 depends on its role and
    /// is left to the connection.
    ///
    /// [RFC 9113 §6.5]: https://www.rfc-editor.org/rfc/rfc9113#section-6.5
    pub fn load(head: &Head, payload: Bytes) -> Result<Settings, Error> {
        require_connection(head, "SETTINGS frame on a stream")?;
        if head.has_flag(flags::ACK) {
            if !payload.is_empty() {
                return Err(Error::connection(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            return Ok(Settings::ack());
        }
        if payload.len() % 6 != 0 {
            return Err(Error::connection(
                Reason::FRAME_SIZE_ERROR,
                "SETTINGS frame length is not a multiple of 6",
            ));
        }
        let mut settings = Settings::default();
        for entry in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let value = read_u32(&entry[2..]);
            settings.set(id, value)?;
        }
        Ok(settings)
    }

    /// Validates and stores one setting; unknown identifiers are ignored.
    fn set(&mut self, id: u16, value: u32) -> Result<(), Error> {
        match id {
            Self::HEADER_TABLE_SIZE => self.header_table_size = Some(value),
            Self::ENABLE_PUSH => {
                self.enable_push = Some(match value {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(Error::connection(
                            Reason::PROTOCOL_ERROR,
                            "SETTINGS_ENABLE_PUSH is neither 0 nor 1",
                        ))
                    }
                })
            }
            Self::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = Some(value),
            Self::INITIAL_WINDOW_SIZE => {
                if value > MAX_WINDOW_SIZE {
                    return Err(Error::connection(
                        Reason::FLOW_CONTROL_ERROR,
                        "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                    ));
                }
                self.initial_window_size = Some(value);
            }
            Self::MAX_FRAME_SIZE => {
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                    return Err(Error::connection(
                        Reason::PROTOCOL_ERROR,
                        "SETTINGS_MAX_FRAME_SIZE outside 2^14..=2^24-1",
                    ));
                }
                self.max_frame_size = Some(value);
            }
            Self::MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(value),
            _ => {}
        }
        Ok(())
    }

    /// Appends the frame to `dst`: the present settings in identifier order, or an empty
    /// payload with the ACK flag when `ack` is set.
    pub fn encode(&self, dst: &mut BytesMut) {
        if self.ack {
            Head::new(kind::SETTINGS, flags::ACK, 0, 0).encode(dst);
            return;
        }
        let len = 6 * self.entries().count();
        dst.reserve(FRAME_HEADER_LEN + len);
        Head::new(kind::SETTINGS, 0, 0, frame_len(len)).encode(dst);
        for (id, value) in self.entries() {
            dst.put_u16(id);
            dst.put_u32(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode_all, decode_one, frame_bytes};
    use super::super::Frame;
    use super::*;

    fn settings_bytes(entries: &[(u16, u32)]) -> BytesMut {
        let mut payload = Vec::new();
        for &(id, value) in entries {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        frame_bytes(kind::SETTINGS, 0, 0, &payload)
    }

    fn connection_error(entries: &[(u16, u32)]) -> Reason {
        let err = decode_one(&mut settings_bytes(entries)).unwrap_err();
        assert!(err.is_connection());
        err.reason()
    }

    #[test]
    fn settings_round_trip_all_fields_and_ack() {
        let full = Settings {
            ack: false,
            header_table_size: Some(0),
            enable_push: Some(false),
            max_concurrent_streams: Some(100),
            initial_window_size: Some(MAX_WINDOW_SIZE),
            max_frame_size: Some(MAX_MAX_FRAME_SIZE),
            max_header_list_size: Some(16_384),
        };
        for frame in [full, Settings::default(), Settings::ack()] {
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert_eq!(decode_all(&mut buf), vec![Frame::Settings(frame)]);
        }
        let mut buf = BytesMut::new();
        full.encode(&mut buf);
        assert_eq!(buf.len(), 9 + 36);
    }

    #[test]
    fn settings_unknown_identifiers_are_ignored() {
        let mut buf = settings_bytes(&[(0x8, 1), (0xffff, 7), (Settings::ENABLE_PUSH, 1)]);
        let expected = Settings {
            enable_push: Some(true),
            ..Settings::default()
        };
        assert_eq!(decode_one(&mut buf), Ok(Frame::Settings(expected)));
    }

    #[test]
    fn settings_repeated_identifier_keeps_last_value() {
        let mut buf = settings_bytes(&[
            (Settings::MAX_CONCURRENT_STREAMS, 1),
            (Settings::MAX_CONCURRENT_STREAMS, 2),
        ]);
        match decode_one(&mut buf) {
            Ok(Frame::Settings(s)) => assert_eq!(s.max_concurrent_streams, Some(2)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn settings_ack_with_payload_is_frame_size_error() {
        let mut buf = frame_bytes(kind::SETTINGS, flags::ACK, 0, &[0, 1, 0, 0, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }

    #[test]
    fn settings_length_not_multiple_of_six_is_frame_size_error() {
        let mut buf = frame_bytes(kind::SETTINGS, 0, 0, &[0, 1, 0, 0, 0, 0, 0]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::FRAME_SIZE_ERROR);
    }

    #[test]
    fn settings_on_stream_is_connection_protocol_error() {
        let mut buf = frame_bytes(kind::SETTINGS, 0, 1, &[]);
        let err = decode_one(&mut buf).unwrap_err();
        assert!(err.is_connection());
        assert_eq!(err.reason(), Reason::PROTOCOL_ERROR);
    }

    #[test]
    fn settings_enable_push_other_than_zero_or_one_is_protocol_error() {
        assert_eq!(
            connection_error(&[(Settings::ENABLE_PUSH, 2)]),
            Reason::PROTOCOL_ERROR
        );
    }

    #[test]
    fn settings_initial_window_size_above_max_is_flow_control_error() {
        let too_big = MAX_WINDOW_SIZE + 1;
        assert_eq!(
            connection_error(&[(Settings::INITIAL_WINDOW_SIZE, too_big)]),
            Reason::FLOW_CONTROL_ERROR
        );
    }

    #[test]
    fn settings_max_frame_size_out_of_range_is_protocol_error() {
        for value in [
            0,
            DEFAULT_MAX_FRAME_SIZE - 1,
            MAX_MAX_FRAME_SIZE + 1,
            u32::MAX,
        ] {
            assert_eq!(
                connection_error(&[(Settings::MAX_FRAME_SIZE, value)]),
                Reason::PROTOCOL_ERROR
            );
        }
        for value in [DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE] {
            let mut buf = settings_bytes(&[(Settings::MAX_FRAME_SIZE, value)]);
            assert!(decode_one(&mut buf).is_ok());
        }
    }

    #[test]
    fn settings_merge_keeps_older_values_not_overridden() {
        let mut current = Settings {
            max_concurrent_streams: Some(10),
            initial_window_size: Some(1),
            ..Settings::default()
        };
        current.merge(&Settings {
            initial_window_size: Some(2),
            ..Settings::default()
        });
        assert_eq!(current.max_concurrent_streams, Some(10));
        assert_eq!(current.initial_window_size, Some(2));
        assert!(!current.is_empty());
        assert!(Settings::ack().is_empty());
    }
}
