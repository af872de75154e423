//! `gateway bench` end to end: the load generator's own WebSocket client (zero-copy sends, a
//! zero masking key) against the real child gateway it starts. Every frame it counts as ACKed
//! must be a stored row, in the sessions it names.

use std::process::Command;

#[test]
fn the_bench_streams_every_frame_into_a_real_gateway_and_counts_the_acks() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["bench", "--sessions", "3", "--frames", "5", "--window", "2"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("GATEWAY_INFERENCE", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let acked = stdout
        .lines()
        .find_map(|line| line.strip_prefix("frames acked"))
        .map(|count| count.trim().to_owned());
    assert_eq!(acked.as_deref(), Some("15"), "{stdout}");

    let db = rusqlite::Connection::open(dir.path().join("log").join("gateway.sqlite3")).unwrap();
    let rows: Vec<(String, i64, i64)> = db
        .prepare("SELECT safe_id, COUNT(*), MAX(seq) FROM frames GROUP BY safe_id ORDER BY 1")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("bench-0".to_owned(), 5, 5),
            ("bench-1".to_owned(), 5, 5),
            ("bench-2".to_owned(), 5, 5)
        ]
    );
}
