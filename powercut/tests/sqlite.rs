//! SQLite in WAL mode through the mount, as the gateway uses it: a writer and a second,
//! read-only connection (so the `-shm` file is shared through mmap), then a power cut with the
//! connections never closed, as a killed process would leave them, then the database opened
//! straight from the backing directory.
//!
//! With `synchronous=FULL` every commit fsyncs the WAL, so every committed row survives. With
//! `synchronous=NORMAL` and no checkpoints nothing after the last sync is fsynced, so rows are
//! lost: that shows the layer really discards.

mod support;

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use support::Disk;

const ROWS: i64 = 40;

/// Opens the writer in WAL mode with `synchronous` and a frames table, and a read-only reader.
fn open(path: &Path, synchronous: &str) -> (Connection, Connection) {
    let writer = Connection::open(path).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    writer
        .execute_batch(&format!(
            "PRAGMA synchronous={synchronous};
             PRAGMA wal_autocheckpoint=0;
             CREATE TABLE frames (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
    let reader = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    (writer, reader)
}

/// Commits `ROWS` frames one transaction each; the reader sees each as it lands.
fn commit_frames(writer: &Connection, reader: &Connection) {
    for seq in 0..ROWS {
        writer
            .execute(
                "INSERT INTO frames (seq, body) VALUES (?1, ?2)",
                (seq, vec![seq as u8; 640]),
            )
            .unwrap();
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM frames", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            seen,
            seq + 1,
            "the reader sees every commit through the shm"
        );
    }
}

/// The frames left in the backing directory's database, after checking it is not corrupt.
fn frames_after_the_cut(disk: &Disk) -> Vec<i64> {
    let db = Connection::open(disk.backing("gateway.sqlite")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut query = db.prepare("SELECT seq FROM frames ORDER BY seq").unwrap();
    query
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn with_synchronous_full_every_committed_row_survives_a_power_cut() {
    let Some(mut disk) = Disk::mount("sqlite synchronous=FULL") else {
        return;
    };
    let (writer, reader) = open(&disk.path("gateway.sqlite"), "FULL");
    commit_frames(&writer, &reader);
    // Never closed, as after kill -9: closing would checkpoint and sync.
    std::mem::forget((writer, reader));

    let summary = disk.cut();

    assert_eq!(
        frames_after_the_cut(&disk),
        (0..ROWS).collect::<Vec<_>>(),
        "{summary}"
    );
}

#[test]
fn with_synchronous_normal_commits_after_the_last_sync_are_lost() {
    let Some(mut disk) = Disk::mount("sqlite synchronous=NORMAL") else {
        return;
    };
    let (writer, reader) = open(&disk.path("gateway.sqlite"), "NORMAL");
    commit_frames(&writer, &reader);
    std::mem::forget((writer, reader));

    let summary = disk.cut();

    let frames = frames_after_the_cut(&disk);
    assert!(
        (frames.len() as i64) < ROWS,
        "at least one unsynced commit must be lost, kept {frames:?} ({summary})"
    );
}
