//! Open WebSocket connections, counted so shutdown can wait for their close frames.
//!
//! An upgraded socket lives outside axum's graceful shutdown: the server task ends while the
//! socket's task is still sending its close frame, and a process that returns then cuts the
//! socket without one. Each socket holds a sender of a channel nobody sends on; the receiver
//! hears `None` once the last sender is dropped, that is once every socket has finished.
//! The same handles count the sockets open now, for `/metrics`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Held for the life of every open socket (and by the router's state, until it is dropped).
#[derive(Clone)]
pub struct OpenSockets {
    /// Only held: its drop is the signal.
    _held: mpsc::Sender<()>,
    /// Sockets inside [`OpenSockets::track`] now.
    open: Arc<AtomicUsize>,
}

/// Counts one socket as open for as long as it lives (also when its task is dropped).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves once every [`OpenSockets`] handle is gone.
pub struct AllClosed(mpsc::Receiver<()>);

pub fn open_sockets() -> (OpenSockets, AllClosed) {
    let (held, closed) = mpsc::channel(1);
    let open = Arc::default();
    (OpenSockets { _held: held, open }, AllClosed(closed))
}

impl OpenSockets {
    /// Runs `socket`, counted as open until it returns.
    pub fn track<F: Future>(&self, socket: F) -> impl Future<Output = F::Output> + use<F> {
        let held = self.clone();
        async move {
            held.open.fetch_add(1, Ordering::Relaxed);
            let counted = Counted(Arc::clone(&held.open));
            let served = socket.await;
            drop(counted);
            drop(held);
            served
        }
    }

    /// How many sockets are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl AllClosed {
    pub async fn wait(mut self) {
        // Nothing is ever sent: `recv` returns `None` when the last sender is dropped.
        let _ = self.0.recv().await;
    }
}
