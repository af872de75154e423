//! The uplink: gets every spooled frame to the gateway, whatever happens to the connection.
//!
//! One task owns the [`Spool`] and the WebSocket. Frames come in through an unbounded channel
//! ([`FrameSender`]), so the audio path never waits for the network: the task writes each frame
//! to the spool first, then sends it. On a healthy connection up to `max_in_flight` chunks are
//! outstanding; each ACK deletes its frame from the spool. On any disconnect, refusal or silence
//! longer than `answer_timeout`, the task reconnects with capped exponential backoff and sends
//! every frame still in the spool again, in seq order — the gateway ACKs the ones it already
//! has as `duplicate`. Meanwhile new frames keep landing in the spool, so an outage of any
//! length costs disk space, not audio.
//!
//! The gateway answers the chunks of one socket in order. Its `{"type":"error"}` names the chunk's
//! seq when it could read one; the seed's did not, so an error without a seq is attributed to the
//! oldest chunk still waiting for an answer. An error that says `retry` (the gateway's storage
//! failed; it closes the socket with 1011) is never held against the frame: it is sent again,
//! without limit, after the reconnect. A frame the gateway refuses otherwise is retried a few
//! times and then moved aside to the spool's `rejected/` directory: counted and reported, and
//! sent again on the next start of the session (see [`Spool::open`]).

mod backoff;
mod connection;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use contract::protocol::{AckStatus, ClientMessage, FRAME_BYTES, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use backoff::Backoff;
pub use connection::{Connection, ConnectionError, Incoming};

use crate::endpoint::GatewayEndpoint;
use crate::events::{ConnectionState, ErrorOrigin, Event, EventSink, UplinkCounters};
use crate::spool::{Added, Spool, SpooledFrame};
use crate::stream::Stream;
use stats::LatencyStats;

/// How the uplink behaves; [`UplinkConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub endpoint: GatewayEndpoint,
    pub session_id: String,
    /// The session's stream this uplink carries; each has its own socket and seq space.
    pub stream: Stream,
    /// Chunks sent and not yet answered, at most. Bounds the gateway's and the socket's buffers.
    pub max_in_flight: usize,
    /// A `ping` goes out after this much time without one.
    pub ping_interval: Duration,
    /// With chunks or a ping outstanding, this much silence from the gateway means the
    /// connection is dead. Also bounds connecting plus `hello`/`ready`.
    pub answer_timeout: Duration,
    pub backoff: Backoff,
    /// Gateway errors a frame may get before it is moved aside.
    pub max_chunk_attempts: u32,
    /// Delay before a frame that got a gateway error is sent again.
    pub error_retry_delay: Duration,
    /// Counters are published at most this often (and whenever the uplink stops).
    pub report_interval: Duration,
}

impl UplinkConfig {
    /// Defaults: 32 chunks in flight, ping every 10 s, 15 s answer timeout, backoff 200 ms → 5 s,
    /// 3 attempts per refused frame, counters at most 4 times a second.
    pub fn new(endpoint: GatewayEndpoint, session_id: impl Into<String>) -> Self {
        UplinkConfig {
            endpoint,
            session_id: session_id.into(),
            stream: Stream::Mic,
            max_in_flight: 32,
            ping_interval: Duration::from_secs(10),
            answer_timeout: Duration::from_secs(15),
            backoff: Backoff::default(),
            max_chunk_attempts: 3,
            error_retry_delay: Duration::from_secs(1),
            report_interval: Duration::from_millis(250),
        }
    }
}

/// How an uplink run ended.
#[derive(Debug, Clone)]
pub struct UplinkOutcome {
    pub counters: UplinkCounters,
    /// Whether the spool was empty at the end: every frame ACKed (or rejected).
    pub drained: bool,
}

/// Hands frames to the uplink without ever blocking. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FrameSender(mpsc::UnboundedSender<SpooledFrame>);

