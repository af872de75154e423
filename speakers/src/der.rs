//! Scoring for speaker diarization and speaker embeddings.
//!
//! `score` computes the NIST-style diarization error rate (DER), so numbers from our engine can be
//! compared with published ones and across changes; `eer` gives the equal error rate of
//! same/different-speaker similarity scores, which tells how separable the embeddings are before
//! clustering gets involved. Only std is used so tests and evaluation tools can call it freely.

use std::collections::BTreeMap;

/// A stretch of time in which one speaker talks. Turns of one speaker may touch or overlap; they
/// are treated as the union of their time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub start_ms: u64,
    pub end_ms: u64,
    pub speaker: String,
}

impl Turn {
    pub fn new(start_ms: u64, end_ms: u64, speaker: impl Into<String>) -> Self {
        Self {
            start_ms,
            end_ms,
            speaker: speaker.into(),
        }
    }
}

/// The error components of a DER evaluation, in milliseconds of scored time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DerReport {
    /// Reference speech time, counting overlapped time once per speaker.
    pub total_ms: u64,
    /// Reference speech with no hypothesis speaker to account for it.
    pub missed_ms: u64,
    /// Hypothesis speech beyond what the reference has.
    pub false_alarm_ms: u64,
    /// Speech attributed to the wrong speaker after the best speaker mapping.
    pub confusion_ms: u64,
    /// Distinct speaker labels in the reference.
    pub ref_speakers: usize,
    /// Distinct speaker labels in the hypothesis.
    pub hyp_speakers: usize,
}

impl DerReport {
    /// (missed + false alarm + confusion) / total. With no reference speech there is nothing to
    /// normalise by: 0 when the hypothesis is silent too, infinity otherwise.
    #[must_use]
    pub fn der(&self) -> f64 {
        let errors = self.missed_ms + self.false_alarm_ms + self.confusion_ms;
        match (self.total_ms, errors) {
            (0, 0) => 0.0,
            (0, _) => f64::INFINITY,
            (total, errors) => errors as f64 / total as f64,
        }
    }
}

/// Scores `hypothesis` against `reference`, ignoring `collar_ms` on both sides of every reference
/// turn boundary (human boundaries are not more precise than that, and errors there say little
/// about the system). Speaker labels of the two sides need not match: each hypothesis speaker is
/// mapped to at most one reference speaker so that their total co-speaking time is maximal, as in
/// NIST md-eval. Overlapped speech is scored. Turns with `end_ms <= start_ms` are ignored.
#[must_use]
pub fn score(reference: &[Turn], hypothesis: &[Turn], collar_ms: u64) -> DerReport {
    let ref_ids = SpeakerIds::new(reference);
    let hyp_ids = SpeakerIds::new(hypothesis);
    let no_score = collar_zones(reference, collar_ms);
    let segments = scored_segments(reference, &ref_ids, hypothesis, &hyp_ids, &no_score);
    let overlap = overlap_matrix(&segments, hyp_ids.len(), ref_ids.len());
    let mapping = best_mapping(&overlap, ref_ids.len());
    let mut report = DerReport {
        ref_speakers: ref_ids.len(),
        hyp_speakers: hyp_ids.len(),
        ..DerReport::default()
    };
    for segment in &segments {
        segment.add_errors(&mapping, &mut report);
    }
    report
}

/// Dense indices for speaker labels, so per-speaker state can live in vectors.
struct SpeakerIds(BTreeMap<String, usize>);

impl SpeakerIds {
    fn new(turns: &[Turn]) -> Self {
        let mut ids = BTreeMap::new();
        for turn in turns {
            let next = ids.len();
            ids.entry(turn.speaker.clone()).or_insert(next);
        }
        Self(ids)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, speaker: &str) -> usize {
        self.0[speaker]
    }
}

