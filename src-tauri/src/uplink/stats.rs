//! ACK latency bookkeeping for the uplink counters.
//!
//! Min, average and last cover the whole run; the 99th percentile covers the most recent
//! [`WINDOW`] ACKs, so memory stays constant however long a recording runs.

use std::collections::VecDeque;
use std::time::Duration;

use crate::events::Latency;

/// ACKs the percentile is computed over.
pub const WINDOW: usize = 1024;

/// Running ACK latency statistics.
#[derive(Debug, Default)]
pub struct LatencyStats {
    count: u64,
    sum_ms: f64,
    min_ms: Option<f64>,
    last_ms: Option<f64>,
    recent: VecDeque<f64>,
}

impl LatencyStats {
    /// Records one ACK that arrived `rtt` after its chunk was sent.
    pub fn record(&mut self, rtt: Duration) {
        let ms = rtt.as_secs_f64() * 1000.0;
        self.count += 1;
        self.sum_ms += ms;
        self.min_ms = Some(self.min_ms.map_or(ms, |m| m.min(ms)));
        self.last_ms = Some(ms);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
    }

    /// The figures the UI shows.
    pub fn snapshot(&self) -> Latency {
        Latency {
            min_ms: self.min_ms,
            avg_ms: (self.count > 0).then(|| self.sum_ms / self.count as f64),
            last_ms: self.last_ms,
            p99_ms: percentile(&self.recent, 0.99),
        }
    }
}

/// Nearest-rank percentile.
fn percentile(values: &VecDeque<f64>, p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_avg_last_and_p99() {
        let mut stats = LatencyStats::default();
        assert_eq!(stats.snapshot(), Latency::default());
        for ms in 1..=100 {
            stats.record(Duration::from_millis(ms));
        }
        let s = stats.snapshot();
        assert_eq!(s.min_ms, Some(1.0));
        assert_eq!(s.last_ms, Some(100.0));
        assert_eq!(s.avg_ms, Some(50.5));
        assert_eq!(s.p99_ms, Some(99.0));
    }

    #[test]
    fn the_percentile_window_is_bounded() {
        let mut stats = LatencyStats::default();
        stats.record(Duration::from_secs(100));
        for _ in 0..WINDOW {
            stats.record(Duration::from_millis(2));
        }
        let s = stats.snapshot();
        assert_eq!(s.p99_ms, Some(2.0), "the old outlier left the window");
        assert_eq!(s.min_ms, Some(2.0));
        assert!(
            s.avg_ms.unwrap() > 2.0,
            "the average still covers the whole run"
        );
    }
}
