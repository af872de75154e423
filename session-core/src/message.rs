//! Reading what a client sends over the ingest socket, with one clear error per mistake.
//!
//! Parsing is lenient on purpose: every field is read as raw JSON first, so a wrong type gets the
//! field's own error text instead of serde's generic one, and the 43 KB `content_b64` is borrowed
//! from the message rather than copied.
//!
//! A chunk is read without serde walking its 43 KB `content_b64` (`parse_chunk_fast`): the
//! string's end is found with `memchr`, and serde reads the few hundred bytes around it. That
//! shortcut answers only when it can show its answer is [`parse_message_full`]'s; anything else
//! is read by [`parse_message_full`], the parser the shortcut is checked against (unit tests here
//! and the fuzz target `message`).

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::caps::{MAX_SEQ, MAX_TIMESTAMP_MS};
use crate::clock::EpochMs;
use contract::protocol::{CHANNELS, FORMAT, FRAME_BYTES, SAMPLE_RATE};

/// Longest `reason` kept from a `close` message.
pub const MAX_CLOSE_REASON_CHARS: usize = 120;
/// Reason used when a `close` message gives none.
pub const DEFAULT_CLOSE_REASON: &str = "client_close";

/// A client message that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Hello,
    Status,
    Ping,
    /// The reason, already cut to [`MAX_CLOSE_REASON_CHARS`].
    Close(String),
    Auth(String),
    Chunk(ValidChunk),
}

/// A chunk whose fields all satisfy the contract, except `meeting_id`, which only the session can
/// check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidChunk {
    pub meeting_id: String,
    /// 1..=[`MAX_SEQ`].
    pub seq: u64,
    /// When the frame's first sample was captured (`timestamp_ms`, epoch ms, at most
    /// [`MAX_TIMESTAMP_MS`]): streams of one session are aligned by it.
    pub captured_at: EpochMs,
    /// Exactly [`FRAME_BYTES`] bytes of PCM.
    pub pcm: Vec<u8>,
}

/// Why a message was refused. The text is the `detail` the client receives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("binary messages are not supported; send JSON text")]
    Binary,
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("message must be a JSON object")]
    NotAnObject,
    #[error("message type is required")]
    MissingType,
    #[error("unsupported message type: {0}")]
    UnknownType(String),
    #[error("{0}")]
    Field(&'static str),
    #[error("seq must be at most {MAX_SEQ}")]
    SeqTooLarge,
    #[error("timestamp_ms must be at most {MAX_TIMESTAMP_MS} (the end of the year 9999)")]
    TimestampTooLarge,
    #[error("content_b64 is not valid base64: {0}")]
    InvalidBase64(String),
    #[error("content_b64 must decode to exactly {FRAME_BYTES} bytes, got {0}")]
    WrongLength(usize),
}

/// Every field any client message may carry, each kept as raw JSON until it is checked.
#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    reason: Option<&'a RawValue>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    meeting_id: Option<&'a RawValue>,
    #[serde(borrow)]
    seq: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp_ms: Option<&'a RawValue>,
    #[serde(borrow)]
    sample_rate: Option<&'a RawValue>,
    #[serde(borrow)]
    channels: Option<&'a RawValue>,
    #[serde(borrow)]
    format: Option<&'a RawValue>,
    #[serde(borrow)]
    content_b64: Option<&'a RawValue>,
}

/// Parses and validates one text message.
pub fn parse_message(text: &str) -> Result<Incoming, MessageError> {
    parse_chunk_fast(text).unwrap_or_else(|| parse_message_full(text))
}

