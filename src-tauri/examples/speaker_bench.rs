//! Quality, speed and memory of the built-in speaker engine on labelled conversations.
//!
//! ```text
//! bash scripts/make-speaker-set.sh /tmp/speaker-set
//! cargo run --release -p recorder --no-default-features --example speaker_bench -- /tmp/speaker-set
//! ```
//!
//! Each `NAME.wav` with its `NAME.json` labels is converted to 16 kHz mono by the app's own
//! [`Resampler`] (so a 44.1 kHz stereo source takes the app's path), then attributed the way the
//! gateway does it live: in consecutive 5 s blocks, each call carrying an unfinished speech
//! region over to the next, against one growing set of clusters. Printed per conversation and
//! in total: speakers found against labelled, DER (missed speech, false alarm, confusion; 250 ms
//! collar and none), and the CPU time per second of audio. Then the same/different-speaker EER
//! of whole labelled turns, the model load time and the resident memory.
//!
//! Tuning flags (defaults are the engine's): `--join COS`, `--merge COS` (clustering
//! thresholds), `--split COST` (Ward cost, in window variances, above which a cluster's turns
//! are two voices), `--step FRAMES` (10 ms frames between windows). To compare and trace:
//! `--no-relabel` (earlier turns keep their label when a cluster splits), `--forget-pending`
//! (a new voice's unconfirmed window is forgotten at the end of each block), `--trace NAME`
//! (for conversation NAME: every split and merge, the clusters against the labelled speakers,
//! and each turn with the labelled speech it covers).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use recorder::resample::Resampler;
use speakers::Engine;
use speakers::cluster::{ClusterConfig, Clusters, Split};
use speakers::der::{self, Turn};
use speakers::encoder::cosine;

/// Audio per attribution call, as the gateway feeds stored frames.
const BLOCK_SECONDS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect(
        "usage: speaker_bench DIR [--join COS] [--merge COS] [--split COST] [--step FRAMES]",
    ));
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<f32>().expect("a number after a flag"))
    };
    let trace = args
        .iter()
        .position(|a| a == "--trace")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // As the gateway did before it kept it in the session state: a new voice's first window
    // is forgotten at the end of each block.
    let forget_pending = args.iter().any(|a| a == "--forget-pending");
    // As before turns were relabelled on a split: earlier turns keep the merged label.
    let relabel = !args.iter().any(|a| a == "--no-relabel");
    let mut clustering = ClusterConfig::default();
    clustering.join = flag("--join").unwrap_or(clustering.join);
    clustering.confirm_new = clustering.join;
    clustering.merge = flag("--merge").unwrap_or(clustering.merge);
    clustering.split_cost = flag("--split").unwrap_or(clustering.split_cost);
    let rss_before = rss_kib("VmRSS");
    let started = Instant::now();
    let mut engine = Engine::shipped().expect("shipped model");
    if let Some(step) = flag("--step") {
        engine.config.step_frames = step as usize;
    }
    println!(
        "clustering: join {:.2}, merge {:.2}, split above a Ward cost of {:.1}; windows every {} ms",
        clustering.join,
        clustering.merge,
        clustering.split_cost,
        engine.config.step_frames * 10
    );
    let load = started.elapsed();
    let rss_loaded = rss_kib("VmRSS");

    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read set dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no .wav files in {}", dir.display());

    println!(
        "{:<14} {:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>11}",
        "conversation",
        "secs",
        "speakers",
        "DER",
        "missed",
        "f.alarm",
        "confus.",
        "DER(0ms)",
        "CPU ms/s"
    );
    let mut total = Totals::default();
    let mut same = Vec::new();
    let mut different = Vec::new();
    for wav in &names {
        let labels = read_labels(&wav.with_extension("json"));
        let samples = read_16k(wav);
        let seconds = samples.len() as f64 / 16_000.0;
        let cpu_before = cpu_time();
        let stem = wav.file_stem().unwrap().to_string_lossy().into_owned();
        let tracing = trace.as_deref() == Some(stem.as_str());
        let hypothesis = attribute_in_blocks(
            &engine,
            &samples,
            clustering,
            tracing,
            forget_pending,
            relabel,
        );
        let cpu = cpu_time() - cpu_before;
        let report = der::score(&labels, &hypothesis.0, 250);
        let strict = der::score(&labels, &hypothesis.0, 0);
        let ref_speakers = report.ref_speakers;
        let found = hypothesis.1;
        println!(
            "{:<14} {:>6.1} {:>4} / {:<2} {:>6.1}% {:>6.1}% {:>6.1}% {:>6.1}% {:>8.1}% {:>11.2}",
            wav.file_stem().unwrap().to_string_lossy(),
            seconds,
            found,
            ref_speakers,
            report.der() * 100.0,
            pct(report.missed_ms, report.total_ms),
            pct(report.false_alarm_ms, report.total_ms),
            pct(report.confusion_ms, report.total_ms),
            strict.der() * 100.0,
            cpu.as_secs_f64() * 1000.0 / seconds,
        );
        total.add(&report, seconds, cpu, found == ref_speakers);
        if tracing {
            print_trace(&labels, &hypothesis.0);
        }
        turn_scores(&engine, &samples, &labels, &mut same, &mut different);
    }
    println!(
        "{:<14} {:>6.1} {:>4} / {:<2} {:>6.1}% {:>6.1}% {:>6.1}% {:>6.1}% {:>9} {:>11.2}",
        "all",
        total.seconds,
        total.right_count,
        names.len(),
        pct(
            total.missed + total.false_alarm + total.confusion,
            total.speech
        ),
        pct(total.missed, total.speech),
        pct(total.false_alarm, total.speech),
        pct(total.confusion, total.speech),
        "",
        total.cpu.as_secs_f64() * 1000.0 / total.seconds,
    );
    println!(
        "(speakers: found / labelled; in the 'all' row: conversations with the right count / conversations)"
    );
    let (eer, threshold) = der::eer(&same, &different);
    println!(
        "same/different speaker, whole labelled turns >= 1 s: {} same pairs (mean {:.3}), {} different (mean {:.3}), EER {:.1} % at cosine {:.3}",
        same.len(),
        mean(&same),
        different.len(),
        mean(&different),
        eer * 100.0,
        threshold
    );
    println!(
        "model load {:.1} ms; resident memory: {:.1} MiB before the model, {:.1} MiB loaded, peak {:.1} MiB",
        load.as_secs_f64() * 1000.0,
        rss_before as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        rss_kib("VmHWM") as f64 / 1024.0
    );
}

