//! The interview recorder's gateway: WebSocket audio ingest, durable per-session actors, object
//! storage and the speaker-inference proxy, behind the seed gateway's wire contract.

pub use contract::protocol;
/// The session core lives in its own crate (`session-core`); `gateway::core` is its path here.
pub use session_core as core;

pub mod actor;
pub mod attribution;
pub mod bench;
pub mod config;
pub mod inference;
pub mod limits;
pub mod logs;
pub mod server;
pub mod sessions;
pub mod storage;