/// Parses and validates one text message with serde reading all of it, `content_b64` included:
/// what [`parse_message`] answers for every text, by definition. Public so that the fuzz target
/// and the benchmark can hold [`parse_message`] to it.
pub fn parse_message_full(text: &str) -> Result<Incoming, MessageError> {
    let raw = read_raw(text)?;
    let kind = match raw.kind {
        None => return Err(MessageError::MissingType),
        Some(kind) => string(kind).ok_or(MessageError::MissingType)?,
    };
    match kind.as_ref() {
        "hello" => Ok(Incoming::Hello),
        "status" => Ok(Incoming::Status),
        "ping" => Ok(Incoming::Ping),
        "close" => Ok(Incoming::Close(close_reason(raw.reason))),
        "auth" => raw
            .key
            .and_then(string)
            .map(|key| Incoming::Auth(key.into_owned()))
            .ok_or(MessageError::Field("key must be a string")),
        "chunk" => parse_chunk(&raw).map(Incoming::Chunk),
        other => Err(MessageError::UnknownType(truncate(other, 64))),
    }
}

/// The message read as raw fields, or the envelope's error.
fn read_raw(text: &str) -> Result<RawMessage<'_>, MessageError> {
    let raw: RawMessage<'_> = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(err) if err.is_data() => return Err(MessageError::NotAnObject),
        Err(err) => return Err(MessageError::InvalidJson(err.to_string())),
    };
    // serde also reads a struct from a JSON array; the contract only has objects.
    if !text.trim_start().starts_with('{') {
        return Err(MessageError::NotAnObject);
    }
    Ok(raw)
}

fn parse_chunk(raw: &RawMessage<'_>) -> Result<ValidChunk, MessageError> {
    let header = ChunkHeader::read(raw)?;
    let pcm = match raw.content_b64.and_then(unescaped_base64) {
        Some(pcm) => pcm,
        None => {
            let content = raw
                .content_b64
                .and_then(string)
                .ok_or(MessageError::Field("content_b64 must be a base64 string"))?;
            decode_base64(&content)?
        }
    };
    header.with_pcm(pcm)
}

/// A chunk's fields other than its content, checked in the order their errors take precedence:
/// both parsers read them the same way, from the same raw JSON.
struct ChunkHeader<'a> {
    meeting_id: Cow<'a, str>,
    seq: u64,
    captured_at: f64,
}

impl<'a> ChunkHeader<'a> {
    fn read(raw: &RawMessage<'a>) -> Result<Self, MessageError> {
        let meeting_id = raw
            .meeting_id
            .and_then(string)
            .ok_or(MessageError::Field("meeting_id must be a string"))?;
        let seq = raw
            .seq
            .and_then(positive_integer)
            .ok_or(MessageError::Field("seq must be a positive integer"))?;
        if seq > MAX_SEQ {
            return Err(MessageError::SeqTooLarge);
        }
        let captured_at = raw
            .timestamp_ms
            .and_then(|v| serde_json::from_str::<f64>(v.get()).ok())
            .filter(|ts| ts.is_finite() && *ts > 0.0)
            .ok_or(MessageError::Field(
                "timestamp_ms must be a positive number",
            ))?;
        if captured_at > MAX_TIMESTAMP_MS as f64 {
            return Err(MessageError::TimestampTooLarge);
        }
        if raw.sample_rate.and_then(positive_integer) != Some(u64::from(SAMPLE_RATE)) {
            return Err(MessageError::Field("sample_rate must be 16000"));
        }
        if raw.channels.and_then(positive_integer) != Some(u64::from(CHANNELS)) {
            return Err(MessageError::Field("channels must be 1"));
        }
        if raw.format.and_then(string).as_deref() != Some(FORMAT) {
            return Err(MessageError::Field("format must be pcm_s16le"));
        }
        Ok(ChunkHeader {
            meeting_id,
            seq,
            captured_at,
        })
    }

    fn with_pcm(self, pcm: Vec<u8>) -> Result<ValidChunk, MessageError> {
        if pcm.len() != FRAME_BYTES {
            return Err(MessageError::WrongLength(pcm.len()));
        }
        Ok(ValidChunk {
            meeting_id: self.meeting_id.into_owned(),
            seq: self.seq,
            // A fraction of a millisecond is dropped.
            captured_at: self.captured_at as EpochMs,
            pcm,
        })
    }
}

