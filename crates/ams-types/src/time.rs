//! Timestamps and the two ways AMS renders them (contract §0.4), plus the strict
//! `:timeToOffset` parser.

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A point in time: nanoseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Self {
        Self(ns)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Milliseconds since the epoch (rounded down).
    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Resource dates: `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn to_rfc3339_seconds(self) -> String {
        let d = self.datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    }

    /// Message `publishTime`: up to nine fractional digits with trailing zeros
    /// trimmed and no dot for whole seconds (Go's `.999999999` layout).
    pub fn to_rfc3339_nanos(self) -> String {
        let mut s = self.to_rfc3339_seconds();
        let nanos = self.datetime().nanosecond();
        if nanos != 0 {
            s.pop(); // the 'Z'
            let frac = format!("{nanos:09}");
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
            s.push('Z');
        }
        s
    }

    /// Daily counter dates: `YYYY-MM-DD`.
    pub fn to_date(self) -> String {
        let d = self.datetime();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

/// Seconds in a UTC day.
const DAY_SECS: i64 = 86_400;

impl Timestamp {
    /// The UTC day this instant falls in, as days since 1970-01-01.
    pub const fn day(self) -> i32 {
        // i64 days since the epoch fit i32 for every representable instant.
        self.secs().div_euclid(DAY_SECS) as i32
    }

    /// Midnight (UTC) starting `day` (days since 1970-01-01).
    pub const fn start_of_day(day: i32) -> Self {
        Self::from_secs(day as i64 * DAY_SECS)
    }
}

/// Parses a `YYYY-MM-DD` date as Go's `time.Parse("2006-01-02", …)` does
/// (four-digit year, two-digit month and day, a real calendar date, nothing
/// after it). Returns days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[r];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    let midnight = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
    Some(Timestamp::from_secs(midnight.unix_timestamp()).day())
}

/// Parses the `:timeToOffset` `time` parameter: `YYYY-MM-DDTHH:MM:SS.mmmZ` with
/// exactly three fractional digits and a literal `Z`; the hour may have one digit
/// (Go's `2006-01-02T15:04:05.000Z` layout). Returns milliseconds since the epoch.
pub fn parse_zulu_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 4 + 1 + 2 + 1 + 2 + 1 + 1 {
        return None;
    }
    let year = num(0..4)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let month = num(5..7)?;
    let day = num(8..10)?;
    // One- or two-digit hour.
    let hour_len = if b.get(12) == Some(&b':') { 1 } else { 2 };
    let hour = num(11..11 + hour_len)?;
    let rest = &s[11 + hour_len..];
    let rb = rest.as_bytes();
    // ":MM:SS.mmmZ"
    if rb.len() != 11 || rb[0] != b':' || rb[3] != b':' || rb[6] != b'.' || rb[10] != b'Z' {
        return None;
    }
    let off = 11 + hour_len;
    let minute = num(off + 1..off + 3)?;
    let second = num(off + 4..off + 6)?;
    let millis = num(off + 7..off + 10)?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms_milli(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        u16::try_from(millis).ok()?,
    )
    .ok()?;
    let dt = PrimitiveDateTime::new(date, time).assume_utc();
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        let day = parse_date("2024-02-29").unwrap();
        assert_eq!(Timestamp::start_of_day(day).to_date(), "2024-02-29");
        assert_eq!(Timestamp::start_of_day(day).day(), day);
        assert_eq!(
            Timestamp::from_secs(day as i64 * 86_400 + 86_399).day(),
            day
        );
        for bad in [
            "2023-02-29",
            "2024-2-01",
            "2024-02-1",
            "24-02-01",
            "2024-02-01T",
            "2024/02/01",
            "2024-13-01",
            "2024-00-10",
            "",
            "abcd-ef-gh",
            "+024-02-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn publish_time_trims_trailing_zeros() {
        let t = Timestamp::from_nanos(1_456_314_909_786_127_994);
        assert_eq!(t.to_rfc3339_nanos(), "2016-02-24T11:55:09.786127994Z");
        let t = Timestamp::from_nanos(1_456_314_909_500_000_000);
        assert_eq!(t.to_rfc3339_nanos(), "2016-02-24T11:55:09.5Z");
        let t = Timestamp::from_secs(1_456_314_909);
        assert_eq!(t.to_rfc3339_nanos(), "2016-02-24T11:55:09Z");
        assert_eq!(t.to_rfc3339_seconds(), "2016-02-24T11:55:09Z");
        assert_eq!(t.to_date(), "2016-02-24");
    }

    #[test]
    fn zulu_parser_is_strict() {
        assert_eq!(parse_zulu_millis("1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(
            parse_zulu_millis("1970-01-01T1:00:00.000Z"),
            Some(3_600_000)
        );
        assert_eq!(
            parse_zulu_millis("2019-09-02T13:39:11.100Z"),
            Some(1_567_431_551_100)
        );
        for bad in [
            "",
            "2019-09-02T13:39:11Z",
            "2019-09-02T13:39:11.10Z",
            "2019-09-02T13:39:11.1000Z",
            "2019-09-02T13:39:11.100",
            "2019-09-02 13:39:11.100Z",
            "2019-13-02T13:39:11.100Z",
            "2019-02-30T13:39:11.100Z",
            "2019-09-02T24:39:11.100Z",
            "2019-9-02T13:39:11.100Z",
            "2019-09-02T13:39:11.100+01:00",
            "2019-09-02T13:3a:11.100Z",
        ] {
            assert_eq!(parse_zulu_millis(bad), None, "{bad}");
        }
    }
}
