//! Time in the record: one UTC timestamp type with a canonical text form, and an injected
//! clock so that tests control "now".
//!
//! A [`Timestamp`] always lies between [`Timestamp::MIN`] (0001-01-01) and
//! [`Timestamp::MAX`] (9999-12-31, the last microsecond), in UTC. Parsing refuses anything
//! outside, whatever offset it was written with, and arithmetic saturates at the ends; so
//! every value formats to the same fixed-width canonical text and parses back to itself,
//! and no input can make time arithmetic panic.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::{datetime, format_description};
use time::{Duration, OffsetDateTime, UtcOffset};

/// A point in time, always UTC and truncated to microseconds (what PostgreSQL keeps), so
/// that the same instant has the same bytes on every backend and in every hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const CANONICAL: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl Timestamp {
    /// The earliest instant a timestamp can hold.
    pub const MIN: Timestamp = Timestamp(datetime!(0001-01-01 00:00:00 UTC));
    /// The latest instant a timestamp can hold.
    pub const MAX: Timestamp = Timestamp(datetime!(9999-12-31 23:59:59.999999 UTC));

    /// The instant in UTC, truncated to microseconds; None outside [`MIN`](Self::MIN) ..=
    /// [`MAX`](Self::MAX).
    pub fn checked_from_offset(t: OffsetDateTime) -> Option<Self> {
        let t = t.checked_to_offset(UtcOffset::UTC)?;
        let t = t.replace_nanosecond(t.microsecond() * 1000).ok()?;
        (Self::MIN.0..=Self::MAX.0).contains(&t).then_some(Self(t))
    }

    /// As [`checked_from_offset`](Self::checked_from_offset), clamped to the range.
    pub fn from_offset(t: OffsetDateTime) -> Self {
        Self::checked_from_offset(t).unwrap_or(if t.year() < 1 { Self::MIN } else { Self::MAX })
    }

    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .ok()
            .and_then(Self::checked_from_offset)
    }

    pub fn unix_micros(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1000) as i64
    }

    pub fn as_offset(&self) -> OffsetDateTime {
        self.0
    }

    /// RFC 3339 in UTC with six fractional digits: the canonical text form.
    pub fn to_canonical(&self) -> String {
        // Within MIN..=MAX the format always succeeds (four-digit years).
        self.0.format(CANONICAL).unwrap_or_default()
    }

    /// Parses any RFC 3339 timestamp (any offset) and normalises it. Refuses instants that
    /// fall outside years 1 to 9999 once converted to UTC.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let text = || s.chars().take(64).collect::<String>();
        let t = OffsetDateTime::parse(s.trim(), &Rfc3339)
            .map_err(|_| TimestampError::Invalid(text()))?;
        Self::checked_from_offset(t).ok_or_else(|| TimestampError::OutOfRange(text()))
    }

    /// `self + d`, or None past the ends of the range.
    pub fn checked_plus(&self, d: Duration) -> Option<Self> {
        self.0.checked_add(d).and_then(Self::checked_from_offset)
    }

    /// `self + d`, saturating at [`MIN`](Self::MIN) and [`MAX`](Self::MAX).
    pub fn plus(&self, d: Duration) -> Self {
        self.checked_plus(d).unwrap_or(if d.is_negative() {
            Self::MIN
        } else {
            Self::MAX
        })
    }

    /// `self - d`, saturating.
    pub fn minus(&self, d: Duration) -> Self {
        match d.checked_neg() {
            Some(n) => self.plus(n),
            None => Self::MAX,
        }
    }

    /// `self + days`, saturating (any `i64` is accepted).
    pub fn plus_days(&self, days: i64) -> Self {
        self.plus(Duration::seconds(days.saturating_mul(86_400)))
    }

    /// Seconds from `self` to `later` (negative when `later` is earlier).
    pub fn seconds_until(&self, later: &Timestamp) -> i64 {
        (later.0 - self.0).whole_seconds()
    }

    /// The calendar day of this instant in the given offset (UTC+8 for Beijing time).
    pub fn date_in(&self, offset: UtcOffset) -> time::Date {
        self.0
            .checked_to_offset(offset)
            .map(|t| t.date())
            .unwrap_or_else(|| self.0.date())
    }

    /// Midnight UTC at the start of a calendar day.
    pub fn start_of_day_utc(date: time::Date) -> Self {
        Self::from_offset(date.midnight().assume_utc())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not an RFC 3339 timestamp: {0:?}")]
    Invalid(String),
    /// Written correctly, but outside what a timestamp holds.
    #[error("{0:?} is {OUT_OF_RANGE}")]
    OutOfRange(String),
}

