//! Durations (`"10s"`, `"250ms"`, `"1.5s"`) and byte sizes (`"64MiB"`,
//! `512`, `"1GB"`): parsing with errors that say what is expected, the
//! canonical text each value is printed back as, and the serde wrappers the
//! raw config uses so that a bad value is reported with its key and source.
//!
//! Arithmetic is exact (integers, no floats): `"1.5s"` is 1500 ms, and a
//! value that is not a whole number of nanoseconds or bytes is refused rather
//! than rounded.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// What a duration looks like, quoted in every duration error.
const DURATION_EXPECTED: &str = r#"a number and a unit (ns, us, ms, s, m or h), e.g. "250ms", "10s", "1.5s" or "5m""#;

/// What a size looks like, quoted in every size error.
const SIZE_EXPECTED: &str = r#"a number of bytes (e.g. 512), or a number and a unit (B, KiB, MiB, GiB, TiB, or the decimal KB, MB, GB, TB), e.g. "64MiB""#;

/// Duration units, largest first, in nanoseconds.
const DURATION_UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Size units (lowercase), in bytes. The binary ones come first: they are
/// the ones a size is printed with.
const SIZE_UNITS: [(&str, u128); 9] = [
    ("tib", 1 << 40),
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("tb", 1_000_000_000_000),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
];

/// A duration or size that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}; expected {expected}")]
pub struct UnitError {
    what: &'static str,
    input: String,
    reason: String,
    expected: &'static str,
}

impl UnitError {
    fn duration(input: &str, reason: impl Into<String>) -> Self {
        Self {
            what: "duration",
            input: input.to_owned(),
            reason: reason.into(),
            expected: DURATION_EXPECTED,
        }
    }

    fn size(input: &str, reason: impl Into<String>) -> Self {
        Self {
            what: "size",
            input: input.to_owned(),
            reason: reason.into(),
            expected: SIZE_EXPECTED,
        }
    }
}

/// Splits `"1.5 MiB"` into the decimal number (`1`, `5`) and the unit.
fn split_number(text: &str) -> Result<(&str, &str, &str), String> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if text.starts_with('-') {
        return Err("negative values are not allowed".to_owned());
    }
    if number.is_empty() {
        return Err("it does not start with a number".to_owned());
    }
    if int.is_empty() || (number.contains('.') && frac.is_empty()) || frac.contains('.') {
        return Err(format!("{number:?} is not a decimal number"));
    }
    Ok((int, frac, unit))
}

/// `int.frac * scale`, exactly, or `None` when it overflows or is fractional.
fn scale(int: &str, frac: &str, scale: u128) -> Result<u128, &'static str> {
    const TOO_LARGE: &str = "it is too large";
    // More than 38 digits cannot be held in a u128 anyway.
    if int.len() > 38 || frac.len() > 38 {
        return Err(TOO_LARGE);
    }
    let int: u128 = int.parse().map_err(|_| TOO_LARGE)?;
    let whole = int.checked_mul(scale).ok_or(TOO_LARGE)?;
    if frac.is_empty() {
        return Ok(whole);
    }
    let denominator = 10u128.pow(frac.len() as u32);
    let numerator = frac
        .parse::<u128>()
        .map_err(|_| TOO_LARGE)?
        .checked_mul(scale)
        .ok_or(TOO_LARGE)?;
    if numerator % denominator != 0 {
        return Err("its fractional part is finer than the unit allows");
    }
    whole.checked_add(numerator / denominator).ok_or(TOO_LARGE)
}

/// Parses a duration: a decimal number and a unit, e.g. `"250ms"`, `"1.5s"`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let (int, frac, unit) = split_number(text).map_err(|reason| UnitError::duration(text, reason))?;
    let Some(&(_, nanos_per_unit)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
        let reason = if unit.is_empty() {
            "it has no unit".to_owned()
        } else {
            format!("unknown unit {unit:?}")
        };
        return Err(UnitError::duration(text, reason));
    };
    let nanos = scale(int, frac, nanos_per_unit).map_err(|reason| UnitError::duration(text, reason))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| UnitError::duration(text, "it is too large"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a size in bytes: `"64MiB"`, `"1GB"`, `"512"` or `"512B"`. Units
/// are case-insensitive; the one-letter `K`/`M`/`G` are refused as ambiguous.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (int, frac, unit) = split_number(text).map_err(|reason| UnitError::size(text, reason))?;
    let lower = unit.to_ascii_lowercase();
    let bytes_per_unit = if lower.is_empty() {
        1
    } else if let Some(&(_, bytes)) = SIZE_UNITS.iter().find(|(name, _)| *name == lower) {
        bytes
    } else if matches!(lower.as_str(), "k" | "m" | "g" | "t") {
        let upper = lower.to_ascii_uppercase();
        return Err(UnitError::size(
            text,
            format!("unit {unit:?} is ambiguous: write {upper}iB (binary) or {upper}B (decimal)"),
        ));
    } else {
        return Err(UnitError::size(text, format!("unknown unit {unit:?}")));
    };
    let bytes = scale(int, frac, bytes_per_unit).map_err(|reason| match reason {
        "its fractional part is finer than the unit allows" => {
            UnitError::size(text, "it is not a whole number of bytes")
        }
        other => UnitError::size(text, other),
    })?;
    u64::try_from(bytes).map_err(|_| UnitError::size(text, "it is too large"))
}

