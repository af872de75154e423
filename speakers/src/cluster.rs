//! Online clustering of speaker embeddings: each embedding joins the closest voice heard so far
//! or, when it is unlike all of them, starts a new one.
//!
//! A single odd window (a cough, a laugh, two voices at once) must not become a "speaker", so a
//! new cluster is only opened when [`Clusters::assign`] sees an embedding unlike every cluster
//! *and* it is confirmed by the next one (a pending window); until then the window is attributed
//! to the nearest voice, as a listener would.

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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            join: 0.80,
            confirm_new: 0.80,
            merge: 0.88,
            memory: 200,
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

    /// Merges clusters whose centroids became alike; returns `(removed id, kept id)` pairs so a
    /// timeline can be relabelled. The older cluster (lower index) keeps its id.
    pub fn merge_close(&mut self) -> Vec<(String, String)> {
        let mut merged = Vec::new();
        loop {
            let mut best: Option<(usize, usize, f32)> = None;
            for i in 0..self.clusters.len() {
                for j in i + 1..self.clusters.len() {
                    let score = cosine(&self.clusters[i].centroid, &self.clusters[j].centroid);
                    if score >= self.config.merge && best.is_none_or(|b| score > b.2) {
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
        }
    }
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
        };
        let b = SpeakerCluster {
            id: "spk_2".into(),
            centroid: voice(0, 0.1),
            count: 2,
        };
        let c = SpeakerCluster {
            id: "spk_3".into(),
            centroid: voice(2, 0.0),
            count: 2,
        };
        let mut clusters = Clusters::new(vec![a, b, c], ClusterConfig::default());
        assert_eq!(
            clusters.merge_close(),
            vec![("spk_2".to_string(), "spk_1".to_string())]
        );
        assert_eq!(clusters.clusters.len(), 2);
        assert_eq!(clusters.clusters[0].count, 6);
    }
}