/// The words of [`TimestampError::OutOfRange`], which the HTTP edge recognises.
pub const OUT_OF_RANGE: &str = "outside the years 0001 to 9999 (UTC)";

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_canonical())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from. The service uses [`SystemClock`]; tests use [`ManualClock`].
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn advance(&self, d: Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g = g.plus(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_utc_with_micros() {
        let t = Timestamp::parse("2022-03-15T16:30:00.1234567+08:00").unwrap();
        assert_eq!(t.to_canonical(), "2022-03-15T08:30:00.123456Z");
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(Timestamp::from_unix_micros(t.unix_micros()).unwrap(), t);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2022-13-01T00:00:00Z").is_err());
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn instants_outside_years_1_to_9999_in_utc_are_refused() {
        for s in [
            "0000-01-01T00:00:00+01:00",
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:00:00-23:59",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s} must be refused");
        }
        for s in [
            "0001-01-01T00:00:00Z",
            "0001-01-01T01:00:00+01:00",
            "1899-12-31T23:59:59.9999999+08:00",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:00:00+23:59",
            "2022-03-15T16:30:00+05:45",
        ] {
            let t = Timestamp::parse(s).unwrap_or_else(|_| panic!("{s} is in range"));
            let text = t.to_canonical();
            assert_eq!(text.len(), 27, "{text}");
            assert_eq!(Timestamp::parse(&text).unwrap(), t, "{s} round-trips");
        }
    }

    #[test]
    fn arithmetic_saturates_and_never_panics() {
        assert_eq!(Timestamp::MAX.plus_days(1), Timestamp::MAX);
        assert_eq!(Timestamp::MAX.plus_days(i64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::MIN.plus_days(i64::MIN), Timestamp::MIN);
        assert_eq!(Timestamp::MIN.minus(Duration::MAX), Timestamp::MIN);
        assert_eq!(Timestamp::MIN.minus(Duration::MIN), Timestamp::MAX);
        assert_eq!(Timestamp::MAX.checked_plus(Duration::seconds(1)), None);
        assert!(Timestamp::from_unix_micros(i64::MAX).is_none());
        assert!(Timestamp::from_unix_micros(i64::MIN).is_none());
        let _ = Timestamp::MAX.date_in(UtcOffset::from_hms(8, 0, 0).unwrap());
        let _ = Timestamp::MIN.date_in(UtcOffset::from_hms(-8, 0, 0).unwrap());
        assert!(Timestamp::MIN.seconds_until(&Timestamp::MAX) > 0);
    }
}

/// A stoppage as a correction states it: `1.5`, `1.5小时` or `2h` are hours (the form asks
/// for hours), `90分钟` or `90min` minutes. Anything else is not a duration.
pub fn stoppage_minutes(text: &str) -> Option<u32> {
    let t = text.trim().to_lowercase();
    let (number, per) = if let Some(n) = t
        .strip_suffix("分钟")
        .or_else(|| t.strip_suffix("min"))
        .or_else(|| t.strip_suffix('分'))
    {
        (n, 1.0)
    } else {
        let n = t
            .strip_suffix("小时")
            .or_else(|| t.strip_suffix('h'))
            .unwrap_or(&t);
        (n, 60.0)
    };
    let v: f64 = number.trim().parse().ok()?;
    let minutes = (v * per).round();
    (v.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&minutes)).then_some(minutes as u32)
}

#[cfg(test)]
mod stoppage_tests {
    use super::stoppage_minutes;

    #[test]
    fn corrected_stoppages_read_as_people_write_them() {
        assert_eq!(stoppage_minutes("1.5"), Some(90));
        assert_eq!(stoppage_minutes("3.5小时"), Some(210));
        assert_eq!(stoppage_minutes("2h"), Some(120));
        assert_eq!(stoppage_minutes("45分钟"), Some(45));
        assert_eq!(stoppage_minutes("45 min"), Some(45));
        assert_eq!(stoppage_minutes("半天"), None);
        assert_eq!(stoppage_minutes("-1"), None);
    }
}
