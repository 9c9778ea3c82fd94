//! The `grpc-timeout` request header: `<1 to 8 digits><unit>`, the unit one of `H` (hours),
//! `M` (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) and `n`
//! (nanoseconds) — gRPC `PROTOCOL-HTTP2.md`, "Timeout".
//!
//! ```
//! use std::time::Duration;
//! use grpc_sync::timeout::{decode_grpc_timeout, encode_grpc_timeout};
//! assert_eq!(encode_grpc_timeout(Duration::from_secs(5)), "5000000u");
//! assert_eq!(decode_grpc_timeout(b"5S"), Ok(Duration::from_secs(5)));
//! ```

use std::fmt;
use std::time::Duration;

use crate::status::Status;

/// The most digits a `grpc-timeout` value may have.
pub const MAX_DIGITS: usize = 8;

/// The largest number an 8-digit value can hold.
const MAX_VALUE: u64 = 99_999_999;

/// Units from finest to coarsest, with their length in nanoseconds.
const UNITS: [(char, u128); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60_000_000_000),
    ('H', 3_600_000_000_000),
];

/// The longest timeout the header can carry: 99,999,999 hours (about 11,400 years).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(MAX_VALUE * 3600);

/// Encodes `timeout` as a `grpc-timeout` value, in the finest unit whose count fits in
/// 8 digits. A count that does not fall on a whole unit is rounded up, so the peer never sees
/// a shorter deadline than ours; timeouts over [`MAX_TIMEOUT`] are sent as `99999999H`.
///
/// ```
/// use std::time::Duration;
/// use grpc_sync::timeout::encode_grpc_timeout;
/// assert_eq!(encode_grpc_timeout(Duration::from_nanos(99_999_999)), "99999999n");
/// assert_eq!(encode_grpc_timeout(Duration::from_nanos(100_000_000)), "100000u");
/// assert_eq!(encode_grpc_timeout(Duration::ZERO), "0n");
/// ```
pub fn encode_grpc_timeout(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for (unit, size) in UNITS {
        let count = nanos.div_ceil(size);
        if count <= u128::from(MAX_VALUE) {
            return format!("{count}{unit}");
        }
    }
    format!("{MAX_VALUE}H")
}

/// Why a `grpc-timeout` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidTimeout {
    /// The value has no digits before its unit (or is empty).
    MissingDigits,
    /// The value has more than 8 digits.
    TooManyDigits(usize),
    /// A byte before the unit is not an ASCII digit.
    InvalidDigit(u8),
    /// The last byte is not one of `H M S m u n`.
    InvalidUnit(u8),
}

impl fmt::Display for InvalidTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidTimeout::MissingDigits => f.write_str("malformed grpc-timeout: no digits"),
            InvalidTimeout::TooManyDigits(n) => {
                write!(
                    f,
                    "malformed grpc-timeout: {n} digits, at most {MAX_DIGITS} allowed"
                )
            }
            InvalidTimeout::InvalidDigit(b) => {
                write!(
                    f,
                    "malformed grpc-timeout: {:?} is not a digit",
                    char::from(*b)
                )
            }
            InvalidTimeout::InvalidUnit(b) => write!(
                f,
                "malformed grpc-timeout: unit {:?} is not one of H M S m u n",
                char::from(*b)
            ),
        }
    }
}

impl std::error::Error for InvalidTimeout {}

impl From<InvalidTimeout> for Status {
    /// A malformed `grpc-timeout` makes the request malformed: INTERNAL.
    fn from(err: InvalidTimeout) -> Status {
        Status::internal(err.to_string())
    }
}

