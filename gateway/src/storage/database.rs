//! The SQLite connection, owned by one thread that commits in groups.
//!
//! Every call is a job run inside its own savepoint; the thread takes all jobs that are waiting,
//! runs them in one transaction and commits once, then answers each caller. So many sessions'
//! frames share one commit under load, while a lone frame is committed at once, and no caller
//! hears back before its write is committed (WAL; with [`Durability::Power`] each commit is
//! synced to stable storage, `synchronous=FULL`, else it survives a process kill,
//! `synchronous=NORMAL`). A failing job rolls back to its savepoint without spoiling its
//! neighbours.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::core::ports::StorageError;
use crate::storage::Durability;

/// Most jobs committed together; bounds the latency a large batch adds to its first caller.
const MAX_BATCH: usize = 256;

/// What the committing thread runs: a job, which returns how to answer its caller once the
/// batch's commit outcome is known. It gets no connection when no transaction could be begun.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// Handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Database {
    jobs: mpsc::Sender<Job>,
}

impl Database {
    /// Opens (creating if needed) `<dir>/gateway.sqlite3` and starts its thread.
    pub fn open(dir: &Path, durability: Durability) -> Result<Database, StorageError> {
        let synchronous = match durability {
            Durability::Power => "FULL",
            Durability::Process => "NORMAL",
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create the data directory: {e}")))?;
        let conn = Connection::open(dir.join("gateway.sqlite3"))
            .and_then(|conn| {
                conn.execute_batch(&format!(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=5000;"
                ))?;
                super::session_rows::create_schema(&conn)?;
                Ok(conn)
            })
            .map_err(|e| StorageError(format!("cannot open the database: {e}")))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gateway-db".into())
            .spawn(move || commit_loop(conn, queue))
            .map_err(|e| StorageError(format!("cannot start the database thread: {e}")))?;
        Ok(Database { jobs })
    }

    /// Runs `f` in the next committed batch and returns its result once that batch is durable.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(rusqlite::Error::InvalidQuery),
            };
            Box::new(move |committed: Result<(), StorageError>| {
                let outcome = committed
                    .and_then(|()| result.map_err(|e| StorageError(format!("database: {e}"))));
                let _ = answer.send(outcome);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StorageError("the database is closed".into()))?;
        answered
            .await
            .map_err(|_| StorageError("the database thread stopped".into()))?
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE job")?;
            Ok(value)
        }
        Err(err) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(err)
        }
    }
}

/// Runs until every [`Database`] handle is dropped.
fn commit_loop(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| StorageError(format!("database: {e}")));
        if let Err(err) = begun {
            // A job never runs outside a transaction; its caller hears why.
            for job in batch {
                job(None)(Err(err.clone()));
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(Some(&conn))).collect();
        let committed = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            StorageError(format!("database commit failed: {e}"))
        });
        for reply in replies {
            reply(committed.clone());
        }
    }
}
