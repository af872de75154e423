//! A real S3-protocol server for tests: moto's server from PyPI (`moto_server`), in memory, on
//! a free loopback port. `scripts/test.sh` installs it into a venv; the S3 test skips with the
//! reason when it cannot be started, unless `REQUIRE_S3` is set (CI), when it fails.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Instant;

use tokio::process::{Child, Command};

use super::DEADLINE;

/// How to get the server when it is missing.
pub const INSTALL_HINT: &str =
    "bash scripts/test.sh installs it into a venv (or: pip install 'moto[server]>=5,<6' in one)";

/// A `moto_server` child, killed when dropped.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, the value for `AWS_ENDPOINT`.
    pub endpoint: String,
    /// Holds the server's stderr log.
    log_dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `moto_server -H 127.0.0.1 -p PORT` on a free port and waits until it answers HTTP.
    pub async fn start() -> S3Server {
        S3Server::start_on(free_port()).await
    }

    /// Like [`S3Server::start`] on a port chosen before (so `AWS_ENDPOINT` can be set first).
    pub async fn start_on(port: u16) -> S3Server {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(log_dir.path().join("moto.log")).expect("log file");
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                panic!("moto_server is not on PATH: {INSTALL_HINT}")
            }
            Err(err) => panic!("cannot start moto_server ({err}): {INSTALL_HINT}"),
        };
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log_dir,
        };
        server.wait_until_answering().await;
        server
    }

    /// Polls until any HTTP answer comes back; fails early if the server exited.
    async fn wait_until_answering(&mut self) {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll moto_server") {
                panic!(
                    "moto_server exited ({status}) before answering; {INSTALL_HINT}\nits log:\n{}",
                    self.log()
                );
            }
            if client.get(&self.endpoint).send().await.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "moto_server did not answer on {} within {DEADLINE:?}; its log:\n{}",
                self.endpoint,
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT/<path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.endpoint, path.trim_start_matches('/'))
    }

    /// Creates `bucket` (a path-style PUT; moto checks no signature by default).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(self.url(bucket))
            .header("authorization", TEST_USER)
            .send()
            .await
            .expect("PUT bucket");
        assert_eq!(response.status().as_u16(), 200, "create bucket {bucket}");
    }

    /// An object's bytes through the S3 API, or the HTTP status when there is none.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, u16> {
        let response = get(self.url(&format!("{bucket}/{key}"))).await;
        match response.status().as_u16() {
            200 => Ok(response.bytes().await.expect("object body").to_vec()),
            status => Err(status),
        }
    }

    /// Keys under `prefix` (ListObjectsV2), in the server's (lexicographic) order.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        // Object keys here are [A-Za-z0-9._/-] (sanitized ids), all safe in a query string.
        let url = self.url(&format!(
            "{bucket}?list-type=2&max-keys=1000&prefix={prefix}"
        ));
        let response = get(url).await;
        assert_eq!(response.status().as_u16(), 200);
        let xml = response.text().await.unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("moto.log")).unwrap_or_default()
    }
}

/// moto checks no signature, but a request without `Authorization` is anonymous and a private
/// object refuses it (403); this header makes a request the test user's.
const TEST_USER: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
     SignedHeaders=host, Signature=0";

/// A GET as the test user.
async fn get(url: String) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("authorization", TEST_USER)
        .send()
        .await
        .expect("GET from moto_server")
}

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}
