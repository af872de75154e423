//! Issue 11, item 5 (history): the session list and its pages, a finalized session's
//! `result.json`, deleting a session (objects, rows, and not while a socket streams into it),
//! the key on every history route, and retention (`--retention-days`) against the real binary.

mod support;

use std::path::Path;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::child::ChildGateway;
use support::inference::{FakeInference, gateway_with_inference};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// A gateway whose speakers come from the contract-honouring fake (deterministic clusters).
async fn with_inference() -> (TestGateway, FakeInference) {
    gateway_with_inference(None, Duration::from_secs(10)).await
}

/// Streams `seqs` of `session` on its mic (or `?stream=system`) socket, then closes it.
async fn stream_frames(ws_url: &str, session: &str, seqs: &[u64]) {
    let mut socket = connect(ws_url).await;
    hello(&mut socket).await;
    for &seq in seqs {
        send_chunk(&mut socket, session, seq).await;
    }
    close(socket).await;
}

/// Closes a socket the way the recorder does and waits for the gateway's close frame.
async fn close(mut socket: Socket) {
    let closing = ask(&mut socket, &json!({"type": "close"})).await;
    assert_eq!(closing["type"], "closing");
    close_frame(&mut socket).await;
}

async fn finalize(gw: &TestGateway, session: &str, metadata: Value) -> Value {
    let path = format!("/v1/sessions/{}/finalize", urlencode(session));
    let (code, done) = gw
        .send_json("POST", &path, json!({ "metadata": metadata }))
        .await;
    assert_eq!(code, 200, "{done}");
    done
}

fn urlencode(session: &str) -> String {
    session.replace(' ', "%20").replace('/', "%2F")
}

/// Every session of the list, page by page with `limit`, and how many pages it took.
async fn all_pages(gw: &TestGateway, limit: usize) -> (Vec<Value>, usize) {
    let (mut sessions, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/sessions?limit={limit}&after={cursor}"),
            None => format!("/v1/sessions?limit={limit}"),
        };
        let (code, page) = gw.get_json(&path).await;
        assert_eq!(code, 200, "{page}");
        let items = page["sessions"].as_array().unwrap();
        assert!(items.len() <= limit);
        sessions.extend(items.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return (sessions, pages),
        }
    }
}

