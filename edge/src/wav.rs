//! `GET /v1/sessions/{id}/audio.wav[?stream=mic|system|mix]` on the edge: the same file as the
//! server gateway's (header, caps and texts from `session_core::wav`), streamed a few
//! seconds ahead of the client, never built in memory (frames from the object's SQLite, see
//! `objects.rs`).
//!
//! Seconds never received are silence (`x-missing-seconds`); a second stored but unreadable
//! (object gone or short) is silence too, counted in `x-unreadable-seconds`.
//!
//! A `Range` request (`bytes=a-b`, `a-`, `-n`) gets 206 with only those bytes, read from only
//! the frames the range covers; one past the end gets 416; one that is ignored (malformed,
//! several ranges) gets the whole file (200). Every answer says `accept-ranges: bytes`. The
//! arithmetic is `session_core::wav_range`, shared with the server gateway.

use std::collections::HashSet;
use std::future::Future;
use std::rc::Rc;

use futures_util::{StreamExt, stream};
use worker::{FixedLengthStream, Headers, Response, ResponseBody};

use crate::error::ApiError;
use crate::objects::SessionObjects;
use crate::session_object::SessionObject;
use contract::protocol::{
    FRAME_BYTES, MISSING_SECONDS_HEADER, SAMPLE_RATE, UNREADABLE_SECONDS_HEADER,
};
use session_core::api_error;
use session_core::ingest::CaptureOrigin;
use session_core::ports::ObjectStorage;
use session_core::seq_set::SeqSet;
use session_core::session_id::SessionId;
use session_core::stream::{STREAM_NAMES, Stream};
use session_core::wav::{FRAME_SAMPLES, data_bytes, interleave, no_audio, too_long, wav_header};
use session_core::wav_range::{self, ACCEPT_RANGES_HEADER, BYTES, ByteRange, RangeAnswer};

/// Frames fetched ahead of the one being sent.
const READ_AHEAD: usize = 8;

/// `range`: the request's `Range` header, if any.
pub async fn serve(
    object: &SessionObject,
    id: &SessionId,
    name: Option<&str>,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let stream = match name {
        Some("mix") => return mix(object, id, range).await,
        None => Stream::Mic,
        Some(name) => Stream::parse(name).map_err(|_| {
            ApiError::BadRequest(format!(
                "unknown stream '{}': use {STREAM_NAMES} or mix",
                name.chars().take(32).collect::<String>()
            ))
        })?,
    };
    let frames = StoredFrames::load(object, id, stream)
        .await?
        .ok_or_else(|| ApiError::NotFound(no_audio(id, stream)))?;
    let seconds = frames.seqs.max();
    let data = data_bytes(seconds * FRAME_SAMPLES as u64, 1).map_err(|cap| {
        ApiError::Unprocessable(too_long(
            id,
            stream.as_str(),
            seconds,
            frames.missing(),
            cap,
        ))
    })?;
    let counts = [
        (MISSING_SECONDS_HEADER, frames.missing()),
        (UNREADABLE_SECONDS_HEADER, frames.unreadable),
    ];
    // Block `i` is seq `i + 1`.
    let block = move |i: u64| {
        let frames = frames.clone();
        async move { frames.read(i + 1).await }
    };
    respond(
        wav_header(1, data),
        &counts,
        range,
        FRAME_BYTES as u64,
        block,
    )
}

/// Both streams as one stereo file: left the mic, right the meeting audio, each placed by the
/// capture time of its first frame.
async fn mix(
    object: &SessionObject,
    id: &SessionId,
    range: Option<&str>,
) -> Result<Response, ApiError> {
    let mic = StoredFrames::load(object, id, Stream::Mic).await?;
    let system = StoredFrames::load(object, id, Stream::System).await?;
    if mic.is_none() && system.is_none() {
        return Err(ApiError::NotFound(format!(
            "no audio stored for session '{id}'"
        )));
    }
    let starts = [&mic, &system].map(|f| f.as_ref().and_then(|f| f.origin).map(|o| o.start_ms()));
    let start = starts.iter().flatten().min().copied().unwrap_or(0);
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
    let missing: u64 = present().map(StoredFrames::missing).sum();
    let data = data_bytes(samples as u64, 2).map_err(|cap| {
        let seconds = (samples as u64).div_ceil(FRAME_SAMPLES as u64);
        ApiError::Unprocessable(too_long(id, "mix", seconds, missing, cap))
    })?;
    let counts = [
        (MISSING_SECONDS_HEADER, missing),
        (
            UNREADABLE_SECONDS_HEADER,
            present().map(|f| f.unreadable).sum(),
        ),
    ];
    let lanes = Rc::new(lanes);
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
            interleave(&left, &right)
        }
    };
    respond(
        wav_header(2, data),
        &counts,
        range,
        2 * FRAME_BYTES as u64,
        block,
    )
}

