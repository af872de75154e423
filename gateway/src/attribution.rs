//! Continuous attribution (built-in engine only): every stored second of a session's audio ends
//! up in its timeline of speaker turns, without any client asking.
//!
//! Each stored frame queues its session here ([`AttributionQueue::notify`]); a single task takes
//! sessions one at a time and, once at least [`BLOCK_MS`] of new audio is stored, reads it back
//! from the object store, attributes it on the engine's threads and merges the result through
//! the session's actor. How far a session is attributed is part of its durable state, so a
//! restart (of the gateway or of the session's actor) continues where it stopped. At finalize
//! the rest is attributed with `finished`, so `result.json` covers the whole session.
//!
//! The work runs under the session's resolve lock: a resolve and an attribution both read the
//! clusters, compute, and write them back, and must not interleave.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::core::seq_set::SeqSet;
use crate::core::session_id::SessionId;

/// New audio (ms) that makes attribution worthwhile: the engine's windows are 1.6 s, and each
/// pass has a fixed cost.
pub const BLOCK_MS: u64 = 5_000;
/// Most audio attributed in one pass: a session that fell behind (a burst of resent frames, a
/// loaded machine) catches up in passes of this size, so memory stays bounded.
pub const MAX_STRETCH_SECONDS: u64 = 30;
/// A missing second this far behind the newest frame is taken as lost (silence) rather than
/// waited for.
pub const GAP_PATIENCE_SECONDS: u64 = 30;

/// Stored frames a second, per core, above which ingest counts as saturated and attribution
/// waits (see [`IngestRate`]). A core serves 5,000–7,000 frames a second at most (about
/// 150–200 µs of CPU each); real-time recorders send one a second each, so a thousand live
/// sessions on two cores stay far below it.
pub const SATURATED_FRAMES_PER_CORE: u64 = 2_500;
/// How often the ingest rate is measured, and how long attribution waits before looking again.
const RATE_WINDOW: Duration = Duration::from_millis(250);

/// Sessions with new audio, each queued once until it is picked up.
#[derive(Clone)]
pub struct AttributionQueue {
    queued: Arc<Mutex<HashSet<String>>>,
    wake: mpsc::UnboundedSender<Option<SessionId>>,
    /// Frames stored since the gateway started.
    stored: Arc<AtomicU64>,
}

impl AttributionQueue {
    /// The queue and the receiving end for the worker task.
    pub fn new() -> (AttributionQueue, mpsc::UnboundedReceiver<Option<SessionId>>) {
        let (wake, woken) = mpsc::unbounded_channel();
        (
            AttributionQueue {
                queued: Arc::default(),
                wake,
                stored: Arc::default(),
            },
            woken,
        )
    }

    /// Says `id` stored a new frame; cheap, never waits.
    pub fn stored(&self, id: &SessionId) {
        self.stored.fetch_add(1, Ordering::Relaxed);
        self.notify(id);
    }

    /// Says `id` has new audio; cheap, never waits.
    pub fn notify(&self, id: &SessionId) {
        let fresh = self
            .queued
            .lock()
            .expect("queue lock")
            .insert(id.safe().to_owned());
        if fresh {
            let _ = self.wake.send(Some(id.clone()));
        }
    }

    /// Called by the worker as it starts on `id`: frames stored from now on queue it again.
    pub fn taken(&self, id: &SessionId) {
        self.queued.lock().expect("queue lock").remove(id.safe());
    }

    /// Stops the worker after the sessions already queued.
    pub fn close(&self) {
        let _ = self.wake.send(None);
    }
}

/// How fast frames are stored, so that attribution yields to ingest. The engine runs at idle
/// priority, yet on a saturated machine it still took 10–12 % of what ingest ACKed (it wakes on
/// every idle moment and fills the caches the socket and log threads were using), and an ACK
/// is the promise the gateway cannot break; attribution can lag and catch up. So while the
/// gateway stores more than [`SATURATED_FRAMES_PER_CORE`] frames a second per core, continuous
/// attribution waits; finalize still attributes everything left.
pub struct IngestRate {
    stored: Arc<AtomicU64>,
    saturated_per_s: u64,
    /// When the last window began, and the count of stored frames then.
    window: (Instant, u64),
    /// Frames a second over the last whole window.
    rate: u64,
}

impl IngestRate {
    pub fn new(queue: &AttributionQueue, cores: usize) -> IngestRate {
        IngestRate {
            stored: Arc::clone(&queue.stored),
            saturated_per_s: SATURATED_FRAMES_PER_CORE * cores.max(1) as u64,
            window: (Instant::now(), queue.stored.load(Ordering::Relaxed)),
            rate: 0,
        }
    }

    /// Returns once ingest is below saturation (at once, unless it was over it in the last
    /// whole window).
    pub async fn wait_until_unsaturated(&mut self) {
        loop {
            self.measure(Instant::now());
            if self.rate <= self.saturated_per_s {
                return;
            }
            tokio::time::sleep(RATE_WINDOW).await;
        }
    }

    /// Closes the window once it is [`RATE_WINDOW`] old: the rate is that window's.
    fn measure(&mut self, now: Instant) {
        let (began, count) = self.window;
        let elapsed = now.duration_since(began);
        if elapsed < RATE_WINDOW {
            return;
        }
        let stored = self.stored.load(Ordering::Relaxed);
        self.rate = ((stored - count) as f64 / elapsed.as_secs_f64()) as u64;
        self.window = (now, stored);
    }
}

