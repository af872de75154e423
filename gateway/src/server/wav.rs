//! `GET /v1/sessions/{id}/audio.wav[?stream=mic|system|mix]`: a stream's stored frames joined
//! in seq order, or both streams as one stereo file (left mic, right meeting audio) aligned by
//! capture time. Streamed, never built in memory: a header, then each second fetched from the
//! object store as the client reads (a few ahead).
//!
//! Seconds never received are silence (`x-missing-seconds`). A second that was stored but
//! cannot be read (object gone or cut short) is silence too, counted in `x-unreadable-seconds`,
//! so one damaged object does not cut the whole download.
//!
//! A `Range` request (`bytes=a-b`, `a-`, `-n`) gets 206 with only those bytes, read from only
//! the frames the range covers; one past the end gets 416; one this host ignores (malformed,
//! several ranges) gets the whole file (200). Every answer says `accept-ranges: bytes`.
//!
//! The header, the length caps, the refusal texts and the range arithmetic are
//! `session_core::wav` and `session_core::wav_range`, shared with the edge host.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use crate::core::api_error;
use crate::core::ingest::CaptureOrigin;
use crate::core::seq_set::SeqSet;
use crate::core::session_id::SessionId;
use crate::core::stream::{STREAM_NAMES, Stream};
use crate::core::wav::{FRAME_SAMPLES, data_bytes, no_audio, too_long, wav_header};
use crate::core::wav_range::{self, ACCEPT_RANGES_HEADER, BYTES, ByteRange, RangeAnswer};
use crate::protocol::{
    FRAME_BYTES, MISSING_SECONDS_HEADER, SAMPLE_RATE, UNREADABLE_SECONDS_HEADER,
};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{SessionPath, StreamName};
use crate::storage::Objects;

/// Frames fetched ahead of the one being sent.
const READ_AHEAD: usize = 8;
static SILENCE: [u8; FRAME_BYTES] = [0; FRAME_BYTES];

pub async fn audio(
    State(app): State<AppState>,
    SessionPath(id): SessionPath,
    StreamName(name): StreamName,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A `Range` that is not text is as malformed as any other: ignored.
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let range = range.as_deref();
    match name.as_deref() {
        Some("mix") => mix(app, id, range).await,
        other => {
            let stream = match other {
                None => Stream::Mic,
                Some(name) => Stream::parse(name).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "unknown stream '{}': use {STREAM_NAMES} or mix",
                        name.chars().take(32).collect::<String>()
                    ))
                })?,
            };
            mono(app, id, stream, range).await
        }
    }
}

/// One stream as it was stored.
async fn mono(
    app: AppState,
    id: SessionId,
    stream: Stream,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let frames = StoredFrames::load(&app, &id, stream)
        .await?
        .ok_or_else(|| ApiError::NotFound(no_audio(&id, stream)))?;
    let seconds = frames.seqs.max();
    let data_bytes = data_bytes(seconds * FRAME_SAMPLES as u64, 1).map_err(|cap| {
        ApiError::Unprocessable(too_long(
            &id,
            stream.as_str(),
            seconds,
            frames.missing(),
            cap,
        ))
    })?;
    let headers = frames.headers();
    // Block `i` is seq `i + 1`.
    let block = move |i: u64| {
        let frames = frames.clone();
        async move { frames.read(i + 1).await }
    };
    Ok(respond(
        wav_header(1, data_bytes),
        headers,
        range,
        FRAME_BYTES as u64,
        block,
    ))
}