fn ids(sessions: &[Value]) -> Vec<&str> {
    sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect()
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn sessions_are_listed_newest_first_in_stable_pages_with_their_audio_and_speakers() {
    let (gw, _inference) = with_inference().await;
    for session in ["h1", "h2", "h3", "h4", "h5"] {
        stream_frames(&gw.ws(session), session, &[1]).await;
    }
    // h3: mic seqs 1, 2 and 4 (3 never came), one second of meeting audio, a named speaker.
    stream_frames(&gw.ws("h3"), "h3", &[2, 4]).await;
    stream_frames(&format!("{}?stream=system", gw.ws("h3")), "h3", &[1]).await;
    let body = json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}});
    let (code, _) = gw.send_json("POST", "/v1/sessions/h3/resolve", body).await;
    assert_eq!(code, 200);
    let binding = json!({"cluster_id": "spk_1", "name": "Ada Lovelace"});
    let (code, _) = gw
        .send_json("PUT", "/v1/sessions/h3/bindings", binding)
        .await;
    assert_eq!(code, 200);
    let done = finalize(&gw, "h3", json!({})).await;

    let (code, whole) = gw.get_json("/v1/sessions").await;
    assert_eq!(code, 200);
    assert_eq!(whole["next_cursor"], Value::Null, "50 a page by default");
    let whole = whole["sessions"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 5);
    // Newest start first, ties by id (descending).
    let key = |s: &Value| {
        (
            s["started_at"].as_str().unwrap().to_owned(),
            s["session_id"].as_str().unwrap().to_owned(),
        )
    };
    assert!(
        whole.windows(2).all(|w| key(&w[0]) > key(&w[1])),
        "{:?}",
        ids(&whole)
    );

    let (paged, pages) = all_pages(&gw, 2).await;
    assert_eq!(pages, 3);
    assert_eq!(ids(&paged), ids(&whole), "pages join into the whole list");

    let h3 = whole.iter().find(|s| s["session_id"] == "h3").unwrap();
    assert_eq!(h3["streams"]["mic"], json!({"frames": 3, "seconds": 4}));
    assert_eq!(h3["streams"]["system"], json!({"frames": 1, "seconds": 1}));
    assert_eq!(h3["finalized"], true);
    assert_eq!(h3["finalized_at"], done["finalized_at"]);
    assert!(h3["updated_at"].as_str().unwrap() >= h3["started_at"].as_str().unwrap());
    assert_eq!(h3["speaker_count"], 1);
    assert_eq!(h3["speakers"], json!(["Ada Lovelace"]));
    let h1 = whole.iter().find(|s| s["session_id"] == "h1").unwrap();
    assert_eq!(h1["streams"], json!({"mic": {"frames": 1, "seconds": 1}}));
    assert_eq!(
        (&h1["finalized"], &h1["finalized_at"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(
        (&h1["speaker_count"], &h1["speakers"]),
        (&json!(0), &json!([]))
    );
}

#[tokio::test]
async fn a_session_started_while_paging_does_not_shift_the_later_pages() {
    let gw = TestGateway::start().await;
    for session in ["p1", "p2", "p3"] {
        stream_frames(&gw.ws(session), session, &[1]).await;
    }
    let (code, first) = gw.get_json("/v1/sessions?limit=2").await;
    assert_eq!(code, 200);
    stream_frames(&gw.ws("p4"), "p4", &[1]).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (code, second) = gw
        .get_json(&format!("/v1/sessions?limit=2&after={cursor}"))
        .await;
    assert_eq!(code, 200);
    let mut seen = ids(first["sessions"].as_array().unwrap());
    seen.extend(ids(second["sessions"].as_array().unwrap()));
    seen.sort();
    assert_eq!(
        seen,
        ["p1", "p2", "p3"],
        "each once; the newcomer heads page 1 next time"
    );
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_a_400_that_says_why() {
    let gw = TestGateway::start().await;
    for query in ["limit=0", "limit=501", "limit=ten", "limit=-1"] {
        let (code, body) = gw.get_json(&format!("/v1/sessions?{query}")).await;
        assert_eq!(code, 400, "{query}");
        assert_eq!(
            body["detail"], "limit must be a whole number from 1 to 500",
            "{query}"
        );
    }
    for query in ["after=nonsense", "after=12", "after=12:a%2Fb", "after=x:y"] {
        let (code, body) = gw.get_json(&format!("/v1/sessions?{query}")).await;
        assert_eq!(code, 400, "{query}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("invalid cursor"),
            "{body}"
        );
    }
    let (code, body) = gw.get_json("/v1/sessions?limit=500").await;
    assert_eq!(
        (code, body),
        (200, json!({"sessions": [], "next_cursor": null}))
    );
}

#[tokio::test]
async fn the_result_is_the_stored_result_json_byte_for_byte_and_404_until_finalized() {
    let gw = TestGateway::start().await;
    let (code, body) = gw.get_json("/v1/sessions/nobody/result").await;
    assert_eq!(code, 404);
    assert_eq!(body["detail"], "session 'nobody' not found");

    stream_frames(&gw.ws("r%201"), "r 1", &[1, 2]).await;
    let (code, body) = gw.get_json("/v1/sessions/r%201/result").await;
    assert_eq!(code, 404);
    assert_eq!(
        body["detail"],
        "session 'r 1' has not been finalized: no result.json"
    );

    let done = finalize(&gw, "r 1", json!({"title": "Interview"})).await;
    let response = reqwest::get(gw.http("/v1/sessions/r%201/result"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = response.bytes().await.unwrap();
    let on_disk = gw
        .read_object(done["result_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes.as_ref(), on_disk.as_slice());
    let result: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(result["session_id"], "r 1");
    assert_eq!(result["finalized_at"], done["finalized_at"]);
    assert_eq!(result["metadata"]["title"], "Interview");
    assert_eq!(result["ingest"]["received_chunks"], 2);

    // An id sharing the stored name of another session does not read its result.
    let (code, _) = gw.get_json("/v1/sessions/r_1/result").await;
    assert_eq!(code, 409);
}

#[tokio::test]
async fn delete_removes_every_object_and_row_and_the_session_leaves_the_list() {
    let (gw, _inference) = with_inference().await;
    let session = "gone/1";
    let path = format!("/v1/sessions/{}", urlencode(session));
    stream_frames(&gw.ws(&urlencode(session)), session, &[1, 2, 3]).await;
    let system = format!("{}?stream=system", gw.ws(&urlencode(session)));
    stream_frames(&system, session, &[1, 2]).await;
    let body = json!({"audio": {"content_b64": "AAAA", "format": "pcm_s16le"}});
    let (code, _) = gw.send_json("POST", &format!("{path}/resolve"), body).await;
    assert_eq!(code, 200);
    finalize(&gw, session, json!({})).await;
    stream_frames(&gw.ws("kept"), "kept", &[1]).await;

    let folder = gw.object("sessions/gone_1");
    let keys: Vec<String> = [
        "chunks/00000001.pcm",
        "chunks/00000002.pcm",
        "chunks/00000003.pcm",
        "streams/system/chunks/00000001.pcm",
        "streams/system/chunks/00000002.pcm",
        "result.json",
    ]
    .iter()
    .map(|key| format!("sessions/gone_1/{key}"))
    .collect();
    for key in &keys {
        assert!(gw.read_object(key).is_some(), "{key} is stored");
    }
    let (code, deleted) = gw.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(
        deleted,
        json!({"session_id": session, "deleted": true, "objects_deleted": 6})
    );
    for key in &keys {
        assert_eq!(gw.read_object(key), None, "{key} is gone");
    }
    assert!(!folder.exists(), "no empty folders are left behind");
    assert!(
        gw.read_object("sessions/kept/chunks/00000001.pcm")
            .is_some()
    );

    let (_, list) = gw.get_json("/v1/sessions").await;
    assert_eq!(ids(list["sessions"].as_array().unwrap()), ["kept"]);
    for route in ["/result", "/audio.wav"] {
        let (code, _) = gw.get_json(&format!("{path}{route}")).await;
        assert_eq!(code, 404, "{route}");
    }
    let (code, state) = gw.get_json(&format!("{path}/state")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (&state["event_count"], &state["ingest"]),
        (&json!(0), &Value::Null)
    );
    assert_eq!(state["state"]["clusters"], json!([]));

    let (code, again) = gw.send_json("DELETE", &path, json!(null)).await;
    assert_eq!(code, 404);
    assert_eq!(again["detail"], "session 'gone/1' not found");

    // The id is free again: a new recording under it starts from nothing.
    let mut socket = connect(&gw.ws(&urlencode(session))).await;
    let ready = hello(&mut socket).await;
    assert_eq!(ready["ingest"]["received_chunks"], 0);
    let ack = send_chunk(&mut socket, session, 1).await;
    assert_eq!(ack.status, gateway::protocol::AckStatus::Stored);
    assert_eq!(ack.last_seq, 1);
}

#[tokio::test]
async fn delete_is_refused_while_a_socket_streams_into_the_session() {
    let gw = TestGateway::start().await;
    let mut socket = gw.connect("live").await;
    hello(&mut socket).await;
    send_chunk(&mut socket, "live", 1).await;

    let (code, body) = gw
        .send_json("DELETE", "/v1/sessions/live", json!(null))
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        body["detail"],
        "session 'live' has an open socket: stop streaming into it (close the socket) before deleting it"
    );
    assert!(
        gw.read_object("sessions/live/chunks/00000001.pcm")
            .is_some()
    );
    let ack = send_chunk(&mut socket, "live", 2).await;
    assert_eq!(ack.last_seq, 2, "the socket streams on");

    close(socket).await;
    // The gateway lets go of the session as its socket task ends, just after the close frame.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let deleted = loop {
        let (code, body) = gw
            .send_json("DELETE", "/v1/sessions/live", json!(null))
            .await;
        if code != 409 || tokio::time::Instant::now() > deadline {
            assert_eq!(code, 200, "{body}");
            break body;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(deleted["objects_deleted"], 2);
}

#[tokio::test]
async fn history_routes_need_the_key_and_refuse_web_pages() {
    let gw = TestGateway::start_with(|c| c.api_key = Some("k".into())).await;
    let client = reqwest::Client::new();
    let routes = [
        (reqwest::Method::GET, "/v1/sessions"),
        (reqwest::Method::GET, "/v1/sessions/s/result"),
        (reqwest::Method::DELETE, "/v1/sessions/s"),
    ];
    for (method, route) in &routes {
        let response = client
            .request(method.clone(), gw.http(route))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {route}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["detail"], "missing or invalid API key");
    }
    for ((method, route), expected) in routes.iter().zip([200, 404, 404]) {
        let response = client
            .request(method.clone(), gw.http(route))
            .header("x-api-key", "k")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{method} {route}");
    }
    let page = client
        .delete(gw.http("/v1/sessions/s"))
        .header("x-api-key", "k")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403, "a web page may not delete sessions");
    let wrong = client
        .put(gw.http("/v1/sessions/s"))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
}

/// Moves every timestamp of `session` two days into the past, behind the gateway's back.
fn age_by_two_days(data: &Path, session: &str) {
    let conn = rusqlite::Connection::open(data.join("gateway.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let two_days = 2 * 24 * 3600 * 1000;
    conn.execute_batch(&format!(
        "BEGIN;
         UPDATE streams SET started_at = started_at - {two_days}, updated_at = updated_at - {two_days}
             WHERE safe_id = '{session}';
         UPDATE sessions SET finalized_at = finalized_at - {two_days},
             state_updated_at = state_updated_at - {two_days} WHERE safe_id = '{session}';
         COMMIT;"
    ))
    .unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn retention_deletes_sessions_untouched_for_longer_than_the_period_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut gw = ChildGateway::start(&data, dir.path()).await;
    for session in ["old", "recent"] {
        let mut socket = connect(&gw.ws(session)).await;
        hello(&mut socket).await;
        send_chunk(&mut socket, session, 1).await;
        socket.send(Message::Close(None)).await.unwrap();
        let response = reqwest::Client::new()
            .post(gw.http(&format!("/v1/sessions/{session}/finalize")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    gw.signal(libc::SIGTERM);
    assert!(gw.exited().await.success());
    age_by_two_days(&data, "old");

    // A day's retention: the first sweep is done before the startup line.
    let gw = ChildGateway::start_under(&[], &["--retention-days", "1"], &data, dir.path()).await;
    let list: Value = reqwest::get(gw.http("/v1/sessions"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(list["sessions"].as_array().unwrap()), ["recent"]);
    assert!(files_under(&gw.object("sessions/old")).is_empty());
    assert_eq!(gw.read_object("sessions/old/chunks/00000001.pcm"), None);
    assert!(gw.object("sessions/recent/result.json").exists());
    assert!(
        gw.log().contains("retention: expired sessions deleted"),
        "{}",
        gw.log()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn without_retention_old_sessions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut gw = ChildGateway::start(&data, dir.path()).await;
    let mut socket = connect(&gw.ws("old")).await;
    hello(&mut socket).await;
    send_chunk(&mut socket, "old", 1).await;
    drop(socket);
    gw.signal(libc::SIGTERM);
    assert!(gw.exited().await.success());
    age_by_two_days(&data, "old");

    let gw = ChildGateway::start(&data, dir.path()).await;
    let list: Value = reqwest::get(gw.http("/v1/sessions"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(list["sessions"].as_array().unwrap()), ["old"]);
}
