//! How an offset into the session (milliseconds from its first sample) is written.

/// SRT: `HH:MM:SS,mmm` (hours keep counting past 99).
pub fn srt(ms: u64) -> String {
    let (h, m, s, milli) = parts(ms);
    format!("{h:02}:{m:02}:{s:02},{milli:03}")
}

/// WebVTT: `HH:MM:SS.mmm`.
pub fn vtt(ms: u64) -> String {
    let (h, m, s, milli) = parts(ms);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

/// The reports' clock: `M:SS`, or `H:MM:SS` from an hour on; the milliseconds are dropped
/// (a turn that starts at 4.9 s starts at `0:04`, as a player's clock shows it).
pub fn clock(ms: u64) -> String {
    let (h, m, s, _) = parts(ms);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn parts(ms: u64) -> (u64, u64, u64, u64) {
    let secs = ms / 1000;
    (secs / 3600, secs / 60 % 60, secs % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitle_timecodes_pad_every_field_and_differ_only_in_the_millisecond_separator() {
        assert_eq!(srt(0), "00:00:00,000");
        assert_eq!(vtt(0), "00:00:00.000");
        assert_eq!(srt(62_001), "00:01:02,001");
        assert_eq!(vtt(3_723_456), "01:02:03.456");
        assert_eq!(srt(100 * 3_600_000 + 5), "100:00:00,005");
    }

    #[test]
    fn the_report_clock_drops_the_milliseconds_and_shows_hours_only_when_there_are_some() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(4_999), "0:04");
        assert_eq!(clock(61_000), "1:01");
        assert_eq!(clock(3_599_999), "59:59");
        assert_eq!(clock(3_600_000), "1:00:00");
        assert_eq!(clock(36_061_000), "10:01:01");
    }
}
