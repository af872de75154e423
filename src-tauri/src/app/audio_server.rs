//! The Sessions view's player server: session audio files streamed to the page's `<audio>`
//! element over HTTP on 127.0.0.1, with Range requests answered 206, so the player seeks
//! anywhere in an hour-long recording without the file ever being held in memory.
//!
//! Why HTTP and not an app URI scheme: WebKitGTK's media player loads http(s), file and blob
//! addresses (its GStreamer source has no handler for an app's own scheme), and the page may
//! not read files; a `blob:` would hold the whole recording in the page.
//!
//! What it plays is a [`Source`]: a WAV file on this computer (a session's local copy), or a
//! session's audio that only its gateway has, read from there as the player reads
//! ([`super::gateway_audio`]: nothing is downloaded first).
//!
//! The page never names a file: the app registers a source and hands out an address with an
//! unguessable token (`/audio/<token>`); anything else is 404. The server listens on the
//! loopback interface only, on a port the system picks, from the first Play to the app's exit.
//! The byte-range rules are [`slice`], a plain function with its tests.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::SeekFrom;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::gateway_audio::GatewayAudio;

/// Bytes read from the file per chunk of the answer.
const CHUNK: usize = 64 * 1024;

/// What a token plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A WAV file on this computer.
    File(PathBuf),
    /// A session's audio on its gateway.
    Gateway(GatewayAudio),
}

/// Token → source.
type Sources = Arc<Mutex<HashMap<String, Source>>>;

pub struct AudioServer {
    addr: SocketAddr,
    sources: Sources,
}

impl AudioServer {
    /// Listens on 127.0.0.1 (a port the system picks). Must be called inside the runtime.
    pub async fn start() -> anyhow::Result<AudioServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot open the player's port on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let sources = Sources::default();
        let app = Router::new()
            .route("/audio/{token}", get(serve))
            .with_state(sources.clone());
        tauri::async_runtime::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                log::warn!("the player's server stopped: {e}");
            }
        });
        Ok(AudioServer { addr, sources })
    }

    /// The address the player reads `source` from (one token per source for the run).
    pub fn address_of(&self, source: Source) -> String {
        let mut sources = lock(&self.sources);
        let known = sources
            .iter()
            .find(|(_, known)| **known == source)
            .map(|(token, _)| token.clone());
        let token = known.unwrap_or_else(|| {
            let token = new_token();
            sources.insert(token.clone(), source);
            token
        });
        format!("http://{}/audio/{token}", self.addr)
    }

    /// Stops serving a deleted session: every file under `dir`, and its audio on any gateway.
    pub fn forget_session(&self, dir: &Path, session_id: &str) {
        lock(&self.sources).retain(|_, source| match source {
            Source::File(path) => !path.starts_with(dir),
            Source::Gateway(audio) => audio.session_id != session_id,
        });
    }
}

fn lock(sources: &Sources) -> std::sync::MutexGuard<'_, HashMap<String, Source>> {
    sources.lock().unwrap_or_else(|e| e.into_inner())
}

/// 128 unpredictable bits as hex: two SipHash outputs under std's `RandomState` keys, which
/// are seeded from the system's random source (no extra dependency for this one use).
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

/// What part of a file of `len` bytes a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    /// No `Range` header, or one this server does not honour (several ranges, another unit,
    /// malformed): the whole file, 200, as RFC 9110 allows.
    Whole,
    /// Bytes `start..=end`, 206.
    Part { start: u64, end: u64 },
    /// A range wholly past the end, 416.
    Unsatisfiable,
}

/// The `Range` header's answer for a file of `len` bytes (RFC 9110, section 14): `bytes=a-b`,
/// `bytes=a-` and `bytes=-n` (the last n bytes); an end past the file is cut to it.
pub fn slice(range: Option<&str>, len: u64) -> Slice {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Slice::Whole;
    };
    if spec.contains(',') {
        return Slice::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Slice::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => Slice::Unsatisfiable,
            Some(_) if len == 0 => Slice::Unsatisfiable,
            Some(n) => Slice::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => Slice::Whole,
        },
        // bytes=a- and bytes=a-b.
        (false, open) => {
            let Some(start) = number(first) else {
                return Slice::Whole;
            };
            let end = if open {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return Slice::Whole,
                }
            };
            if start >= len {
                return Slice::Unsatisfiable;
            }
            Slice::Part {
                start,
                end: end.min(len - 1),
            }
        }
        (true, true) => Slice::Whole,
    }
}

