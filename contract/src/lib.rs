//! The wire contract between the recorder and every gateway host, and the few rules both sides
//! must apply the same way:
//!
//! - [`protocol`]: every message and body, with the seed's field names, and the contract's
//!   constants (frame bytes, rate, format, headers, state keys);
//! - [`session_id`]: which ids are accepted and the object keys under `sessions/<safe id>/`;
//! - [`stream`]: a session's streams (`mic`, `system`);
//! - [`clock`]: time as the contract writes it (RFC 3339 with milliseconds);
//! - [`secret`]: API keys given directly or as files.
//!
//! No runtime, server, database or storage types: the crate compiles for
//! `wasm32-unknown-unknown`, so a Cloudflare Worker can host the same contract.

pub mod clock;
pub mod protocol;
pub mod secret;
pub mod session_id;
pub mod stream;
