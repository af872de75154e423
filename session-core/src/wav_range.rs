//! `Range` requests on `audio.wav` (RFC 9110 §14), the same on every host: what a `Range`
//! header asks of a file of `total` bytes, and which parts of the file that range covers.
//!
//! The file's layout is fixed: the 44-byte header, then blocks of `block_bytes` (one second
//! of samples: 32000 bytes mono, 64000 stereo; only the last block may be shorter). So a
//! range maps to a slice of the header, the blocks it touches and, within each of those, the
//! bytes it keeps, and a host reads only the frames of those blocks. A whole answer is the
//! range of every byte, so hosts have one path for both.
//!
//! Only one range of `bytes` is served. Anything else (another unit, several ranges, a
//! malformed value, `last < first`) is ignored and the whole file goes out with 200, as
//! RFC 9110 allows. A range that starts at or past the end, or an empty suffix, is 416.

use std::ops::Range;

/// The WAV header's length: the bytes before the first block.
pub const HEADER_BYTES: u64 = 44;

/// `accept-ranges`, sent on every `audio.wav` answer (200 and 206).
pub const ACCEPT_RANGES_HEADER: &str = "accept-ranges";
/// The only range unit served.
pub const BYTES: &str = "bytes";

/// What a request's `Range` header asks of a file of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No range to honour (none, or one that is ignored): 200 with every byte.
    Whole,
    /// 206 with these bytes.
    Partial(ByteRange),
    /// 416: the range starts at or past the end.
    Unsatisfiable,
}

/// Bytes `first..=last` of a file (inclusive, as `Content-Range` says them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// What the `Range` header `value` (absent: `None`) asks of a file of `total` bytes.
pub fn answer(value: Option<&str>, total: u64) -> RangeAnswer {
    let Some(spec) = value.and_then(parse) else {
        return RangeAnswer::Whole;
    };
    let Some(end) = total.checked_sub(1) else {
        return RangeAnswer::Unsatisfiable;
    };
    match spec {
        Spec::From { first, .. } if first > end => RangeAnswer::Unsatisfiable,
        Spec::From { first, last } => RangeAnswer::Partial(ByteRange {
            first,
            last: last.map_or(end, |last| last.min(end)),
        }),
        Spec::Suffix(0) => RangeAnswer::Unsatisfiable,
        Spec::Suffix(n) => RangeAnswer::Partial(ByteRange {
            first: total.saturating_sub(n),
            last: end,
        }),
    }
}

/// One range as written: `first-last`, `first-` or `-suffix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

/// The one byte range in `value`, or `None` for anything this host ignores.
fn parse(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case(BYTES) || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    let last = match last {
        "" => None,
        last => match number(last)? {
            last if last < first => return None, // invalid, ignored
            last => Some(last),
        },
    };
    Some(Spec::From { first, last })
}

/// Decimal digits only; a number past `u64` is as good as `u64::MAX` (past any end).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

impl ByteRange {
    /// Every byte of a file of `total` bytes (at least one).
    pub fn whole(total: u64) -> ByteRange {
        ByteRange {
            first: 0,
            last: total.saturating_sub(1),
        }
    }

    /// How many bytes the range holds (`Content-Length`).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `Content-Range` of a 206 for a file of `total` bytes.
    pub fn content_range(&self, total: u64) -> String {
        format!("{BYTES} {}-{}/{total}", self.first, self.last)
    }

    /// The bytes of the 44-byte header in the range (empty when it starts past the header).
    pub fn header(&self) -> Range<usize> {
        let from = self.first.min(HEADER_BYTES);
        let to = (self.last + 1).min(HEADER_BYTES);
        from as usize..to as usize
    }

    /// The blocks of `block_bytes` after the header that the range touches, counted from 0
    /// (block `i` is seq `i + 1` of a mono file); empty when the range ends in the header.
    pub fn blocks(&self, block_bytes: u64) -> Range<u64> {
        if self.last < HEADER_BYTES {
            return 0..0;
        }
        let first = self.first.saturating_sub(HEADER_BYTES) / block_bytes;
        let last = (self.last - HEADER_BYTES) / block_bytes;
        first..last + 1
    }

    /// The bytes of block `index` (of `len` bytes, in blocks of `block_bytes`) in the range.
    pub fn within(&self, index: u64, block_bytes: u64, len: usize) -> Range<usize> {
        let start = HEADER_BYTES + index * block_bytes;
        let end = start + len as u64;
        let from = self.first.clamp(start, end) - start;
        let to = (self.last + 1).clamp(start, end) - start;
        from as usize..to as usize
    }
}

/// `Content-Range` of a 416 for a file of `total` bytes.
pub fn unsatisfiable_content_range(total: u64) -> String {
    format!("{BYTES} */{total}")
}