async fn serve(
    State(sources): State<Sources>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(source) = lock(&sources).get(&token).cloned() else {
        return (StatusCode::NOT_FOUND, "no such audio").into_response();
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let path = match source {
        Source::File(path) => path,
        Source::Gateway(audio) => return audio.answer(range).await,
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return (StatusCode::NOT_FOUND, "the audio file is gone").into_response(),
    };
    match answer(file, range).await {
        Ok(response) => response,
        Err(e) => {
            log::warn!("player: cannot read the audio: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the audio").into_response()
        }
    }
}

async fn answer(mut file: tokio::fs::File, range: Option<&str>) -> std::io::Result<Response> {
    let len = file.metadata().await?.len();
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-store");
    let (status, builder, start, count) = match slice(range, len) {
        Slice::Whole => (StatusCode::OK, builder, 0, len),
        Slice::Part { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
            start,
            end - start + 1,
        ),
        Slice::Unsatisfiable => {
            log::info!("player: 416 for range {range:?} of {len} bytes");
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .expect("a valid response"));
        }
    };
    // One line per request of the player: how it reads and seeks, without any path.
    log::info!(
        "player: {} bytes {start}-{} of {len}",
        status.as_u16(),
        (start + count).saturating_sub(1)
    );
    file.seek(SeekFrom::Start(start)).await?;
    let body = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Ok(builder
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .body(Body::from_stream(body))
        .expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_answered_as_rfc_9110_says() {
        let part = |start, end| Slice::Part { start, end };
        let cases = [
            (None, 1000, Slice::Whole),
            (Some("bytes=0-"), 1000, part(0, 999)),
            (Some("bytes=0-99"), 1000, part(0, 99)),
            (Some("bytes=500-"), 1000, part(500, 999)),
            (Some("bytes=900-5000"), 1000, part(900, 999)),
            (Some("bytes=-100"), 1000, part(900, 999)),
            (Some("bytes=-5000"), 1000, part(0, 999)),
            (Some("bytes=999-999"), 1000, part(999, 999)),
            (Some("bytes=1000-"), 1000, Slice::Unsatisfiable),
            (Some("bytes=-0"), 1000, Slice::Unsatisfiable),
            (Some("bytes=0-"), 0, Slice::Unsatisfiable),
            // Not honoured: the whole file.
            (Some("bytes=0-1,5-6"), 1000, Slice::Whole),
            (Some("items=0-1"), 1000, Slice::Whole),
            (Some("bytes=5-1"), 1000, Slice::Whole),
            (Some("bytes=x-"), 1000, Slice::Whole),
            (Some("bytes=-"), 1000, Slice::Whole),
        ];
        for (range, len, expected) in cases {
            assert_eq!(slice(range, len), expected, "{range:?} of {len}");
        }
    }

    #[test]
    fn every_token_is_new_and_128_bits_of_hex() {
        let tokens: std::collections::HashSet<_> = (0..1000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }

    #[tokio::test]
    async fn a_range_request_gets_206_with_those_bytes_and_an_unknown_token_404() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wav");
        let bytes: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        std::fs::write(&file, &bytes).unwrap();
        let server = AudioServer::start().await.unwrap();
        let url = server.address_of(Source::File(file.clone()));
        assert_eq!(
            server.address_of(Source::File(file.clone())),
            url,
            "one token per file"
        );
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");

        let client = reqwest::Client::new();
        let answer = client
            .get(&url)
            .header("range", "bytes=150000-150099")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 206);
        assert_eq!(
            answer.headers()["content-range"].to_str().unwrap(),
            "bytes 150000-150099/200000"
        );
        assert_eq!(answer.bytes().await.unwrap(), &bytes[150_000..150_100]);

        let whole = client.get(&url).send().await.unwrap();
        assert_eq!(whole.status().as_u16(), 200);
        assert_eq!(whole.bytes().await.unwrap(), bytes);

        let past = client
            .get(&url)
            .header("range", "bytes=200000-")
            .send()
            .await
            .unwrap();
        assert_eq!(past.status().as_u16(), 416);

        let other = url.rsplit_once('/').unwrap().0.to_owned() + "/guessed";
        assert_eq!(
            client.get(other).send().await.unwrap().status().as_u16(),
            404
        );
        server.forget_session(dir.path(), "a");
        assert_eq!(
            client.get(&url).send().await.unwrap().status().as_u16(),
            404
        );
    }
}