/// The merged, sorted intervals within `collar_ms` of a reference turn boundary.
fn collar_zones(reference: &[Turn], collar_ms: u64) -> Vec<(u64, u64)> {
    if collar_ms == 0 {
        return Vec::new();
    }
    let mut zones: Vec<(u64, u64)> = valid(reference)
        .flat_map(|t| [t.start_ms, t.end_ms])
        .map(|b| (b.saturating_sub(collar_ms), b.saturating_add(collar_ms)))
        .collect();
    zones.sort_unstable();
    merge_sorted(zones)
}

fn merge_sorted(zones: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(zones.len());
    for (start, end) in zones {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn valid(turns: &[Turn]) -> impl Iterator<Item = &Turn> {
    turns.iter().filter(|t| t.end_ms > t.start_ms)
}

/// A piece of time in which the set of active speakers on both sides is constant.
#[derive(Debug)]
struct Segment {
    duration_ms: u64,
    refs: Vec<usize>,
    hyps: Vec<usize>,
}

impl Segment {
    /// Adds this segment's share of the DER components, given the hypothesis-to-reference mapping.
    fn add_errors(&self, mapping: &[Option<usize>], report: &mut DerReport) {
        let n_ref = self.refs.len() as u64;
        let n_hyp = self.hyps.len() as u64;
        let n_correct = self
            .hyps
            .iter()
            .filter(|&&h| mapping[h].is_some_and(|r| self.refs.contains(&r)))
            .count() as u64;
        let d = self.duration_ms;
        report.total_ms += n_ref * d;
        report.missed_ms += n_ref.saturating_sub(n_hyp) * d;
        report.false_alarm_ms += n_hyp.saturating_sub(n_ref) * d;
        report.confusion_ms += (n_ref.min(n_hyp) - n_correct) * d;
    }
}

/// A change in how many turns of one speaker are active (+1 at a start, -1 at an end).
struct Event {
    at_ms: u64,
    is_ref: bool,
    speaker: usize,
    delta: i32,
}

fn events<'a>(
    turns: &'a [Turn],
    ids: &'a SpeakerIds,
    is_ref: bool,
) -> impl Iterator<Item = Event> + 'a {
    valid(turns).flat_map(move |t| {
        let speaker = ids.get(&t.speaker);
        [
            Event {
                at_ms: t.start_ms,
                is_ref,
                speaker,
                delta: 1,
            },
            Event {
                at_ms: t.end_ms,
                is_ref,
                speaker,
                delta: -1,
            },
        ]
    })
}

/// Cuts the timeline at every turn boundary and collar edge, and keeps the pieces that are
/// outside the collars and have someone speaking. Sweeping sorted events keeps this
/// O(n log n) in the number of turns, so hour-long meetings score instantly.
fn scored_segments(
    reference: &[Turn],
    ref_ids: &SpeakerIds,
    hypothesis: &[Turn],
    hyp_ids: &SpeakerIds,
    no_score: &[(u64, u64)],
) -> Vec<Segment> {
    let mut events: Vec<Event> = events(reference, ref_ids, true)
        .chain(events(hypothesis, hyp_ids, false))
        .collect();
    events.sort_by_key(|e| e.at_ms);
    let mut cuts: Vec<u64> = events.iter().map(|e| e.at_ms).collect();
    cuts.extend(no_score.iter().flat_map(|&(s, e)| [s, e]));
    cuts.sort_unstable();
    cuts.dedup();

    let mut ref_active = vec![0i32; ref_ids.len()];
    let mut hyp_active = vec![0i32; hyp_ids.len()];
    let mut next_event = 0;
    let mut segments = Vec::new();
    for window in cuts.windows(2) {
        let (start, end) = (window[0], window[1]);
        while next_event < events.len() && events[next_event].at_ms <= start {
            let e = &events[next_event];
            let active = if e.is_ref {
                &mut ref_active
            } else {
                &mut hyp_active
            };
            active[e.speaker] += e.delta;
            next_event += 1;
        }
        if in_zones(start, no_score) {
            continue;
        }
        let segment = Segment {
            duration_ms: end - start,
            refs: speaking(&ref_active),
            hyps: speaking(&hyp_active),
        };
        if !segment.refs.is_empty() || !segment.hyps.is_empty() {
            segments.push(segment);
        }
    }
    segments
}

