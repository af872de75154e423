//! Time as the contract writes it. The core never reads a clock: hosts pass `now` in, so the
//! rules are deterministic under test.

use time::OffsetDateTime;
use time::macros::format_description;

/// Milliseconds since the Unix epoch.
pub type EpochMs = u64;

/// RFC 3339 in UTC with milliseconds, the shape JavaScript's `toISOString()` gives the seed:
/// `2026-11-25T22:09:45.123Z`.
pub fn rfc3339(ms: EpochMs) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_644_585_123), "2026-11-25T22:09:45.123Z");
    }
}
