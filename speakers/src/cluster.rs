//! Online clustering of speaker embeddings: each embedding joins the closest voice heard so far
//! or, when it is unlike all of them, starts a new one.
//!
//! A single odd window (a cough, a laugh, two voices at once) must not become a "speaker", so a
//! new cluster is only opened when [`Clusters::assign`] sees an embedding unlike every cluster
//! *and* it is confirmed by the next one (a pending window); until then the window is attributed
//! to the nearest voice, as a listener would.
//!
//! Online decisions are made on little evidence: two alike voices heard early can fall into one
//! cluster, and a fixed cosine threshold can never tell them apart again. So each cluster also
//! keeps its [`Part`]s (the mean and count of the windows of each turn it absorbed, the closest
//! ones folded together past [`ClusterConfig::max_parts`]), and two statistics over them, with
//! sample sizes, revisit the decisions as evidence grows ([`Clusters::split_evident`],
//! [`Clusters::merge_close`]): the Ward cost of joining two groups of windows, in units of the
//! variance of one window around its voice's mean. Two groups of the same voice cost about 1
//! whatever their size; two different voices cost in proportion to the windows heard, so alike
//! voices that look the same after two windows are told apart after a dozen. A cluster is split
//! only when the evidence says its parts hold two voices, and merged only when it does not: the
//! two rules cannot undo each other.

use crate::encoder::{Embedding, cosine, normalize};

/// Thresholds of the clustering, in cosine similarity.
#[derive(Debug, Clone, Copy)]
pub struct ClusterConfig {
    /// At or above this an embedding belongs to a cluster.
    pub join: f32,
    /// Two candidate windows at or above this are the same new voice.
    pub confirm_new: f32,
    /// Centroids at or above this are merged (one voice split in two early on).
    pub merge: f32,
    /// A centroid moves as a mean of at most this many embeddings, so it keeps following a
    /// voice whose sound changes slowly (a microphone moved, a cold) without jumping.
    pub memory: u32,
    /// A cluster whose parts fall into two groups costing more than this to join (Ward, in
    /// window variances) is split; two clusters costing more are never merged. Same-voice
    /// groups cost 1–4 on the benchmark sets (the best cut of one voice's parts is biased above
    /// 1); the closest different voices 6 and more once each has a dozen windows.
    pub split_cost: f32,
    /// Each side of a split holds at least this many windows: a voice is told apart on some
    /// seconds of speech, not on one turn.
    pub split_min_windows: u64,
    /// Parts kept per cluster; past this the two cheapest to join are folded together. Zero
    /// adds none: for audio that is heard again elsewhere (a polled window), whose windows
    /// counted twice would fake evidence.
    pub max_parts: usize,
    /// Variance of one window embedding around its voice's mean (squared distance; the shipped
    /// model's 1.6 s windows lie at cosine about 0.9 of their voice's centroid).
    pub window_variance: f32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            join: 0.80,
            confirm_new: 0.80,
            merge: 0.88,
            memory: 200,
            split_cost: 4.0,
            split_min_windows: 4,
            max_parts: 8,
            window_variance: 0.18,
        }
    }
}

/// One voice: its id and the mean of its embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerCluster {
    pub id: String,
    /// Unit length.
    pub centroid: Embedding,
    /// Embeddings that joined it.
    pub count: u64,
    /// The turns it absorbed, kept to revisit the clustering (empty for a cluster stored before
    /// parts existed: it can still grow them, and merge as before).
    pub parts: Vec<Part>,
}

/// `(start_ms, end_ms)` of a turn on its stream's clock.
pub type Span = (u64, u64);

/// Spans a part remembers at most (the latest): enough to relabel the turns of a long session's
/// voice, bounded so the state stays small. A turn whose span was dropped keeps its label.
pub const MAX_PART_SPANS: usize = 64;

/// Windows of one voice summed up: their mean (not unit length: the closer the windows agree,
/// the longer it is) and how many they are, enough for Ward's cost of joining groups; and when
/// they were heard, so the turns can be relabelled if the part moves to another cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub mean: Embedding,
    pub count: u64,
    /// The turns it holds, in time order (empty for a part stored before spans existed).
    pub spans: Vec<Span>,
}

