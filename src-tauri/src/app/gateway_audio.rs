//! A session's audio that only its gateway has, played without downloading it first: the
//! player's server ([`super::audio_server`]) answers each request of the player with the part
//! it asks for, read from the gateway's `audio.wav` as it goes.
//!
//! The player's `Range` goes to the gateway as it is. A gateway that honours it answers 206,
//! and that answer is passed on. One that does not (this version's gateway generates
//! `audio.wav` from the stored frames as it sends it, always whole, with its length known from
//! the start) answers 200 with that length: the bytes before the range are then skipped here
//! as they arrive, the rest passed on as the 206 the player asked for, by the same rules as a
//! file's ([`slice`]). Either way playback starts with the first bytes, a seek is one request,
//! and nothing is held in memory or written to disk.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use futures_util::{Stream as ByteStream, StreamExt as _};
use recorder::endpoint::{CallError, GatewayEndpoint};
use recorder::events::Stream;

use super::audio_server::{Slice, slice};

/// How long the gateway may take to start answering one request of the player.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// One stream of a session on a gateway, as the player plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAudio {
    pub endpoint: GatewayEndpoint,
    pub session_id: String,
    pub stream: Stream,
}

impl GatewayAudio {
    /// Asks the gateway for the WAV's header alone: whether it has the audio at all, said in
    /// words before the player is given an address it could only fail on.
    pub async fn check(&self) -> anyhow::Result<()> {
        self.open(Some("bytes=0-43")).await.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "the gateway did not give the audio of {}",
                self.session_id
            ))
        })?;
        Ok(())
    }

    /// The answer to one request of the player (`range`: its `Range` header).
    pub async fn answer(&self, range: Option<&str>) -> Response {
        let upstream = match self.open(range).await {
            Ok(upstream) => upstream,
            Err(CallError::Refused { status: 416, .. }) => {
                log::info!("player: 416 for range {range:?} from the gateway");
                return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            }
            Err(CallError::Refused { status: 404, .. }) => {
                return (StatusCode::NOT_FOUND, "the gateway has no such audio").into_response();
            }
            Err(e) => {
                log::warn!("player: the gateway did not give the audio: {e}");
                return (
                    StatusCode::BAD_GATEWAY,
                    "the gateway did not give the audio",
                )
                    .into_response();
            }
        };
        let length = upstream.content_length();
        let ranged = upstream.status() == reqwest::StatusCode::PARTIAL_CONTENT;
        let content_range = upstream
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = upstream
            .bytes_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let builder = Response::builder()
            .header(header::CONTENT_TYPE, "audio/wav")
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CACHE_CONTROL, "no-store");
        if ranged {
            // The gateway sent the range itself.
            let content_range = content_range.unwrap_or_default();
            log::info!(
                "player: 206 {} from the gateway",
                content_range.replace('/', " of ")
            );
            let mut builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, content_range);
            if let Some(length) = length {
                builder = builder.header(header::CONTENT_LENGTH, length);
            }
            return builder
                .body(Body::from_stream(body))
                .expect("a valid response");
        }
        // The whole file: its length says where the range lies. Without one (a gateway that
        // streams with no length) the range cannot be placed, and the whole file is the
        // answer RFC 9110 allows.
        let Some(len) = length else {
            log::info!("player: 200 from the gateway, length unknown");
            return builder
                .status(StatusCode::OK)
                .body(Body::from_stream(body))
                .expect("a valid response");
        };
        match slice(range, len) {
            Slice::Whole => {
                log::info!(
                    "player: 200 bytes 0-{} of {len} from the gateway",
                    len.saturating_sub(1)
                );
                builder
                    .status(StatusCode::OK)
                    .header(header::CONTENT_LENGTH, len)
                    .body(Body::from_stream(body))
                    .expect("a valid response")
            }
            Slice::Part { start, end } => {
                log::info!(
                    "player: 206 bytes {start}-{end} of {len} from the gateway (sent whole: the \
                     first {start} skipped)"
                );
                builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                    .header(header::CONTENT_LENGTH, end - start + 1)
                    .body(Body::from_stream(part(body, start, end - start + 1)))
                    .expect("a valid response")
            }
            Slice::Unsatisfiable => {
                log::info!("player: 416 for range {range:?} of {len} from the gateway");
                builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .expect("a valid response")
            }
        }
    }

    async fn open(&self, range: Option<&str>) -> Result<reqwest::Response, CallError> {
        self.endpoint
            .open_audio_range(&self.session_id, self.stream, range, OPEN_TIMEOUT)
            .await
    }
}