/// A chunk read without serde scanning its `content_b64`, or `None` where that shortcut cannot
/// show its answer is [`parse_message_full`]'s; any doubt is a `None`.
///
/// Why the answer is the same: [`content_span`] guesses where the top-level `content_b64` string
/// lies. The message with that string emptied (`""`, a few hundred bytes) is read by serde as
/// [`parse_message_full`] reads messages; the guess is taken only if that read succeeds and its
/// `content_b64` is that very `""` (by address, so an empty `content_b64` elsewhere, a duplicate
/// key or a key inside another value does not pass), and only if the guessed text decodes as
/// base64. Base64 symbols are none of `"`, `\` or a control character, so the guessed text is a
/// whole JSON string with no escapes: put back in place of `""`, it leaves every other token of
/// the message as it was, and serde reads every other field of the whole message as it read them
/// in the small one. Errors of the small read are not answers (their line and column differ):
/// they send the message to [`parse_message_full`].
fn parse_chunk_fast(text: &str) -> Option<Result<Incoming, MessageError>> {
    let content = content_span(text)?;
    let mut emptied = String::with_capacity(text.len() - content.len());
    emptied.push_str(&text[..content.start]);
    emptied.push_str(&text[content.end..]);
    let raw = read_raw(&emptied).ok()?;
    let placeholder = raw.content_b64?.get();
    let placeholder_at = emptied[content.start - 1..].as_ptr();
    if placeholder.as_ptr() != placeholder_at || placeholder.len() != 2 {
        return None;
    }
    if string(raw.kind?)?.as_ref() != "chunk" {
        return None;
    }
    // The same decoder [`parse_chunk`] tries first on the same text; what it refuses is read
    // the long way, whose errors name the symbol.
    let pcm = base64_simd::STANDARD.decode_to_vec(&text[content]).ok()?;
    let chunk = ChunkHeader::read(&raw).and_then(|header| header.with_pcm(pcm));
    Some(chunk.map(Incoming::Chunk))
}

/// Where the text of the first `"content_b64"` key's string value seems to lie (quotes left
/// out): a `memchr` search for its closing quote, where serde walks the 43 KB in small steps.
/// Only a guess: the key may be nested, inside a string, or repeated, and the value may hold
/// escapes; [`parse_chunk_fast`] checks it.
fn content_span(text: &str) -> Option<Range<usize>> {
    const KEY: &[u8] = b"\"content_b64\"";
    let bytes = text.as_bytes();
    let after_key = memchr::memmem::find(bytes, KEY)? + KEY.len();
    let colon = skip_json_whitespace(bytes, after_key);
    if bytes.get(colon) != Some(&b':') {
        return None;
    }
    let quote = skip_json_whitespace(bytes, colon + 1);
    if bytes.get(quote) != Some(&b'"') {
        return None;
    }
    let start = quote + 1;
    let end = start + memchr::memchr(b'"', &bytes[start..])?;
    Some(start..end)
}

/// The first index at or after `from` that is not JSON whitespace.
fn skip_json_whitespace(bytes: &[u8], from: usize) -> usize {
    let blank = bytes[from..]
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    from + blank
}

/// Standard base64 with padding, as strict as the `base64` crate: the SIMD decoder takes every
/// frame; a text it refuses is decoded again by the `base64` crate, whose error names the symbol
/// and offset (the SIMD one says only that it failed).
fn decode_base64(text: &str) -> Result<Vec<u8>, MessageError> {
    base64_simd::STANDARD.decode_to_vec(text).or_else(|_| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|err| MessageError::InvalidBase64(err.to_string()))
    })
}

/// The bytes of a JSON string that is valid base64 as it lies: a frame, in one pass over its
/// 43 KB. A backslash is no base64 symbol, so a string with escapes is refused here and read the
/// long way ([`string`], then [`decode_base64`]), as is anything else this does not take.
fn unescaped_base64(raw: &RawValue) -> Option<Vec<u8>> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    base64_simd::STANDARD.decode_to_vec(inner).ok()
}