impl Part {
    /// The part of `windows` (unit embeddings; at least one), heard during `span`.
    pub fn of(windows: &[&[f32]], span: Span) -> Part {
        let mut mean = vec![0f32; windows[0].len()];
        for window in windows {
            mean.iter_mut().zip(*window).for_each(|(m, w)| *m += w);
        }
        mean.iter_mut().for_each(|m| *m /= windows.len() as f32);
        Part {
            mean,
            count: windows.len() as u64,
            spans: vec![span],
        }
    }

    /// `self` and `other` as one part.
    fn joined(&self, other: &Part) -> Part {
        let (a, b) = (self.count as f32, other.count as f32);
        Part {
            mean: self
                .mean
                .iter()
                .zip(&other.mean)
                .map(|(x, y)| (x * a + y * b) / (a + b))
                .collect(),
            count: self.count + other.count,
            spans: joined_spans(&self.spans, &other.spans),
        }
    }

    /// Ward's cost of joining: how much the windows' summed squared distance to their mean
    /// grows, `n·m/(n+m)·|mean_a − mean_b|²`, divided by `variance` (one window's).
    pub fn join_cost(&self, other: &Part, variance: f32) -> f32 {
        let (a, b) = (self.count as f32, other.count as f32);
        let distance: f32 = self
            .mean
            .iter()
            .zip(&other.mean)
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        a * b / (a + b) * distance / variance
    }
}

/// `a` and `b` in time order, the latest [`MAX_PART_SPANS`] of them.
fn joined_spans(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut spans: Vec<Span> = a.iter().chain(b).copied().collect();
    spans.sort_unstable();
    let excess = spans.len().saturating_sub(MAX_PART_SPANS);
    spans.drain(..excess);
    spans
}

/// A cluster found to hold two voices ([`Clusters::split_evident`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The cluster that keeps the id (the side with more windows).
    pub kept: String,
    /// The cluster made of the other side.
    pub new: String,
    /// When the other side's turns were heard (its parts' spans, in time order): the turns
    /// labelled `kept` within them belong to `new`.
    pub moved: Vec<Span>,
}

/// All of `parts` as one part; `None` when there are none.
fn pooled(parts: &[Part]) -> Option<Part> {
    let (first, rest) = parts.split_first()?;
    Some(rest.iter().fold(first.clone(), |all, p| all.joined(p)))
}

/// The two groups that Ward's agglomeration of `parts` (at least two) ends with, as indices,
/// and what joining them would cost.
fn ward_halves(parts: &[Part], variance: f32) -> (Vec<usize>, Vec<usize>, f32) {
    let mut groups: Vec<(Vec<usize>, Part)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (vec![i], p.clone()))
        .collect();
    while groups.len() > 2 {
        let (i, j) = cheapest_pair(groups.iter().map(|g| &g.1), variance);
        let (members, part) = groups.remove(j);
        groups[i].0.extend(members);
        groups[i].1 = groups[i].1.joined(&part);
    }
    let cost = groups[0].1.join_cost(&groups[1].1, variance);
    let second = groups.pop().expect("two groups").0;
    let first = groups.pop().expect("two groups").0;
    (first, second, cost)
}

/// Indices `(i, j)`, `i < j`, of the two parts cheapest to join (at least two parts).
fn cheapest_pair<'a>(
    parts: impl Iterator<Item = &'a Part> + Clone,
    variance: f32,
) -> (usize, usize) {
    let mut best = (0, 1, f32::INFINITY);
    for (i, a) in parts.clone().enumerate() {
        for (j, b) in parts.clone().enumerate().skip(i + 1) {
            let cost = a.join_cost(b, variance);
            if cost < best.2 {
                best = (i, j, cost);
            }
        }
    }
    (best.0, best.1)
}

/// What [`Clusters::assign`] decided for one embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// Index into [`Clusters::clusters`].
    pub cluster: usize,
    /// Cosine similarity of the embedding to that cluster's centroid before it joined.
    pub score: f32,
    /// Whether this embedding opened the cluster.
    pub new: bool,
}

/// A window unlike every cluster, waiting for a second one to confirm a new voice.
#[derive(Debug, Clone)]
struct Pending {
    embedding: Embedding,
}

/// The voices of one recording.
#[derive(Debug, Clone)]
pub struct Clusters {
    pub clusters: Vec<SpeakerCluster>,
    pub config: ClusterConfig,
    pending: Option<Pending>,
    /// New ids are `<prefix><n>`, n one past the highest seen with this prefix.
    prefix: String,
    next_number: u64,
}

