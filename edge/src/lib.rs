//! The interview gateway on Cloudflare: the same wire contract as the server gateway, hosted by
//! a Worker and one Durable Object per session.
//!
//! - [`worker`]: the Worker's `fetch`. Routes a request ([`route`]), checks the API key
//!   ([`auth`]), reads and checks its body, and hands it to the session's Durable Object.
//! - [`session_object`]: the Durable Object, the only writer of its session. It runs
//!   `session-core` one request at a time, over [`storage`] (the object's SQLite storage) and
//!   [`objects`] (an R2 bucket); [`socket`] is its ingest WebSocket (hibernation API),
//!   [`wav`] its `audio.wav`, [`inference`] the resolve proxy.
//! - [`directory`]: the one Durable Object that knows which sessions exist and their order;
//!   [`history`] is the Worker's `GET /v1/sessions` over it and the sessions' own objects.
//! - [`error`]: every HTTP failure and its `{"detail"}` answer; [`config`]: bindings and
//!   settings.
//!
//! The session rules themselves live in `session-core`, shared with the server gateway; this
//! crate only hosts them.

pub mod auth;
pub mod config;
pub mod directory;
pub mod error;
pub mod history;
pub mod inference;
pub mod objects;
pub mod route;
pub mod session_object;
pub mod socket;
pub mod storage;
pub mod wav;
pub mod worker;

/// The Worker's entry point.
#[::worker::event(fetch)]
async fn fetch(
    request: ::worker::Request,
    env: ::worker::Env,
    _ctx: ::worker::Context,
) -> ::worker::Result<::worker::Response> {
    worker::handle(request, env).await
}

/// Milliseconds since the Unix epoch, from the runtime's clock (`SystemTime` does not exist on
/// `wasm32-unknown-unknown`).
pub fn now_ms() -> contract::clock::EpochMs {
    ::worker::Date::now().as_millis()
}
