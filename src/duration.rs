//! Human-friendly durations: `500ms`, `30s`, `14days`, `1month 2days`.
//!
//! jiff (already needed for calendar time) parses the text. The calendar
//! units are counted with humantime's fixed lengths, and durations print in
//! humantime's style, because that crate did both before and settings,
//! messages and docs (`at most 24days 20h 31m 23s 647ms`) use its forms.

use std::fmt;
use std::time::Duration;

use jiff::fmt::friendly::{Designator, SpanPrinter};
use jiff::{SignedDuration, Span};

/// Seconds in a day.
const DAY: u64 = 86_400;
/// A week is seven days.
const WEEK: u64 = 7 * DAY;
/// A month of 30.44 days and a year of 365.25 days: fixed averages, as in
/// humantime, since a duration here has no date to count calendar months
/// from.
const MONTH: u64 = 2_630_016;
/// See [`MONTH`].
const YEAR: u64 = 31_557_600;

/// Why a text is not a duration.
#[derive(Debug, thiserror::Error)]
pub enum DurationError {
    /// Not in jiff's friendly (or ISO 8601) duration format.
    #[error("{0}")]
    Syntax(#[from] jiff::Error),
    /// A duration cannot be negative.
    #[error("a duration cannot be negative")]
    Negative,
    /// Longer than `std::time::Duration` holds.
    #[error("the duration is too long")]
    TooLong,
}

/// Parses a duration such as `500ms`, `1h 30m` or `1month 2days`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let span: Span = text.trim().parse()?;
    if span.is_negative() {
        return Err(DurationError::Negative);
    }
    let secs = [
        (i128::from(span.get_years()), YEAR),
        (i128::from(span.get_months()), MONTH),
        (i128::from(span.get_weeks()), WEEK),
        (i128::from(span.get_days()), DAY),
        (i128::from(span.get_hours()), 3_600),
        (i128::from(span.get_minutes()), 60),
        (i128::from(span.get_seconds()), 1),
    ]
    .iter()
    .map(|&(n, unit)| n * i128::from(unit))
    .sum::<i128>();
    let nanos = i128::from(span.get_milliseconds()) * 1_000_000
        + i128::from(span.get_microseconds()) * 1_000
        + i128::from(span.get_nanoseconds());
    let total = secs * 1_000_000_000 + nanos;
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLong)?;
    let nanos = u32::try_from(total % 1_000_000_000).expect("holds: below 10^9 and not negative");
    Ok(Duration::new(secs, nanos))
}

/// Shows `duration` as humantime did: `14days`, `1month 2days`,
/// `24days 20h 31m 23s 647ms`, `0s`.
pub fn display(duration: Duration) -> impl fmt::Display {
    Display(duration)
}

/// See [`display`].
struct Display(Duration);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        static TIME_OF_DAY: SpanPrinter = SpanPrinter::new().designator(Designator::HumanTime);
        let secs = self.0.as_secs();
        let calendar = [
            (secs / YEAR, "year"),
            (secs % YEAR / MONTH, "month"),
            (secs % YEAR % MONTH / DAY, "day"),
        ];
        let mut parts: Vec<String> = calendar
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}{}", if *n > 1 { "s" } else { "" }))
            .collect();
        let rest = SignedDuration::new(
            i64::try_from(secs % YEAR % MONTH % DAY).expect("holds: below a day"),
            i32::try_from(self.0.subsec_nanos()).expect("holds: below 10^9"),
        );
        if !rest.is_zero() || parts.is_empty() {
            parts.push(TIME_OF_DAY.duration_to_string(&rest));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_in_use() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("0s", Duration::ZERO),
            ("14days", Duration::from_secs(14 * DAY)),
            ("1h 30m", Duration::from_secs(5_400)),
            ("2min", Duration::from_secs(120)),
            ("1month 2days", Duration::from_secs(MONTH + 2 * DAY)),
            ("100years", Duration::from_secs(100 * YEAR)),
            ("2147483648ms", Duration::from_millis(2_147_483_648)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), expected, "{text}");
        }
        for bad in ["soon", "", "-5s", "5s ago"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_as_humantime_did() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(14 * DAY), "14days"),
            (Duration::from_secs(DAY), "1day"),
            (Duration::from_secs(MONTH + 2 * DAY), "1month 2days"),
            (
                Duration::from_millis(i32::MAX as u64),
                "24days 20h 31m 23s 647ms",
            ),
            (Duration::from_secs(2), "2s"),
            (
                Duration::new(26_784, 123_456_789),
                "7h 26m 24s 123ms 456us 789ns",
            ),
            (Duration::from_secs(2 * YEAR + 60), "2years 1m"),
        ];
        for (duration, expected) in cases {
            assert_eq!(display(duration).to_string(), expected);
        }
    }
}
