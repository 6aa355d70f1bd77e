//! Times as migsnap shows them: snapshot times are seconds since the epoch,
//! written in UTC, in words for people and as RFC 3339 in JSON. A time out
//! of jiff's range shows as the seconds themselves rather than failing.

/// `secs` as `2026-12-05 12:04:28 UTC`, for text output.
pub fn utc(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// `secs` as RFC 3339 (`2026-12-05T12:04:28Z`), as every JSON time is
/// written.
pub fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// [`rfc3339`] for `#[serde(serialize_with = ...)]` on a seconds field.
pub fn serialize_rfc3339<S: serde::Serializer>(
    secs: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_utc_and_rfc3339_and_out_of_range_as_seconds() {
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }
}
