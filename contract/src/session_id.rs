//! Session ids: which are accepted, and the storage-safe name each one is kept under.

use std::fmt;

use crate::stream::Stream;

/// Longest accepted session id, in characters, after URL decoding.
pub const MAX_SESSION_ID_CHARS: usize = 128;

/// A session id as the client sent it (URL-decoded), known to be acceptable.
///
/// Invariant: 1..=128 characters, not `.` or `..`. Its [`SessionId::safe`] form contains only
/// `[A-Za-z0-9._-]`, so every object key built from it stays inside `sessions/<safe id>/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId {
    raw: String,
    safe: String,
}

/// Why a session id was refused (each maps to a 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    #[error("session_id is required")]
    Empty,
    #[error("session_id must be at most {MAX_SESSION_ID_CHARS} characters")]
    TooLong,
    #[error("session_id must not be '.' or '..'")]
    DotSegment,
}

impl SessionId {
    /// Checks an already URL-decoded id.
    pub fn parse(raw: &str) -> Result<SessionId, SessionIdError> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(SessionIdError::Empty);
        }
        if chars > MAX_SESSION_ID_CHARS {
            return Err(SessionIdError::TooLong);
        }
        if raw == "." || raw == ".." {
            return Err(SessionIdError::DotSegment);
        }
        Ok(SessionId {
            raw: raw.to_owned(),
            safe: safe_name(raw),
        })
    }

    /// The id as the client knows it; it is what answers carry.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The id with every character outside `[A-Za-z0-9._-]` replaced by `_` (the seed's rule).
    /// Objects and database rows are keyed by this name.
    pub fn safe(&self) -> &str {
        &self.safe
    }

    /// Key of the object holding the mic's frame `seq`:
    /// `sessions/<safe id>/chunks/<seq, 8 digits>.pcm` (the seed's key).
    pub fn chunk_key(&self, seq: u64) -> String {
        self.stream_chunk_key(Stream::Mic, seq)
    }

    /// Key of frame `seq` of `stream`: the mic's is the seed's; another stream's frames live
    /// under `sessions/<safe id>/streams/<stream>/chunks/`.
    pub fn stream_chunk_key(&self, stream: Stream, seq: u64) -> String {
        format!("{}{:08}.pcm", self.chunks_prefix(stream), seq)
    }

    /// The folder of `stream`'s frame objects, ending in `/`.
    pub fn chunks_prefix(&self, stream: Stream) -> String {
        match stream {
            Stream::Mic => format!("sessions/{}/chunks/", self.safe),
            other => format!("sessions/{}/streams/{}/chunks/", self.safe, other),
        }
    }

    /// The folder of every object of the session (frames of all streams, the result),
    /// ending in `/`.
    pub fn prefix(&self) -> String {
        format!("sessions/{}/", self.safe)
    }

    /// Key of the finalized result document.
    pub fn result_key(&self) -> String {
        format!("sessions/{}/result.json", self.safe)
    }
}

/// A session id as logs show it: control characters and quotes escaped, so an id holding a
/// line break cannot forge a log line (see [`SessionId::escaped`]).
pub struct EscapedId<'a>(&'a str);

impl fmt::Display for EscapedId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_debug())
    }
}

impl SessionId {
    /// The id for logs (answers carry it as sent: [`SessionId::as_str`]).
    pub fn escaped(&self) -> EscapedId<'_> {
        EscapedId(&self.raw)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn safe_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_show_an_id_with_its_control_characters_escaped() {
        let id = SessionId::parse("a\nINFO forged line\t\"x\"").unwrap();
        assert_eq!(id.escaped().to_string(), "a\\nINFO forged line\\t\\\"x\\\"");
        assert_eq!(id.as_str(), "a\nINFO forged line\t\"x\"");
    }

    #[test]
    fn unsafe_characters_become_underscores_in_keys() {
        let id = SessionId::parse("a b/..%2F").unwrap();
        assert_eq!(id.safe(), "a_b_.._2F");
        assert_eq!(id.as_str(), "a b/..%2F");
        assert_eq!(id.chunk_key(7), "sessions/a_b_.._2F/chunks/00000007.pcm");
        assert_eq!(id.result_key(), "sessions/a_b_.._2F/result.json");
    }

    #[test]
    fn multibyte_characters_count_once_and_become_one_underscore() {
        let id = SessionId::parse("é").unwrap();
        assert_eq!(id.safe(), "_");
        assert!(SessionId::parse(&"é".repeat(128)).is_ok());
        assert_eq!(
            SessionId::parse(&"é".repeat(129)),
            Err(SessionIdError::TooLong)
        );
    }

    #[test]
    fn empty_long_and_dot_ids_are_refused() {
        assert_eq!(SessionId::parse(""), Err(SessionIdError::Empty));
        assert_eq!(SessionId::parse("."), Err(SessionIdError::DotSegment));
        assert_eq!(SessionId::parse(".."), Err(SessionIdError::DotSegment));
        assert!(SessionId::parse("...").is_ok());
        assert!(SessionId::parse(&"x".repeat(128)).is_ok());
        assert_eq!(
            SessionId::parse(&"x".repeat(129)).unwrap_err().to_string(),
            "session_id must be at most 128 characters"
        );
    }

    #[test]
    fn seq_is_zero_padded_to_eight_digits_and_grows_past_them() {
        let id = SessionId::parse("s").unwrap();
        assert_eq!(id.chunk_key(1), "sessions/s/chunks/00000001.pcm");
        assert_eq!(id.chunk_key(123_456_789), "sessions/s/chunks/123456789.pcm");
        assert_eq!(
            id.stream_chunk_key(Stream::System, 2),
            "sessions/s/streams/system/chunks/00000002.pcm"
        );
    }
}