/// Bytes `skip..skip + take` of a byte stream, as they arrive; the stream is dropped (the
/// gateway's connection closed) once they are through.
pub fn part<S>(
    bytes: S,
    skip: u64,
    take: u64,
) -> impl ByteStream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: ByteStream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    futures_util::stream::unfold(
        (Box::pin(bytes), skip, take),
        |(mut bytes, mut skip, take)| async move {
            if take == 0 {
                return None;
            }
            loop {
                let chunk = match bytes.next().await? {
                    Ok(chunk) => chunk,
                    Err(e) => return Some((Err(e), (bytes, 0, 0))),
                };
                let len = chunk.len() as u64;
                if skip >= len {
                    skip -= len;
                    continue;
                }
                let from = usize::try_from(skip).expect("below a chunk's length");
                let to =
                    usize::try_from(take.min(len - skip)).expect("below a chunk's length") + from;
                let chunk = chunk.slice(from..to);
                let left = take - chunk.len() as u64;
                return Some((Ok(chunk), (bytes, 0, left)));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(chunks: Vec<&'static [u8]>, skip: u64, take: u64) -> Vec<u8> {
        let stream =
            futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let mut out = Vec::new();
        let mut part = std::pin::pin!(part(stream, skip, take));
        while let Some(chunk) = part.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    /// A stand-in for a gateway's `audio.wav` route on a free port: `bytes`, sent whole with
    /// its length (as this version's gateway sends it), or by range when `ranges` is set.
    async fn gateway(bytes: Vec<u8>, ranges: bool) -> GatewayEndpoint {
        use axum::http::HeaderMap;
        let route = move |headers: HeaderMap| {
            let bytes = bytes.clone();
            async move {
                let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
                let len = bytes.len() as u64;
                match slice(range, len) {
                    Slice::Part { start, end } if ranges => Response::builder()
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                        .body(Body::from(bytes[start as usize..=end as usize].to_vec()))
                        .unwrap(),
                    // Sent in pieces, as a generated answer is.
                    _ => {
                        let pieces: Vec<std::io::Result<Bytes>> = bytes
                            .chunks(7_000)
                            .map(|c| Ok(Bytes::copy_from_slice(c)))
                            .collect();
                        Response::builder()
                            .header(header::CONTENT_LENGTH, len)
                            .body(Body::from_stream(futures_util::stream::iter(pieces)))
                            .unwrap()
                    }
                }
            }
        };
        let app =
            axum::Router::new().route("/v1/sessions/{id}/audio.wav", axum::routing::get(route));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        GatewayEndpoint::parse(&format!("http://{addr}"), None).unwrap()
    }

    #[tokio::test]
    async fn the_player_gets_the_range_it_asks_for_whether_or_not_the_gateway_honours_ranges() {
        use super::super::audio_server::{AudioServer, Source};
        let bytes: Vec<u8> = (0..100_000u32).map(|n| (n % 253) as u8).collect();
        let server = AudioServer::start().await.unwrap();
        let client = reqwest::Client::new();
        for ranges in [false, true] {
            let audio = GatewayAudio {
                endpoint: gateway(bytes.clone(), ranges).await,
                session_id: "s".into(),
                stream: Stream::Mic,
            };
            audio.check().await.unwrap();
            let url = server.address_of(Source::Gateway(audio));
            let get = |range: Option<&'static str>| {
                let mut request = client.get(&url);
                if let Some(range) = range {
                    request = request.header("range", range);
                }
                request.send()
            };

            let part = get(Some("bytes=70000-70099")).await.unwrap();
            assert_eq!(part.status().as_u16(), 206, "ranges {ranges}");
            assert_eq!(
                part.headers()["content-range"].to_str().unwrap(),
                "bytes 70000-70099/100000"
            );
            assert_eq!(part.bytes().await.unwrap(), &bytes[70_000..70_100]);

            let tail = get(Some("bytes=99990-")).await.unwrap();
            assert_eq!(tail.status().as_u16(), 206);
            assert_eq!(tail.bytes().await.unwrap(), &bytes[99_990..]);

            let whole = get(None).await.unwrap();
            assert_eq!(whole.status().as_u16(), 200);
            assert_eq!(whole.headers()["accept-ranges"], "bytes");
            assert_eq!(whole.bytes().await.unwrap(), bytes);
        }
        // Past the end of a gateway that sends the whole file: 416 with the length.
        let audio = GatewayAudio {
            endpoint: gateway(bytes.clone(), false).await,
            session_id: "s".into(),
            stream: Stream::Mic,
        };
        let url = server.address_of(Source::Gateway(audio));
        let past = client
            .get(&url)
            .header("range", "bytes=100000-")
            .send()
            .await
            .unwrap();
        assert_eq!(past.status().as_u16(), 416);
        assert_eq!(past.headers()["content-range"], "bytes */100000");
    }

    #[tokio::test]
    async fn a_gateway_that_does_not_answer_is_said_in_words_before_playing() {
        let endpoint = GatewayEndpoint::parse("http://127.0.0.1:9", None).unwrap();
        let audio = GatewayAudio {
            endpoint,
            session_id: "gone".into(),
            stream: Stream::Mic,
        };
        let error = format!("{:#}", audio.check().await.unwrap_err());
        assert!(
            error.starts_with("the gateway did not give the audio of gone"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_part_skips_and_takes_across_chunk_boundaries() {
        let chunks = vec![&b"0123"[..], b"4567", b"89"];
        assert_eq!(collect(chunks.clone(), 0, 10).await, b"0123456789");
        assert_eq!(collect(chunks.clone(), 3, 4).await, b"3456");
        assert_eq!(collect(chunks.clone(), 4, 4).await, b"4567");
        assert_eq!(collect(chunks.clone(), 9, 100).await, b"9");
        assert_eq!(collect(chunks.clone(), 10, 5).await, b"");
        assert_eq!(collect(chunks, 2, 0).await, b"");
    }
}
