//! Reset times written in bodies, as the providers write them: `2026-08-14T00:00:00Z`,
//! `2026-12-07T00:00:00+08:00`, `2025-09-11T10:13:01+0000`, `2026-12-07 00:00:00 (UTC+8)`, and
//! without a zone (`2026-08-25 07:41:44`), in the clock of the provider (`local`, minutes east
//! of UTC). Parsed by hand: a regex or date crate for one shape is not worth its size.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instant `YYYY-MM-DD[T ]HH:MM[:SS[.fff]]` and an optional zone at the start of `s`
/// (lowercase text).
pub fn timestamp(s: &str, local: i32) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().all(u8::is_ascii_digit).then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"t ") && at(13, b":")) {
        return None;
    }
    let (year, month, day, hour, minute) = (num(0, 4)?, num(5, 2)?, num(8, 2)?, num(11, 2)?, num(14, 2)?);
    let (second, mut rest) = match at(16, b":") {
        true => (num(17, 2)?, &s[19..]),
        false => (0, &s[16..]),
    };
    // A fraction of a second: the reset is rounded up to the next second.
    let fraction = rest.strip_prefix('.').map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    let carry = i64::from(fraction.is_some_and(|f| f.len() + 1 < rest.len()));
    rest = fraction.unwrap_or(rest);
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61;
    if !valid {
        return None;
    }
    let offset = zone(rest).unwrap_or(local);
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second + carry - i64::from(offset) * 60;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The zone written after a time, in minutes east of UTC: `z`, `+08:00`, `+0800`, `-05`,
/// ` utc`, ` gmt`, ` (utc+8)`, ` utc+08:00`. None when no zone is written.
fn zone(s: &str) -> Option<i32> {
    if s.starts_with('z') {
        return Some(0);
    }
    let s = s.trim_start();
    let s = s.strip_prefix('(').unwrap_or(s);
    let named = s.strip_prefix("utc").or_else(|| s.strip_prefix("gmt"));
    let signed = named.unwrap_or(s);
    let sign = match signed.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return named.map(|_| 0),
    };
    let digits: String = signed[1..].chars().take_while(|c| c.is_ascii_digit() || *c == ':').filter(char::is_ascii_digit).collect();
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(s: &str, local: i32) -> Option<u64> {
        timestamp(s, local).map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    #[test]
    fn timestamps_and_zones() {
        // 2026-12-06T12:00:00Z is 1796558400.
        let cases = [
            ("2026-12-06t12:00:00z", 0, Some(1_796_558_400)),
            ("2026-12-06 12:00:00", 0, Some(1_796_558_400)),
            ("2026-12-06 20:00:00", 480, Some(1_796_558_400)),
            ("2026-12-06 20:00:00 (utc+8).", 0, Some(1_796_558_400)),
            ("2026-12-06t20:00:00+08:00", 0, Some(1_796_558_400)),
            ("2026-12-06t20:00:00+0800", 0, Some(1_796_558_400)),
            ("2026-12-06t07:00:00-05", 0, Some(1_796_558_400)),
            ("2026-12-06 12:00 utc", 480, Some(1_796_558_400)),
            ("2026-12-06 12:00 gmt", 480, Some(1_796_558_400)),
            ("2026-12-06t11:59:59.25z", 0, Some(1_796_558_400)),
            ("2026-12-06 12:00:00.", 0, Some(1_796_558_400)),
            ("2027-01-01 00:00:00", 0, Some(1_798_761_600)),
            ("2026-13-06 12:00:00", 0, None),
            ("2026-12-06", 0, None),
            ("2026/12/06 12:00:00", 0, None),
            ("1969-12-31 00:00:00", 0, None),
            ("", 0, None),
            ("2026-12-06 12:0", 0, None),
        ];
        for (text, local, want) in cases {
            assert_eq!(epoch(text, local), want, "{text:?}");
        }
    }
}
