//! The session core: every rule of a session, with no runtime, server or database types.
//!
//! Hosts drive a [`session::Session`] through the storage ports in [`ports`]. The headless
//! server hosts it in a tokio actor over SQLite and `object_store`; a Cloudflare Durable Object
//! could host the same code over its storage and R2.

pub mod caps;
pub mod clock;
pub mod ingest;
#[cfg(test)]
mod memory;
pub mod message;
pub mod ports;
pub mod seq_set;
pub mod session;
pub mod session_id;
pub mod speakers;
pub mod stream;
