//! The audio streams of a session: the microphone (the seed's only stream) and the meeting
//! audio the computer plays. Each has its own seq space, counters and object keys.

use std::fmt;

/// One of a session's audio streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// The interviewer's microphone: the seed's stream, whose keys and messages are unchanged.
    Mic,
    /// What the computer plays (the remote side of a call).
    System,
}

/// The names a client may choose, for error texts.
pub const STREAM_NAMES: &str = "mic or system";

/// Why a stream name was refused (a 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream '{0}': use {STREAM_NAMES}")]
pub struct UnknownStream(pub String);

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::Mic, Stream::System];

    pub fn parse(name: &str) -> Result<Stream, UnknownStream> {
        match name {
            "mic" => Ok(Stream::Mic),
            "system" => Ok(Stream::System),
            // Echo at most a short prefix: the name comes from a stranger.
            other => Err(UnknownStream(other.chars().take(32).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Mic => "mic",
            Stream::System => "system",
        }
    }

    /// Who speaks on this stream unless named: the microphone hears the interviewer, the
    /// meeting audio the other side of the call.
    pub fn role(self) -> &'static str {
        match self {
            Stream::Mic => "interviewer",
            Stream::System => "remote",
        }
    }

    /// How the built-in engine's cluster ids on this stream begin, so the voices of the two
    /// streams, clustered apart, never share an id.
    pub fn cluster_prefix(self) -> &'static str {
        match self {
            Stream::Mic => "spk_",
            Stream::System => "sys_",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused_briefly() {
        for stream in Stream::ALL {
            assert_eq!(Stream::parse(stream.as_str()), Ok(stream));
        }
        assert_eq!(
            Stream::parse("Mic").unwrap_err().to_string(),
            "unknown stream 'Mic': use mic or system"
        );
        let long = "x".repeat(100);
        assert_eq!(Stream::parse(&long).unwrap_err().0.len(), 32);
    }
}
