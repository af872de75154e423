//! Session actors: the only writers of a session's state.
//!
//! Each live session id has one task that owns its [`Session`] and runs the commands sent to its
//! mailbox one at a time, in arrival order, so two sockets and any number of HTTP calls on the
//! same session can never interleave half-way through an update. The [`Registry`] maps safe
//! names to mailboxes and never holds two for one name. An actor that has been idle for a while,
//! with nobody holding its handle, retires; the next request starts a new one from storage.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::core::ports::StorageError;
use crate::core::session::{Session, SessionError};
use crate::core::session_id::SessionId;
use crate::storage::{Database, Objects};

/// The core session as the server hosts it.
pub type ServerSession = Session<Database, Objects>;

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
/// A command: a function the actor runs against its session.
type Command = Box<dyn for<'a> FnOnce(&'a mut ServerSession) -> BoxFuture<'a> + Send>;

/// Commands waiting in one mailbox before senders wait (back-pressure on a fast socket).
const MAILBOX: usize = 64;

/// A clone of a session's mailbox. While any handle lives, the actor does not retire.
#[derive(Clone)]
pub struct SessionHandle {
    id: SessionId,
    mailbox: mpsc::Sender<Command>,
    /// Held for the whole of a resolve (state read, inference call, state write) so that two
    /// resolves of one session cannot both start from the same state; the actor itself stays
    /// free for frames while inference is thinking.
    pub resolve_lock: Arc<tokio::sync::Mutex<()>>,
    /// Only held, by a socket's handle (and its clones): counts the session's open sockets, so
    /// a delete can refuse while one is streaming into the session.
    _socket: Option<Arc<()>>,
}

impl SessionHandle {
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Runs `f` on the session inside its actor and returns what it returns.
    pub async fn run<T, F>(&self, f: F) -> Result<T, SessionError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(
                &'a mut ServerSession,
            )
                -> Pin<Box<dyn Future<Output = Result<T, SessionError>> + Send + 'a>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let requested = self.id.clone();
        let command: Command = Box::new(move |session: &mut ServerSession| {
            Box::pin(async move {
                let result = match session.check_id(&requested) {
                    Ok(()) => f(session).await,
                    Err(err) => Err(err),
                };
                let _ = answer.send(result);
            })
        });
        let gone = || SessionError::Storage(StorageError("the session could not be loaded".into()));
        self.mailbox.send(command).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Live sessions by safe name.
pub struct Registry {
    actors: Mutex<Actors>,
    database: Database,
    objects: Objects,
    idle_after: Duration,
    /// Most live sessions one client address may have started (0: no cap).
    max_per_client: usize,
}

/// The running actors, and how many of them each client address started.
#[derive(Default)]
struct Actors {
    by_name: HashMap<String, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

impl Actors {
    fn remove(&mut self, name: &str) {
        let Some(entry) = self.by_name.remove(name) else {
            return;
        };
        if let Some(client) = entry.client
            && let Some(count) = self.per_client.get_mut(&client)
        {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&client);
            }
        }
    }
}

struct Entry {
    /// The address whose request started the actor (`None`: the gateway's own work).
    client: Option<IpAddr>,
    mailbox: mpsc::Sender<Command>,
    resolve_lock: Arc<tokio::sync::Mutex<()>>,
    /// One more strong count for every socket handle alive (see [`Registry::open_sockets`]).
    sockets: Arc<()>,
}

