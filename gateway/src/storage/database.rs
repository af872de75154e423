//! The SQLite connection, owned by one thread that commits in groups.
//!
//! Every call is a job run inside its own savepoint; the thread takes all jobs that are waiting,
//! runs them in one transaction and commits once, then answers each caller. So many sessions'
//! frames share one commit under load, while a lone frame is committed at once, and no caller
//! hears back before its write is committed (WAL; with [`Durability::Power`] each commit is
//! synced to stable storage, `synchronous=FULL`, else it survives a process kill,
//! `synchronous=NORMAL`). A failing job rolls back to its savepoint without spoiling its
//! neighbours.
//!
//! Reads ([`Database::read`]) have a thread and a read-only connection of their own: with WAL
//! a reader sees the last commit while the writer works, so a `GET state`, a session load or
//! the history list never waits behind a batch of writes. A caller that has awaited a write
//! reads it back.
//!
//! Checkpoints (copying the WAL back into the database file) run on a third thread with its own
//! connection. SQLite's default runs one inside the commit that crosses 1,000 WAL pages, and
//! that commit then waits for two `fsync`s (of the WAL, then of the database file): every ACK
//! of its batch waited with it, a stall every second or two under a thousand live sessions.
//! A passive checkpoint on its own thread waits for no writer, and no writer waits for it.

use std::path::Path;
use std::sync::{Arc, mpsc};

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::core::ports::StorageError;
use crate::storage::Durability;
use crate::storage::frame_index::Unindexed;

/// The database's file inside the data directory.
pub const FILE_NAME: &str = "gateway.sqlite3";

/// Most jobs committed together; bounds the latency a large batch adds to its first caller.
const MAX_BATCH: usize = 256;

/// WAL pages after which a commit asks for a checkpoint (SQLite's own default threshold).
const CHECKPOINT_PAGES: i32 = 1000;

/// What the committing thread runs: a job, which returns how to answer its caller once the
/// batch's commit outcome is known. It gets no connection when no transaction could be begun.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), StorageError>) + Send>;
/// What the reading thread runs.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Handle to the database threads; cheap to clone.
#[derive(Clone)]
pub struct Database {
    jobs: mpsc::Sender<Job>,
    reads: mpsc::Sender<ReadJob>,
    /// Frames written to the log whose location is committed with the frame's row.
    unindexed: Arc<Unindexed>,
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
        let path = dir.join(FILE_NAME);
        let pragmas = format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=5000;"
        );
        let (checkpoint_wanted, checkpoints) = mpsc::sync_channel::<()>(1);
        let conn = Connection::open(&path)
            .and_then(|mut conn| {
                conn.execute_batch(&pragmas)?;
                // Replaces SQLite's automatic checkpoint (which is itself a WAL hook): a commit
                // only asks, and a request already waiting covers this one too.
                conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
                    if pages >= CHECKPOINT_PAGES {
                        let _ = checkpoint_wanted.try_send(());
                    }
                    Ok(())
                }))?;
                // Every statement of the hot paths stays prepared.
                conn.set_prepared_statement_cache_capacity(64);
                super::session_rows::create_schema(&conn)?;
                super::frame_index::create_schema(&conn)?;
                Ok(conn)
            })
            .map_err(|e| StorageError(format!("cannot open the database: {e}")))?;
        // Opened after the writer made the schema and the WAL files.
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|conn| {
            conn.execute_batch("PRAGMA busy_timeout=5000;")?;
            Ok(conn)
        })
        .map_err(|e| StorageError(format!("cannot open the database for reading: {e}")))?;
        // The same `synchronous` as the writer: it decides the checkpoint's syncs.
        let checkpointer = Connection::open(&path)
            .and_then(|conn| conn.execute_batch(&pragmas).map(|()| conn))
            .map_err(|e| StorageError(format!("cannot open the database to checkpoint: {e}")))?;
        std::thread::Builder::new()
            .name("gateway-db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, checkpoints))
            .map_err(|e| StorageError(format!("cannot start the checkpoint thread: {e}")))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gateway-db".into())
            .spawn(move || commit_loop(conn, queue))
            .map_err(|e| StorageError(format!("cannot start the database thread: {e}")))?;
        let (reads, read_queue) = mpsc::channel::<ReadJob>();
        std::thread::Builder::new()
            .name("gateway-db-read".into())
            .spawn(move || {
                while let Ok(job) = read_queue.recv() {
                    job(&reader);
                }
            })
            .map_err(|e| StorageError(format!("cannot start the database reader: {e}")))?;
        Ok(Database {
            jobs,
            reads,
            unindexed: Arc::default(),
        })
    }

    /// The frames logged but not yet recorded, shared with the objects (see [`Unindexed`]).
    pub fn unindexed(&self) -> &Arc<Unindexed> {
        &self.unindexed
    }

    /// Runs the read `f` on the reading connection, in one read transaction (a consistent
    /// snapshot of the last commit), without waiting for writes in progress.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let result = conn.execute_batch("BEGIN").and_then(|()| {
                let value = f(conn);
                let ended = conn.execute_batch("COMMIT");
                value.and_then(|v| ended.map(|()| v))
            });
            if result.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let _ = answer.send(result.map_err(|e| StorageError(format!("database: {e}"))));
        });
        self.reads
            .send(job)
            .map_err(|_| StorageError("the database is closed".into()))?;
        answered
            .await
            .map_err(|_| StorageError("the database reader stopped".into()))?
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
    // Prepared once and cached: a frame's jobs are a few short statements, and parsing these
    // two afresh for every job was a fair share of the thread's time.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
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