impl FrameSender {
    /// Queues a frame; `false` once the uplink has stopped.
    pub fn send(&self, frame: SpooledFrame) -> bool {
        self.0.send(frame).is_ok()
    }
}

/// A running uplink task.
pub struct Uplink {
    frames: FrameSender,
    abort: watch::Sender<bool>,
    counters: watch::Receiver<UplinkCounters>,
    task: JoinHandle<UplinkOutcome>,
}

impl Uplink {
    /// Starts the uplink on the current tokio runtime, sending whatever `spool` already holds
    /// first.
    pub fn start(config: UplinkConfig, spool: Spool, events: EventSink) -> Uplink {
        let (frames_tx, frames_rx) = mpsc::unbounded_channel();
        let (abort_tx, abort_rx) = watch::channel(false);
        let counters = UplinkCounters {
            recovered: spool.len() as u64,
            pending: spool.len() as u64,
            ..UplinkCounters::default()
        };
        let (counters_tx, counters_rx) = watch::channel(counters.clone());
        let worker = Worker {
            config,
            spool,
            events,
            input: frames_rx,
            input_open: true,
            abort: abort_rx,
            counters,
            counters_tx,
            latency: LatencyStats::default(),
            last_report: Instant::now(),
            dirty: true,
            sends: HashMap::new(),
            refusals: HashMap::new(),
            connected_before: false,
        };
        Uplink {
            frames: FrameSender(frames_tx),
            abort: abort_tx,
            counters: counters_rx,
            task: tokio::spawn(worker.run()),
        }
    }

    /// A handle for the audio path to queue frames with.
    pub fn frames(&self) -> FrameSender {
        self.frames.clone()
    }

    /// The latest published counters.
    pub fn counters(&self) -> watch::Receiver<UplinkCounters> {
        self.counters.clone()
    }

    /// Ends the run: no more frames will come (every [`FrameSender`] clone must be dropped too),
    /// so the uplink sends what the spool holds and stops when it is empty — or after `timeout`,
    /// leaving the rest in the spool for the next run.
    pub async fn finish(self, timeout: Duration) -> UplinkOutcome {
        let Uplink {
            frames,
            abort,
            mut task,
            ..
        } = self;
        drop(frames);
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(outcome) => outcome.expect("uplink task does not panic"),
            Err(_) => {
                let _ = abort.send(true);
                task.await.expect("uplink task does not panic")
            }
        }
    }
}

/// How one connection ended.
enum End {
    /// Input closed and the spool is empty.
    Drained,
    /// Told to stop.
    Aborted,
    /// The connection failed; reconnect.
    Lost(String),
}

/// The state of the uplink task.
struct Worker {
    config: UplinkConfig,
    spool: Spool,
    events: EventSink,
    input: mpsc::UnboundedReceiver<SpooledFrame>,
    /// False once every [`FrameSender`] is gone.
    input_open: bool,
    abort: watch::Receiver<bool>,
    counters: UplinkCounters,
    counters_tx: watch::Sender<UplinkCounters>,
    latency: LatencyStats,
    last_report: Instant,
    /// Counters changed since the last report.
    dirty: bool,
    /// Times each pending frame was sent in this run (to count re-sends); dropped on ACK.
    sends: HashMap<u64, u32>,
    /// Gateway errors each pending frame got; dropped on ACK.
    refusals: HashMap<u64, u32>,
    connected_before: bool,
}