/// The canonical text of a duration: the largest unit that holds it exactly
/// (`"5m"`, `"1500ms"`, `"0s"`). [`parse_duration`] reads it back unchanged.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let (name, per) = DURATION_UNITS
        .iter()
        .find(|(_, per)| nanos.is_multiple_of(*per))
        .expect("every duration is a whole number of nanoseconds");
    format!("{}{name}", nanos / per)
}

/// The canonical text of a size: the largest binary unit that holds it
/// exactly (`"64MiB"`), else bytes (`"1000B"`). [`parse_size`] reads it back.
pub fn format_size(bytes: u64) -> String {
    const BINARY: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match BINARY.iter().find(|(_, per)| bytes != 0 && bytes.is_multiple_of(*per)) {
        Some((name, per)) => format!("{}{name}", bytes / per),
        None => format!("{bytes}B"),
    }
}

/// A duration in the raw config: a string with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_duration(text).map(DurationValue).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "the number {n} has no unit; write \"{n}s\" for seconds or \"{n}ms\" for milliseconds"
                )))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "the number {n} has no unit; expected {DURATION_EXPECTED}"
                )))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "the number {n} has no unit; expected {DURATION_EXPECTED}"
                )))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// A size in the raw config: a number of bytes or a string with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeValue(pub(crate) u64);

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = SizeValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SIZE_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_size(text).map(SizeValue).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(SizeValue(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(SizeValue)
                    .map_err(|_| E::custom(format!("invalid size {n}: negative values are not allowed")))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "invalid size {n}: a bare number is whole bytes; for fractions write a unit, e.g. \"1.5MiB\""
                )))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_every_unit_and_fractions() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("250ms", Duration::from_millis(250)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.5ms", Duration::from_micros(500)),
            ("7us", Duration::from_micros(7)),
            ("3ns", Duration::from_nanos(3)),
            ("0s", Duration::ZERO),
            ("2 s", Duration::from_secs(2)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_wrong_and_what_is_expected() {
        for (text, reason) in [
            ("10", "no unit"),
            ("10x", "unknown unit \"x\""),
            ("s", "does not start with a number"),
            ("", "does not start with a number"),
            ("-1s", "negative"),
            ("1.s", "not a decimal number"),
            ("1.2.3s", "not a decimal number"),
            ("0.1ns", "finer than the unit"),
            ("99999999999999999999999h", "too large"),
            ("10 seconds", "unknown unit"),
        ] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains("\"250ms\""), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_parse_binary_and_decimal_units_and_bare_bytes() {
        let cases = [
            ("512", 512),
            ("512B", 512),
            ("1KiB", 1024),
            ("64MiB", 64 << 20),
            ("64mib", 64 << 20),
            ("1GB", 1_000_000_000),
            ("1.5KiB", 1536),
            ("2 GiB", 2 << 30),
            ("1TiB", 1 << 40),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_what_is_wrong_and_what_is_expected() {
        for (text, reason) in [
            ("64M", "ambiguous: write MiB (binary) or MB (decimal)"),
            ("1.1B", "not a whole number of bytes"),
            ("lots", "does not start with a number"),
            ("5 parsecs", "unknown unit"),
            ("99999999999TiB", "too large"),
        ] {
            let err = parse_size(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains("\"64MiB\""), "{text}: {err}");
        }
    }

    #[test]
    fn formatted_values_parse_back_to_themselves() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(300),
            Duration::from_secs(7200),
            Duration::from_nanos(1_000_000_001),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        for n in [0, 1, 1000, 1024, 64 << 20, 3 << 40, u64::MAX] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1000), "1000B");
    }
}