#[derive(Default)]
struct Totals {
    speech: u64,
    missed: u64,
    false_alarm: u64,
    confusion: u64,
    seconds: f64,
    cpu: Duration,
    right_count: usize,
}

impl Totals {
    fn add(&mut self, report: &der::DerReport, seconds: f64, cpu: Duration, right: bool) {
        self.speech += report.total_ms;
        self.missed += report.missed_ms;
        self.false_alarm += report.false_alarm_ms;
        self.confusion += report.confusion_ms;
        self.seconds += seconds;
        self.cpu += cpu;
        self.right_count += usize::from(right);
    }
}

/// Feeds the conversation in blocks as the gateway does; returns the turns and the number of
/// clusters that ended up holding speech.
fn attribute_in_blocks(
    engine: &Engine,
    samples: &[f32],
    clustering: ClusterConfig,
    tracing: bool,
    forget_pending: bool,
    relabel: bool,
) -> (Vec<Turn>, usize) {
    let mut clusters = Clusters::new(Vec::new(), clustering);
    let mut turns: Vec<Turn> = Vec::new();
    let mut start = 0;
    let mut available = 0;
    while start < samples.len() {
        available = (available + BLOCK_SECONDS * 16_000).min(samples.len());
        let finished = available == samples.len();
        let offset_ms = start as u64 * 1000 / 16_000;
        if forget_pending {
            clusters = Clusters::new(std::mem::take(&mut clusters.clusters), clustering);
        }
        let attribution = engine
            .attribute(
                &samples[start..available],
                offset_ms,
                &mut clusters,
                finished,
            )
            .expect("attribution");
        if tracing {
            for split in &attribution.split {
                println!(
                    "  {:>6.1} s: split {} -> {} (moved {:?})",
                    available as f64 / 16_000.0,
                    split.kept,
                    split.new,
                    split.moved
                );
            }
            for (removed, kept) in &attribution.merged {
                println!(
                    "  {:>6.1} s: merge {removed} into {kept}",
                    available as f64 / 16_000.0
                );
            }
        }
        if relabel {
            for split in &attribution.split {
                turns = turns.iter().flat_map(|t| relabelled(t, split)).collect();
            }
        }
        for (removed, kept) in &attribution.merged {
            turns
                .iter_mut()
                .filter(|t| &t.speaker == removed)
                .for_each(|t| t.speaker = kept.clone());
        }
        turns.extend(
            attribution
                .turns
                .into_iter()
                .map(|t| Turn::new(t.start_ms, t.end_ms, t.cluster)),
        );
        start += attribution.consumed;
    }
    let mut speakers: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    speakers.sort_unstable();
    speakers.dedup();
    let count = speakers.len();
    (turns, count)
}

