//! The one stream of events from Rust to the page.
//!
//! The page opens it at load with the `subscribe` command, handing over a
//! [`tauri::ipc::Channel`] (ordered, no event permissions needed); a reload hands over a new
//! one, which replaces the old. Messages are JSON objects tagged by `"type"`: the engine's events
//! unchanged (`level`, `uplink`, `connection`, `speaker`, `resolve_unavailable`, `error`,
//! `finished`) except that speaker centroids are left out, plus the app's own `recording`
//! (idle / recording / stopping / finalizing), `gateway` (its status), `mic_test` (the
//! microphone test ended; its levels are `level` messages), `command` (the tray or the global
//! hotkey asks for what the page's Start/Pause button does) and `window` (a second launch was
//! turned away and this window brought to the front). A stream's events
//! (`level`, `uplink`, `connection`, its `error`s) name it in `"stream"` (`mic` or `system`,
//! the meeting audio): the page draws each on its own meter and counters.
//!
//! The desktop side (the tray's recording indicator, notifications while the window is hidden)
//! watches the same stream: [`UiEvents::watch`] installs it once, and it sees every message
//! before the page does, whether or not a page is listening.

use std::sync::{Arc, Mutex, OnceLock};

use recorder::events::Event;
use serde_json::Value;
use tauri::ipc::Channel;
use tokio::sync::broadcast::{self, error::RecvError};

/// Something that sees every message sent to the page; it must return quickly (it runs on
/// the sender's thread, the audio path's forwarding task included).
pub type Watcher = Box<dyn Fn(&Value) + Send + Sync>;

/// Cheap to clone; every clone sends to the page's current channel.
#[derive(Clone, Default)]
pub struct UiEvents {
    // A std Mutex: held only to swap or clone the channel, never across an await.
    channel: Arc<Mutex<Option<Channel<Value>>>>,
    /// Set once at setup; a `OnceLock` so sending never takes a lock for it.
    watcher: Arc<OnceLock<Watcher>>,
}

impl UiEvents {
    /// Installs the desktop side's watcher (only the first call counts).
    pub fn watch(&self, watcher: Watcher) {
        let _ = self.watcher.set(watcher);
    }

    /// Replaces the page's channel (a reloaded page subscribes again).
    pub fn attach(&self, channel: Channel<Value>) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel);
    }

    /// Sends one message; with no page listening it is dropped.
    pub fn send(&self, message: Value) {
        if let Some(watcher) = self.watcher.get() {
            watcher(&message);
        }
        let channel = self
            .channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(channel) = channel {
            // A closed page is not an error for the engine.
            let _ = channel.send(message);
        }
    }

    /// Forwards a recording's events until it finishes. A page that falls behind skips the
    /// oldest (the broadcast channel drops them); the audio path never waits for the page.
    pub async fn forward(self, mut events: broadcast::Receiver<Event>) {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let finished = matches!(event, Event::Finished(_));
                    self.send(engine_event(&event));
                    if finished {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// An engine event as the page gets it: speaker centroids (hundreds of floats the page never
/// shows) are removed.
pub fn engine_event(event: &Event) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or_else(
        |e| serde_json::json!({"type": "error", "origin": "app", "message": e.to_string()}),
    );
    if let Some(state) = value.get_mut("updated_state") {
        slim_state(state);
    }
    value
}

/// Drops the centroids of a session state's clusters, in place.
pub fn slim_state(state: &mut Value) {
    if let Some(clusters) = state.get_mut("clusters").and_then(Value::as_array_mut) {
        for cluster in clusters {
            if let Some(cluster) = cluster.as_object_mut() {
                cluster.remove("centroid");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::protocol::{Cluster, Decision, ResolveAnswer, SessionState};

    #[test]
    fn speaker_events_reach_the_page_without_centroids() {
        let answer = ResolveAnswer {
            session_id: "s".into(),
            cluster_id: "c1".into(),
            speaker_name: Some("Ada".into()),
            decision: Decision::Auto,
            evidence: serde_json::json!({"sv_score": 0.91}),
            updated_state: SessionState {
                clusters: vec![Cluster {
                    cluster_id: "c1".into(),
                    centroid: vec![0.5; 192],
                    sample_count: 3,
                    bound_name: None,
                    extra: Default::default(),
                }],
                ..SessionState::default()
            },
        };
        let json = engine_event(&Event::Speaker(answer));
        assert_eq!(json["type"], "speaker");
        assert_eq!(json["cluster_id"], "c1");
        assert_eq!(json["evidence"]["sv_score"], 0.91);
        let cluster = &json["updated_state"]["clusters"][0];
        assert_eq!(cluster["sample_count"], 3);
        assert!(cluster.get("centroid").is_none());
    }
}
