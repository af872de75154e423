//! A recording's audio streams: the microphone and, optionally, the system (meeting) audio.
//!
//! The names are the wire's, defined once for both sides in the gateway's core (a socket
//! names its stream with `?stream=<name>`; none means the mic). This module adds where a
//! stream's spool and local copy live.

use std::path::{Path, PathBuf};

pub use contract::stream::Stream;

/// The directory of `stream`'s spool and local copy inside a session directory: the mic's is
/// the session directory itself (its layout predates streams), any other stream's is
/// `streams/<name>/` with the same layout inside.
pub fn stream_dir(session_dir: &Path, stream: Stream) -> PathBuf {
    match stream {
        Stream::Mic => session_dir.to_path_buf(),
        other => session_dir.join("streams").join(other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mic_keeps_the_session_directory_and_system_audio_gets_a_subfolder() {
        let session = Path::new("/spool/s-1");
        assert_eq!(stream_dir(session, Stream::Mic), session);
        assert_eq!(
            stream_dir(session, Stream::System),
            Path::new("/spool/s-1/streams/system")
        );
    }
}
