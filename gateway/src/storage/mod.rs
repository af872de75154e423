//! The server's storage: SQLite for session state, `object_store` for frames and results.
//! Both implement the session core's ports.

pub mod database;
pub mod frame_index;
pub mod frame_log;
mod history;
pub mod objects;
mod session_rows;

pub use database::Database;
pub use history::{ListedSession, ListedStream, SessionRow};
pub use objects::{Objects, read_local};

/// What an ACK promises about the frame and counters it acknowledges (`--durability`,
/// `GATEWAY_DURABILITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// They survive a power cut or an OS crash: each object file and its directory are
    /// fsynced, and SQLite syncs its log on every commit (`synchronous=FULL`), before the ACK.
    Power,
    /// They survive the gateway process being killed (`kill -9`), not a power cut: the OS
    /// writes them out in its own time. Faster on slow disks.
    #[default]
    Process,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Power => "power",
            Durability::Process => "process",
        }
    }
}

/// How a local objects directory stores frames (`--frame-store`, `GATEWAY_FRAME_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FrameStore {
    /// Appended to the frame log, many frames per write and per sync.
    #[default]
    Log,
    /// One file per frame at its key (the design before the log; kept to compare).
    Files,
}

impl FrameStore {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameStore::Log => "log",
            FrameStore::Files => "files",
        }
    }
}