impl Worker {
    async fn run(mut self) -> UplinkOutcome {
        let mut attempt: u32 = 0;
        loop {
            if self.finished() {
                break;
            }
            self.set_state(
                if attempt == 0 {
                    ConnectionState::Connecting
                } else {
                    ConnectionState::Reconnecting {
                        attempt,
                        retry_in_ms: 0,
                    }
                },
                None,
            );
            let url = self
                .config
                .endpoint
                .stream_ws(&self.config.session_id, self.config.stream);
            let key = self.config.endpoint.api_key().map(str::to_owned);
            let timeout = self.config.answer_timeout;
            let open = async move { Connection::open(&url, key.as_deref(), timeout).await };
            let problem = match self.absorbing(open).await {
                None => break,
                Some(Ok((conn, _ready))) => {
                    attempt = 0;
                    if self.connected_before {
                        self.counters.reconnects += 1;
                    }
                    self.connected_before = true;
                    self.set_state(ConnectionState::Connected, None);
                    match self.serve(conn).await {
                        End::Drained | End::Aborted => break,
                        End::Lost(problem) => problem,
                    }
                }
                Some(Err(e)) => e.to_string(),
            };
            if self.finished() {
                break;
            }
            attempt = attempt.saturating_add(1);
            let delay = self.config.backoff.delay(attempt);
            self.set_state(
                ConnectionState::Reconnecting {
                    attempt,
                    retry_in_ms: delay.as_millis() as u64,
                },
                Some(problem),
            );
            if self.absorbing(tokio::time::sleep(delay)).await.is_none() {
                break;
            }
        }
        if !self.spool.is_empty() {
            self.set_state(
                ConnectionState::Offline,
                Some(format!(
                    "stopped with {} frames in the spool at {}; they are sent on the next start",
                    self.spool.len(),
                    self.spool.dir().display()
                )),
            );
        }
        self.report(true);
        UplinkOutcome {
            counters: self.snapshot(),
            drained: self.spool.is_empty(),
        }
    }

    /// Nothing left to do: no more input will come and the spool is empty.
    fn finished(&self) -> bool {
        !self.input_open && self.spool.is_empty()
    }