fn speaking(active: &[i32]) -> Vec<usize> {
    active
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(i, _)| i)
        .collect()
}

/// Whether `at_ms` lies in one of the sorted, disjoint half-open `zones`.
fn in_zones(at_ms: u64, zones: &[(u64, u64)]) -> bool {
    let after = zones.partition_point(|&(start, _)| start <= at_ms);
    after > 0 && at_ms < zones[after - 1].1
}

/// `overlap[h][r]`: scored time in which hypothesis speaker h and reference speaker r both talk.
fn overlap_matrix(segments: &[Segment], n_hyp: usize, n_ref: usize) -> Vec<Vec<u64>> {
    let mut overlap = vec![vec![0u64; n_ref]; n_hyp];
    for segment in segments {
        for &h in &segment.hyps {
            for &r in &segment.refs {
                overlap[h][r] += segment.duration_ms;
            }
        }
    }
    overlap
}

/// The one-to-one mapping of hypothesis to reference speakers with the largest total overlap.
/// Greedy matching can be beaten by a different pairing (see the tests), and brute force grows
/// factorially when a poor clustering yields many speakers, so this uses the Hungarian method.
fn best_mapping(overlap: &[Vec<u64>], n_ref: usize) -> Vec<Option<usize>> {
    let n = overlap.len().max(n_ref);
    // Square weight matrix; padded rows/columns stand for "unmapped" and weigh as no overlap.
    let weight: Vec<Vec<i64>> = (0..n)
        .map(|h| (0..n).map(|r| overlap_at(overlap, h, r)).collect())
        .collect();
    let max = weight.iter().flatten().copied().max().unwrap_or(0);
    // The Hungarian method minimises, so turn weights into costs.
    let cost: Vec<Vec<i64>> = weight
        .iter()
        .map(|row| row.iter().map(|w| max - w).collect())
        .collect();
    let assignment = min_cost_assignment(&cost);
    (0..overlap.len())
        .map(|h| Some(assignment[h]).filter(|&r| r < n_ref && overlap[h][r] > 0))
        .collect()
}

fn overlap_at(overlap: &[Vec<u64>], h: usize, r: usize) -> i64 {
    let w = overlap
        .get(h)
        .and_then(|row| row.get(r))
        .copied()
        .unwrap_or(0);
    i64::try_from(w).unwrap_or(i64::MAX)
}

/// Hungarian method with potentials, O(n³): returns for every row of the square `cost` matrix
/// the column it is assigned to, minimising the total cost.
fn min_cost_assignment(cost: &[Vec<i64>]) -> Vec<usize> {
    let mut solver = Hungarian::new(cost);
    for row in 1..=cost.len() {
        solver.add_row(row);
    }
    solver.row_to_column()
}

/// State of the Hungarian method. Indices are 1-based; index 0 is a virtual column used as the
/// root of each augmenting search.
struct Hungarian<'a> {
    cost: &'a [Vec<i64>],
    /// Row potentials.
    u: Vec<i64>,
    /// Column potentials.
    v: Vec<i64>,
    /// `row_of[c]`: the row assigned to column c (0 = none).
    row_of: Vec<usize>,
    /// `prev[c]`: the column before c on the current alternating path.
    prev: Vec<usize>,
}

impl<'a> Hungarian<'a> {
    fn new(cost: &'a [Vec<i64>]) -> Self {
        let n = cost.len();
        Self {
            cost,
            u: vec![0; n + 1],
            v: vec![0; n + 1],
            row_of: vec![0; n + 1],
            prev: vec![0; n + 1],
        }
    }