/// Decodes a `grpc-timeout` value.
///
/// ```
/// use std::time::Duration;
/// use grpc_sync::timeout::{decode_grpc_timeout, InvalidTimeout};
/// assert_eq!(decode_grpc_timeout(b"250m"), Ok(Duration::from_millis(250)));
/// assert_eq!(decode_grpc_timeout(b"1D"), Err(InvalidTimeout::InvalidUnit(b'D')));
/// ```
///
/// # Errors
///
/// [`InvalidTimeout`] unless the value is 1 to 8 ASCII digits followed by one of
/// `H M S m u n`.
pub fn decode_grpc_timeout(value: &[u8]) -> Result<Duration, InvalidTimeout> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(InvalidTimeout::MissingDigits);
    };
    let unit_nanos: u64 = match unit {
        b'n' => 1,
        b'u' => 1_000,
        b'm' => 1_000_000,
        b'S' => 1_000_000_000,
        b'M' => 60_000_000_000,
        b'H' => 3_600_000_000_000,
        _ => return Err(InvalidTimeout::InvalidUnit(unit)),
    };
    if digits.is_empty() {
        return Err(InvalidTimeout::MissingDigits);
    }
    if digits.len() > MAX_DIGITS {
        return Err(InvalidTimeout::TooManyDigits(digits.len()));
    }
    let mut count = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(InvalidTimeout::InvalidDigit(d));
        }
        count = count * 10 + u64::from(d - b'0');
    }
    // count < 10^8 and unit ≤ 3.6·10^12 ns, so the product (< 3.6·10^20) can exceed u64:
    // split into whole seconds and the rest.
    let per_sec = 1_000_000_000u64;
    Ok(if unit_nanos >= per_sec {
        Duration::from_secs(count * (unit_nanos / per_sec))
    } else {
        Duration::from_nanos(count * unit_nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_decodes_to_its_duration() {
        let cases: [(&[u8], Duration); 7] = [
            (b"1n", Duration::from_nanos(1)),
            (b"1u", Duration::from_micros(1)),
            (b"1m", Duration::from_millis(1)),
            (b"1S", Duration::from_secs(1)),
            (b"1M", Duration::from_secs(60)),
            (b"1H", Duration::from_secs(3600)),
            (b"0S", Duration::ZERO),
        ];
        for (value, expected) in cases {
            assert_eq!(decode_grpc_timeout(value), Ok(expected), "{value:?}");
        }
    }

    #[test]
    fn eight_digits_decode_and_nine_do_not() {
        assert_eq!(
            decode_grpc_timeout(b"99999999n"),
            Ok(Duration::from_nanos(99_999_999))
        );
        assert_eq!(
            decode_grpc_timeout(b"00000001S"),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(
            decode_grpc_timeout(b"100000000n"),
            Err(InvalidTimeout::TooManyDigits(9))
        );
    }

    #[test]
    fn largest_values_of_each_unit_do_not_overflow() {
        assert_eq!(decode_grpc_timeout(b"99999999H"), Ok(MAX_TIMEOUT));
        assert_eq!(
            decode_grpc_timeout(b"99999999M"),
            Ok(Duration::from_secs(99_999_999 * 60))
        );
        assert_eq!(
            decode_grpc_timeout(b"99999999u"),
            Ok(Duration::from_micros(99_999_999))
        );
        assert_eq!(
            decode_grpc_timeout(b"99999999m"),
            Ok(Duration::from_millis(99_999_999))
        );
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        assert_eq!(decode_grpc_timeout(b""), Err(InvalidTimeout::MissingDigits));
        assert_eq!(
            decode_grpc_timeout(b"S"),
            Err(InvalidTimeout::MissingDigits)
        );
        assert_eq!(
            decode_grpc_timeout(b"10"),
            Err(InvalidTimeout::InvalidUnit(b'0'))
        );
        assert_eq!(
            decode_grpc_timeout(b"1s"),
            Err(InvalidTimeout::InvalidUnit(b's'))
        );
        assert_eq!(
            decode_grpc_timeout(b"-1S"),
            Err(InvalidTimeout::InvalidDigit(b'-'))
        );
        assert_eq!(
            decode_grpc_timeout(b" 1S"),
            Err(InvalidTimeout::InvalidDigit(b' '))
        );
        assert_eq!(
            decode_grpc_timeout(b"1.5S"),
            Err(InvalidTimeout::InvalidDigit(b'.'))
        );
        let status = Status::from(decode_grpc_timeout(b"xS").unwrap_err());
        assert_eq!(status.code(), crate::Code::Internal);
        assert!(status.message().contains("grpc-timeout"));
    }

    #[test]
    fn encode_picks_the_finest_unit_that_fits_in_eight_digits() {
        let cases = [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_nanos(100_000_000), "100000u"),
            (Duration::from_millis(100), "100000u"),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(99_999), "99999000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(99_999_999), "99999999S"),
            (Duration::from_secs(100_000_000), "1666667M"),
            (Duration::from_secs(99_999_999 * 60), "99999999M"),
            (Duration::from_secs(99_999_999 * 60 + 60), "1666667H"),
            (MAX_TIMEOUT, "99999999H"),
        ];
        for (d, expected) in cases {
            assert_eq!(encode_grpc_timeout(d), expected, "{d:?}");
        }
    }

    #[test]
    fn encode_rounds_up_and_clamps_at_the_maximum() {
        // 1 s + 1 ns does not fit in nanoseconds; in microseconds it rounds up.
        assert_eq!(encode_grpc_timeout(Duration::new(1, 1)), "1000001u");
        assert_eq!(
            encode_grpc_timeout(MAX_TIMEOUT + Duration::from_secs(1)),
            "99999999H"
        );
        assert_eq!(encode_grpc_timeout(Duration::MAX), "99999999H");
    }

    #[test]
    fn encode_then_decode_never_shortens_the_timeout() {
        let mut d = Duration::from_nanos(1);
        while d < MAX_TIMEOUT {
            let encoded = encode_grpc_timeout(d);
            assert!(encoded.len() <= MAX_DIGITS + 1, "{encoded}");
            let back = decode_grpc_timeout(encoded.as_bytes()).unwrap();
            assert!(back >= d, "{d:?} -> {encoded} -> {back:?}");
            // The unit is at most 1000 times the previous one, whose count did not fit in
            // 8 digits, so rounding up costs less than one part in 10^5.
            assert!(back - d <= d / 99_999, "{d:?} -> {back:?}");
            d = d * 7 + Duration::from_nanos(3);
        }
    }
}
