//! A `gateway serve` child process: the real binary, as an operator runs it, so a test can
//! kill it with SIGKILL (a crash) or stop it with SIGTERM (a graceful stop) and start it again
//! on the same data directory.
//!
//! The child runs in its own process group and is killed when the handle drops, so a failing
//! test leaves no gateway behind. Its stderr goes to a file in the data directory's parent
//! (never a pipe nobody drains), and failures quote it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::DEADLINE;

/// A running `gateway serve` child.
pub struct ChildGateway {
    child: Child,
    /// Kept open for the child's life: a closed stdout would turn a later print into EPIPE.
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stderr_log: PathBuf,
}

impl ChildGateway {
    /// Starts `gateway serve --listen 127.0.0.1:0 --data-dir DIR` and waits for its startup line.
    /// `log_dir` holds the child's stderr (one file per start, so a restart keeps the earlier log).
    pub async fn start(data_dir: &Path, log_dir: &Path) -> ChildGateway {
        ChildGateway::start_under(&[], &[], data_dir, log_dir).await
    }

    /// As [`ChildGateway::start`], with more `serve` flags, run under `wrapper` (a program and
    /// its arguments, e.g. `strace -o FILE`) when that is not empty. Signals then reach the
    /// wrapper, not the gateway: use [`ChildGateway::signal_group`].
    pub async fn start_under(
        wrapper: &[&str],
        flags: &[&str],
        data_dir: &Path,
        log_dir: &Path,
    ) -> ChildGateway {
        let stderr_log = log_dir.join(format!("gateway-{}.log", unique_suffix()));
        let stderr = std::fs::File::create(&stderr_log).expect("create the child's log file");
        let gateway = env!("CARGO_BIN_EXE_gateway");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(gateway);
                command
            }
            None => Command::new(gateway),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .arg("--data-dir")
            .arg(data_dir)
            // Settings the test does not choose must not leak in from the developer's shell.
            .env_remove("GATEWAY_OBJECTS")
            .env_remove("GATEWAY_API_KEY")
            .env_remove("INFERENCE_BASE_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().expect("spawn the gateway binary");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, stdout.read_line(&mut line)).await;
        let addr = match read {
            Ok(Ok(n)) if n > 0 => parse_startup_line(&line)
                .unwrap_or_else(|| panic!("unexpected startup line: {line:?}")),
            other => panic!(
                "the gateway printed no startup line ({other:?}); its log:\n{}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            ),
        };
        ChildGateway {
            child,
            _stdout: stdout,
            addr,
            data_dir: data_dir.to_owned(),
            stderr_log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("the child is running") as i32
    }

    /// `http://127.0.0.1:PORT/...`
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The ingest WebSocket URL of `session`.
    pub fn ws(&self, session: &str) -> String {
        format!("ws://{}/v1/audio/ws/{}", self.addr, session)
    }

    /// Path of an object in the local object directory: results (and frames stored one
    /// file each, `--frame-store files`).
    pub fn object(&self, key: &str) -> PathBuf {
        self.data_dir.join("objects").join(key)
    }

    /// The stored bytes of an object, wherever the store put them (frames go to the log).
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        gateway::storage::read_local(&self.data_dir, key).expect("readable storage")
    }

    /// Sends `signal` to the child (not its group: the gateway has no children of its own).
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let result = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(result, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Sends `signal` to the child's whole process group (a wrapper and the gateway under it).
    #[cfg(unix)]
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) on the process group we created for the child.
        let result = unsafe { libc::kill(-self.pid(), signal) };
        assert_eq!(result, 0, "kill(-{}, {signal}) failed", self.pid());
    }

    /// Waits until the child has exited, failing the test after the deadline.
    pub async fn exited(&mut self) -> ExitStatus {
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(status) => status.expect("wait for the child"),
            Err(_) => panic!(
                "the gateway did not exit within {DEADLINE:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    /// `kill -9`, then wait for it to be gone.
    #[cfg(unix)]
    pub async fn crash(&mut self) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        self.signal(libc::SIGKILL);
        let status = self.exited().await;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        status
    }

    /// What the child wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// `gateway listening on http://127.0.0.1:PORT | storage: ... | inference: ...` → the address.
fn parse_startup_line(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("gateway listening on http://")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