/// The prefix of cluster ids unless another is chosen.
pub const DEFAULT_ID_PREFIX: &str = "spk_";

impl Default for Clusters {
    fn default() -> Self {
        Clusters::new(Vec::new(), ClusterConfig::default())
    }
}

impl Clusters {
    pub fn new(clusters: Vec<SpeakerCluster>, config: ClusterConfig) -> Clusters {
        Clusters::with_id_prefix(clusters, config, DEFAULT_ID_PREFIX)
    }

    /// As [`Clusters::new`], naming new clusters `<prefix><n>`: voices clustered apart (one
    /// recording's two streams) then never share an id.
    pub fn with_id_prefix(
        clusters: Vec<SpeakerCluster>,
        config: ClusterConfig,
        prefix: &str,
    ) -> Clusters {
        let next_number = clusters
            .iter()
            .filter_map(|c| c.id.strip_prefix(prefix)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        Clusters {
            clusters,
            config,
            pending: None,
            prefix: prefix.to_owned(),
            next_number,
        }
    }

    /// The closest cluster and its score.
    pub fn nearest(&self, embedding: &[f32]) -> Option<(usize, f32)> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (i, cosine(&c.centroid, embedding)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Attributes one embedding (in time order) and lets it move the centroid it joins.
    pub fn assign(&mut self, embedding: &[f32]) -> Assignment {
        let nearest = self.nearest(embedding);
        if let Some((index, score)) = nearest {
            if score >= self.config.join {
                self.pending = None;
                self.absorb(index, embedding);
                return Assignment {
                    cluster: index,
                    score,
                    new: false,
                };
            }
        }
        let confirmed = match (&self.pending, nearest) {
            // The very first voice needs no confirmation.
            (_, None) => true,
            (Some(pending), _) => cosine(&pending.embedding, embedding) >= self.config.confirm_new,
            (None, _) => false,
        };
        if confirmed {
            let mut centroid = embedding.to_vec();
            let mut count = 1;
            if let Some(pending) = self.pending.take() {
                centroid
                    .iter_mut()
                    .zip(&pending.embedding)
                    .for_each(|(c, p)| *c += p);
                normalize(&mut centroid);
                count = 2;
            }
            let id = format!("{}{}", self.prefix, self.next_number);
            self.next_number += 1;
            self.clusters.push(SpeakerCluster {
                id,
                centroid,
                count,
                parts: Vec::new(),
            });
            return Assignment {
                cluster: self.clusters.len() - 1,
                score: 1.0,
                new: true,
            };
        }
        self.pending = Some(Pending {
            embedding: embedding.to_vec(),
        });
        let (index, score) = nearest.expect("checked above");
        Assignment {
            cluster: index,
            score,
            new: false,
        }
    }

    /// Attributes an embedding to the nearest existing voice without moving anything (a
    /// window too short to trust, or a question about who spoke).
    pub fn peek(&self, embedding: &[f32]) -> Option<Assignment> {
        self.nearest(embedding).map(|(cluster, score)| Assignment {
            cluster,
            score,
            new: false,
        })
    }

    fn absorb(&mut self, index: usize, embedding: &[f32]) {
        let cluster = &mut self.clusters[index];
        let weight = cluster.count.min(u64::from(self.config.memory)) as f32;
        cluster
            .centroid
            .iter_mut()
            .zip(embedding)
            .for_each(|(c, e)| *c = *c * weight + e);
        normalize(&mut cluster.centroid);
        cluster.count += 1;
    }

    /// Adds the windows of one turn (heard during `span`) that joined cluster `index` as a part
    /// of it, folding the two cheapest parts together while it has more than
    /// [`ClusterConfig::max_parts`].
    pub fn add_part(&mut self, index: usize, windows: &[&[f32]], span: Span) {
        if windows.is_empty() || self.config.max_parts == 0 {
            return;
        }
        let parts = &mut self.clusters[index].parts;
        parts.push(Part::of(windows, span));
        fold_parts(parts, self.config.max_parts, self.config.window_variance);
    }

    /// Splits every cluster whose parts hold two voices by the evidence: Ward's agglomeration of
    /// its parts ends with two groups that cost more than [`ClusterConfig::split_cost`] to join,
    /// each of at least [`ClusterConfig::split_min_windows`] windows. The larger group keeps the
    /// id (and so a name the interviewer gave it); the other becomes a new cluster at the end of
    /// [`Clusters::clusters`], so indices of existing clusters do not move. Returns each split
    /// with the spans of the turns that moved, for the caller to relabel them. Nothing is split
    /// when `max_parts` is 0: a call that adds no evidence (a polled window) revisits nothing.
    pub fn split_evident(&mut self) -> Vec<Split> {
        let mut splits = Vec::new();
        if self.config.max_parts == 0 {
            return splits;
        }
        let variance = self.config.window_variance;
        for index in 0..self.clusters.len() {
            let cluster = &self.clusters[index];
            if cluster.parts.len() < 2 {
                continue;
            }
            let (a, b, cost) = ward_halves(&cluster.parts, variance);
            let windows =
                |group: &[usize]| group.iter().map(|&i| cluster.parts[i].count).sum::<u64>();
            let (keep, go) = if windows(&a) >= windows(&b) {
                (a, b)
            } else {
                (b, a)
            };
            if cost <= self.config.split_cost || windows(&go) < self.config.split_min_windows {
                continue;
            }
            let cluster = &mut self.clusters[index];
            let mut kept = Vec::new();
            let mut moved = Vec::new();
            for (i, part) in std::mem::take(&mut cluster.parts).into_iter().enumerate() {
                if go.contains(&i) {
                    moved.push(part);
                } else {
                    debug_assert!(keep.contains(&i));
                    kept.push(part);
                }
            }
            let moved_all = pooled(&moved).expect("a split moves parts");
            let mut spans: Vec<Span> = moved.iter().flat_map(|p| p.spans.clone()).collect();
            spans.sort_unstable();
            cluster.centroid = unit(&pooled(&kept).expect("a split keeps parts").mean);
            cluster.count = cluster.count.saturating_sub(moved_all.count).max(1);
            cluster.parts = kept;
            let kept_id = cluster.id.clone();
            let id = format!("{}{}", self.prefix, self.next_number);
            self.next_number += 1;
            self.clusters.push(SpeakerCluster {
                id: id.clone(),
                centroid: unit(&moved_all.mean),
                count: moved_all.count,
                parts: moved,
            });
            splits.push(Split {
                kept: kept_id,
                new: id,
                moved: spans,
            });
        }
        splits
    }

    /// Merges clusters whose centroids became alike (cosine ≥ [`ClusterConfig::merge`]) unless
    /// their parts say they are two voices (joining them costs more than
    /// [`ClusterConfig::split_cost`]); returns `(removed id, kept id)` pairs so a timeline can be
    /// relabelled. The older cluster (lower index) keeps its id.
    pub fn merge_close(&mut self) -> Vec<(String, String)> {
        let mut merged = Vec::new();
        let variance = self.config.window_variance;
        loop {
            let mut best: Option<(usize, usize, f32)> = None;
            for i in 0..self.clusters.len() {
                for j in i + 1..self.clusters.len() {
                    let score = cosine(&self.clusters[i].centroid, &self.clusters[j].centroid);
                    if score < self.config.merge || best.is_some_and(|b| score <= b.2) {
                        continue;
                    }
                    let apart = match (
                        pooled(&self.clusters[i].parts),
                        pooled(&self.clusters[j].parts),
                    ) {
                        (Some(a), Some(b)) => a.join_cost(&b, variance) > self.config.split_cost,
                        _ => false,
                    };
                    if !apart {
                        best = Some((i, j, score));
                    }
                }
            }
            let Some((keep, gone, _)) = best else {
                return merged;
            };
            let removed = self.clusters.remove(gone);
            let kept = &mut self.clusters[keep];
            let (a, b) = (kept.count as f32, removed.count as f32);
            kept.centroid
                .iter_mut()
                .zip(&removed.centroid)
                .for_each(|(k, r)| *k = *k * a + r * b);
            normalize(&mut kept.centroid);
            kept.count += removed.count;
            merged.push((removed.id, kept.id.clone()));
            kept.parts.extend(removed.parts);
            fold_parts(&mut kept.parts, self.config.max_parts, variance);
        }
    }
}

/// Folds the two parts cheapest to join together until at most `max` (at least one) remain:
/// the cheapest joins are the ones Ward's agglomeration would make first anyway, so the parts
/// stay faithful to the voices while memory stays bounded.
fn fold_parts(parts: &mut Vec<Part>, max: usize, variance: f32) {
    while parts.len() > max.max(1) {
        let (i, j) = cheapest_pair(parts.iter(), variance);
        let part = parts.remove(j);
        parts[i] = parts[i].joined(&part);
    }
}

/// `v` scaled to unit length.
fn unit(v: &[f32]) -> Embedding {
    let mut v = v.to_vec();
    normalize(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector near axis `axis` of a 4-d space, nudged by `wobble` on the next axis.
    fn voice(axis: usize, wobble: f32) -> Embedding {
        let mut v = vec![0.0; 4];
        v[axis] = 1.0;
        v[(axis + 1) % 4] = wobble;
        normalize(&mut v);
        v
    }

    #[test]
    fn the_first_voice_opens_a_cluster_and_alike_ones_join_it() {
        let mut clusters = Clusters::default();
        let first = clusters.assign(&voice(0, 0.0));
        assert!(first.new);
        let second = clusters.assign(&voice(0, 0.2));
        assert_eq!((second.cluster, second.new), (0, false));
        assert_eq!(clusters.clusters[0].count, 2);
        assert_eq!(clusters.clusters[0].id, "spk_1");
    }

    #[test]
    fn a_new_voice_needs_a_second_window_to_become_a_cluster() {
        let mut clusters = Clusters::default();
        clusters.assign(&voice(0, 0.0));
        let odd = clusters.assign(&voice(2, 0.0));
        assert_eq!(
            (odd.cluster, odd.new),
            (0, false),
            "one odd window is not a voice"
        );
        let confirmed = clusters.assign(&voice(2, 0.1));
        assert!(confirmed.new);
        assert_eq!(clusters.clusters.len(), 2);
        assert_eq!(clusters.clusters[1].id, "spk_2");
        assert_eq!(clusters.clusters[1].count, 2);
    }

    #[test]
    fn two_different_odd_windows_open_nothing() {
        let mut clusters = Clusters::default();
        clusters.assign(&voice(0, 0.0));
        clusters.assign(&voice(1, 0.0));
        clusters.assign(&voice(2, 0.0));
        assert_eq!(clusters.clusters.len(), 1);
    }

    #[test]
    fn ids_continue_after_the_highest_stored_one() {
        let stored = SpeakerCluster {
            id: "spk_7".into(),
            centroid: voice(0, 0.0),
            count: 3,
            parts: Vec::new(),
        };
        let mut clusters = Clusters::new(vec![stored], ClusterConfig::default());
        clusters.assign(&voice(2, 0.0));
        clusters.assign(&voice(2, 0.0));
        assert_eq!(clusters.clusters[1].id, "spk_8");
    }

    #[test]
    fn alike_centroids_merge_into_the_older_cluster() {
        let a = SpeakerCluster {
            id: "spk_1".into(),
            centroid: voice(0, 0.0),
            count: 4,
            parts: Vec::new(),
        };
        let b = SpeakerCluster {
            id: "spk_2".into(),
            centroid: voice(0, 0.1),
            count: 2,
            parts: Vec::new(),
        };
        let c = SpeakerCluster {
            id: "spk_3".into(),
            centroid: voice(2, 0.0),
            count: 2,
            parts: Vec::new(),
        };
        let mut clusters = Clusters::new(vec![a, b, c], ClusterConfig::default());
        assert_eq!(
            clusters.merge_close(),
            vec![("spk_2".to_string(), "spk_1".to_string())]
        );
        assert_eq!(clusters.clusters.len(), 2);
        assert_eq!(clusters.clusters[0].count, 6);
    }

    /// Embeddings in 16 dimensions: a voice is a unit direction, a window of it that direction
    /// plus noise of a fixed size in the other dimensions (deterministic), so a window lies at
    /// cosine about 0.92 of its voice, as the shipped model's windows do.
    const DIM: usize = 16;

    fn direction(weights: &[(usize, f32)]) -> Embedding {
        let mut v = vec![0.0; DIM];
        weights.iter().for_each(|&(axis, w)| v[axis] = w);
        normalize(&mut v);
        v
    }

    fn window(voice: &[f32], seed: u32) -> Embedding {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        let mut v: Embedding = voice.to_vec();
        for x in v.iter_mut().skip(4) {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *x += ((state >> 16) as f32 / 65_536.0 - 0.5) * 0.3;
        }
        normalize(&mut v);
        v
    }

    /// Two voices at cosine 0.88 (the benchmark's closest pair): a window of one lies at about
    /// 0.84 of the other's centroid, above `join`, so online their windows fall into one
    /// cluster.
    fn alike_voices() -> (Embedding, Embedding) {
        (direction(&[(0, 1.0)]), direction(&[(0, 0.9), (1, 0.436)]))
    }

    /// Where turn `k` of [`heard`] lies: turns start every 10 s, one window per 1.6 s.
    fn span_of(k: usize, windows: u32) -> Span {
        let start = k as u64 * 10_000;
        (start, start + u64::from(windows) * 1600)
    }

    /// Feeds `turns` (voice, windows) to a fresh `Clusters` as the engine does: each window
    /// assigned, each turn's windows a part of the cluster its last window joined.
    fn heard(turns: &[(&[f32], u32)]) -> Clusters {
        let mut clusters = Clusters::default();
        let mut seed = 0;
        for (k, (voice, windows)) in turns.iter().enumerate() {
            let embeddings: Vec<Embedding> = (0..*windows)
                .map(|_| {
                    seed += 1;
                    window(voice, seed)
                })
                .collect();
            let mut owner = None;
            for e in &embeddings {
                owner = Some(clusters.assign(e).cluster);
            }
            let refs: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
            clusters.add_part(owner.expect("windows"), &refs, span_of(k, *windows));
        }
        clusters
    }

    #[test]
    fn alike_voices_in_one_cluster_are_split_once_each_has_enough_windows() {
        let (a, b) = alike_voices();
        let turns: Vec<(&[f32], u32)> = (0..10)
            .map(|k| (if k % 2 == 0 { &a[..] } else { &b[..] }, 3))
            .collect();
        let mut clusters = heard(&turns);
        assert_eq!(
            clusters.clusters.len(),
            1,
            "online, the two voices are one cluster"
        );
        let split = clusters.split_evident();
        assert_eq!(split.len(), 1);
        assert_eq!((&*split[0].kept, &*split[0].new), ("spk_1", "spk_2"));
        assert_eq!(clusters.clusters.len(), 2);
        let nearest = |v: &[f32]| clusters.nearest(v).unwrap().0;
        assert_ne!(
            nearest(&a),
            nearest(&b),
            "each voice has its own cluster now"
        );
        let counts: Vec<u64> = clusters.clusters.iter().map(|c| c.count).collect();
        assert_eq!(counts, vec![15, 15], "each voice's 15 windows, none mixed");
        assert!(clusters.split_evident().is_empty(), "a split is made once");
        assert!(
            clusters.merge_close().is_empty(),
            "and the merge rule does not undo it"
        );
    }

    #[test]
    fn a_split_names_every_turn_of_the_other_voice_even_after_its_parts_were_folded() {
        let (a, b) = alike_voices();
        // 16 turns, more than `max_parts`: the parts are folded, the spans must survive it.
        let turns: Vec<(&[f32], u32)> = (0..16)
            .map(|k| (if k % 2 == 0 { &a[..] } else { &b[..] }, 3))
            .collect();
        let mut clusters = heard(&turns);
        assert_eq!(clusters.clusters[0].parts.len(), 8, "parts were folded");
        let split = clusters.split_evident();
        assert_eq!(split.len(), 1);
        let moved_voice = if clusters.nearest(&b).unwrap().0 == 1 {
            1
        } else {
            0
        };
        let expected: Vec<Span> = (0..16)
            .filter(|k| k % 2 == moved_voice)
            .map(|k| span_of(k, 3))
            .collect();
        assert_eq!(split[0].moved, expected);
    }

    #[test]
    fn a_call_that_adds_no_parts_splits_nothing() {
        let (a, b) = alike_voices();
        let turns: Vec<(&[f32], u32)> = (0..10)
            .map(|k| (if k % 2 == 0 { &a[..] } else { &b[..] }, 3))
            .collect();
        let mut clusters = heard(&turns);
        clusters.config.max_parts = 0;
        assert!(clusters.split_evident().is_empty());
        assert_eq!(clusters.clusters.len(), 1);
    }

    #[test]
    fn alike_voices_heard_briefly_are_not_split() {
        let (a, b) = alike_voices();
        let mut clusters = heard(&[(&a[..], 2), (&b[..], 2), (&a[..], 1)]);
        assert!(
            clusters.split_evident().is_empty(),
            "two windows a voice are no evidence"
        );
        assert_eq!(clusters.clusters.len(), 1);
    }

    #[test]
    fn one_voice_over_many_turns_is_never_split() {
        let (a, _) = alike_voices();
        let turns: Vec<(&[f32], u32)> = (0..20).map(|k| (&a[..], 1 + k % 4)).collect();
        let mut clusters = heard(&turns);
        assert!(clusters.split_evident().is_empty());
        assert_eq!(clusters.clusters.len(), 1);
        assert_eq!(
            clusters.clusters[0].parts.len(),
            ClusterConfig::default().max_parts
        );
        let windows: u64 = clusters.clusters[0].parts.iter().map(|p| p.count).sum();
        assert_eq!(windows, 50, "folding parts loses no window");
    }

    #[test]
    fn the_larger_side_of_a_split_keeps_the_id_and_its_index() {
        let (a, b) = alike_voices();
        let mut turns: Vec<(&[f32], u32)> = vec![(&b[..], 3), (&b[..], 3), (&b[..], 3)];
        turns.extend((0..6).map(|_| (&a[..], 3)));
        let mut clusters = heard(&turns);
        let split = clusters.split_evident();
        assert_eq!(split.len(), 1);
        assert_eq!((&*split[0].kept, &*split[0].new), ("spk_1", "spk_2"));
        assert_eq!(
            split[0].moved,
            (0..3).map(|k| span_of(k, 3)).collect::<Vec<_>>(),
            "the smaller voice's three turns move, and only they"
        );
        assert_eq!(
            clusters.nearest(&a).unwrap().0,
            0,
            "the voice heard most stays spk_1"
        );
        assert_eq!(clusters.nearest(&b).unwrap().0, 1);
        assert_eq!(clusters.clusters[1].count, 9);
    }

    #[test]
    fn clusters_whose_parts_say_two_voices_are_not_merged_however_close() {
        let (a, b) = alike_voices();
        let part = |voice: &[f32], from: u32| {
            let windows: Vec<Embedding> = (from..from + 12).map(|s| window(voice, s)).collect();
            let refs: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
            Part::of(&refs, (0, 1))
        };
        let cluster = |id: &str, voice: &[f32], parts: Vec<Part>| SpeakerCluster {
            id: id.into(),
            centroid: voice.to_vec(),
            count: parts.iter().map(|p| p.count).sum(),
            parts,
        };
        let config = ClusterConfig {
            merge: 0.85,
            ..ClusterConfig::default()
        };
        let apart = vec![
            cluster("spk_1", &a, vec![part(&a, 0)]),
            cluster("spk_2", &b, vec![part(&b, 100)]),
        ];
        assert!(Clusters::new(apart, config).merge_close().is_empty());
        let one_voice = vec![
            cluster("spk_1", &a, vec![part(&a, 0)]),
            cluster("spk_2", &a, vec![part(&a, 100)]),
        ];
        let mut clusters = Clusters::new(one_voice, config);
        assert_eq!(
            clusters.merge_close(),
            vec![("spk_2".to_string(), "spk_1".to_string())]
        );
        assert_eq!(
            clusters.clusters[0].parts.len(),
            2,
            "the parts go with the merge"
        );
    }

    #[test]
    fn ward_cost_grows_with_the_windows_heard_and_not_for_one_voice() {
        let (a, b) = alike_voices();
        let part = |voice: &[f32], n: u32, from: u32| {
            let windows: Vec<Embedding> = (from..from + n).map(|s| window(voice, s)).collect();
            let refs: Vec<&[f32]> = windows.iter().map(Vec::as_slice).collect();
            Part::of(&refs, (0, 1))
        };
        let v = ClusterConfig::default().window_variance;
        let few = part(&a, 2, 0).join_cost(&part(&b, 2, 50), v);
        let many = part(&a, 20, 0).join_cost(&part(&b, 20, 50), v);
        let same = part(&a, 20, 0).join_cost(&part(&a, 20, 50), v);
        assert!(few < 4.0 && many > 4.0 * few, "few {few}, many {many}");
        assert!(same < 1.0, "one voice: {same}");
    }
}