    /// Drives `work` to completion while spooling incoming frames. `None` if told to abort,
    /// or if the input closed with the spool empty (nothing left to send).
    async fn absorbing<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                frame = self.input.recv(), if self.input_open => self.accept(frame),
                _ = self.abort.changed() => return None,
            }
            if self.finished() {
                return None;
            }
            self.report(false);
        }
    }

    /// Spools a frame from the audio path (or notes that the input closed).
    fn accept(&mut self, frame: Option<SpooledFrame>) {
        let Some(frame) = frame else {
            self.input_open = false;
            return;
        };
        match self.spool.add(&frame) {
            Ok(added) => {
                self.counters.queued += 1;
                self.dirty = true;
                if let Added::Held(e) = added {
                    self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Spool,
                        format!(
                            "frame {} is held in memory ({} so far) because the spool cannot \
                             write it: {e}; it is sent as usual, but quitting now would lose \
                             what is held",
                            frame.seq,
                            self.spool.held()
                        ),
                    );
                }
            }
            Err(e) => self.events.stream_error(
                self.config.stream,
                ErrorOrigin::Spool,
                format!("frame {} could not be spooled and is lost: {e}", frame.seq),
            ),
        }
    }

    /// Sends spooled frames over `conn` until it breaks, the work is done, or abort.
    async fn serve(&mut self, mut conn: Connection) -> End {
        let mut flight = Flight::default();
        let mut watchdog = tokio::time::interval(Duration::from_millis(500));
        let mut last_heard = Instant::now();
        let mut last_ping = Instant::now();
        let mut ping_outstanding = false;
        loop {
            let was_idle = flight.sent.is_empty() && !ping_outstanding;
            if let Err(problem) = self.fill(&mut conn, &mut flight).await {
                return End::Lost(problem);
            }
            if was_idle && !flight.sent.is_empty() {
                // Silence only counts while something is waiting for an answer.
                last_heard = Instant::now();
            }
            if self.finished() {
                self.report(true);
                conn.close("recording finished", Duration::from_secs(2))
                    .await;
                return End::Drained;
            }
            self.report(false);
            let retry_due = flight.retry.front().map(|(due, _)| *due);
            tokio::select! {
                incoming = conn.recv() => {
                    last_heard = Instant::now();
                    match incoming {
                        Ok(Incoming::Message(message)) => {
                            if let ServerMessage::Pong { .. } = message {
                                ping_outstanding = false;
                            }
                            if let Err(problem) = self.answer(message, &mut flight) {
                                return End::Lost(problem);
                            }
                        }
                        Ok(Incoming::Other) => {}
                        Err(e) => return End::Lost(e.to_string()),
                    }
                }
                frame = self.input.recv(), if self.input_open => self.accept(frame),
                _ = self.abort.changed() => return End::Aborted,
                _ = tokio::time::sleep_until(retry_due.unwrap_or_else(Instant::now).into()), if retry_due.is_some() => {}
                _ = watchdog.tick() => {
                    let waiting = !flight.sent.is_empty() || ping_outstanding;
                    if waiting && last_heard.elapsed() > self.config.answer_timeout {
                        return End::Lost(format!(
                            "no answer from the gateway for {:?}",
                            self.config.answer_timeout
                        ));
                    }
                    if last_ping.elapsed() >= self.config.ping_interval {
                        if let Err(e) = conn.send(&ClientMessage::Ping).await {
                            return End::Lost(e.to_string());
                        }
                        if !waiting {
                            last_heard = Instant::now();
                        }
                        last_ping = Instant::now();
                        ping_outstanding = true;
                    }
                    self.report(false);
                }
            }
        }
    }

    /// Sends frames until `max_in_flight` are outstanding or there is nothing to send:
    /// due retries first, then the spool in seq order.
    async fn fill(&mut self, conn: &mut Connection, flight: &mut Flight) -> Result<(), String> {
        while flight.sent.len() < self.config.max_in_flight {
            let seq = match flight.retry.front() {
                Some(&(due, seq)) if due <= Instant::now() => {
                    flight.retry.pop_front();
                    seq
                }
                _ => match self.spool.pending_after(flight.cursor) {
                    Some(seq) => {
                        flight.cursor = seq;
                        seq
                    }
                    None => break,
                },
            };
            if flight.sent.contains_key(&seq) || !self.spool.contains(seq) {
                continue;
            }
            let frame = match self.spool.read(seq) {
                Ok(frame) => frame,
                Err(e) => {
                    self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Spool,
                        format!("frame {seq} cannot be read back and is set aside: {e}"),
                    );
                    let _ = self.spool.reject(seq);
                    self.counters.rejected += 1;
                    continue;
                }
            };
            conn.send_frame(&self.config.session_id, &frame)
                .await
                .map_err(|e| e.to_string())?;
            flight.sent.insert(seq, Instant::now());
            flight.order.push_back(seq);
            let sends = self.sends.entry(seq).or_default();
            *sends += 1;
            self.counters.sent += 1;
            if *sends > 1 {
                self.counters.resent += 1;
            }
            self.dirty = true;
        }
        Ok(())
    }

    /// Handles one message from the gateway. `Err` means the connection is done for.
    fn answer(&mut self, message: ServerMessage, flight: &mut Flight) -> Result<(), String> {
        match message {
            ServerMessage::Ack(ack) => {
                if let Some(sent_at) = flight.sent.remove(&ack.seq) {
                    self.latency.record(sent_at.elapsed());
                }
                flight.forget_answered();
                self.counters.gateway_last_seq = ack.last_seq;
                self.counters.gateway_missing = ack.missing_count;
                self.counters.gateway_duplicates = ack.duplicate_count;
                match self.spool.remove(ack.seq) {
                    Ok(true) => {
                        self.counters.acked += 1;
                        self.counters.bytes_acked += FRAME_BYTES as u64;
                        match ack.status {
                            AckStatus::Stored => self.counters.stored += 1,
                            AckStatus::Duplicate => self.counters.duplicate += 1,
                        }
                    }
                    Ok(false) => {}
                    Err(e) => self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Spool,
                        e.to_string(),
                    ),
                }
                self.sends.remove(&ack.seq);
                self.refusals.remove(&ack.seq);
                self.dirty = true;
                Ok(())
            }
            ServerMessage::Error { detail, seq, retry } => {
                self.counters.errors += 1;
                self.dirty = true;
                // Gateways that name the frame are believed; for the seed's, it is the oldest.
                let seq = seq
                    .filter(|s| flight.sent.contains_key(s))
                    .or_else(|| flight.oldest_unanswered());
                let Some(seq) = seq else {
                    self.events
                        .error(ErrorOrigin::Gateway, format!("gateway error: {detail}"));
                    return Ok(());
                };
                flight.sent.remove(&seq);
                if retry {
                    // The gateway's storage failed, not the frame: send it again, as often as
                    // it takes (the gateway closes this socket; the reconnect backs off).
                    self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Gateway,
                        format!("frame {seq} not stored by the gateway, sending again: {detail}"),
                    );
                    flight
                        .retry
                        .push_back((Instant::now() + self.config.error_retry_delay, seq));
                    return Ok(());
                }
                let refusals = self.refusals.entry(seq).or_default();
                *refusals += 1;
                if *refusals >= self.config.max_chunk_attempts {
                    self.refusals.remove(&seq);
                    self.sends.remove(&seq);
                    let moved = self.spool.reject(seq);
                    self.counters.rejected += 1;
                    self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Gateway,
                        format!(
                            "frame {seq} refused {} times, set aside ({}): {detail}",
                            self.config.max_chunk_attempts,
                            match moved {
                                Ok(()) => "kept under the spool's rejected/".to_owned(),
                                Err(e) => e.to_string(),
                            }
                        ),
                    );
                } else {
                    self.events.stream_error(
                        self.config.stream,
                        ErrorOrigin::Gateway,
                        format!("frame {seq} refused, retrying: {detail}"),
                    );
                    flight
                        .retry
                        .push_back((Instant::now() + self.config.error_retry_delay, seq));
                }
                Ok(())
            }
            ServerMessage::Closing { reason } => Err(format!("gateway closing: {reason}")),
            ServerMessage::Pong { .. }
            | ServerMessage::Ready(_)
            | ServerMessage::Status(_)
            | ServerMessage::Authenticated => Ok(()),
        }
    }

    fn set_state(&mut self, state: ConnectionState, detail: Option<String>) {
        self.events.emit(Event::Connection {
            stream: self.config.stream,
            state,
            holding: self.spool.len() as u64,
            detail,
        });
    }

    fn snapshot(&mut self) -> UplinkCounters {
        self.counters.pending = self.spool.len() as u64;
        self.counters.latency = self.latency.snapshot();
        self.counters.clone()
    }

    /// Publishes the counters if they changed and the last report is old enough (or `force`).
    fn report(&mut self, force: bool) {
        if !(force || self.dirty && self.last_report.elapsed() >= self.config.report_interval) {
            return;
        }
        let counters = self.snapshot();
        self.counters_tx.send_replace(counters.clone());
        self.events.emit(Event::Uplink {
            stream: self.config.stream,
            counters,
        });
        self.last_report = Instant::now();
        self.dirty = false;
    }
}

/// Chunks on the current connection.
#[derive(Default)]
struct Flight {
    /// Sent and not answered: seq → when it was sent.
    sent: HashMap<u64, Instant>,
    /// Send order of the chunks in `sent` (and of some already answered, dropped lazily).
    order: VecDeque<u64>,
    /// Highest seq taken from the spool on this connection; the next one is after it.
    cursor: u64,
    /// Frames to send again after a gateway error, by due time.
    retry: VecDeque<(Instant, u64)>,
}

impl Flight {
    /// Drops answered chunks from the front of `order`.
    fn forget_answered(&mut self) {
        while let Some(seq) = self.order.front() {
            if self.sent.contains_key(seq) {
                break;
            }
            self.order.pop_front();
        }
    }

    /// The chunk the gateway's next answer is about.
    fn oldest_unanswered(&mut self) -> Option<u64> {
        self.forget_answered();
        self.order.pop_front()
    }
}
