//! The set of stored frame numbers, kept as sorted disjoint ranges.
//!
//! A recording is almost always one contiguous run (1..=N) with a few holes, so ranges keep a
//! long session in a few bytes where a hash set would hold every number.

/// Sorted, disjoint, non-adjacent inclusive ranges `[start, end]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    pub fn new() -> SeqSet {
        SeqSet::default()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.find(seq).is_ok()
    }

    /// Adds `seq`; returns false if it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        let index = match self.find(seq) {
            Ok(_) => return false,
            Err(index) => index,
        };
        let joins_previous = index > 0 && self.ranges[index - 1].1 + 1 == seq;
        let joins_next = index < self.ranges.len() && self.ranges[index].0 == seq + 1;
        match (joins_previous, joins_next) {
            (true, true) => {
                self.ranges[index - 1].1 = self.ranges[index].1;
                self.ranges.remove(index);
            }
            (true, false) => self.ranges[index - 1].1 = seq,
            (false, true) => self.ranges[index].0 = seq,
            (false, false) => self.ranges.insert(index, (seq, seq)),
        }
        true
    }

    /// Number of stored seqs.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Highest stored seq, 0 when empty.
    pub fn max(&self) -> u64 {
        self.ranges.last().map_or(0, |r| r.1)
    }

    /// Every seq, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(first, last)| first..=last)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// `Ok(range index)` if `seq` is inside a range, else `Err(index where a range starting at seq
    /// would go)`.
    fn find(&self, seq: u64) -> Result<usize, usize> {
        let index = self.ranges.partition_point(|r| r.1 < seq);
        match self.ranges.get(index) {
            Some(r) if r.0 <= seq => Ok(index),
            _ => Err(index),
        }
    }
}

impl FromIterator<u64> for SeqSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> SeqSet {
        let mut set = SeqSet::new();
        for seq in iter {
            set.insert(seq);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_neighbouring_ranges() {
        let mut set = SeqSet::new();
        for seq in [1, 2, 3, 7, 9, 8, 5] {
            assert!(set.insert(seq));
        }
        assert_eq!(set.ranges(), &[(1, 3), (5, 5), (7, 9)]);
        assert!(set.insert(4));
        assert_eq!(set.ranges(), &[(1, 5), (7, 9)]);
        assert!(set.insert(6));
        assert_eq!(set.ranges(), &[(1, 9)]);
        assert!(!set.insert(5));
        assert_eq!(set.len(), 9);
        assert_eq!(set.max(), 9);
    }

    #[test]
    fn contains_matches_a_plain_set_for_random_inserts() {
        let mut set = SeqSet::new();
        let mut plain = std::collections::BTreeSet::new();
        let mut x: u64 = 12345;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let seq = 1 + (x >> 33) % 300;
            assert_eq!(set.insert(seq), plain.insert(seq));
        }
        for seq in 0..320 {
            assert_eq!(set.contains(seq), plain.contains(&seq), "seq {seq}");
        }
        assert_eq!(set.len(), plain.len() as u64);
        assert_eq!(set.max(), *plain.last().unwrap());
        assert!(set.ranges().windows(2).all(|w| w[0].1 + 1 < w[1].0));
    }
}
