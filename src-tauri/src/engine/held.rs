//! Held audio delivered without recording.
//!
//! A recording whose gateway was unreachable keeps its frames in the spools of its streams; they
//! went out first on the next Start of that session. [`deliver_held`] sends them by themselves,
//! with no source and no new frames: the same uplink as a recording (seq order, reconnects with
//! backoff, an ACK deletes the frame), until every frame is ACKed or the time is up.
//! [`deliver_held_until`] does the same for the app's background delivery, which reports its
//! progress and must let go of the spools at once when the session is recorded again.
//!
//! [`held_frames`] and [`held_sessions`] say what the spools hold without opening them (an
//! open [`Spool`] has one owner, which may be a running delivery or recording), through
//! [`spool::peek`].

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::endpoint::GatewayEndpoint;
use crate::events::{EventSink, UplinkCounters};
use crate::spool::{self, Durability, Spool};
use crate::stream::{Stream, stream_dir};
use crate::uplink::{Uplink, UplinkConfig};

/// What one stream's delivery did.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub stream: Stream,
    /// Frames the spool held when the delivery started.
    pub held: u64,
    pub counters: UplinkCounters,
    /// Whether nothing is held any more.
    pub drained: bool,
}

/// Sends what every stream of `session_id` under `spool_root` holds, each for at most
/// `timeout`. A session that was never recorded there is an error.
pub async fn deliver_held(
    endpoint: &GatewayEndpoint,
    spool_root: &Path,
    session_id: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<Delivered>> {
    deliver_held_until(
        endpoint,
        spool_root,
        session_id,
        timeout,
        &EventSink::new(),
        std::future::pending(),
    )
    .await
}

/// [`deliver_held`], with the uplinks' events (counters, connection) published to `events`,
/// stopping early when `cancel` completes. Once it returns, no uplink holds the session's
/// spools any more, cancelled or not: a recording of the session may open them.
pub async fn deliver_held_until(
    endpoint: &GatewayEndpoint,
    spool_root: &Path,
    session_id: &str,
    timeout: Duration,
    events: &EventSink,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Delivered>> {
    let session_dir = super::session_dir(spool_root, session_id)?;
    anyhow::ensure!(
        session_dir.is_dir(),
        "there is no recording of session {session_id:?} in the spool directory"
    );
    tokio::pin!(cancel);
    let mut delivered = Vec::new();
    for stream in [Stream::Mic, Stream::System] {
        let dir = stream_dir(&session_dir, stream);
        if !dir.is_dir() {
            continue;
        }
        let spool = Spool::open(&dir, session_id, Durability::Sync)
            .with_context(|| format!("cannot open the {stream} stream's spool"))?;
        let held = spool.len() as u64;
        let mut config = UplinkConfig::new(endpoint.clone(), session_id);
        config.stream = stream;
        let uplink = Uplink::start(config, spool, events.clone());
        let mut worker = uplink.counters();
        let outcome = tokio::select! {
            outcome = uplink.finish(timeout) => Some(outcome),
            () = &mut cancel => None,
        };
        let (counters, drained) = match outcome {
            Some(outcome) => (outcome.counters, outcome.drained),
            None => {
                // Dropping `finish` dropped the uplink's abort sender, which its task takes as
                // the order to stop. The task owns the spool until it ends, and its counters'
                // sender goes with it: the channel closing is the sign the spool is free.
                while worker.changed().await.is_ok() {}
                let counters = worker.borrow().clone();
                let drained = counters.pending == 0;
                delivered.push(Delivered {
                    stream,
                    held,
                    counters,
                    drained,
                });
                return Ok(delivered);
            }
        };
        delivered.push(Delivered {
            stream,
            held,
            counters,
            drained,
        });
    }
    Ok(delivered)
}

/// What a session's spools hold on this computer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldFrames {
    pub session_id: String,
    /// Frames of the mic stream not yet ACKed by the gateway.
    pub mic: u64,
    /// Frames of the meeting audio (`system` stream) not yet ACKed.
    pub system: u64,
    /// Frames the mic stream has numbered so far (its spool's `next_seq - 1`): the session's
    /// recorded seconds as far as this computer knows.
    pub recorded: u64,
}

impl HeldFrames {
    /// Seconds of audio, of every stream, not yet on the gateway.
    pub fn total(&self) -> u64 {
        self.mic + self.system
    }
}

/// What the spools of `session_id` under `spool_root` hold; a session never recorded here
/// holds nothing.
pub fn held_frames(spool_root: &Path, session_id: &str) -> anyhow::Result<HeldFrames> {
    let session_dir = super::session_dir(spool_root, session_id)?;
    let mic = spool::peek(&stream_dir(&session_dir, Stream::Mic))?;
    let system = spool::peek(&stream_dir(&session_dir, Stream::System))?;
    Ok(HeldFrames {
        session_id: session_id.to_owned(),
        mic: mic.as_ref().map_or(0, |p| p.frames),
        system: system.as_ref().map_or(0, |p| p.frames),
        recorded: mic.map_or(0, |p| p.next_seq.saturating_sub(1)),
    })
}

/// Every session under `spool_root` whose spools hold frames, in the order of their ids.
/// A directory that is not a session's (no readable `spool.json`) is passed over.
pub fn held_sessions(spool_root: &Path) -> anyhow::Result<Vec<HeldFrames>> {
    let entries = match std::fs::read_dir(spool_root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("cannot list the recordings"),
    };
    let mut sessions = Vec::new();
    for entry in entries {
        let dir = entry.context("cannot list the recordings")?.path();
        // The spool's metadata names the session: the directory's name is the id made safe
        // for a file name, which loses characters.
        let Ok(Some(mic)) = spool::peek(&dir) else {
            continue;
        };
        let held = held_frames(spool_root, &mic.session_id)?;
        if held.total() > 0 {
            sessions.push(held);
        }
    }
    sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SpooledFrame;
    use contract::protocol::FRAME_BYTES;

    /// Spools `frames` frames for `stream` of `session_id` under `root`, as a recording whose
    /// gateway never answered leaves them.
    fn spool_frames(root: &Path, session_id: &str, stream: Stream, frames: u64) {
        let dir = stream_dir(
            &super::super::session_dir(root, session_id).unwrap(),
            stream,
        );
        let mut spool = Spool::open(&dir, session_id, Durability::Flush).unwrap();
        for seq in 1..=frames {
            spool
                .add(&SpooledFrame {
                    seq,
                    timestamp_ms: 1_000 * seq,
                    pcm: vec![0; FRAME_BYTES],
                })
                .unwrap();
        }
    }

    #[test]
    fn held_sessions_are_found_with_their_backlog_per_stream() {
        let root = tempfile::tempdir().unwrap();
        spool_frames(root.path(), "a b/c", Stream::Mic, 3);
        spool_frames(root.path(), "a b/c", Stream::System, 2);
        spool_frames(root.path(), "empty", Stream::Mic, 0);
        std::fs::create_dir_all(root.path().join("not-a-session")).unwrap();

        let found = held_sessions(root.path()).unwrap();
        assert_eq!(
            found,
            vec![HeldFrames {
                session_id: "a b/c".into(),
                mic: 3,
                system: 2,
                recorded: 3,
            }]
        );
        assert_eq!(found[0].total(), 5);
        assert_eq!(
            held_frames(root.path(), "never-recorded").unwrap(),
            HeldFrames {
                session_id: "never-recorded".into(),
                ..HeldFrames::default()
            }
        );
    }

    /// The app cancels a background delivery when the session is recorded again: the call
    /// returns at once, the frames stay held, and the spool can be opened by its next owner.
    #[tokio::test]
    async fn a_cancelled_delivery_lets_go_of_the_spool_and_keeps_the_frames() {
        let root = tempfile::tempdir().unwrap();
        spool_frames(root.path(), "s", Stream::Mic, 4);
        // Nothing listens here: the uplink keeps reconnecting until cancelled.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = GatewayEndpoint::parse(&format!("http://{addr}"), None).unwrap();
        let started = std::time::Instant::now();
        let delivered = deliver_held_until(
            &endpoint,
            root.path(),
            "s",
            Duration::from_secs(600),
            &EventSink::new(),
            tokio::time::sleep(Duration::from_millis(500)),
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(delivered.len(), 1);
        assert_eq!((delivered[0].held, delivered[0].drained), (4, false));
        assert_eq!(delivered[0].counters.pending, 4);
        assert_eq!(held_frames(root.path(), "s").unwrap().mic, 4);
        let spool = Spool::open(root.path().join("s"), "s", Durability::Flush).unwrap();
        assert_eq!(spool.len(), 4);
    }
}
