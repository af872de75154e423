//! Held audio sent without recording: one background task per session, over the engine's
//! [`deliver_held_until`](recorder::engine::deliver_held_until).
//!
//! A delivery starts by itself after a Stop that left frames in the spools, and when the
//! interviewer presses "Send held audio" (or "Send and finalize") for a session of the held
//! list. Its progress goes to the [`HeldBoard`]. At most one delivery runs per session, and
//! none while the session records: starting a delivery first stops the one before, and a
//! recording stops it before opening the spools (a spool has one owner at a time).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use recorder::endpoint::GatewayEndpoint;
use recorder::engine;
use recorder::events::{ConnectionState, Event, EventSink};
use tokio::sync::{broadcast, watch};

use super::held::{Delivery, HeldBoard, HeldSession};

/// How long a stopped delivery may take to let go of the spools before the caller gives up.
const LET_GO: Duration = Duration::from_secs(10);

/// One delivery to make.
pub struct Plan {
    pub endpoint: GatewayEndpoint,
    pub spool_root: PathBuf,
    pub session_id: String,
    /// How long each stream's frames may take to reach the gateway before it stops trying.
    pub timeout: Duration,
    /// Finalize the session once everything is delivered.
    pub then_finalize: bool,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Nothing is held any more (and, if asked, the session was finalized or said why not).
    Delivered,
    /// Time ran out with this many seconds still held.
    Held(u64),
    /// The spools could not be read or sent; in words.
    Failed(String),
    /// Stopped for a recording of the session (or the app quitting).
    Cancelled,
}

/// The running deliveries.
pub struct Deliveries {
    board: HeldBoard,
    /// Session id → its delivery. A tokio mutex, held while an old delivery is stopped and
    /// the new one started, so that two clicks never put two uplinks on one spool.
    running: tokio::sync::Mutex<HashMap<String, Running>>,
}

struct Running {
    cancel: watch::Sender<bool>,
    /// `Some` once the task ended and no longer holds the spools.
    ended: watch::Receiver<Option<Ended>>,
}

impl Deliveries {
    pub fn new(board: HeldBoard) -> Deliveries {
        Deliveries {
            board,
            running: tokio::sync::Mutex::default(),
        }
    }

    /// Starts delivering in the background. A delivery of the session already under way is
    /// stopped first, so pressing "Send held audio" again retries at once.
    pub async fn start(&self, plan: Plan) -> anyhow::Result<watch::Receiver<Option<Ended>>> {
        let mut running = self.running.lock().await;
        stop_one(&mut running, &plan.session_id).await?;
        let (cancel, cancelled) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(None);
        let board = self.board.clone();
        let session_id = plan.session_id.clone();
        tauri::async_runtime::spawn(async move {
            let outcome = deliver(plan, &board, cancelled).await;
            let _ = ended_tx.send(Some(outcome));
        });
        running.insert(
            session_id,
            Running {
                cancel,
                ended: ended.clone(),
            },
        );
        Ok(ended)
    }

    /// Delivers and waits for the end.
    pub async fn run(&self, plan: Plan) -> anyhow::Result<Ended> {
        let mut ended = self.start(plan).await?;
        let outcome = ended
            .wait_for(Option::is_some)
            .await
            .map(|o| o.clone())
            .ok()
            .flatten();
        Ok(outcome.unwrap_or(Ended::Cancelled))
    }

    /// Stops the session's delivery, if one runs, and waits until it let go of the spools.
    pub async fn stop(&self, session_id: &str) -> anyhow::Result<()> {
        stop_one(&mut *self.running.lock().await, session_id).await
    }

    /// Stops every delivery (the app is quitting; what is held stays held).
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        let ids: Vec<String> = running.keys().cloned().collect();
        for id in ids {
            let _ = stop_one(&mut running, &id).await;
        }
    }
}

async fn stop_one(running: &mut HashMap<String, Running>, session_id: &str) -> anyhow::Result<()> {
    let Some(mut delivery) = running.remove(session_id) else {
        return Ok(());
    };
    let _ = delivery.cancel.send(true);
    let let_go = tokio::time::timeout(LET_GO, delivery.ended.wait_for(Option::is_some))
        .await
        .is_ok();
    if !let_go {
        // Still sending: keep it known, so nothing else opens its spools.
        running.insert(session_id.to_owned(), delivery);
        anyhow::bail!(
            "The held audio of session {session_id} is still being sent and did not stop in \
             time; try again in a moment."
        );
    }
    Ok(())
}