impl Registry {
    pub fn new(
        database: Database,
        objects: Objects,
        idle_after: Duration,
        max_per_client: usize,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            actors: Mutex::default(),
            database,
            objects,
            idle_after,
            max_per_client,
        })
    }

    /// The handle of `id`'s actor, starting it if it is not running. A `client` that already
    /// started its cap of live sessions cannot start another (a running one is always open
    /// to it); the gateway's own work (`None`) is never refused.
    pub fn session(
        self: &Arc<Self>,
        id: &SessionId,
        client: Option<IpAddr>,
    ) -> Result<SessionHandle, SessionError> {
        self.handle(id, false, client)
    }

    /// The handle a socket holds for its life: as [`Registry::session`], and counted as an
    /// open socket of the session while it (or a clone) lives.
    pub fn socket_session(
        self: &Arc<Self>,
        id: &SessionId,
        client: Option<IpAddr>,
    ) -> Result<SessionHandle, SessionError> {
        self.handle(id, true, client)
    }

    /// How many socket handles of `id`'s session are alive.
    pub fn open_sockets(&self, id: &SessionId) -> usize {
        let actors = self.actors.lock().expect("registry lock");
        actors
            .by_name
            .get(id.safe())
            .map_or(0, |entry| Arc::strong_count(&entry.sockets) - 1)
    }

    fn handle(
        self: &Arc<Self>,
        id: &SessionId,
        socket: bool,
        client: Option<IpAddr>,
    ) -> Result<SessionHandle, SessionError> {
        let mut actors = self.actors.lock().expect("registry lock");
        let Actors {
            by_name,
            per_client,
        } = &mut *actors;
        if !by_name.contains_key(id.safe())
            && let Some(client) = client
        {
            let started = per_client.entry(client).or_default();
            if self.max_per_client > 0 && *started >= self.max_per_client {
                return Err(SessionError::LiveSessionCap {
                    cap: self.max_per_client,
                });
            }
            *started += 1;
        }
        let entry = by_name.entry(id.safe().to_owned()).or_insert_with(|| {
            let (mailbox, inbox) = mpsc::channel(MAILBOX);
            tokio::spawn(Arc::clone(self).run_actor(id.clone(), mailbox.downgrade(), inbox));
            Entry {
                client,
                mailbox,
                resolve_lock: Arc::default(),
                sockets: Arc::default(),
            }
        });
        Ok(SessionHandle {
            id: id.clone(),
            mailbox: entry.mailbox.clone(),
            resolve_lock: Arc::clone(&entry.resolve_lock),
            _socket: socket.then(|| Arc::clone(&entry.sockets)),
        })
    }

    /// Runs a read on `id`'s session without starting an actor: in the running actor if there
    /// is one, else on the session as loaded from storage for this call alone. With no actor
    /// running nobody is writing the session, so what is stored is current; an unknown id
    /// reads as an empty session and leaves nothing behind (no actor, no row).
    pub async fn read<T, F>(self: &Arc<Self>, id: &SessionId, f: F) -> Result<T, SessionError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(
                &'a mut ServerSession,
            )
                -> Pin<Box<dyn Future<Output = Result<T, SessionError>> + Send + 'a>>
            + Send
            + 'static,
    {
        let live = {
            let actors = self.actors.lock().expect("registry lock");
            actors.by_name.get(id.safe()).map(|entry| SessionHandle {
                id: id.clone(),
                mailbox: entry.mailbox.clone(),
                resolve_lock: Arc::clone(&entry.resolve_lock),
                _socket: None,
            })
        };
        if let Some(handle) = live {
            return handle.run(f).await;
        }
        let mut session =
            Session::open(id.clone(), self.database.clone(), self.objects.clone()).await?;
        session.check_id(id)?;
        f(&mut session).await
    }

    /// Forgets every actor: each finishes the commands already in its mailbox and stops once
    /// the last handle to it is gone (used at shutdown, so storage closes behind them).
    pub fn close(&self) {
        *self.actors.lock().expect("registry lock") = Actors::default();
    }

    /// Number of running actors.
    pub fn live_sessions(&self) -> usize {
        self.actors.lock().expect("registry lock").by_name.len()
    }

    async fn run_actor(
        self: Arc<Self>,
        id: SessionId,
        own: mpsc::WeakSender<Command>,
        mut inbox: mpsc::Receiver<Command>,
    ) {
        let opened = Session::open(id.clone(), self.database.clone(), self.objects.clone()).await;
        let mut session = match opened {
            Ok(session) => session,
            Err(err) => {
                tracing::error!(session = %id.escaped(), error = %err, "could not load session");
                // Queued commands are dropped, so their callers hear the load failed; the
                // next request tries again with a fresh actor.
                self.forget(id.safe(), &own);
                return;
            }
        };
        loop {
            match tokio::time::timeout(self.idle_after, inbox.recv()).await {
                Ok(Some(command)) => command(&mut session).await,
                Ok(None) => return,
                Err(_idle) => {
                    if self.retire(id.safe(), &own, &inbox) {
                        return;
                    }
                }
            }
        }
    }

    /// Removes an idle actor's entry if nobody else holds its mailbox and nothing is queued.
    /// Taking a handle needs the registry lock, so no command can arrive after this says yes.
    fn retire(
        &self,
        name: &str,
        own: &mpsc::WeakSender<Command>,
        inbox: &mpsc::Receiver<Command>,
    ) -> bool {
        let mut actors = self.actors.lock().expect("registry lock");
        let Some(entry) = actors.by_name.get(name) else {
            return true;
        };
        let is_own = own
            .upgrade()
            .is_some_and(|own| own.same_channel(&entry.mailbox));
        // The registry's own sender is the only one left: no socket or request holds a handle.
        let unused =
            entry.mailbox.strong_count() == 1 && Arc::strong_count(&entry.resolve_lock) == 1;
        if is_own && unused && inbox.is_empty() {
            actors.remove(name);
            true
        } else {
            false
        }
    }

    fn forget(&self, name: &str, own: &mpsc::WeakSender<Command>) {
        let mut actors = self.actors.lock().expect("registry lock");
        let is_own = own.upgrade().is_some_and(|own| {
            actors
                .by_name
                .get(name)
                .is_some_and(|e| own.same_channel(&e.mailbox))
        });
        if is_own {
            actors.remove(name);
        }
    }
}
