//! The built-in speaker engine (crate `speakers`) behind the inference service's contract.
//!
//! It reads the same request an external service gets (`{"session_id","audio","asr_text",
//! "state"}`) and answers the same shape, or the same errors with the same status codes (413
//! for audio over 30 s, 422 for audio it cannot read or that holds no speech), so the gateway's
//! resolve behaves identically whichever engine runs. The model runs on a few dedicated
//! low-priority threads ([`ComputePool`]) so that ingest never waits for it.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use speakers::Engine;
use speakers::cluster::{ClusterConfig, Clusters, Part, Span, SpeakerCluster};
use speakers::encoder::{EMBEDDING_DIM, Ge2eEncoder, ModelError, cosine, normalize};
use tokio::sync::oneshot;

use super::InferenceError;
use crate::core::speakers::{EngineCluster, PARTS_KEY, cluster_stream, merge_engine_clusters};
use crate::core::stream::Stream;
use crate::protocol::{Decision, FORMAT, SAMPLE_RATE, SessionState};

/// Name of the shipped model, for `/health` and the startup line.
pub const ENGINE_NAME: &str = "GE2E d-vector (resemblyzer 0.1.4), shipped";
/// Longest audio one resolve accepts (the contract's limit).
const MAX_SECONDS: usize = 30;
/// At or above this similarity to a named voice the name is given without asking.
pub const THRESHOLD_HIGH: f32 = 0.82;
/// Below this a voice is not trusted to be the cluster's at all.
pub const THRESHOLD_LOW: f32 = 0.70;

/// The engine and the threads it runs on.
pub struct BuiltinEngine {
    pool: ComputePool,
    model_name: String,
}

