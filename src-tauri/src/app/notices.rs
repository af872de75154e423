//! What the desktop side makes of the messages the page gets: whether the tray shows a
//! recording, and which notifications to raise while the window is hidden (recording stopped,
//! gateway unreachable, input lost). Plain rules with no Tauri types, so a unit test pins them;
//! `desktop.rs` applies them.
//!
//! One notice per outage, not one per reconnect attempt: the uplink reports every attempt, and
//! a notification for each would bury the desktop. The outage ends when the connection is back.

use serde_json::Value;

/// A notification to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// What one message changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The tray's recording indicator, when it changes.
    pub recording: Option<bool>,
    /// A notification to raise (only ever when the window is hidden).
    pub notice: Option<Notice>,
}

/// The state the rules need between messages.
#[derive(Debug, Default)]
pub struct Notices {
    recording: bool,
    /// This outage was already told in a notification.
    outage_told: bool,
}

impl Notices {
    /// Reads one message the page gets; `hidden` says whether the window is out of sight
    /// (hidden or minimized) right now.
    pub fn read(&mut self, message: &Value, hidden: bool) -> Reading {
        let mut reading = Reading::default();
        let mic = message["stream"].as_str().is_none_or(|s| s == "mic");
        match message["type"].as_str().unwrap_or_default() {
            "recording" => {
                let now = matches!(
                    message["state"].as_str(),
                    Some("recording" | "stopping" | "finalizing")
                );
                reading.recording = self.set_recording(now);
            }
            "finished" => {
                reading.recording = self.set_recording(false);
                self.outage_told = false;
                if hidden {
                    reading.notice = Some(stopped(message));
                }
            }
            "connection" if mic => match message["state"]["state"].as_str() {
                Some("reconnecting" | "offline") if hidden && !self.outage_told => {
                    self.outage_told = true;
                    reading.notice = Some(Notice {
                        title: "Gateway unreachable".into(),
                        body: "Recording goes on: the audio is held on this computer and sent \
                               when the gateway answers again."
                            .into(),
                    });
                }
                Some("connected") => self.outage_told = false,
                _ => {}
            },
            // The input's device went away (unplugged, its driver or sound server gone) or
            // stopped delivering audio: that stream records nothing more, which the
            // interviewer must hear of while the window cannot show it.
            "error" if hidden && message["origin"] == "source" => {
                let what = if mic { "Microphone" } else { "Meeting audio" };
                let why = message["message"].as_str().unwrap_or_default();
                reading.notice = Some(Notice {
                    title: format!("{what} lost"),
                    body: format!(
                        "Nothing more is recorded from it ({why}). What was recorded is kept."
                    ),
                });
            }
            _ => {}
        }
        reading
    }

    fn set_recording(&mut self, now: bool) -> Option<bool> {
        (self.recording != now).then(|| {
            self.recording = now;
            now
        })
    }
}

/// "Recording stopped", with where its audio is.
fn stopped(summary: &Value) -> Notice {
    let pending = summary["uplink"]["pending"].as_u64().unwrap_or(0)
        + summary["system"]["uplink"]["pending"].as_u64().unwrap_or(0);
    let seconds = summary["last_seq"].as_u64().unwrap_or(0);
    let session = summary["session_id"].as_str().unwrap_or_default();
    let body = if pending > 0 {
        format!(
            "Session {session}, {seconds} s recorded. {pending} s are held on this computer \
             and sent in the background."
        )
    } else {
        format!("Session {session}, {seconds} s recorded, all of it on the gateway.")
    };
    Notice {
        title: "Recording stopped".into(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reconnecting(attempt: u32) -> Value {
        json!({"type": "connection", "stream": "mic", "holding": 3,
               "state": {"state": "reconnecting", "attempt": attempt, "retry_in_ms": 500}})
    }

    #[test]
    fn an_outage_is_told_once_while_hidden_and_again_after_the_gateway_was_back() {
        let mut notices = Notices::default();
        let first = notices.read(&reconnecting(1), true).notice.unwrap();
        assert_eq!(first.title, "Gateway unreachable");
        for attempt in 2..6 {
            assert_eq!(notices.read(&reconnecting(attempt), true).notice, None);
        }
        let back = json!({"type": "connection", "stream": "mic", "holding": 0,
                          "state": {"state": "connected"}});
        assert_eq!(notices.read(&back, true), Reading::default());
        assert!(notices.read(&reconnecting(1), true).notice.is_some());
    }

    #[test]
    fn nothing_is_told_while_the_window_is_in_sight() {
        let mut notices = Notices::default();
        assert_eq!(notices.read(&reconnecting(1), false).notice, None);
        // Hidden during the same outage: the next attempt tells it.
        assert!(notices.read(&reconnecting(2), true).notice.is_some());
        let lost = json!({"type": "error", "origin": "source", "stream": "mic",
                          "message": "the input device disappeared"});
        assert_eq!(notices.read(&lost, false).notice, None);
        let summary = json!({"type": "finished", "session_id": "s", "last_seq": 4,
                             "uplink": {"pending": 0}, "drained": true});
        assert_eq!(notices.read(&summary, false).notice, None);
    }

    #[test]
    fn the_meeting_audio_stream_does_not_tell_the_same_outage_twice() {
        let mut notices = Notices::default();
        let mut system = reconnecting(1);
        system["stream"] = json!("system");
        assert_eq!(notices.read(&system, true).notice, None);
    }

    #[test]
    fn a_lost_input_names_which_one() {
        let mut notices = Notices::default();
        let lost = json!({"type": "error", "origin": "source", "stream": "mic",
                          "message": "the input device disappeared"});
        assert_eq!(
            notices.read(&lost, true).notice,
            Some(Notice {
                title: "Microphone lost".into(),
                body: "Nothing more is recorded from it (the input device disappeared). What \
                       was recorded is kept."
                    .into()
            })
        );
        let mut meeting = lost.clone();
        meeting["stream"] = json!("system");
        assert_eq!(
            notices.read(&meeting, true).notice.unwrap().title,
            "Meeting audio lost"
        );
        let other = json!({"type": "error", "origin": "uplink", "message": "x"});
        assert_eq!(notices.read(&other, true).notice, None);
    }

    #[test]
    fn the_indicator_follows_the_recording_and_a_hidden_stop_says_where_the_audio_is() {
        let mut notices = Notices::default();
        let start = json!({"type": "recording", "state": "recording"});
        assert_eq!(notices.read(&start, true).recording, Some(true));
        assert_eq!(notices.read(&start, true).recording, None);
        let summary = json!({"type": "finished", "session_id": "s1", "last_seq": 12,
                             "uplink": {"pending": 2}, "system": {"uplink": {"pending": 1}},
                             "drained": false});
        let reading = notices.read(&summary, true);
        assert_eq!(reading.recording, Some(false));
        assert_eq!(
            reading.notice.unwrap().body,
            "Session s1, 12 s recorded. 3 s are held on this computer and sent in the background."
        );
        let idle = json!({"type": "recording", "state": "idle"});
        assert_eq!(notices.read(&idle, true), Reading::default());
    }
}