    /// Assigns `row` by growing a shortest alternating path from it to a free column (adjusting
    /// the potentials so reduced costs stay non-negative), then flipping the path.
    fn add_row(&mut self, row: usize) {
        let n = self.cost.len();
        self.row_of[0] = row;
        let mut slack = vec![i64::MAX; n + 1];
        let mut used = vec![false; n + 1];
        let mut column = 0;
        while self.row_of[column] != 0 {
            used[column] = true;
            let (next, delta) = self.relax(column, &used, &mut slack);
            self.shift_potentials(delta, &used, &mut slack);
            column = next;
        }
        self.flip_path(column);
    }

    /// Updates the slack of unused columns from the row matched to `column`; returns the unused
    /// column with the least slack and that slack.
    fn relax(&mut self, column: usize, used: &[bool], slack: &mut [i64]) -> (usize, i64) {
        let row = self.row_of[column];
        let mut best = (0, i64::MAX);
        for c in (1..used.len()).filter(|&c| !used[c]) {
            let reduced = self.cost[row - 1][c - 1] - self.u[row] - self.v[c];
            if reduced < slack[c] {
                slack[c] = reduced;
                self.prev[c] = column;
            }
            if slack[c] < best.1 {
                best = (c, slack[c]);
            }
        }
        best
    }

    fn shift_potentials(&mut self, delta: i64, used: &[bool], slack: &mut [i64]) {
        for c in 0..used.len() {
            if used[c] {
                self.u[self.row_of[c]] += delta;
                self.v[c] -= delta;
            } else {
                slack[c] -= delta;
            }
        }
    }

    fn flip_path(&mut self, mut column: usize) {
        while column != 0 {
            let before = self.prev[column];
            self.row_of[column] = self.row_of[before];
            column = before;
        }
    }

    fn row_to_column(&self) -> Vec<usize> {
        let mut assignment = vec![0; self.cost.len()];
        for (c, &row) in self.row_of.iter().enumerate().skip(1) {
            if row != 0 {
                assignment[row - 1] = c - 1;
            }
        }
        assignment
    }
}

/// Equal error rate of a verifier that says "same speaker" when a similarity score is at least
/// the threshold: the operating point where the false-reject rate (same-speaker pairs below it)
/// equals the false-accept rate (different-speaker pairs at or above it). Returns that rate, the
/// average of the two at the candidate threshold where they are closest, and the threshold.
/// Candidates are the midpoints between adjacent distinct scores (plus "accept all" and "reject
/// all"), so a threshold inside a gap between the classes is reported rather than a score itself.
/// NaN scores are ignored; with no same or no different scores the result is (NaN, NaN).
#[must_use]
pub fn eer(same: &[f32], different: &[f32]) -> (f64, f32) {
    let same = sorted_scores(same);
    let different = sorted_scores(different);
    if same.is_empty() || different.is_empty() {
        return (f64::NAN, f32::NAN);
    }
    let mut best = (f64::INFINITY, f64::NAN, f32::NAN);
    for threshold in candidate_thresholds(&same, &different) {
        let frr = fraction_below(&same, threshold);
        let far = 1.0 - fraction_below(&different, threshold);
        let gap = (far - frr).abs();
        if gap < best.0 {
            best = (gap, f64::midpoint(far, frr), threshold);
        }
    }
    (best.1, best.2)
}

fn sorted_scores(scores: &[f32]) -> Vec<f32> {
    let mut sorted: Vec<f32> = scores.iter().copied().filter(|s| !s.is_nan()).collect();
    sorted.sort_by(f32::total_cmp);
    sorted
}

/// Thresholds at which the error rates can change: the lowest score, midpoints between adjacent
/// distinct scores, and +infinity.
fn candidate_thresholds(same: &[f32], different: &[f32]) -> Vec<f32> {
    let mut all: Vec<f32> = same.iter().chain(different).copied().collect();
    all.sort_by(f32::total_cmp);
    all.dedup();
    let mut thresholds = vec![all[0]];
    thresholds.extend(all.windows(2).map(|w| w[0].midpoint(w[1])));
    thresholds.push(f32::INFINITY);
    thresholds
}