impl BuiltinEngine {
    /// Loads the shipped model, or a GE2E-compatible safetensors file the user provides.
    pub fn load(model: Option<&Path>) -> Result<BuiltinEngine, ModelError> {
        let (encoder, model_name) = match model {
            None => (Ge2eEncoder::shipped()?, ENGINE_NAME.to_owned()),
            Some(path) => {
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                (
                    Ge2eEncoder::from_file(path)?,
                    format!("GE2E d-vector ({name})"),
                )
            }
        };
        let engine = Arc::new(Engine::with_encoder(Box::new(encoder)));
        Ok(BuiltinEngine {
            pool: ComputePool::start(engine),
            model_name,
        })
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Runs `work` on the engine's threads and waits for its answer.
    pub async fn compute<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, InferenceError> {
        self.pool.run(work).await
    }

    /// Answers a resolve request of the inference contract.
    pub async fn resolve(&self, body: &Value) -> Result<Bytes, InferenceError> {
        let request = ResolveRequest::parse(body)?;
        let answer = self.compute(move |engine| request.answer(engine)).await??;
        Ok(Bytes::from(
            serde_json::to_vec(&answer).expect("an answer always serializes"),
        ))
    }
}

/// An error of the contract: the status an external service would answer and its body.
fn refused(status: u16, detail: impl Into<String>) -> InferenceError {
    InferenceError::Backend {
        status,
        body: json!({"detail": detail.into()}).to_string(),
        headers: Vec::new(),
    }
}

/// A request that passed the contract's checks.
struct ResolveRequest {
    session_id: Value,
    samples: Vec<f32>,
    asr_text: Option<String>,
    state: SessionState,
}

impl ResolveRequest {
    fn parse(body: &Value) -> Result<ResolveRequest, InferenceError> {
        let audio = body
            .get("audio")
            .filter(|a| a.is_object())
            .ok_or_else(|| refused(422, "audio is required"))?;
        let state = match body.get("state") {
            None | Some(Value::Null) => SessionState::default(),
            Some(state) => SessionState::deserialize(state)
                .map_err(|e| refused(422, format!("state is not a session state: {e}")))?,
        };
        Ok(ResolveRequest {
            session_id: body.get("session_id").cloned().unwrap_or(Value::Null),
            samples: decode_audio(audio)?,
            asr_text: body
                .get("asr_text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            state,
        })
    }

    /// Attributes the window against the session's voices and decides who is speaking.
    fn answer(self, engine: &Engine) -> Result<Value, InferenceError> {
        let mut state = self.state;
        // A resolve window is the microphone's (the seed's only stream).
        let mut clusters = engine_clusters(&state, Stream::Mic);
        // A polled window repeats audio the session's attribution also hears: counted again
        // as parts it would fake evidence for a split, so a resolve adds none and stores none.
        clusters.config.max_parts = 0;
        let attribution = engine
            .attribute(&self.samples, 0, &mut clusters, true)
            .map_err(|e| refused(500, e.to_string()))?;
        if attribution.turns.is_empty() {
            return Err(refused(422, "no speech detected"));
        }
        // The voice that spoke longest in the window; on a tie, the one heard last.
        let mut talk: Vec<(String, u64, usize)> = Vec::new();
        for (order, turn) in attribution.turns.iter().enumerate() {
            let ms = turn.end_ms - turn.start_ms;
            match talk.iter_mut().find(|(id, ..)| id == &turn.cluster) {
                Some(entry) => {
                    entry.1 += ms;
                    entry.2 = order;
                }
                None => talk.push((turn.cluster.clone(), ms, order)),
            }
        }
        let (cluster_id, ..) = talk
            .into_iter()
            .max_by_key(|(_, ms, order)| (*ms, *order))
            .expect("turns are not empty");
        let mut voice = vec![0f32; EMBEDDING_DIM];
        let mut segments = 0;
        for turn in attribution.turns.iter().filter(|t| t.cluster == cluster_id) {
            voice
                .iter_mut()
                .zip(&turn.embedding)
                .for_each(|(v, e)| *v += e);
            segments += 1;
        }
        normalize(&mut voice);
        let centroid = &clusters
            .clusters
            .iter()
            .find(|c| c.id == cluster_id)
            .expect("turns name known clusters")
            .centroid;
        let score = cosine(&voice, centroid);

        let engine_state: Vec<EngineCluster> = clusters
            .clusters
            .iter()
            .map(|c| (c.id.clone(), to_f64(&c.centroid), c.count, Value::Null))
            .collect();
        // A resolve adds no parts, so it splits nothing (`split_evident`): no turn moves.
        merge_engine_clusters(
            &mut state,
            &engine_state,
            &[],
            &attribution.merged,
            Stream::Mic,
        );
        let naming = name_voice(&mut state, &cluster_id, score, self.asr_text.as_deref());
        Ok(json!({
            "session_id": self.session_id,
            "cluster_id": cluster_id,
            "speaker_name": naming.name,
            "decision": naming.decision,
            "evidence": {
                "sv_score": score,
                "threshold_low": THRESHOLD_LOW,
                "threshold_high": THRESHOLD_HIGH,
                "segment_count": segments,
                "name_hit": naming.name_hit,
                "roster_hit": naming.roster_hit,
            },
            "updated_state": state,
        }))
    }
}

/// The name given to a voice and how sure the engine is.
struct Naming {
    name: Option<String>,
    decision: Decision,
    name_hit: bool,
    roster_hit: bool,
}

/// The seed service's naming rules. A voice that introduces itself with a roster name gets that
/// name bound, unless it already has one (a name the interviewer set is never replaced). A
/// named voice is `auto` when it sounds like itself above [`THRESHOLD_HIGH`] and `confirm`
/// above [`THRESHOLD_LOW`]. An unnamed voice is offered the one roster name no voice has yet,
/// as a `confirm`; otherwise it is `unknown`.
fn name_voice(
    state: &mut SessionState,
    cluster_id: &str,
    score: f32,
    asr_text: Option<&str>,
) -> Naming {
    let roster: Vec<String> = state
        .roster
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    let bound = state
        .clusters
        .iter()
        .find(|c| c.cluster_id == cluster_id)
        .and_then(|c| c.bound_name.clone());
    let introduced = asr_text.and_then(|text| speakers::naming::introduced_name(text, &roster));
    if let (Some(name), None) = (introduced, &bound) {
        if let Some(cluster) = state
            .clusters
            .iter_mut()
            .find(|c| c.cluster_id == cluster_id)
        {
            cluster.bound_name = Some(name.to_owned());
        }
        state
            .bindings
            .insert(cluster_id.to_owned(), Value::String(name.to_owned()));
        let decision = if score >= THRESHOLD_LOW {
            Decision::Auto
        } else {
            Decision::Confirm
        };
        return Naming {
            name: Some(name.to_owned()),
            decision,
            name_hit: true,
            roster_hit: true,
        };
    }
    if let Some(name) = bound {
        let decision = if introduced.is_some_and(|n| n != name) {
            Decision::Confirm
        } else if score >= THRESHOLD_HIGH {
            Decision::Auto
        } else if score >= THRESHOLD_LOW {
            Decision::Confirm
        } else {
            Decision::Unknown
        };
        let known = decision != Decision::Unknown;
        return Naming {
            name: known.then_some(name),
            decision,
            name_hit: introduced.is_some(),
            roster_hit: false,
        };
    }
    let taken: Vec<&str> = state
        .clusters
        .iter()
        .filter_map(|c| c.bound_name.as_deref())
        .collect();
    let free: Vec<&String> = roster
        .iter()
        .filter(|n| !taken.contains(&n.as_str()))
        .collect();
    if let [only] = free.as_slice() {
        return Naming {
            name: Some((*only).clone()),
            decision: Decision::Confirm,
            name_hit: false,
            roster_hit: true,
        };
    }
    Naming {
        name: None,
        decision: Decision::Unknown,
        name_hit: false,
        roster_hit: false,
    }
}

/// The state's clusters of `stream` the engine can compare with: those with an embedding of
/// its size (a state written by another engine keeps its clusters, untouched). Each stream's
/// voices are clustered apart: the interviewer on the mic never absorbs a remote voice.
pub fn engine_clusters(state: &SessionState, stream: Stream) -> Clusters {
    let usable = state
        .clusters
        .iter()
        .filter(|c| c.centroid.len() == EMBEDDING_DIM && cluster_stream(c) == stream)
        .map(|c| SpeakerCluster {
            id: c.cluster_id.clone(),
            centroid: c.centroid.iter().map(|&v| v as f32).collect(),
            count: c.sample_count,
            parts: c
                .extra
                .get(PARTS_KEY)
                .map(parts_from_json)
                .unwrap_or_default(),
        })
        .collect();
    Clusters::with_id_prefix(usable, ClusterConfig::default(), stream.cluster_prefix())
}

/// The engine's clusters as the session stores them, parts included (see `parts_to_json`).
pub fn engine_cluster_entries(clusters: &Clusters) -> Vec<EngineCluster> {
    clusters
        .clusters
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                to_f64(&c.centroid),
                c.count,
                parts_to_json(&c.parts),
            )
        })
        .collect()
}