/// One delivery, start to end, with its progress on the board.
async fn deliver(plan: Plan, board: &HeldBoard, cancel: watch::Receiver<bool>) -> Ended {
    let id = plan.session_id.as_str();
    board.update(id, |s| s.delivery = Delivery::Sending { problem: None });
    let events = EventSink::new();
    let progress = tauri::async_runtime::spawn(show_progress(
        events.subscribe(),
        board.clone(),
        id.to_owned(),
    ));
    let cancelled = {
        let mut cancel = cancel.clone();
        // A dropped sender counts as a stop too.
        async move {
            let _ = cancel.wait_for(|stop| *stop).await;
        }
    };
    let result = engine::deliver_held_until(
        &plan.endpoint,
        &plan.spool_root,
        id,
        plan.timeout,
        &events,
        cancelled,
    )
    .await;
    // The uplinks are gone; with this last sender the progress task sees the end, after
    // showing everything they reported.
    drop(events);
    let _ = progress.await;
    if *cancel.borrow() {
        return Ended::Cancelled;
    }
    if let Err(e) = result {
        let reason = format!("{e:#}");
        board.update(id, |s| {
            s.delivery = Delivery::Failed {
                reason: reason.clone(),
            }
        });
        return Ended::Failed(reason);
    }
    // What the spools hold now, not what the counters last said.
    let held = match engine::held_frames(&plan.spool_root, id) {
        Ok(held) => held,
        Err(e) => {
            let reason = format!("{e:#}");
            board.update(id, |s| {
                s.delivery = Delivery::Failed {
                    reason: reason.clone(),
                }
            });
            return Ended::Failed(reason);
        }
    };
    if held.total() > 0 {
        board.update(id, |s| {
            *s = HeldSession::new(
                &held,
                Delivery::Failed {
                    reason: format!(
                        "the gateway did not take it within {} minutes",
                        plan.timeout.as_secs().div_ceil(60)
                    ),
                },
            )
        });
        return Ended::Held(held.total());
    }
    board.update(id, |s| *s = HeldSession::new(&held, Delivery::Delivered));
    if plan.then_finalize {
        board.update(id, |s| s.delivery = Delivery::Finalizing);
        let delivery = match engine::finalize(&plan.endpoint, id).await {
            Ok(answer) => Delivery::Finalized {
                result_key: answer.result_key,
                finalized_at: answer.finalized_at,
            },
            Err(e) => Delivery::Failed {
                reason: format!("everything was delivered, but {e:#}"),
            },
        };
        board.update(id, |s| s.delivery = delivery);
    }
    Ended::Delivered
}

/// Shows a delivery's uplink events on the board until the delivery ends.
async fn show_progress(mut events: broadcast::Receiver<Event>, board: HeldBoard, id: String) {
    loop {
        match events.recv().await {
            Ok(Event::Uplink { stream, counters }) => {
                board.update(&id, |s| s.set_pending(stream, counters.pending));
            }
            Ok(Event::Connection { state, detail, .. }) => {
                let problem = match state {
                    ConnectionState::Connected => None,
                    // Each retry first says it starts (no detail), then why it failed.
                    ConnectionState::Reconnecting { .. } if detail.is_some() => detail,
                    _ => continue,
                };
                board.update(&id, |s| s.delivery = Delivery::Sending { problem });
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::session;
    use crate::app::ui_events::UiEvents;
    use contract::protocol::FRAME_BYTES;
    use recorder::spool::{Durability, Spool, SpooledFrame};

    /// Issue 11, item 4: "Send and finalize" on a held session delivers its frames, finalizes
    /// it, and the list and the session's view say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_and_finalize_delivers_the_held_frames_and_writes_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("recordings");
        let mut spool = Spool::open(root.join("s1"), "s1", Durability::Flush).unwrap();
        for seq in 1..=3 {
            spool
                .add(&SpooledFrame {
                    seq,
                    timestamp_ms: 1_000 * seq,
                    pcm: vec![0; FRAME_BYTES],
                })
                .unwrap();
        }
        drop(spool);
        let gateway =
            gateway::server::start(gateway::server::GatewayConfig::local(dir.path().join("gw")))
                .await
                .unwrap();
        let endpoint = GatewayEndpoint::parse(&gateway.http_url(), None).unwrap();
        let board = HeldBoard::new(UiEvents::default());
        let held = engine::held_frames(&root, "s1").unwrap();
        board.put(HeldSession::new(&held, Delivery::Waiting));
        assert_eq!(board.get("s1").unwrap().held, 3);

        let ended = Deliveries::new(board.clone())
            .run(Plan {
                endpoint: endpoint.clone(),
                spool_root: root.clone(),
                session_id: "s1".into(),
                timeout: Duration::from_secs(30),
                then_finalize: true,
            })
            .await
            .unwrap();

        assert_eq!(ended, Ended::Delivered);
        let listed = board.get("s1").unwrap();
        assert_eq!(listed.held, 0);
        assert!(
            matches!(&listed.delivery, Delivery::Finalized { result_key, .. }
                if result_key == "sessions/s1/result.json"),
            "{listed:?}"
        );
        let view = session::look_up(Some(&endpoint), &root, "s1")
            .await
            .unwrap();
        assert_eq!((view.recorded, view.held), (3, 0));
        assert!(view.finalized_at.is_some(), "{view:?}");
        gateway.shutdown().await.unwrap();
    }
}