/// The answer to `range`: the header, then blocks of `block_bytes` made by `block` as the
/// client reads them (a few ahead), only those the range covers, each cut to the range.
fn respond<B, F>(
    header: [u8; 44],
    counts: &[(&str, u64)],
    range: Option<&str>,
    block_bytes: u64,
    block: B,
) -> Result<Response, ApiError>
where
    B: Fn(u64) -> F + 'static,
    F: Future<Output = Vec<u8>> + 'static,
{
    let total = 44
        + u64::from(u32::from_le_bytes(
            header[40..44].try_into().expect("4 bytes"),
        ));
    let (status, range) = match wav_range::answer(range, total) {
        RangeAnswer::Whole => (200, ByteRange::whole(total)),
        RangeAnswer::Partial(range) => (206, range),
        RangeAnswer::Unsatisfiable => return unsatisfiable(total, counts),
    };
    let head = header[range.header()].to_vec();
    let head = stream::iter((!head.is_empty()).then_some(head));
    let blocks = stream::iter(range.blocks(block_bytes))
        .map(move |i| {
            let bytes = block(i);
            async move {
                let mut bytes = bytes.await;
                let keep = range.within(i, block_bytes, bytes.len());
                if keep.len() < bytes.len() {
                    bytes = bytes[keep].to_vec();
                }
                bytes
            }
        })
        .buffered(READ_AHEAD);
    let body = head.chain(blocks).map(Ok::<_, worker::Error>);
    // A plain stream goes out chunked, whatever `content-length` says; a fixed-length one is
    // sent with its length, as the server gateway sends it (players show progress and seek).
    let body: worker::worker_sys::FixedLengthStream =
        FixedLengthStream::wrap(body, range.len()).into();
    let headers = common_headers(counts)?;
    headers.set("content-type", "audio/wav")?;
    if status == 206 {
        headers.set("content-range", &range.content_range(total))?;
    }
    Ok(Response::from_body(ResponseBody::Stream(body.readable()))?
        .with_status(status)
        .with_headers(headers))
}

/// 416 for a range that starts past the end: `content-range: bytes */total`, a `{"detail"}`.
fn unsatisfiable(total: u64, counts: &[(&str, u64)]) -> Result<Response, ApiError> {
    let body = api_error::body(&wav_range::not_satisfiable(total), None);
    let headers = common_headers(counts)?;
    headers.set("content-type", "application/json")?;
    headers.set(
        "content-range",
        &wav_range::unsatisfiable_content_range(total),
    )?;
    Ok(Response::from_bytes(body.to_string().into_bytes())?
        .with_status(416)
        .with_headers(headers))
}

/// What every `audio.wav` answer says: ranges are served, and the counts of silent seconds.
fn common_headers(counts: &[(&str, u64)]) -> Result<Headers, ApiError> {
    let headers = Headers::new();
    headers.set(ACCEPT_RANGES_HEADER, BYTES)?;
    for (name, count) in counts {
        headers.set(name, &count.to_string())?;
    }
    Ok(headers)
}

/// A stream's stored seqs and which of their objects can be read.
#[derive(Clone)]
struct StoredFrames {
    id: SessionId,
    stream: Stream,
    seqs: SeqSet,
    origin: Option<CaptureOrigin>,
    /// Stored seqs whose object is present at full size (from one listing).
    readable: Rc<HashSet<u64>>,
    unreadable: u64,
    objects: SessionObjects,
}

impl StoredFrames {
    async fn load(
        object: &SessionObject,
        id: &SessionId,
        stream: Stream,
    ) -> Result<Option<StoredFrames>, ApiError> {
        let (seqs, origin) = object
            .with_session(id, async |s| {
                Ok((s.stored_seqs(stream).cloned(), s.origin(stream)))
            })
            .await?;
        let Some(seqs) = seqs else {
            return Ok(None);
        };
        let objects = object.objects(id)?;
        let sizes = objects.sizes(&id.chunks_prefix(stream)).await?;
        let readable: HashSet<u64> = seqs
            .iter()
            .filter(|&seq| {
                sizes.get(&id.stream_chunk_key(stream, seq)) == Some(&(FRAME_BYTES as u64))
            })
            .collect();
        let unreadable = seqs.len() - readable.len() as u64;
        Ok(Some(StoredFrames {
            id: id.clone(),
            stream,
            seqs,
            origin,
            readable: Rc::new(readable),
            unreadable,
            objects,
        }))
    }

    fn missing(&self) -> u64 {
        self.seqs.max() - self.seqs.len()
    }

    /// Frame `seq`'s bytes, or silence when it was never stored or cannot be read.
    async fn read(&self, seq: u64) -> Vec<u8> {
        if self.readable.contains(&seq) {
            let key = self.id.stream_chunk_key(self.stream, seq);
            if let Ok(Some(bytes)) = self.objects.get(&key).await
                && bytes.len() == FRAME_BYTES
            {
                return bytes;
            }
        }
        vec![0; FRAME_BYTES]
    }

    /// Fills `out` with this stream's samples for mix samples `first..first + out.len()`,
    /// the stream starting `offset` samples into the mix.
    async fn fill(&self, first: usize, offset: usize, out: &mut [i16]) {
        let end = first + out.len();
        let mut at = first.max(offset);
        while at < end {
            let in_stream = at - offset;
            let seq = (in_stream / FRAME_SAMPLES) as u64 + 1;
            if seq > self.seqs.max() {
                break;
            }
            let within = in_stream % FRAME_SAMPLES;
            let take = (FRAME_SAMPLES - within).min(end - at);
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