/// A part's mean is stored as 16-bit fixed point (components are within ±1; a step of 3e-5
/// moves Ward's cost by far less than its noise), base64 of little-endian `i16`s: about 0.7 KB
/// a part instead of 5 KB of decimal floats, in a state rewritten every few seconds.
const PART_SCALE: f32 = 32_767.0;

/// `[{"n": count, "mean": base64, "spans": [[start_ms, end_ms], ...]}]`.
pub fn parts_to_json(parts: &[Part]) -> Value {
    Value::Array(
        parts
            .iter()
            .map(|p| {
                let bytes: Vec<u8> = p
                    .mean
                    .iter()
                    .flat_map(|&v| ((v.clamp(-1.0, 1.0) * PART_SCALE).round() as i16).to_le_bytes())
                    .collect();
                json!({
                    "n": p.count,
                    "mean": base64::engine::general_purpose::STANDARD.encode(bytes),
                    "spans": p.spans,
                })
            })
            .collect(),
    )
}

/// The parts of [`parts_to_json`]; anything unreadable (another writer, a damaged state) is
/// left out: parts only refine the clustering, the centroid still holds the voice.
pub fn parts_from_json(value: &Value) -> Vec<Part> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let count = item.get("n")?.as_u64().filter(|&n| n > 0)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(item.get("mean")?.as_str()?)
                .ok()?;
            if bytes.len() != EMBEDDING_DIM * 2 {
                return None;
            }
            let mean = bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / PART_SCALE)
                .collect();
            // Spans only relabel turns on a split: a part without readable ones still counts.
            let spans = item
                .get("spans")
                .and_then(|s| Vec::<Span>::deserialize(s).ok())
                .unwrap_or_default();
            Some(Part { mean, count, spans })
        })
        .collect()
}

pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// The samples of the contract's `audio` object: `pcm_s16le` (16 kHz mono) or a 16 kHz mono
/// 16-bit `wav`, at most 30 s (`MAX_SECONDS`). Refusals are the contract's 422 (413 when too
/// long). Public for its fuzz target (`fuzz/fuzz_targets/speaker_audio.rs`).
pub fn decode_audio(audio: &Value) -> Result<Vec<f32>, InferenceError> {
    let text = audio
        .get("content_b64")
        .and_then(Value::as_str)
        .ok_or_else(|| refused(422, "audio.content_b64 is required"))?;
    let format = audio
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| refused(422, "audio.format is required"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| refused(422, format!("audio.content_b64 is not valid base64: {e}")))?;
    let samples = match format {
        FORMAT => {
            let rate = audio.get("sample_rate").and_then(Value::as_u64);
            let channels = audio.get("channels").and_then(Value::as_u64);
            if rate.is_some_and(|r| r != u64::from(SAMPLE_RATE)) || channels.is_some_and(|c| c != 1)
            {
                return Err(refused(
                    422,
                    format!("pcm_s16le audio must be {SAMPLE_RATE} Hz mono"),
                ));
            }
            if bytes.len() % 2 != 0 {
                return Err(refused(422, "pcm_s16le audio must have an even byte count"));
            }
            speakers::pcm_s16le_to_f32(&bytes)
        }
        "wav" => wav_samples(&bytes)?,
        other => {
            // Echo at most a short prefix: the format comes from a stranger (the fuzz target
            // `speaker_audio` sent a body-sized one, echoed whole).
            let other: String = other.chars().take(32).collect();
            return Err(refused(
                422,
                format!("audio.format must be pcm_s16le or wav, not '{other}'"),
            ));
        }
    };
    if samples.len() > MAX_SECONDS * SAMPLE_RATE as usize {
        return Err(refused(
            413,
            format!("audio is longer than {MAX_SECONDS} s"),
        ));
    }
    Ok(samples)
}

fn wav_samples(bytes: &[u8]) -> Result<Vec<f32>, InferenceError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| refused(422, format!("audio is not a readable wav file: {e}")))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(refused(
            422,
            format!("wav audio must be {SAMPLE_RATE} Hz mono 16-bit PCM"),
        ));
    }
    reader
        .into_samples::<i16>()
        .map(|s| s.map(|s| f32::from(s) / 32768.0))
        .collect::<Result<_, _>>()
        .map_err(|e| refused(422, format!("audio is not a readable wav file: {e}")))
}

/// A few threads that run the model, at the lowest CPU priority where the OS allows it, so a
/// burst of speaker work slows itself down rather than the ingest of audio. The pool is the
/// model's own so that its work never lands on threads of normal priority.
struct ComputePool {
    engine: Arc<Engine>,
    pool: rayon::ThreadPool,
}

impl ComputePool {
    fn start(engine: Arc<Engine>) -> ComputePool {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("speakers-{index}"))
            .start_handler(|_| lower_priority())
            .build()
            .expect("start the speaker threads");
        ComputePool { engine, pool }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, InferenceError> {
        let (answer, answered) = oneshot::channel();
        let engine = Arc::clone(&self.engine);
        self.pool.spawn(move || {
            let _ = answer.send(work(&engine));
        });
        answered
            .await
            .map_err(|_| InferenceError::Unavailable("the speaker engine stopped".into()))
    }
}

/// Lowers the calling thread's scheduling priority. Linux: `SCHED_IDLE`, which runs the thread
/// only when nothing else wants the CPU (below even nice 19, which still takes a share of a
/// busy CPU); where that is refused, nice 19.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls change only the calling thread's own scheduling.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_survive_the_state_to_within_the_fixed_point_step_and_bad_ones_are_left_out() {
        let mean: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|i| (i as f32 / EMBEDDING_DIM as f32) - 0.5)
            .collect();
        let parts = vec![Part {
            mean: mean.clone(),
            count: 7,
            spans: vec![(1600, 4800), (9000, 10_600)],
        }];
        let stored = parts_to_json(&parts);
        let mut read = parts_from_json(&stored);
        assert_eq!(read.len(), 1);
        let back = read.pop().unwrap();
        assert_eq!(back.count, 7);
        assert_eq!(back.spans, parts[0].spans);
        let worst = back
            .mean
            .iter()
            .zip(&mean)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1.0 / PART_SCALE, "off by {worst}");

        let mut damaged = stored.as_array().unwrap().clone();
        damaged.push(json!({"n": 3, "mean": "AAAA"}));
        damaged.push(json!({"n": 0, "mean": stored[0]["mean"]}));
        damaged.push(json!({"mean": stored[0]["mean"]}));
        damaged.push(json!("not a part"));
        damaged.push(json!({"n": 2, "mean": stored[0]["mean"], "spans": "garbled"}));
        let read = parts_from_json(&Value::Array(damaged));
        assert_eq!(read.len(), 2, "a part with unreadable spans still counts");
        assert!(read[1].spans.is_empty());
        assert!(parts_from_json(&json!({"n": 1})).is_empty());
    }
}
