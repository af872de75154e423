//! The "Held audio" list: sessions whose frames wait on this computer because the gateway did
//! not take them, and how their delivery goes.
//!
//! Filled at launch from the spools (sessions an earlier run left unfinished), by Stop when the
//! gateway did not ACK everything in time, and by the deliveries as they progress
//! (`delivery.rs`). Every change goes to the page whole, as one `held` message: the list is
//! short, and a page that missed a message is right again with the next one.
//!
//! A session leaves the list when it is recorded again (the recording sends its spool first);
//! a delivered or finalized one stays, saying so, until the app quits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use recorder::engine::HeldFrames;
use recorder::events::Stream;
use serde::Serialize;

use super::ui_events::UiEvents;

/// One session of the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldSession {
    pub session_id: String,
    /// Frames (seconds) of the mic stream still on this computer only.
    pub mic: u64,
    /// Frames of the meeting audio still on this computer only.
    pub system: u64,
    /// `mic + system`, for the page.
    pub held: u64,
    pub delivery: Delivery,
}

impl HeldSession {
    pub fn new(frames: &HeldFrames, delivery: Delivery) -> HeldSession {
        HeldSession {
            session_id: frames.session_id.clone(),
            mic: frames.mic,
            system: frames.system,
            held: frames.total(),
            delivery,
        }
    }

    /// What a delivery's uplink reports as still pending for `stream`.
    pub fn set_pending(&mut self, stream: Stream, pending: u64) {
        match stream {
            Stream::Mic => self.mic = pending,
            Stream::System => self.system = pending,
        }
        self.held = self.mic + self.system;
    }
}

/// Where a session's held audio stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// Nothing sends it: found at launch, waiting for the interviewer to say so.
    Waiting,
    /// Being sent; `problem` says why nothing moves (the gateway does not answer), while the
    /// uplink retries.
    Sending { problem: Option<String> },
    /// Everything reached the gateway.
    Delivered,
    /// Delivered; the result is being written.
    Finalizing,
    Finalized {
        result_key: String,
        finalized_at: String,
    },
    /// The delivery or the finalize stopped short; what is not delivered is still held.
    Failed { reason: String },
}

/// The list, shared by the app state and the delivery tasks; cheap to clone.
#[derive(Clone)]
pub struct HeldBoard {
    // A std Mutex: held only to read or change the map, never across an await.
    sessions: Arc<Mutex<BTreeMap<String, HeldSession>>>,
    events: UiEvents,
}

/// The message the page gets on every change.
#[derive(Serialize)]
struct HeldMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sessions: &'a [HeldSession],
}

impl HeldBoard {
    pub fn new(events: UiEvents) -> HeldBoard {
        HeldBoard {
            sessions: Arc::default(),
            events,
        }
    }

    pub fn list(&self) -> Vec<HeldSession> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, session_id: &str) -> Option<HeldSession> {
        self.lock().get(session_id).cloned()
    }

    /// Adds or replaces a session.
    pub fn put(&self, session: HeldSession) {
        self.lock().insert(session.session_id.clone(), session);
        self.publish();
    }

    /// Changes a session that is on the list (one that is not is left alone: a recording took
    /// it over).
    pub fn update(&self, session_id: &str, change: impl FnOnce(&mut HeldSession)) {
        let changed = {
            let mut sessions = self.lock();
            match sessions.get_mut(session_id) {
                Some(session) => {
                    let before = session.clone();
                    change(session);
                    *session != before
                }
                None => false,
            }
        };
        if changed {
            self.publish();
        }
    }

    pub fn remove(&self, session_id: &str) {
        if self.lock().remove(session_id).is_some() {
            self.publish();
        }
    }

    fn publish(&self) {
        let sessions = self.list();
        let message = HeldMessage {
            kind: "held",
            sessions: &sessions,
        };
        if let Ok(value) = serde_json::to_value(&message) {
            self.events.send(value);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, HeldSession>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(id: &str, mic: u64, system: u64) -> HeldFrames {
        HeldFrames {
            session_id: id.into(),
            mic,
            system,
            recorded: mic,
        }
    }

    #[test]
    fn the_backlog_counts_both_streams_and_follows_the_uplinks() {
        let mut session = HeldSession::new(&frames("s", 4, 3), Delivery::Waiting);
        assert_eq!(session.held, 7);
        session.set_pending(Stream::Mic, 1);
        assert_eq!((session.mic, session.system, session.held), (1, 3, 4));
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["delivery"]["state"], "waiting");
        assert_eq!(json["held"], 4);
    }

    #[test]
    fn a_session_taken_off_the_list_is_not_brought_back_by_a_late_update() {
        let board = HeldBoard::new(UiEvents::default());
        board.put(HeldSession::new(&frames("a", 2, 0), Delivery::Waiting));
        board.put(HeldSession::new(&frames("b", 1, 0), Delivery::Waiting));
        board.remove("a");
        board.update("a", |s| s.delivery = Delivery::Delivered);
        board.update("b", |s| s.set_pending(Stream::Mic, 0));
        let ids: Vec<_> = board
            .list()
            .into_iter()
            .map(|s| (s.session_id, s.held))
            .collect();
        assert_eq!(ids, vec![("b".to_owned(), 0)]);
    }
}
