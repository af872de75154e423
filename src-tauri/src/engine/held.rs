//! Held audio delivered without recording.
//!
//! A recording whose gateway was unreachable keeps its frames in the spools of its streams; they
//! went out first on the next Start of that session. [`deliver_held`] sends them by themselves,
//! with no source and no new frames: the same uplink as a recording (seq order, reconnects with
//! backoff, an ACK deletes the frame), until every frame is ACKed or the time is up.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::endpoint::GatewayEndpoint;
use crate::events::{EventSink, UplinkCounters};
use crate::spool::{Durability, Spool};
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
    let session_dir = super::session_dir(spool_root, session_id)?;
    anyhow::ensure!(
        session_dir.is_dir(),
        "no recording of session {session_id:?} under {}",
        spool_root.display()
    );
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
        let outcome = Uplink::start(config, spool, EventSink::new())
            .finish(timeout)
            .await;
        delivered.push(Delivered {
            stream,
            held,
            counters: outcome.counters,
            drained: outcome.drained,
        });
    }
    Ok(delivered)
}
