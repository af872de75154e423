//! The interview recorder's gateway: WebSocket audio ingest, durable per-session actors, object
//! storage and the speaker-inference proxy, behind the seed gateway's wire contract.

pub mod core;
pub mod protocol;
pub mod actor;
pub mod storage;
pub mod inference;
pub mod server;
pub mod sessions;
pub mod config;
pub mod bench;
pub mod limits;