/// The stretch of stored audio to attribute next: frames `first_seq..=last_seq`, of which the
/// first `skip_ms` were attributed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub first_seq: u64,
    pub last_seq: u64,
    pub skip_ms: u64,
    /// Whether more stored audio waits after this stretch (it was cut at
    /// [`MAX_STRETCH_SECONDS`]).
    pub more: bool,
}

/// What to attribute after `through_ms`, given the stored seqs; `None` while there is too little
/// new audio (unless `finished`). Frame `seq` holds ms `[(seq-1)·1000, seq·1000)`. The stretch
/// ends before the first missing frame that may still arrive (one within
/// [`GAP_PATIENCE_SECONDS`] of the newest).
pub fn next_stretch(through_ms: u64, stored: &SeqSet, finished: bool) -> Option<Stretch> {
    let newest = stored.max();
    let first_seq = through_ms / 1000 + 1;
    if newest < first_seq {
        return None;
    }
    let mut last_seq = first_seq - 1;
    let limit = (first_seq + MAX_STRETCH_SECONDS - 1).min(newest);
    while last_seq < limit {
        let next = last_seq + 1;
        if !stored.contains(next) && next + GAP_PATIENCE_SECONDS > newest && !finished {
            break;
        }
        last_seq = next;
    }
    let new_ms = (last_seq * 1000).saturating_sub(through_ms);
    if last_seq < first_seq || (!finished && new_ms < BLOCK_MS) {
        return None;
    }
    Some(Stretch {
        first_seq,
        last_seq,
        skip_ms: through_ms - (first_seq - 1) * 1000,
        more: limit < newest && last_seq == limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seqs: impl IntoIterator<Item = u64>) -> SeqSet {
        let mut set = SeqSet::new();
        for seq in seqs {
            set.insert(seq);
        }
        set
    }

    #[test]
    fn the_ingest_rate_is_measured_over_whole_windows_and_compared_per_core() {
        let (queue, _woken) = AttributionQueue::new();
        let id = SessionId::parse("rate").unwrap();
        let mut rate = IngestRate::new(&queue, 2);
        assert_eq!(rate.saturated_per_s, 5_000);
        let began = rate.window.0;
        for _ in 0..1_000 {
            queue.stored(&id);
        }
        rate.measure(began + RATE_WINDOW / 2);
        assert_eq!(rate.rate, 0, "a window is only read once it is whole");
        rate.measure(began + RATE_WINDOW);
        assert_eq!(rate.rate, 4_000, "1,000 frames in 250 ms");
        for _ in 0..2_000 {
            queue.stored(&id);
        }
        rate.measure(began + 2 * RATE_WINDOW);
        assert_eq!(rate.rate, 8_000);
        rate.measure(began + 4 * RATE_WINDOW);
        assert_eq!(rate.rate, 0, "nothing stored over the next half second");
    }

    #[tokio::test(start_paused = true)]
    async fn attribution_waits_one_window_while_ingest_is_saturated() {
        let (queue, _woken) = AttributionQueue::new();
        let id = SessionId::parse("rate").unwrap();
        let mut rate = IngestRate::new(&queue, 1);
        let started = Instant::now();
        rate.wait_until_unsaturated().await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a quiet gateway: no wait"
        );
        for _ in 0..1_000 {
            queue.stored(&id);
        }
        tokio::time::advance(RATE_WINDOW).await;
        let saturated = Instant::now();
        rate.wait_until_unsaturated().await;
        assert_eq!(
            saturated.elapsed(),
            RATE_WINDOW,
            "4,000 frames/s on one core: one window's wait, then none stored in it"
        );
    }

    #[test]
    fn waits_for_a_block_of_new_audio_unless_finished() {
        assert_eq!(next_stretch(0, &stored(1..=4), false), None);
        assert_eq!(
            next_stretch(0, &stored(1..=5), false),
            Some(Stretch {
                first_seq: 1,
                last_seq: 5,
                skip_ms: 0,
                more: false
            })
        );
        assert_eq!(
            next_stretch(0, &stored(1..=2), true).map(|s| s.last_seq),
            Some(2)
        );
        assert_eq!(next_stretch(2000, &stored(1..=2), true), None);
    }

    #[test]
    fn continues_mid_frame_where_the_last_pass_stopped() {
        assert_eq!(
            next_stretch(3400, &stored(1..=12), false),
            Some(Stretch {
                first_seq: 4,
                last_seq: 12,
                skip_ms: 400,
                more: false
            })
        );
    }

    #[test]
    fn a_recent_gap_is_waited_for_and_an_old_one_taken_as_lost() {
        let mut seqs: Vec<u64> = (1..=20).collect();
        seqs.retain(|&s| s != 8);
        assert_eq!(
            next_stretch(0, &stored(seqs.clone()), false).map(|s| s.last_seq),
            Some(7)
        );
        seqs.extend(21..=40);
        assert_eq!(
            next_stretch(0, &stored(seqs), false).map(|s| (s.last_seq, s.more)),
            Some((30, true)),
            "a long backlog is taken in passes"
        );
        assert_eq!(
            next_stretch(30_000, &stored(1..=40), false).map(|s| (s.last_seq, s.more)),
            Some((40, false))
        );
    }
}
