//! A resolve answer as an inference service sends it back (`SpeakerRecord::with_answer`, which
//! the session runs on every 2xx answer up to `MAX_INFERENCE_ANSWER_BYTES`): the gateway must
//! survive a broken or hostile backend. It never panics, and an answer it accepts leaves a
//! session that can still be stored and read back:
//!
//! - the state and the event round-trip through JSON, floats to the last bit (see
//!   `gateway_fuzz::same_json`): the database keeps them as JSON text, and a session that cannot
//!   load them is stuck;
//! - `result.json` holding them reads back (a finalized session rewrites it from what it reads);
//! - the built-in engine's bookkeeping (timeline, cursors, a merge) and a binding work on it.
#![no_main]

use contract::protocol::{FinalResult, SessionState, SpeakerEvent, TimelineTurn};
use contract::stream::Stream;
use gateway_fuzz::same_json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use session_core::speakers::{AttributionUpdate, ResolveInput, SpeakerRecord};

fuzz_target!(|answer: &[u8]| {
    let input = ResolveInput {
        audio: serde_json::json!({"content_b64": "", "format": "wav"}),
        asr_text: Value::Null,
        roster: None,
    };
    let Ok((record, event)) = SpeakerRecord::default().with_answer(&input, answer, 1) else {
        return;
    };
    assert_eq!(record.event_count, 1);
    check_stored(&record.state, &event);

    // The built-in engine's bookkeeping on a state an external service wrote.
    let _ = record.timeline();
    for stream in Stream::ALL {
        let _ = record.attributed_through_ms(stream);
    }
    let first = record.state.clusters.first().map(|c| c.cluster_id.clone());
    let update = AttributionUpdate {
        stream: Stream::System,
        clusters: vec![("sys_1".into(), vec![0.5, 0.5], 2, Value::Null)],
        split: Vec::new(),
        merged: first
            .iter()
            .map(|id| (id.clone(), "sys_1".to_owned()))
            .collect(),
        turns: vec![TimelineTurn {
            start_ms: 0,
            end_ms: 1000,
            cluster_id: "sys_1".into(),
            stream: "system".into(),
        }],
        through_ms: 1000,
    };
    let attributed = record.with_attribution(&update, 2);
    check_stored(&attributed.state, &event);
    if let Some((bound, manual)) = attributed.with_binding("sys_1", "Ada", 3) {
        check_stored(&bound.state, &manual);
    }
});

/// What the gateway keeps round-trips: the state and event rows, and `result.json`.
fn check_stored(state: &SessionState, event: &SpeakerEvent) {
    let row = serde_json::to_string(state).expect("a state serializes");
    let loaded: SessionState = serde_json::from_str(&row).expect("a stored state loads");
    assert!(same_json(&loaded, state), "{state:?} loaded as {loaded:?}");
    let row = serde_json::to_string(event).expect("an event serializes");
    let loaded: SpeakerEvent = serde_json::from_str(&row).expect("a stored event loads");
    assert!(same_json(&loaded, event), "{event:?} loaded as {loaded:?}");

    let result = FinalResult {
        session_id: "s".into(),
        finalized_at: "2024-01-01T00:00:00.000Z".into(),
        state: state.clone(),
        events: vec![event.clone()],
        ingest: None,
        streams: Default::default(),
        metadata: Default::default(),
    };
    let written = serde_json::to_vec_pretty(&result).expect("a result serializes");
    let read: FinalResult = serde_json::from_slice(&written).expect("result.json reads back");
    assert!(
        same_json(&read, &result),
        "{result:?} read back as {read:?}"
    );
}
