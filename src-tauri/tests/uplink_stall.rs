//! Issue 9, item 2: a gateway that accepts the socket, answers `hello`, then stops reading (a
//! hung server, a proxy that froze). Frames keep reaching the spool, the uplink gives up on the
//! silent connection and reconnects, and finishing returns within its deadline with every frame
//! still held.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use recorder::endpoint::GatewayEndpoint;
use recorder::spool::{Durability, Spool, SpooledFrame};
use recorder::uplink::{Backoff, Uplink, UplinkConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Accepts sockets forever; on each, answers the first message (`hello`) with `ready`, then
/// never reads again while holding the connection open.
async fn stalling_gateway(listener: TcpListener) {
    let mut held = Vec::new();
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            continue;
        };
        if let Some(Ok(Message::Text(_hello))) = ws.next().await {
            let ready = r#"{"type":"ready","session_id":"stall","target_sample_rate":16000,"target_channels":1,"target_format":"pcm_s16le","ingest":{"type":"status","session_id":"stall","meeting_id":"stall","last_seq":0,"received_chunks":0,"duplicate_chunks":0,"missing_chunks":0,"bytes_stored":0,"started_at":"2026-11-27T00:00:00Z","updated_at":"2026-11-27T00:00:00Z"}}"#;
            let _ = ws.send(Message::text(ready)).await;
        }
        held.push(ws);
    }
}

fn frame(seq: u64) -> SpooledFrame {
    SpooledFrame {
        seq,
        timestamp_ms: 1_764_000_000_000 + seq * 1000,
        pcm: (0..32_000u32).map(|i| (i as u64 + seq) as u8).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item2_a_gateway_that_stops_reading_costs_no_frame_and_stop_returns_in_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(stalling_gateway(listener));
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), "stall", Durability::Flush).unwrap();
    let mut config = UplinkConfig::new(GatewayEndpoint::parse(&base, None).unwrap(), "stall");
    config.answer_timeout = Duration::from_millis(500);
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        jitter: 0.2,
    };
    config.report_interval = Duration::ZERO;
    let uplink = Uplink::start(config, spool, recorder::events::EventSink::new());
    let mut counters = uplink.counters();
    let sender = uplink.frames();
    for seq in 1..=40 {
        sender.send(frame(seq));
    }
    tokio::time::timeout(
        Duration::from_secs(20),
        counters.wait_for(|c| c.reconnects >= 2 && c.queued == 40),
    )
    .await
    .expect("the silent connections are given up and the frames are spooled")
    .unwrap();

    drop(sender);
    let finishing = Instant::now();
    let outcome = uplink.finish(Duration::from_secs(1)).await;
    let took = finishing.elapsed();
    assert!(took < Duration::from_secs(5), "finish took {took:?}");
    assert!(!outcome.drained);
    assert_eq!((outcome.counters.acked, outcome.counters.pending), (0, 40));
    let spool = Spool::open(dir.path(), "stall", Durability::Flush).unwrap();
    assert_eq!(spool.pending().count(), 40, "every frame is still held");
    println!(
        "stalled gateway: {} reconnects, finish returned in {took:?}",
        outcome.counters.reconnects
    );
}
