//! "Export": one session's files in a folder of its own, `<exports>/<safe id>/`:
//!
//! - `audio.wav`: the microphone, from the local copy when this computer has it, else the
//!   gateway's `audio.wav`;
//! - `meeting.wav`: the meeting audio (the session's `system` stream), when the session has
//!   one: its local copy, else the gateway's `audio.wav?stream=system` (asked only when the
//!   gateway's state lists that stream, so a gateway that knows no streams is never asked);
//! - `result.json`: the gateway's stored result, byte for byte (finalized sessions only);
//! - `report.md` and `report.html`: who spoke when, talk time, the names given;
//! - `turns.srt` and `turns.vtt`: the turns as subtitles.
//!
//! The formats themselves are `recorder::export`; this module fetches what they are drawn
//! from and writes the files. What could not be exported is said in the answer's notes, not
//! left out silently.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use contract::protocol::{FinalResult, SessionState, StateResponse};
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::events::Stream;
use recorder::export::{SessionReport, report, subtitles};
use serde::Serialize;

use super::playback::{download_if_any, download_wav};
use super::recording::local_wav;

/// How long each question to the gateway may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the page shows after an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportView {
    pub session_id: String,
    /// The folder the files are in.
    pub dir: String,
    pub files: Vec<ExportedFile>,
    /// What is missing and why, in words.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    pub name: String,
    pub bytes: u64,
}

/// Where the report's facts come from.
struct Facts {
    state: SessionState,
    started_at: Option<String>,
    finalized_at: Option<String>,
    /// The mic's highest seq on the gateway (seconds), for a session without audio here.
    seconds: u64,
    /// Whether the gateway holds a meeting-audio (`system`) stream of the session.
    meeting_audio: bool,
}

/// The files of an export, in the order the answer lists them.
const FILE_ORDER: [&str; 7] = [
    "audio.wav",
    "meeting.wav",
    "result.json",
    "report.md",
    "report.html",
    "turns.srt",
    "turns.vtt",
];

/// Writes every format of `session_id` into `dir` (created if missing).
pub async fn export(
    endpoint: Option<&GatewayEndpoint>,
    recordings: &Path,
    dir: &Path,
    session_id: &str,
    title: Option<String>,
) -> anyhow::Result<ExportView> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut notes = Vec::new();
    let mut files = Vec::new();

    let facts = match endpoint {
        Some(endpoint) => facts(endpoint, session_id, dir, &mut files, &mut notes).await?,
        None => None,
    };

    let wav = dir.join("audio.wav");
    let audio = match local_wav(recordings, session_id, Stream::Mic) {
        Some(copy) => copy_file(&copy, &wav),
        None => match endpoint {
            Some(endpoint) => download_wav(endpoint, session_id, Stream::Mic, &wav)
                .await
                .map(|_| ()),
            None => Err(anyhow::anyhow!("no local copy and no gateway to ask")),
        },
    };
    match audio {
        Ok(()) => files.push(written(dir, "audio.wav")?),
        Err(e) => notes.push(format!("No audio.wav: {e:#}.")),
    }

    let meeting_on_gateway = facts.as_ref().is_some_and(|f| f.meeting_audio);
    let meeting = dir.join("meeting.wav");
    let meeting_audio = match (local_wav(recordings, session_id, Stream::System), endpoint) {
        (Some(copy), _) => copy_file(&copy, &meeting).map(|()| Some(0)),
        (None, Some(endpoint)) if meeting_on_gateway => {
            download_if_any(endpoint, session_id, Stream::System, &meeting).await
        }
        _ => Ok(None),
    };
    match meeting_audio {
        Ok(Some(_)) => files.push(written(dir, "meeting.wav")?),
        Ok(None) => {}
        Err(e) => notes.push(format!("No meeting.wav (the meeting audio): {e:#}.")),
    }

    let Some(facts) = facts else {
        if files.is_empty() {
            anyhow::bail!("Nothing to export for {session_id}: {}", notes.join(" "));
        }
        notes.push("No report: the gateway's speakers could not be read.".into());
        return Ok(view(session_id, dir, files, notes));
    };

    let exported_audio = files.iter().any(|f| f.name == "audio.wav");
    let length_ms = exported_audio
        .then(|| wav_millis(&wav))
        .flatten()
        .unwrap_or(facts.seconds * 1000);
    let mut report_of = SessionReport::from_state(session_id, &facts.state, length_ms);
    report_of.title = title;
    report_of.started_at = facts.started_at;
    report_of.finalized_at = facts.finalized_at;
    let outputs = [
        ("report.md", report::markdown(&report_of)),
        ("report.html", report::html(&report_of)),
        ("turns.srt", subtitles::srt(&report_of)),
        ("turns.vtt", subtitles::vtt(&report_of)),
    ];
    for (name, text) in outputs {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        files.push(written(dir, name)?);
    }
    if report_of.turns.is_empty() {
        notes.push("The gateway kept no timeline of turns: the subtitles are empty.".into());
    }
    Ok(view(session_id, dir, files, notes))
}