/// Runs until the writer's connection (which holds the sender, in its WAL hook) is closed.
fn checkpoint_loop(conn: Connection, requests: mpsc::Receiver<()>) {
    while requests.recv().is_ok() {
        // Passive: copies what no reader still needs, waits for nobody. What it leaves is
        // copied by a later one; the WAL starts over once a checkpoint has copied it all.
        if let Err(err) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            tracing::warn!("database checkpoint failed: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9, item 9: a read answers while a batch of writes is still open.
    #[tokio::test]
    async fn item9_a_read_does_not_wait_for_a_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Durability::Process).unwrap();
        db.call(|conn| conn.execute("CREATE TABLE t (v INTEGER)", []).map(drop))
            .await
            .unwrap();
        db.call(|conn| conn.execute("INSERT INTO t VALUES (1)", []).map(drop))
            .await
            .unwrap();
        // A write that holds its transaction open until the test lets it go.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let writer = db.clone();
        let write = tokio::spawn(async move {
            writer
                .call(move |conn| {
                    conn.execute("INSERT INTO t VALUES (2)", [])?;
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        let count = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            db.read(|conn| conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))),
        )
        .await
        .expect("the read does not wait for the open write")
        .unwrap();
        assert_eq!(
            count, 1,
            "the read sees the last commit, not the write in progress"
        );
        assert!(!write.is_finished());
        release.send(()).unwrap();
        write.await.unwrap().unwrap();
        let count = db
            .read(|conn| conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap();
        assert_eq!(count, 2, "a read after an awaited write sees it");
    }

    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_file_by_the_checkpoint_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Durability::Process).unwrap();
        let file = dir.path().join(FILE_NAME);
        db.call(|conn| conn.execute("CREATE TABLE t (v BLOB)", []).map(drop))
            .await
            .unwrap();
        let before = std::fs::metadata(&file).unwrap().len();
        // One 4 KB row per commit: each commit adds at least a page to the WAL, so this
        // crosses the threshold and asks for a checkpoint.
        for _ in 0..(CHECKPOINT_PAGES + 200) {
            db.call(|conn| {
                conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .map(drop)
            })
            .await
            .unwrap();
        }
        let wanted = before + (CHECKPOINT_PAGES as u64) * 4000;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = std::fs::metadata(&file).unwrap().len();
            if now >= wanted {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file holds {now} bytes, not the rows in the WAL ({wanted})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
