//! Epoch milliseconds as the timestamps users read in notices and errors.

use std::time::Duration;

use crate::types::Decimal;

/// `2026-11-24T15:06:00Z`, the text of humantime's `format_rfc3339_seconds`, made with integer
/// maths: it is on the decision path, where the formatting machinery showed in wasm profiles.
/// Years past 9999 are written in full where humantime's `Display` fails.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days over 400-year eras, each year starting on March 1st.
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    let mut rest = *b"-00-00T00:00:00Z";
    for (at, n) in [(1, month), (4, day), (7, day_secs / 3600), (10, day_secs / 60 % 60), (13, day_secs % 60)] {
        rest[at] = b'0' + (n / 10) as u8;
        rest[at + 1] = b'0' + (n % 10) as u8;
    }
    // Epoch milliseconds start in 1970: the year always has four digits or more.
    [Decimal::of(year).as_ref(), std::str::from_utf8(&rest).unwrap_or_default()].concat()
}

/// `12m 30s`, for durations in messages.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn formats_epoch_ms_as_utc() {
        assert_eq!(rfc3339(1_795_528_800_000), "2026-11-24T14:00:00Z");
        assert_eq!(duration(750), "750ms");
        assert_eq!(duration(3_720_000), "1h 2m");
    }

    #[test]
    fn rfc3339_reads_as_humantime_wrote_it() {
        let humantime = |ms: u64| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
        // Month, leap-day and century edges, then a spread over every year humantime can write.
        let day = 86_400_000u64;
        let edges = [0, 999, 1000, day - 1, 951_782_400_000, 951_868_800_000, 4_107_456_000_000, 4_107_542_400_000];
        let last = 253_402_300_799_999u64;
        let spread = (0..200_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (last + 1));
        for ms in edges.into_iter().chain([last]).chain(spread) {
            assert_eq!(rfc3339(ms), humantime(ms), "{ms}");
        }
        assert_eq!(rfc3339(last + 1), "10000-01-01T00:00:00Z");
    }
}