/// The stored result (written as `result.json`) or, for a session not finalized, its current
/// state. `None` when the gateway cannot be asked; the reason goes to the notes.
async fn facts(
    endpoint: &GatewayEndpoint,
    session_id: &str,
    dir: &Path,
    files: &mut Vec<ExportedFile>,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Facts>> {
    match endpoint
        .get_session(session_id, "result", ASK_TIMEOUT)
        .await
    {
        Ok(bytes) => {
            let result: FinalResult = serde_json::from_slice(&bytes)
                .context("the gateway's result.json is not the contract's shape")?;
            std::fs::write(dir.join("result.json"), &bytes)
                .with_context(|| format!("cannot write result.json in {}", dir.display()))?;
            files.push(written(dir, "result.json")?);
            let ingest = result.ingest.as_ref();
            return Ok(Some(Facts {
                started_at: ingest.map(|i| i.status.started_at.clone()),
                seconds: ingest.map_or(0, |i| i.status.last_seq),
                meeting_audio: result.streams.contains_key(Stream::System.as_str()),
                finalized_at: Some(result.finalized_at),
                state: result.state,
            }));
        }
        Err(CallError::Refused { status: 404, .. }) => {
            notes.push("No result.json: the session is not finalized.".into());
        }
        Err(e) => {
            notes.push(format!("No result.json or report: {e}."));
            return Ok(None);
        }
    }
    match endpoint.get_session(session_id, "state", ASK_TIMEOUT).await {
        Ok(bytes) => {
            let answer: StateResponse = serde_json::from_slice(&bytes)
                .context("the gateway's state is not the contract's shape")?;
            let ingest = answer.ingest.as_ref();
            Ok(Some(Facts {
                started_at: ingest.map(|i| i.status.started_at.clone()),
                seconds: ingest.map_or(0, |i| i.status.last_seq),
                meeting_audio: answer.streams.contains_key(Stream::System.as_str()),
                finalized_at: None,
                state: answer.state,
            }))
        }
        Err(e) => {
            notes.push(format!("No report: {e}."));
            Ok(None)
        }
    }
}

/// Length of a WAV in milliseconds.
fn wav_millis(path: &Path) -> Option<u64> {
    let reader = hound::WavReader::open(path).ok()?;
    let rate = u64::from(reader.spec().sample_rate.max(1));
    Some(u64::from(reader.duration()) * 1000 / rate)
}

fn written(dir: &Path, name: &str) -> anyhow::Result<ExportedFile> {
    let bytes = std::fs::metadata(dir.join(name))
        .with_context(|| format!("{name} was not written"))?
        .len();
    Ok(ExportedFile {
        name: name.to_owned(),
        bytes,
    })
}

/// Copies a local copy into the export (the file name only in the error: no machine paths).
fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).map(|_| ()).with_context(|| {
        format!(
            "cannot copy the local copy to {}",
            to.file_name().unwrap_or_default().to_string_lossy()
        )
    })
}

fn view(
    session_id: &str,
    dir: &Path,
    mut files: Vec<ExportedFile>,
    notes: Vec<String>,
) -> ExportView {
    files.sort_by_key(|f| FILE_ORDER.iter().position(|name| *name == f.name));
    ExportView {
        session_id: session_id.to_owned(),
        dir: dir.display().to_string(),
        files,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(path: &Path, samples: &[i16]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
    }

    #[tokio::test]
    async fn the_meeting_audio_is_exported_beside_the_microphone_when_the_session_has_it() {
        let root = tempfile::tempdir().unwrap();
        let recordings = root.path().join("recordings");
        let session = recorder::engine::session_dir(&recordings, "iv 1").unwrap();
        let mic = session.join(recorder::engine::LOCAL_COPY);
        let system = recorder::stream::stream_dir(&session, Stream::System)
            .join(recorder::engine::LOCAL_COPY);
        wav(&mic, &[1, 2, 3]);
        wav(&system, &[7; 1000]);

        let out = root.path().join("out");
        let view = export(None, &recordings, &out, "iv 1", None).await.unwrap();
        let names: Vec<_> = view.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["audio.wav", "meeting.wav"]);
        assert_eq!(
            std::fs::read(out.join("audio.wav")).unwrap(),
            std::fs::read(&mic).unwrap()
        );
        assert_eq!(
            std::fs::read(out.join("meeting.wav")).unwrap(),
            std::fs::read(&system).unwrap()
        );
        assert!(
            view.notes.iter().any(|n| n.starts_with("No report")),
            "{:?}",
            view.notes
        );

        // A session with the microphone only exports no meeting.wav and says nothing of it.
        std::fs::remove_file(&system).unwrap();
        let out = root.path().join("mic-only");
        let view = export(None, &recordings, &out, "iv 1", None).await.unwrap();
        let names: Vec<_> = view.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["audio.wav"]);
        assert!(!out.join("meeting.wav").exists());
        assert!(
            !view.notes.iter().any(|n| n.contains("meeting")),
            "{:?}",
            view.notes
        );
    }
}
