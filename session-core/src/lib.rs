//! The session core: every rule of a session, with no runtime, server or database types.
//!
//! Hosts drive a [`session::Session`] through the storage ports in [`ports`]. The headless
//! server hosts it in a tokio actor over SQLite and `object_store`; a Cloudflare Durable Object
//! could host the same code over its storage and R2. The wire contract, session ids, streams and
//! the contract's clock live in the `contract` crate and are re-exported here.

pub use contract::{clock, session_id, stream};

pub mod api_error;
pub mod caps;
pub mod history;
pub mod ingest;
#[cfg(test)]
mod memory;
pub mod message;
pub mod origin;
pub mod ports;
pub mod seq_set;
pub mod session;
pub mod socket;
pub mod speakers;
pub mod wav;
pub mod wav_range;
