//! Human-written quantities in the manifest: durations ("90s", "8h", "1h30m") and byte sizes
//! ("4GiB", "512MB", 8_000_000).

use serde::{Deserialize, Deserializer, de};
use std::fmt;

/// A duration in seconds, written as a number of seconds or as text like `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

/// A size in bytes, written as an integer or as text like `"4GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(v) = t.parse::<f64>() {
        return check_seconds(v);
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` lacks a unit (s, m, h, d)"))?;
        if digits == 0 {
            return Err(format!("`{text}` is not a duration like \"90s\", \"15m\" or \"1h30m\""));
        }
        let value: f64 = rest[..digits].parse().map_err(|_| format!("`{text}` has a malformed number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match rest[..unit_len].trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            other => {
                return Err(format!("`{text}` has an unknown unit `{other}` (use s, m, h or d)"));
            }
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    check_seconds(total)
}

fn check_seconds(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err(format!("a duration must be positive, got {v}")) }
}

pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("`{text}` is not a size like \"4GiB\" or \"500MB\""))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0f64.powi(4),
        other => {
            return Err(format!("`{text}` has an unknown unit `{other}` (use B, KB, MB, GB, KiB, MiB, GiB)"));
        }
    };
    let bytes = value * factor;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("a size must be at least one byte, got `{text}`"));
    }
    Ok(bytes.round() as u64)
}

/// Deserializes either a bare number or a string through `parse`.
fn number_or_text<'de, D, T>(
    d: D,
    what: &'static str,
    from_f64: fn(f64) -> Result<T, String>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        what: &'static str,
        from_f64: fn(f64) -> Result<T, String>,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.from_f64)(v as f64).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.from_f64)(v as f64).map_err(E::custom)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            (self.from_f64)(v).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V { what, from_f64, parse })
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        number_or_text(
            d,
            "a duration: seconds, or text like \"90s\", \"15m\", \"1h30m\"",
            |v| check_seconds(v).map(Seconds),
            |s| parse_seconds(s).map(Seconds),
        )
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        number_or_text(
            d,
            "a size: bytes, or text like \"4GiB\" or \"500MB\"",
            |v| {
                if v >= 1.0 && v.fract() == 0.0 {
                    Ok(Bytes(v as u64))
                } else {
                    Err(format!("a size must be a whole number of bytes, at least 1, got {v}"))
                }
            },
            |s| parse_bytes(s).map(Bytes),
        )
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut unit = 0;
        while v >= 1024.0 && unit < UNITS.len() - 1 {
            v /= 1024.0;
            unit += 1;
        }
        if unit == 0 { write!(f, "{} B", self.0) } else { write!(f, "{v:.1} {}", UNITS[unit]) }
    }
}

/// Formats seconds for people: `0.8s`, `1m05s`, `2h03m`.
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 { format!("{h}h{m:02}m") } else { format!("{m}m{sec:02}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("90s"), Ok(90.0));
        assert_eq!(parse_seconds("1h30m"), Ok(5400.0));
        assert_eq!(parse_seconds("8h"), Ok(28800.0));
        assert_eq!(parse_seconds("250ms"), Ok(0.25));
        assert_eq!(parse_seconds("12"), Ok(12.0));
        assert!(parse_seconds("10 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("h").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("8_000_000"), Ok(8_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
        assert_eq!(Bytes(4 << 30).to_string(), "4.0 GiB");
        assert_eq!(human_seconds(65.0), "1m05s");
    }
}
