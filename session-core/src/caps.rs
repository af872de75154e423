//! Every cap on what one client can make the gateway keep or produce, in one place.
//!
//! Each cap is checked where its body or answer is parsed, before anything is stored: a request
//! over a cap is refused with a 4xx whose `detail` names the cap, and the session is left as it
//! was. The values are generous for a real interview (a panel of people, a day of audio) and
//! small enough that no single session can grow the database, the memory of a `finalize` or a
//! download without bound. Process limits (open files) are in the gateway's `limits` module; the size of a
//! whole HTTP body is with the gateway's extractor (`server::extract::MAX_BODY_BYTES`, 8 MiB) and of a
//! WebSocket message in [`contract::protocol::MAX_WS_MESSAGE_BYTES`].

/// Most entries in a resolve's `roster`. An interview has a handful of people and a large
/// meeting's invite list a hundred or so; the roster is stored in the state and sent to
/// inference with every resolve, so it must stay small.
pub const MAX_ROSTER_ENTRIES: usize = 100;

/// Longest speaker name, in characters: a roster entry's `name` and a name the interviewer
/// binds to a cluster. Real names (with titles and a company) fit in well under 200.
pub const MAX_SPEAKER_NAME_CHARS: usize = 200;

/// Longest roster `email`, in characters: 254 is the most an address can have (RFC 5321's
/// path limit less its brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Highest frame `seq` a chunk may carry: a frame a second for 136 years. Everything derived
/// from a seq (object keys, offsets in samples and bytes, the capture clock in ms) then stays
/// far inside 64 bits; a seq near `u64::MAX` overflowed them (the fuzz target `message` checks
/// it: seq 10^16 overflowed `CaptureOrigin::start_ms`).
pub const MAX_SEQ: u64 = u32::MAX as u64;

/// Latest `timestamp_ms` a chunk may carry: the last millisecond of the year 9999 (what
/// RFC 3339 can write). Streams are aligned by differences of capture times in ms and then in
/// samples, which stay inside 64 bits below it.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Longest `x-idempotency-key`, in characters. The recorder sends `<session id>:<first>-<last>`
/// (a 128-character id plus two seqs); 256 leaves room for other clients' prefixes and UUIDs.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;

/// Stored resolve answers kept per session for replay; storing one more drops the oldest. A
/// replay is for a retry or a resumed recorder resending its latest windows, which come
/// within a few requests of the original, so the newest 32 cover them, and a session keeps
/// at most 32 answers however long it runs.
pub const MAX_REPLAYS_PER_SESSION: usize = 32;

/// Most speaker events (resolve answers and the interviewer's corrections) one session logs.
/// `finalize` writes them all into `result.json`, so this bounds its memory and size
/// (~300 bytes an event: about 6 MB). One resolve every 5 s fills it after 27 hours.
/// Once full, resolves and bindings are refused (409) until the session is finalized and
/// recording goes on under a new id; replays and `finalize` still answer.
pub const MAX_EVENTS_PER_SESSION: u64 = 20_000;

/// Largest resolve answer taken from an external inference service, in bytes. An answer
/// carries the whole `updated_state` (a 256-float centroid per cluster is ~5 KB), which is
/// stored and sent back with the next resolve; 2 MiB is hundreds of clusters. A larger answer
/// is a broken or hostile backend: 502, state unchanged.
pub const MAX_INFERENCE_ANSWER_BYTES: usize = 2 * 1024 * 1024;

/// Deepest nesting of arrays and objects in a resolve answer (a real one nests 6 levels: the
/// centroids). What is kept from an answer is written again up to 2 levels deeper
/// (`result.json` holds each event's `evidence` inside `events`), and serde_json reads at most
/// 127: an answer nested 126 levels was stored, and then the session's `result.json` could not
/// be read back to be rewritten (the fuzz target `inference_answer` checks that it reads back).
pub const MAX_ANSWER_NESTING: usize = 64;

/// Largest `finalize` `metadata`, in bytes of compact JSON. It is the client's notes about the
/// interview (title, people, links), copied into `result.json` on every finalize.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Longest `audio.wav`, in seconds (24 h). Missing seconds are served as silence, so a session
/// with frames 1 and 134 217 would otherwise stream 4.3 GB, nearly all of it zeros; no
/// interview runs a day. A stereo `mix` is also bound by what a WAV header can say (32-bit
/// sizes: 67 108 s, about 18.6 h).
pub const MAX_WAV_SECONDS: u64 = 24 * 60 * 60;

/// Most connections (HTTP requests in flight or kept alive, and WebSockets) one client address
/// may hold open at once. A recorder holds two or three (mic, meeting audio, a resolve); an
/// office behind one NAT address with dozens of interviewers stays well under 256, while one
/// host opening thousands of idle connections cannot exhaust the gateway's file descriptors.
/// `gateway bench`, which plays thousands of recorders from one address, turns it off.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 256;

/// Most sessions one client address may keep live (in memory, with an actor) at once. A
/// recorder keeps one (two streams share it) and a server relaying many recorders from one
/// address a few hundred; an idle session leaves memory after a minute, so the cap bounds what
/// one address can make the gateway hold, not what it can record over a day. 0: no cap.
pub const MAX_LIVE_SESSIONS_PER_CLIENT: usize = 256;