/// `turn` cut where `split`'s moved spans start or end inside it, the pieces inside them given
/// to the new cluster, as the gateway relabels its timeline.
fn relabelled(turn: &Turn, split: &Split) -> Vec<Turn> {
    if turn.speaker != split.kept {
        return vec![turn.clone()];
    }
    let mut pieces = Vec::new();
    let mut at = turn.start_ms;
    for &(start, end) in &split.moved {
        let (start, end) = (start.max(at), end.min(turn.end_ms));
        if start >= end {
            continue;
        }
        if at < start {
            pieces.push(Turn::new(at, start, split.kept.clone()));
        }
        pieces.push(Turn::new(start, end, split.new.clone()));
        at = end;
    }
    if at < turn.end_ms {
        pieces.push(Turn::new(at, turn.end_ms, split.kept.clone()));
    }
    pieces
}

/// For `--trace NAME`: how much of each labelled speaker each cluster took (ms), and every
/// hypothesis turn with the labelled speakers it overlaps, so a confusion can be found in time.
fn print_trace(labels: &[Turn], hypothesis: &[Turn]) {
    let overlap = |a: &Turn, b: &Turn| {
        a.end_ms
            .min(b.end_ms)
            .saturating_sub(a.start_ms.max(b.start_ms))
    };
    let mut clusters: Vec<&str> = hypothesis.iter().map(|t| t.speaker.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let mut speakers: Vec<&str> = labels.iter().map(|t| t.speaker.as_str()).collect();
    speakers.sort_unstable();
    speakers.dedup();
    println!("  cluster x labelled speaker (ms): {speakers:?}");
    for cluster in &clusters {
        let row: Vec<u64> = speakers
            .iter()
            .map(|s| {
                let mut ms = 0;
                for h in hypothesis.iter().filter(|t| t.speaker == *cluster) {
                    for r in labels.iter().filter(|t| t.speaker == *s) {
                        ms += overlap(h, r);
                    }
                }
                ms
            })
            .collect();
        println!("  {cluster:<8} {row:?}");
    }
    for h in hypothesis {
        let heard: Vec<String> = labels
            .iter()
            .filter(|r| overlap(h, r) > 0)
            .map(|r| format!("{}:{}", r.speaker, overlap(h, r)))
            .collect();
        println!(
            "  {:>7.2}-{:>7.2} {:<8} {}",
            h.start_ms as f64 / 1000.0,
            h.end_ms as f64 / 1000.0,
            h.speaker,
            heard.join(" ")
        );
    }
}

/// Cosine scores of whole-turn embeddings (turns of at least 1 s), same and different speaker.
fn turn_scores(
    engine: &Engine,
    samples: &[f32],
    labels: &[Turn],
    same: &mut Vec<f32>,
    different: &mut Vec<f32>,
) {
    let embedded: Vec<(String, Vec<f32>)> = labels
        .iter()
        .filter(|t| t.end_ms - t.start_ms >= 1000)
        .map(|t| {
            let a = (t.start_ms * 16) as usize;
            let b = ((t.end_ms * 16) as usize).min(samples.len());
            (
                t.speaker.clone(),
                engine.embed_utterance(&samples[a..b]).unwrap(),
            )
        })
        .collect();
    for i in 0..embedded.len() {
        for j in i + 1..embedded.len() {
            let score = cosine(&embedded[i].1, &embedded[j].1);
            if embedded[i].0 == embedded[j].0 {
                same.push(score);
            } else {
                different.push(score);
            }
        }
    }
}

/// A WAV file as 16 kHz mono floats, through the app's resampler when it is anything else.
fn read_16k(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).expect("open wav");
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => reader
            .samples::<i32>()
            .map(|s| s.unwrap() as f32 / (1u32 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
        hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
    };
    let mut resampler = Resampler::new(spec.sample_rate, spec.channels).expect("resampler");
    let mut out = Vec::new();
    for block in interleaved.chunks(480 * usize::from(spec.channels)) {
        resampler.push(block, &mut out).expect("resample");
    }
    resampler.finish(&mut out).expect("resample");
    out.into_iter().map(|s| f32::from(s) / 32768.0).collect()
}

fn read_labels(path: &Path) -> Vec<Turn> {
    let text = std::fs::read_to_string(path).expect("labels");
    let json: serde_json::Value = serde_json::from_str(&text).expect("labels JSON");
    json["turns"]
        .as_array()
        .expect("turns")
        .iter()
        .map(|t| {
            Turn::new(
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
                t["speaker"].as_str().unwrap(),
            )
        })
        .collect()
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn mean(values: &[f32]) -> f32 {
    values.iter().sum::<f32>() / values.len().max(1) as f32
}

/// CPU time of this process so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // Linux reports in clock ticks of 100 Hz on every platform we build for.
    Duration::from_millis(ticks * 10)
}

/// A memory figure of this process in KiB ("VmRSS", "VmHWM"), from /proc.
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