/// The 416 text.
pub fn not_satisfiable(total: u64) -> String {
    format!("range not satisfiable: audio.wav is {total} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTAL: u64 = 44 + 3 * 32_000;

    fn partial(first: u64, last: u64) -> RangeAnswer {
        RangeAnswer::Partial(ByteRange { first, last })
    }

    #[test]
    fn a_range_a_suffix_and_an_open_end_are_answered_within_the_file() {
        let cases = [
            ("bytes=0-43", partial(0, 43)),
            ("bytes=10-20", partial(10, 20)),
            ("bytes=100-", partial(100, TOTAL - 1)),
            ("bytes=100-999999999", partial(100, TOTAL - 1)),
            ("bytes=-500", partial(TOTAL - 500, TOTAL - 1)),
            ("bytes=-999999999", partial(0, TOTAL - 1)),
            ("bytes=5-5", partial(5, 5)),
            ("Bytes=1-2", partial(1, 2)),
            (" bytes= 1-2 ", partial(1, 2)),
            ("bytes=0-99999999999999999999999", partial(0, TOTAL - 1)),
        ];
        for (value, expected) in cases {
            assert_eq!(answer(Some(value), TOTAL), expected, "{value}");
        }
    }

    #[test]
    fn a_range_from_the_end_on_or_an_empty_suffix_is_not_satisfiable() {
        for value in [
            format!("bytes={TOTAL}-"),
            format!("bytes={TOTAL}-{}", TOTAL + 10),
            "bytes=99999999999999999999999-".into(),
            "bytes=-0".into(),
        ] {
            assert_eq!(
                answer(Some(&value), TOTAL),
                RangeAnswer::Unsatisfiable,
                "{value}"
            );
        }
        assert_eq!(answer(Some("bytes=0-"), 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn no_header_and_a_malformed_or_multi_range_header_are_ignored() {
        assert_eq!(answer(None, TOTAL), RangeAnswer::Whole);
        for value in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=abc",
            "bytes=5-3",
            "bytes=1-2,5-6",
            "bytes=0-0, -1",
            "items=0-5",
            "bytes=+1-5",
            "bytes=1--5",
            "bytes=0x10-",
            "bytes 0-5",
        ] {
            assert_eq!(answer(Some(value), TOTAL), RangeAnswer::Whole, "{value:?}");
        }
    }

    #[test]
    fn content_range_says_the_bytes_and_the_total() {
        let range = ByteRange {
            first: 44,
            last: 32_043,
        };
        assert_eq!(range.len(), 32_000);
        assert_eq!(range.content_range(TOTAL), "bytes 44-32043/96044");
        assert_eq!(unsatisfiable_content_range(TOTAL), "bytes */96044");
    }

    #[test]
    fn a_range_in_the_header_needs_no_block() {
        let range = ByteRange { first: 4, last: 11 };
        assert_eq!(range.header(), 4..12);
        assert_eq!(range.blocks(32_000), 0..0);
    }

    #[test]
    fn a_range_across_a_block_boundary_needs_the_two_blocks_and_keeps_their_ends() {
        // The last 10 bytes of second 1 and the first 6 of second 2.
        let range = ByteRange {
            first: 44 + 32_000 - 10,
            last: 44 + 32_000 + 5,
        };
        assert_eq!(range.header(), 44..44, "none of the header");
        assert_eq!(range.blocks(32_000), 0..2);
        assert_eq!(range.within(0, 32_000, 32_000), 31_990..32_000);
        assert_eq!(range.within(1, 32_000, 32_000), 0..6);
    }

    #[test]
    fn a_range_from_the_header_into_the_samples_takes_both() {
        let range = ByteRange {
            first: 40,
            last: 47,
        };
        assert_eq!(range.header(), 40..44);
        assert_eq!(range.blocks(32_000), 0..1);
        assert_eq!(range.within(0, 32_000, 32_000), 0..4);
    }

    #[test]
    fn the_whole_file_is_the_header_and_every_block_in_full() {
        let range = ByteRange::whole(TOTAL);
        assert_eq!(range.len(), TOTAL);
        assert_eq!(range.header(), 0..44);
        assert_eq!(range.blocks(32_000), 0..3);
        for block in 0..3 {
            assert_eq!(range.within(block, 32_000, 32_000), 0..32_000);
        }
    }

    #[test]
    fn a_suffix_in_a_short_last_stereo_block_reads_only_that_block() {
        // 2.25 s of stereo: blocks of 64000 bytes, the last one 16000.
        let total = 44 + 2 * 64_000 + 16_000;
        let RangeAnswer::Partial(range) = answer(Some("bytes=-100"), total) else {
            panic!("a suffix is served");
        };
        assert_eq!(range.blocks(64_000), 2..3);
        assert_eq!(range.within(2, 64_000, 16_000), 15_900..16_000);
    }

    #[test]
    fn a_seek_near_the_end_of_an_hour_reads_only_its_last_seconds() {
        let total = 44 + 3_600 * 32_000;
        let start = 44 + 3_598 * 32_000 + 123;
        let RangeAnswer::Partial(range) = answer(Some(&format!("bytes={start}-")), total) else {
            panic!("an open range is served");
        };
        assert_eq!(range.blocks(32_000), 3_598..3_600, "seqs 3599 and 3600");
        assert_eq!(range.within(3_598, 32_000, 32_000), 123..32_000);
        assert_eq!(range.len(), 2 * 32_000 - 123);
    }
}
