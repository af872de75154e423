//! The accept loop: HTTP/1.1 connections with a header read deadline, upgrades for the ingest
//! socket, and a graceful stop.
//!
//! axum's `serve` has no read deadlines, so a client that opens connections and sends its
//! headers one byte at a time (slowloris) would hold each for ever. Here hyper's own
//! `header_read_timeout` closes a connection that has not sent a complete request head within
//! [`HEADER_READ_TIMEOUT`] of being ready for one (which also ends idle keep-alive
//! connections). Bodies have their own deadline ([`super::extract::BODY_READ_TIMEOUT`]).
//! Only HTTP/1.1 is served: every client of the gateway speaks it, and WebSockets need it.
//!
//! Each client address may hold at most `max_per_client` connections at once
//! ([`crate::core::caps::MAX_CONNECTIONS_PER_CLIENT`] by default): one more is answered `429`
//! with the cap in its `detail` and closed before its request is read, so a host that opens
//! connections and leaves them idle cannot take every file descriptor.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

/// How long a connection may take to send a request's head (and may sit idle between requests).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` turns true, then lets each connection finish the
/// request it is handling and returns once all have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    max_per_client: usize,
) -> std::io::Result<()> {
    let clients = Clients::default();
    // Every connection task holds a receiver of `all_closed`, which nobody sends on: its
    // `closed()` resolves once the last of them is dropped, that is once every connection ended.
    let (all_closed, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = clients.take(peer.ip(), max_per_client) else {
            tokio::spawn(refuse(stream, max_per_client));
            continue;
        };
        let (app, stop, open) = (app.clone(), stop.clone(), open.clone());
        tokio::spawn(async move {
            connection(Counted { stream, slot }, app, stop).await;
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    all_closed.closed().await;
    Ok(())
}

/// Open connections per client address.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One open connection of a client; dropping it frees the place.
struct Slot {
    clients: Clients,
    ip: IpAddr,
}

impl Clients {
    /// A place for one more connection of `ip`, unless it holds `max` already (0: no cap).
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.0.lock().expect("clients lock");
        let count = open.entry(ip).or_default();
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().expect("clients lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A client's connection holding its place: the place is freed when the connection is, which
/// for a WebSocket is when the socket closes (hyper hands this stream to the upgrade).
struct Counted {
    stream: TcpStream,
    slot: Slot,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Answers a connection over the cap with a 429 and closes it, without reading its request.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = format!(
        r#"{{"detail":"too many connections from this address: at most {max} may be open at once"}}"#
    );
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The address a request came from, for the caps that count per client (an extension of every
/// request).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

async fn connection(stream: Counted, app: Router, mut stop: watch::Receiver<bool>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let client = ClientAddr(stream.slot.ip);
    let service = TowerToHyperService::new(app.map_request(
        move |mut request: axum::extract::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(client);
            request
        },
    ));
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