/// Both streams as one stereo file: left the mic, right the meeting audio, each placed by the
/// capture time of its first frame.
async fn mix(app: AppState, id: SessionId, range: Option<&str>) -> Result<Response, ApiError> {
    let mic = StoredFrames::load(&app, &id, Stream::Mic).await?;
    let system = StoredFrames::load(&app, &id, Stream::System).await?;
    if mic.is_none() && system.is_none() {
        return Err(ApiError::NotFound(format!(
            "no audio stored for session '{id}'"
        )));
    }
    let starts = [&mic, &system].map(|f| f.as_ref().and_then(|f| f.origin).map(|o| o.start_ms()));
    let start = starts.iter().flatten().min().copied().unwrap_or(0);
    // Offsets in samples; a stream without a capture time starts with the mix.
    let offset =
        |i: usize| starts[i].map_or(0, |s| ((s - start) as usize) * SAMPLE_RATE as usize / 1000);
    let lanes = [(mic, offset(0)), (system, offset(1))];
    let samples = lanes
        .iter()
        .map(|(f, off)| {
            f.as_ref()
                .map_or(0, |f| off + f.seqs.max() as usize * FRAME_SAMPLES)
        })
        .max()
        .unwrap_or(0);
    let present = || lanes.iter().filter_map(|(f, _)| f.as_ref());
    let data_bytes = data_bytes(samples as u64, 2).map_err(|cap| {
        let seconds = (samples as u64).div_ceil(FRAME_SAMPLES as u64);
        let missing = present().map(StoredFrames::missing).sum();
        ApiError::Unprocessable(too_long(&id, "mix", seconds, missing, cap))
    })?;
    let headers = vec![
        (
            MISSING_SECONDS_HEADER,
            present().map(StoredFrames::missing).sum(),
        ),
        (
            UNREADABLE_SECONDS_HEADER,
            present().map(|f| f.unreadable).sum(),
        ),
    ];
    let lanes = Arc::new(lanes);
    // Block `i` is mix samples `i * FRAME_SAMPLES..`, a second of both lanes (the last may be
    // shorter).
    let block = move |block: u64| {
        let lanes = lanes.clone();
        async move {
            let first = block as usize * FRAME_SAMPLES;
            let len = FRAME_SAMPLES.min(samples - first);
            let mut left = vec![0i16; len];
            let mut right = vec![0i16; len];
            for ((frames, offset), out) in lanes.iter().zip([&mut left, &mut right]) {
                if let Some(frames) = frames {
                    frames.fill(first, *offset, out).await;
                }
            }
            Bytes::from(crate::core::wav::interleave(&left, &right))
        }
    };
    Ok(respond(
        wav_header(2, data_bytes),
        headers,
        range,
        2 * FRAME_BYTES as u64,
        block,
    ))
}

/// A stream's stored seqs and which of their objects can be read.
#[derive(Clone)]
struct StoredFrames {
    id: SessionId,
    stream: Stream,
    seqs: SeqSet,
    origin: Option<CaptureOrigin>,
    /// Stored seqs whose object is present at full size (from one listing).
    readable: Arc<HashSet<u64>>,
    unreadable: u64,
    objects: Objects,
}

impl StoredFrames {
    async fn load(
        app: &AppState,
        id: &SessionId,
        stream: Stream,
    ) -> Result<Option<StoredFrames>, ApiError> {
        let Some((seqs, origin)) = app.sessions.stored_audio(id, stream).await? else {
            return Ok(None);
        };
        let objects = app.sessions.objects().clone();
        let sizes = objects.sizes(&id.chunks_prefix(stream)).await?;
        let readable: HashSet<u64> = seqs
            .iter()
            .filter(|&seq| {
                sizes.get(&id.stream_chunk_key(stream, seq)) == Some(&(FRAME_BYTES as u64))
            })
            .collect();
        let unreadable = seqs.len() - readable.len() as u64;
        if unreadable > 0 {
            tracing::warn!(session = %id.escaped(), %stream, unreadable, "stored frames that cannot be read are served as silence");
        }
        Ok(Some(StoredFrames {
            id: id.clone(),
            stream,
            seqs,
            origin,
            readable: Arc::new(readable),
            unreadable,
            objects,
        }))
    }

    fn missing(&self) -> u64 {
        self.seqs.max() - self.seqs.len()
    }

    fn headers(&self) -> Vec<(&'static str, u64)> {
        vec![
            (MISSING_SECONDS_HEADER, self.missing()),
            (UNREADABLE_SECONDS_HEADER, self.unreadable),
        ]
    }

