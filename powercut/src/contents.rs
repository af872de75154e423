//! One file's bytes in both versions: the live bytes that reads see and the durable bytes its
//! last fsync left.
//!
//! Invariant: outside `unsynced` (the hull of every byte range changed since the last sync),
//! `durable` and `live` hold the same bytes, up to the shorter length. So a sync copies only that
//! range instead of the whole file: a log appended and fdatasynced once per record costs one
//! record per sync, not the whole log.

use std::ops::Range;

#[derive(Debug, Clone, Default)]
pub struct Contents {
    live: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Option<Range<usize>>,
}

impl Contents {
    /// Contents already durable, as loaded from the backing directory.
    pub fn synced(data: Vec<u8>) -> Contents {
        Contents {
            durable: data.clone(),
            live: data,
            unsynced: None,
        }
    }

    pub fn live(&self) -> &[u8] {
        &self.live
    }

    pub fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Writes `data` at `offset`, filling any gap past the end with zeros.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        if self.live.len() < end {
            self.resize(end);
        }
        self.live[offset..end].copy_from_slice(data);
        self.mark(offset..end);
    }

    /// Truncates or extends (with zeros) the live bytes.
    pub fn resize(&mut self, len: usize) {
        let old = self.live.len();
        self.live.resize(len, 0);
        // Both ways the bytes between the two lengths changed: cut off, or now zeros where the
        // durable copy may still hold older bytes.
        self.mark(old.min(len)..old.max(len));
    }

    /// fsync: the durable bytes become the live bytes.
    pub fn sync(&mut self) {
        self.durable.resize(self.live.len(), 0);
        if let Some(range) = self.unsynced.take() {
            let end = range.end.min(self.live.len());
            if range.start < end {
                self.durable[range.start..end].copy_from_slice(&self.live[range.start..end]);
            }
        }
    }

    fn mark(&mut self, changed: Range<usize>) {
        if changed.is_empty() {
            return;
        }
        self.unsynced = Some(match self.unsynced.take() {
            None => changed,
            Some(range) => range.start.min(changed.start)..range.end.max(changed.end),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_makes_the_durable_bytes_equal_the_live_bytes_whatever_came_before() {
        // Against a naive model that copies everything at each sync, over a long pseudo-random
        // run of writes, truncations, extensions and syncs.
        let mut contents = Contents::synced(b"initial bytes".to_vec());
        let mut model_durable = contents.live().to_vec();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for step in 0..5_000 {
            match next(10) {
                0..=4 => {
                    let offset = next(300);
                    let data = vec![step as u8; next(40)];
                    contents.write(offset, &data);
                }
                5 | 6 => contents.resize(next(300)),
                _ => {
                    contents.sync();
                    model_durable = contents.live().to_vec();
                }
            }
            assert_eq!(contents.durable().len(), model_durable.len(), "step {step}");
            assert_eq!(contents.durable(), &model_durable[..], "step {step}");
        }
    }

    #[test]
    fn an_extension_after_a_truncation_reads_zeros_and_syncs_zeros() {
        let mut contents = Contents::synced(b"0123456789".to_vec());
        contents.resize(3);
        contents.resize(6);
        assert_eq!(contents.live(), b"012\0\0\0");
        assert_eq!(contents.durable(), b"0123456789");
        contents.sync();
        assert_eq!(contents.durable(), b"012\0\0\0");
    }
}
