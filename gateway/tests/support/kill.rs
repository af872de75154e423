//! A gateway killed (`kill -9`) while frames are in flight, as the crash and power-cut tests
//! need it.
#![cfg(unix)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use gateway::protocol::{Ack, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use super::child::ChildGateway;
use super::{DEADLINE, chunk, connect, hello};

/// What one streaming round saw before and after its kill.
pub struct CrashOutcome {
    /// Every ACK that reached the client, including those read after the kill was sent.
    pub acks: Vec<Ack>,
    /// Frames written to the socket that were never ACKed: in flight when the kill landed.
    pub never_acked: usize,
}

/// Writes `seqs` as fast as the socket takes them while reading ACKs; after
/// `acks_before_kill` ACKs sends SIGKILL, then reads whatever ACKs the socket still yields.
pub async fn stream_until_crash(
    gw: &mut ChildGateway,
    session: &str,
    seqs: Vec<u64>,
    acks_before_kill: usize,
) -> CrashOutcome {
    // Encoded up front, so the writer only writes.
    let frames: Vec<String> = seqs
        .iter()
        .map(|&seq| chunk(session, seq).to_string())
        .collect();
    let mut socket = connect(&gw.ws(session)).await;
    hello(&mut socket).await;
    let (mut sink, mut stream) = socket.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for text in frames {
                if sink.send(Message::text(text)).await.is_err() {
                    break; // the gateway is gone
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut acks = Vec::new();
    let mut killed = false;
    loop {
        let message = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("an ACK or the end of the socket in time");
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => continue,
        };
        match serde_json::from_str(text.as_str()).expect("a server message") {
            ServerMessage::Ack(ack) => acks.push(ack),
            other => panic!("expected an ACK, got {other:?}"),
        }
        if acks.len() == acks_before_kill && !killed {
            gw.crash().await;
            killed = true;
        }
    }
    assert!(
        killed,
        "the socket ended after {} ACKs, before the kill; log:\n{}",
        acks.len(),
        gw.log()
    );
    tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("the writer stops once the gateway is gone")
        .unwrap();
    CrashOutcome {
        never_acked: sent.load(Ordering::SeqCst) - acks.len(),
        acks,
    }
}