    /// Frame `seq`'s bytes, or silence when it was never stored or cannot be read.
    async fn read(&self, seq: u64) -> Bytes {
        if !self.readable.contains(&seq) {
            return Bytes::from_static(&SILENCE);
        }
        let key = self.id.stream_chunk_key(self.stream, seq);
        match self.objects.get(&key).await {
            Ok(Some(bytes)) if bytes.len() == FRAME_BYTES => bytes,
            // Gone since the listing: still silence rather than a cut download.
            _ => {
                tracing::warn!(key, "a frame could not be read while serving audio");
                Bytes::from_static(&SILENCE)
            }
        }
    }

    /// Fills `out` with this stream's samples for mix samples `first..first + out.len()`,
    /// the stream starting `offset` samples into the mix.
    async fn fill(&self, first: usize, offset: usize, out: &mut [i16]) {
        let end = first + out.len();
        let (from, to) = (first.max(offset), end);
        if from >= to {
            return;
        }
        let mut at = from;
        while at < to {
            let in_stream = at - offset;
            let seq = (in_stream / FRAME_SAMPLES) as u64 + 1;
            if seq > self.seqs.max() {
                break;
            }
            let within = in_stream % FRAME_SAMPLES;
            let take = (FRAME_SAMPLES - within).min(to - at);
            let frame = self.read(seq).await;
            for (i, pair) in frame[within * 2..(within + take) * 2]
                .chunks_exact(2)
                .enumerate()
            {
                out[at - first + i] = i16::from_le_bytes([pair[0], pair[1]]);
            }
            at += take;
        }
    }
}

/// The answer to `range` (the request's `Range`, if any): the header, then blocks of
/// `block_bytes` made by `block` as the client reads them (a few ahead), only those the range
/// covers, each cut to the range.
fn respond<B, F>(
    header_bytes: [u8; 44],
    counts: Vec<(&'static str, u64)>,
    range: Option<&str>,
    block_bytes: u64,
    block: B,
) -> Response
where
    B: Fn(u64) -> F + Send + 'static,
    F: Future<Output = Bytes> + Send + 'static,
{
    let total = 44 + u64::from(u32::from_le_bytes(header_bytes[40..44].try_into().unwrap()));
    let (status, range) = match wav_range::answer(range, total) {
        RangeAnswer::Whole => (StatusCode::OK, ByteRange::whole(total)),
        RangeAnswer::Partial(range) => (StatusCode::PARTIAL_CONTENT, range),
        RangeAnswer::Unsatisfiable => return unsatisfiable(total, counts),
    };
    let head = Bytes::copy_from_slice(&header_bytes[range.header()]);
    let head = stream::iter((!head.is_empty()).then_some(head));
    let blocks = stream::iter(range.blocks(block_bytes))
        .map(move |i| {
            let bytes = block(i);
            async move {
                let bytes = bytes.await;
                let keep = range.within(i, block_bytes, bytes.len());
                bytes.slice(keep)
            }
        })
        .buffered(READ_AHEAD);
    let body = head.chain(blocks).map(Ok::<_, std::convert::Infallible>);
    let mut response = (status, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::try_from(range.content_range(total)).expect("ASCII"),
        );
    }
    insert_common(headers, counts);
    response
}

/// 416 for a range that starts past the end: `content-range: bytes */total`, a `{"detail"}`.
fn unsatisfiable(total: u64, counts: Vec<(&'static str, u64)>) -> Response {
    let detail = wav_range::not_satisfiable(total);
    let mut response = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        axum::Json(api_error::body(&detail, None)),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_RANGE,
        HeaderValue::try_from(wav_range::unsatisfiable_content_range(total)).expect("ASCII"),
    );
    insert_common(headers, counts);
    response
}

/// What every `audio.wav` answer says: ranges are served, and the counts of silent seconds.
fn insert_common(headers: &mut HeaderMap, counts: Vec<(&'static str, u64)>) {
    headers.insert(
        HeaderName::from_static(ACCEPT_RANGES_HEADER),
        HeaderValue::from_static(BYTES),
    );
    for (name, count) in counts {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(count));
    }
}