/// A JSON string, borrowed when it has no escapes.
///
/// The message parsed, so a raw value in quotes is a valid JSON string; with no backslash in it,
/// its text is what lies between the quotes. Finding that out is one `memchr`, where parsing it
/// again would be a second pass over a frame's 43 KB.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<Cow<'_, str>>(text).ok()
}

/// A JSON integer ≥ 1 (so `1.0`, `0`, `-3` and `"1"` are all refused).
fn positive_integer(raw: &RawValue) -> Option<u64> {
    serde_json::from_str::<u64>(raw.get())
        .ok()
        .filter(|n| *n >= 1)
}

fn close_reason(raw: Option<&RawValue>) -> String {
    match raw.and_then(string) {
        Some(reason) if !reason.is_empty() => truncate(&reason, MAX_CLOSE_REASON_CHARS),
        _ => DEFAULT_CLOSE_REASON.to_owned(),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk_json(overrides: serde_json::Value) -> String {
        let mut msg = json!({
            "type": "chunk", "meeting_id": "m1", "seq": 1, "timestamp_ms": 1_700_000_000_000u64,
            "sample_rate": 16000, "channels": 1, "format": "pcm_s16le",
            "content_b64": base64::engine::general_purpose::STANDARD.encode(vec![7u8; FRAME_BYTES]),
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                msg.as_object_mut().unwrap().remove(k);
            } else {
                msg[k] = v.clone();
            }
        }
        msg.to_string()
    }

    fn error_of(overrides: serde_json::Value) -> String {
        parse_message(&chunk_json(overrides))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_valid_chunk_decodes_its_pcm() {
        let Incoming::Chunk(chunk) = parse_message(&chunk_json(json!({}))).unwrap() else {
            panic!("not a chunk")
        };
        assert_eq!(chunk.seq, 1);
        assert_eq!(chunk.meeting_id, "m1");
        assert_eq!(chunk.pcm, vec![7u8; FRAME_BYTES]);
    }

    #[test]
    fn each_bad_chunk_field_has_its_own_error() {
        let cases = [
            (json!({"seq": 0}), "seq must be a positive integer"),
            (json!({"seq": -1}), "seq must be a positive integer"),
            (json!({"seq": 1.5}), "seq must be a positive integer"),
            (json!({"seq": "1"}), "seq must be a positive integer"),
            (json!({"seq": null}), "seq must be a positive integer"),
            (
                json!({"timestamp_ms": 0}),
                "timestamp_ms must be a positive number",
            ),
            (json!({"sample_rate": 48000}), "sample_rate must be 16000"),
            (json!({"channels": 2}), "channels must be 1"),
            (json!({"format": "f32le"}), "format must be pcm_s16le"),
            (json!({"meeting_id": 5}), "meeting_id must be a string"),
            (
                json!({"content_b64": 5}),
                "content_b64 must be a base64 string",
            ),
        ];
        for (overrides, expected) in cases {
            assert_eq!(error_of(overrides.clone()), expected, "for {overrides}");
        }
    }

    #[test]
    fn seq_and_timestamp_stay_within_what_the_clock_arithmetic_holds() {
        let chunk =
            |seq: u64, ts: f64| parse_message(&chunk_json(json!({"seq": seq, "timestamp_ms": ts})));
        assert!(matches!(chunk(MAX_SEQ, 1.0), Ok(Incoming::Chunk(c)) if c.seq == MAX_SEQ));
        assert_eq!(
            chunk(MAX_SEQ + 1, 1.0).unwrap_err().to_string(),
            "seq must be at most 4294967295"
        );
        // Accepted before, it overflowed the capture clock (the fuzz target `message` checks it).
        assert_eq!(
            chunk(10_000_000_000_000_000, 1.0),
            Err(MessageError::SeqTooLarge)
        );
        let latest = MAX_TIMESTAMP_MS as f64;
        assert!(
            matches!(chunk(1, latest), Ok(Incoming::Chunk(c)) if c.captured_at == MAX_TIMESTAMP_MS)
        );
        assert_eq!(chunk(1, latest + 1.0), Err(MessageError::TimestampTooLarge));
        assert_eq!(chunk(1, 1e300), Err(MessageError::TimestampTooLarge));
    }

    #[test]
    fn content_must_be_base64_of_exactly_one_second() {
        assert!(
            error_of(json!({"content_b64": "not base64!"}))
                .starts_with("content_b64 is not valid base64")
        );
        let short = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 31_998]);
        assert_eq!(
            error_of(json!({ "content_b64": short })),
            "content_b64 must decode to exactly 32000 bytes, got 31998"
        );
    }

    #[test]
    fn base64_is_as_strict_as_the_base64_crate_and_its_errors_name_the_symbol() {
        let refused = [
            ("QUJ=", "Invalid last symbol 74, offset 2."),
            ("QUI", "Invalid padding"),
            ("QU I=", "Invalid symbol 32, offset 2."),
            ("QUI==", "Invalid symbol 61, offset 3."),
            ("-_8=", "Invalid symbol 45, offset 0."),
        ];
        for (text, why) in refused {
            assert_eq!(
                decode_base64(text),
                Err(MessageError::InvalidBase64(why.into())),
                "{text}"
            );
        }
        assert_eq!(decode_base64("QUJDRA==").unwrap(), b"ABCD");
    }

    #[test]
    fn escaped_strings_read_as_their_text() {
        // Some JSON writers escape '/' (frequent in base64) and non-ASCII; the fast path that
        // borrows an unescaped string must not be taken for these.
        let pcm: Vec<u8> = (0..FRAME_BYTES).map(|i| (i * 7 % 256) as u8).collect();
        let content = base64::engine::general_purpose::STANDARD.encode(&pcm);
        assert!(content.contains('/'));
        let message = chunk_json(json!({"meeting_id": "room-A", "content_b64": content}))
            .replace('/', "\\/")
            .replace("room-A", "room-\\u0041");
        let Incoming::Chunk(chunk) = parse_message(&message).unwrap() else {
            panic!("not a chunk")
        };
        assert_eq!(chunk.meeting_id, "room-A");
        assert_eq!(chunk.pcm, pcm);
    }

    #[test]
    fn envelope_errors() {
        assert!(
            parse_message("{")
                .unwrap_err()
                .to_string()
                .starts_with("invalid JSON")
        );
        assert_eq!(parse_message("[1]").unwrap_err(), MessageError::NotAnObject);
        assert_eq!(parse_message("{}").unwrap_err(), MessageError::MissingType);
        assert_eq!(
            parse_message(r#"{"type":"dance"}"#)
                .unwrap_err()
                .to_string(),
            "unsupported message type: dance"
        );
    }

    /// What [`parse_message`] answers, after checking that its shortcut, where it answers, says
    /// what the full parser says; and whether the shortcut answered.
    fn parse_both_ways(text: &str) -> (Result<Incoming, MessageError>, bool) {
        let full = parse_message_full(text);
        let fast = parse_chunk_fast(text);
        if let Some(fast) = &fast {
            assert_eq!(fast, &full, "the shortcut disagrees on {text:?}");
        }
        assert_eq!(
            parse_message(text),
            full,
            "parse_message disagrees on {text:?}"
        );
        (full, fast.is_some())
    }

    /// A frame's base64 holding `A` and `/`, so that the cases can write either as an escape.
    fn frame_b64() -> String {
        let pcm: Vec<u8> = (0..FRAME_BYTES).map(|i| (i * 7 % 256) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pcm);
        assert!(b64.contains('A') && b64.contains('/'));
        b64
    }

    #[test]
    fn a_chunk_as_the_recorder_sends_it_takes_the_shortcut() {
        let (parsed, fast) = parse_both_ways(&chunk_json(json!({"content_b64": frame_b64()})));
        assert!(fast);
        assert!(matches!(parsed, Ok(Incoming::Chunk(c)) if c.pcm.len() == FRAME_BYTES));
    }

    #[test]
    fn the_shortcut_and_the_full_parser_agree_on_tricky_messages() {
        let b64 = frame_b64();
        let head = concat!(
            r#""type":"chunk","meeting_id":"m1","seq":1,"timestamp_ms":1700000000000,"#,
            r#""sample_rate":16000,"channels":1,"format":"pcm_s16le""#
        );
        let with = |content_part: &str| format!("{{{head},{content_part}}}");
        // (message, whether the shortcut answers it)
        let cases: Vec<(String, bool)> = vec![
            // Taken: any field order, whitespace around ':', unknown fields, a wrong field.
            (format!(r#"{{"content_b64":"{b64}",{head}}}"#), true),
            (with(&format!("\"content_b64\" \t\r\n: \n \"{b64}\"")), true),
            (
                with(&format!(r#""extra":[1,{{"a":"b"}}],"content_b64":"{b64}""#)),
                true,
            ),
            (
                format!(r#"  {{ {head} , "content_b64" : "{b64}" }}  "#),
                true,
            ),
            (with(r#""content_b64":"QUJD""#), true),
            (with(r#""content_b64":"""#), true),
            (chunk_json(json!({"sample_rate": 48000})), true),
            (chunk_json(json!({"seq": 0})), true),
            (
                chunk_json(json!({"meeting_id": "réunion \"A\" \\ /"})),
                true,
            ),
            // Escapes and control characters in the content: the full parser reads them.
            (
                with(&format!(
                    r#""content_b64":"{}""#,
                    b64.replacen('A', "\\u0041", 1)
                )),
                false,
            ),
            (
                with(&format!(r#""content_b64":"{}""#, b64.replace('/', "\\/"))),
                false,
            ),
            (with(&format!(r#""content_b64":"\"{b64}""#)), false),
            (with(&format!(r#""content_b64":"{b64}\\""#)), false),
            (
                with(&format!(
                    "\"content_b64\":\"{}\"",
                    b64.replacen('A', "\n", 1)
                )),
                false,
            ),
            (
                with(&format!(
                    "\"content_b64\":\"{}\"",
                    b64.replacen('A', "\u{1}", 1)
                )),
                false,
            ),
            (with(r#""content_b64":"not base64!""#), false),
            (with(r#""content_b64":"QUJD ""#), false),
            (with(r#""content_b64":5"#), false),
            (with(r#""content_b64":null"#), false),
            (with(r#""content_b64":["QUJD"]"#), false),
            (with(r#""content_b64":"QUJD"#), false),
            (with(r#""content_b64""QUJD""#), false),
            // Duplicate keys, in both orders, and one spelled with an escape.
            (
                with(&format!(r#""content_b64":"{b64}","content_b64":"QUJD""#)),
                false,
            ),
            (
                with(&format!(r#""content_b64":"","content_b64":"{b64}""#)),
                false,
            ),
            (
                with(&format!(r#""content_b64":"{b64}","content\u005fb64":"""#)),
                false,
            ),
            (with(&format!(r#""content\u005fb64":"{b64}""#)), false),
            // A `content_b64` key in a nested object, before or instead of the top-level one.
            (
                with(&format!(
                    r#""x":{{"content_b64":"QUJD"}},"content_b64":"{b64}""#
                )),
                false,
            ),
            (with(&format!(r#""x":[{{"content_b64":"{b64}"}}]"#)), false),
            (
                with(&format!(
                    r#""x":{{"content_b64":"{b64}"}},"content_b64":"""#
                )),
                false,
            ),
            // The key's text inside a string: as a key (a field the parser ignores), as a value,
            // and after a string that ends in a backslash.
            (
                with(&format!(r#""\"content_b64":"{b64}","content_b64":"""#)),
                false,
            ),
            (with(&format!(r#""x":"\"content_b64\":\"{b64}\"""#)), false),
            (with(&format!(r#""x":"\\","content_b64":"{b64}""#)), true),
            (with(&format!(r#""x":"\\\"content_b64":"{b64}""#)), false),
            // Not a chunk, not an object, not JSON, or more after it.
            (
                format!(r#"{{"type":"hello","content_b64":"{b64}"}}"#),
                false,
            ),
            (r#"{"type":"auth","content_b64":"QUJD"}"#.to_owned(), false),
            (format!(r#"{{"content_b64":"{b64}"}}"#), false),
            (format!(r#"{{"type":5,"content_b64":"{b64}"}}"#), false),
            (format!(r#"["content_b64","{b64}"]"#), false),
            (
                format!(r#"["chunk",null,null,"m1",1,1,16000,1,"pcm_s16le","{b64}"]"#),
                false,
            ),
            (format!(r#""\"content_b64\":\"{b64}\"""#), false),
            (format!("{} x", chunk_json(json!({})).trim_end()), false),
            (format!("{}}}", chunk_json(json!({}))), false),
            (format!("{}{{}}", chunk_json(json!({}))), false),
            (with(&format!(r#""content_b64":"{b64}","#)), false),
            (format!(r#"{{{head},"content_b64":"{b64}""#), false),
            (format!(r#"{{{head},"content_b64":"{b64}"]"#), false),
            (
                format!("{}{}", "[".repeat(200), chunk_json(json!({}))),
                false,
            ),
            (String::new(), false),
        ];
        for (at, (text, shortcut)) in cases.iter().enumerate() {
            let (_, fast) = parse_both_ways(text);
            assert_eq!(fast, *shortcut, "case {at}: the shortcut answered or not");
        }
    }

    #[test]
    fn the_shortcut_and_the_full_parser_agree_on_every_one_byte_edit_of_a_small_chunk() {
        let bases = [
            concat!(
                r#"{"type":"chunk","meeting_id":"m\"1","seq":1,"timestamp_ms":17,"#,
                r#""sample_rate":16000,"channels":1,"format":"pcm_s16le","content_b64" : "QUJD"}"#
            ),
            concat!(
                r#"{"content_b64":"QUJD","x":{"content_b64":""},"#,
                r#""type":"chunk","meeting_id":"m","seq":2,"timestamp_ms":1.5,"#,
                r#""sample_rate":16000,"channels":1,"format":"pcm_s16le"}"#
            ),
        ];
        let edits = [
            '"', '\\', ':', ' ', '{', '}', '[', ',', '\n', '\u{1}', 'A', '=',
        ];
        let mut taken = 0;
        for base in bases {
            assert!(parse_both_ways(base).1, "{base}");
            for at in 0..=base.len() {
                let mut variants = vec![base[..at].to_owned() + &base[(at + 1).min(base.len())..]];
                for edit in edits {
                    variants.push(format!("{}{edit}{}", &base[..at], &base[at..]));
                    if at < base.len() {
                        variants.push(format!("{}{edit}{}", &base[..at], &base[at + 1..]));
                    }
                }
                for text in variants {
                    taken += usize::from(parse_both_ways(&text).1);
                }
            }
        }
        // The edits that keep the message a chunk with a plain content string still take it.
        assert!(taken > 1000, "the shortcut answered only {taken} edits");
    }

    #[test]
    fn no_byte_that_could_end_or_escape_a_json_string_is_a_base64_symbol() {
        // The shortcut relies on it: text the SIMD decoder takes is a JSON string as it lies.
        let symbols = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        for byte in (0..=255u8).filter(|b| !symbols.contains(b)) {
            for at in 0..4 {
                let mut text = *b"QUJD";
                text[at] = byte;
                assert!(
                    base64_simd::STANDARD.decode_to_vec(text).is_err(),
                    "byte {byte} at {at}"
                );
            }
        }
    }

    #[test]
    fn close_reason_is_cut_to_120_characters() {
        let long = "x".repeat(500);
        let msg = json!({"type": "close", "reason": long}).to_string();
        assert_eq!(
            parse_message(&msg).unwrap(),
            Incoming::Close("x".repeat(120))
        );
        assert_eq!(
            parse_message(r#"{"type":"close"}"#).unwrap(),
            Incoming::Close(DEFAULT_CLOSE_REASON.into())
        );
    }
}
