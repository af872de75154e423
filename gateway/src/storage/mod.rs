//! The server's storage: SQLite for session state, `object_store` for frames and results.
//! Both implement the session core's ports.

pub mod database;
pub mod objects;
mod session_rows;

pub use database::Database;
pub use objects::Objects;
