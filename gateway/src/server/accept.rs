//! The accept loop: HTTP/1.1 connections with a header read deadline, upgrades for the ingest
//! socket, and a graceful stop.
//!
//! axum's `serve` has no read deadlines, so a client that opens connections and sends its
//! headers one byte at a time (slowloris) would hold each for ever. Here hyper's own
//! `header_read_timeout` closes a connection that has not sent a complete request head within
//! [`HEADER_READ_TIMEOUT`] of being ready for one (which also ends idle keep-alive
//! connections). Bodies have their own deadline ([`super::extract::BODY_READ_TIMEOUT`]).
//! Only HTTP/1.1 is served: every client of the gateway speaks it, and WebSockets need it.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long a connection may take to send a request's head (and may sit idle between requests).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` turns true, then lets each connection finish the
/// request it is handling and returns once all have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Every connection task holds a receiver of `all_closed`, which nobody sends on: its
    // `closed()` resolves once the last of them is dropped, that is once every connection ended.
    let (all_closed, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, stop, open) = (app.clone(), stop.clone(), open.clone());
        tokio::spawn(async move {
            connection(stream, app, stop).await;
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    all_closed.closed().await;
    Ok(())
}

async fn connection(stream: TcpStream, app: Router, mut stop: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let service = TowerToHyperService::new(app);
    let mut conn = pin!(
        builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
    );
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