/// Fraction of the sorted `scores` strictly below `threshold`.
fn fraction_below(scores: &[f32], threshold: f32) -> f64 {
    scores.partition_point(|&s| s < threshold) as f64 / scores.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(spec: &[(u64, u64, &str)]) -> Vec<Turn> {
        spec.iter()
            .map(|&(s, e, who)| Turn::new(s, e, who))
            .collect()
    }

    /// Two speakers with an overlap, shared by several tests.
    fn two_speakers() -> Vec<Turn> {
        turns(&[(0, 4000, "a"), (3000, 6000, "b"), (7000, 9000, "a")])
    }

    #[test]
    fn perfect_hypothesis_scores_zero() {
        let r = score(&two_speakers(), &two_speakers(), 0);
        assert_eq!(r.total_ms, 4000 + 3000 + 2000);
        assert_eq!((r.missed_ms, r.false_alarm_ms, r.confusion_ms), (0, 0, 0));
        assert_eq!(r.der(), 0.0);
        assert_eq!((r.ref_speakers, r.hyp_speakers), (2, 2));
    }

    #[test]
    fn empty_hypothesis_is_all_missed() {
        let r = score(&two_speakers(), &[], 250);
        assert!(r.total_ms > 0);
        assert_eq!(r.missed_ms, r.total_ms);
        assert_eq!(r.der(), 1.0);
    }

    #[test]
    fn swapped_labels_are_mapped() {
        let hyp = turns(&[(0, 4000, "b"), (3000, 6000, "a"), (7000, 9000, "b")]);
        assert_eq!(score(&two_speakers(), &hyp, 0).der(), 0.0);
        let renamed = turns(&[
            (0, 4000, "spk7"),
            (3000, 6000, "spk2"),
            (7000, 9000, "spk7"),
        ]);
        assert_eq!(score(&two_speakers(), &renamed, 0).der(), 0.0);
    }

    #[test]
    fn merged_speakers_confuse_the_smaller_one() {
        let reference = turns(&[(0, 10_000, "a"), (12_000, 16_000, "b")]);
        let hyp = turns(&[(0, 10_000, "x"), (12_000, 16_000, "x")]);
        let r = score(&reference, &hyp, 0);
        assert_eq!((r.total_ms, r.missed_ms, r.false_alarm_ms), (14_000, 0, 0));
        assert_eq!(r.confusion_ms, 4000);
    }

    #[test]
    fn split_speaker_confuses_the_unmapped_part() {
        let reference = turns(&[(0, 10_000, "a")]);
        let hyp = turns(&[(0, 6000, "x"), (6000, 10_000, "y")]);
        let r = score(&reference, &hyp, 0);
        assert_eq!((r.confusion_ms, r.hyp_speakers), (4000, 2));
    }

    #[test]
    fn overlap_counts_once_per_speaker() {
        let reference = turns(&[(0, 4000, "a"), (3000, 6000, "b")]);
        let hyp = turns(&[(0, 6000, "a")]);
        let r = score(&reference, &hyp, 0);
        assert_eq!(r.total_ms, 7000);
        assert_eq!(r.missed_ms, 1000, "second voice in the overlap");
        assert_eq!(r.confusion_ms, 2000, "b's solo part labelled as a");
    }

    #[test]
    fn collar_excludes_boundary_errors() {
        let reference = turns(&[(1000, 5000, "a")]);
        let hyp = turns(&[(1200, 4900, "a")]);
        let with_collar = score(&reference, &hyp, 250);
        assert_eq!(with_collar.total_ms, 3500);
        assert_eq!(with_collar.der(), 0.0);
        let without = score(&reference, &hyp, 0);
        assert_eq!((without.total_ms, without.missed_ms), (4000, 300));
    }

    #[test]
    fn collar_does_not_hide_errors_away_from_boundaries() {
        let reference = turns(&[(0, 10_000, "a")]);
        let hyp = turns(&[(0, 4000, "a")]);
        let r = score(&reference, &hyp, 250);
        assert_eq!(r.total_ms, 10_000 - 250 - 250);
        assert_eq!(r.missed_ms, 10_000 - 4000 - 250);
    }

    #[test]
    fn speech_in_silence_is_false_alarm() {
        let reference = turns(&[(0, 2000, "a")]);
        let hyp = turns(&[(0, 2000, "a"), (5000, 6000, "b")]);
        let r = score(&reference, &hyp, 0);
        assert_eq!(
            (r.false_alarm_ms, r.missed_ms, r.confusion_ms),
            (1000, 0, 0)
        );
        assert_eq!(r.der(), 0.5);
    }

    #[test]
    fn degenerate_turns_and_self_overlap() {
        let reference = turns(&[
            (0, 2000, "a"),
            (1000, 3000, "a"),
            (500, 500, "a"),
            (900, 100, "b"),
        ]);
        let hyp = turns(&[(0, 3000, "x")]);
        let r = score(&reference, &hyp, 0);
        assert_eq!(r.total_ms, 3000, "a's overlapping turns count once");
        assert_eq!(r.der(), 0.0);
    }

    #[test]
    fn no_reference_speech() {
        assert_eq!(score(&[], &[], 250).der(), 0.0);
        assert_eq!(score(&[], &turns(&[(0, 100, "x")]), 0).der(), f64::INFINITY);
    }

    #[test]
    fn mapping_is_optimal_not_greedy() {
        // Greedy would pair h0-r0 (5) and leave h1-r1 (0): total 5. Optimal: h0-r1, h1-r0 = 8.
        let overlap = vec![vec![5, 4], vec![4, 0]];
        assert_eq!(best_mapping(&overlap, 2), vec![Some(1), Some(0)]);
    }

    #[test]
    fn mapping_handles_rectangular_and_empty() {
        let overlap = vec![vec![1, 9, 0], vec![0, 8, 0]];
        assert_eq!(best_mapping(&overlap, 3), vec![Some(1), None]);
        let overlap = vec![vec![3], vec![7], vec![0]];
        assert_eq!(best_mapping(&overlap, 1), vec![None, Some(0), None]);
        assert_eq!(best_mapping(&[vec![], vec![]], 0), vec![None, None]);
    }

    #[test]
    fn hungarian_matches_brute_force() {
        let cost = vec![
            vec![7, 3, 9, 4],
            vec![2, 8, 6, 5],
            vec![9, 1, 4, 7],
            vec![6, 5, 3, 2],
        ];
        let total = |a: &[usize]| a.iter().enumerate().map(|(r, &c)| cost[r][c]).sum::<i64>();
        let best = permutations(4).iter().map(|p| total(p)).min().unwrap();
        assert_eq!(total(&min_cost_assignment(&cost)), best);
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn eer_of_overlapping_scores() {
        let (rate, threshold) = eer(&[0.9, 0.8, 0.7, 0.4], &[0.1, 0.2, 0.3, 0.6]);
        assert!((rate - 0.25).abs() < 1e-9);
        assert!((threshold - 0.5).abs() < 1e-6);
    }

    #[test]
    fn eer_of_separable_scores_is_zero_with_threshold_in_the_gap() {
        let (rate, threshold) = eer(&[0.7, 0.9, 0.8], &[0.3, 0.1, f32::NAN]);
        assert_eq!(rate, 0.0);
        assert!((threshold - 0.5).abs() < 1e-6);
    }

    #[test]
    fn eer_of_uninformative_and_inverted_scores() {
        let scores = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(eer(&scores, &scores).0, 0.5);
        let (rate, threshold) = eer(&[0.1], &[0.9]);
        assert_eq!(rate, 1.0, "scores that rank the wrong way round");
        assert!((threshold - 0.5).abs() < 1e-6);
        assert!(eer(&[], &[0.5]).0.is_nan());
    }
}
