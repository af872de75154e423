//! The handle a test holds: [`Mount`] starts the `powercut` daemon as a child process, waits for
//! its mount, and stops it with a power cut ([`Mount::cut`]) or without one ([`Mount::keep`]).
//! [`binary`] finds (building if needed) the daemon for tests of other crates.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::daemon::{MOUNTED_LINE, lazy_unmount};

/// Loading the backing directory and mounting take milliseconds; this only bounds a hang.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Writing the image back is bounded by the data's size; a test's data is small.
const STOP_DEADLINE: Duration = Duration::from_secs(60);

/// A running `powercut` daemon and its mount. Dropping it without [`cut`](Mount::cut) or
/// [`keep`](Mount::keep) keeps everything (as `keep` does) and, should the daemon not stop,
/// kills it and lazily unmounts, so a failed test never leaves a mount behind.
#[derive(Debug)]
pub struct Mount {
    mountpoint: PathBuf,
    /// `None` once stopped.
    daemon: Option<Daemon>,
}

#[derive(Debug)]
struct Daemon {
    child: Child,
    /// Held open only so that the daemon sees it close if this process dies
    /// (`--until-stdin-closes`).
    _stdin: ChildStdin,
    /// The daemon's stdout, line by line; disconnected when it exits.
    lines: Receiver<String>,
    /// The daemon's whole stderr, for error messages.
    stderr: JoinHandle<String>,
}

impl Mount {
    /// Mounts `backing` at `mountpoint` with the daemon that [`binary`] finds.
    pub fn start(backing: &Path, mountpoint: &Path) -> io::Result<Mount> {
        Mount::start_with(&binary()?, backing, mountpoint)
    }

    /// Mounts `backing` at `mountpoint` with the daemon at `binary` (in this crate's own tests,
    /// `env!("CARGO_BIN_EXE_powercut")`), and returns once the mount serves requests.
    pub fn start_with(binary: &Path, backing: &Path, mountpoint: &Path) -> io::Result<Mount> {
        let mut child = Command::new(binary)
            .arg("--until-stdin-closes")
            .arg(backing)
            .arg(mountpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot run {}: {err}", binary.display()),
                )
            })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut mount = Mount {
            mountpoint: mountpoint.to_path_buf(),
            daemon: Some(Daemon {
                child,
                _stdin: stdin,
                lines,
                stderr,
            }),
        };
        let daemon = mount.daemon.as_mut().expect("just set");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match daemon
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line == MOUNTED_LINE => return Ok(mount),
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    let daemon = mount.daemon.take().expect("still running");
                    let (status, stderr) = daemon.finish();
                    return Err(io::Error::other(format!(
                        "powercut did not mount ({status}): {}",
                        stderr.trim()
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let daemon = mount.daemon.take().expect("still running");
                    mount.force_stop(daemon);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("powercut did not mount within {START_DEADLINE:?}"),
                    ));
                }
            }
        }
    }

    /// Where the filesystem is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: only what was fsynced (and the namespace as of the last sync) is left in
    /// the backing directory. Returns the daemon's summary line. Kill the processes writing to
    /// the mount first: from the cut on, their requests fail.
    pub fn cut(mut self) -> io::Result<String> {
        self.stop(libc::SIGTERM)
    }

    /// Shuts down cleanly: everything, synced or not, is left in the backing directory. Returns
    /// the daemon's summary line.
    pub fn keep(mut self) -> io::Result<String> {
        self.stop(libc::SIGUSR1)
    }

    fn stop(&mut self, signal: i32) -> io::Result<String> {
        let Some(daemon) = self.daemon.take() else {
            return Err(io::Error::other("powercut was already stopped"));
        };
        // SAFETY: kill(2) touches no memory; the child is not yet waited for, so its pid is
        // still ours and cannot name another process.
        if unsafe { libc::kill(daemon.child.id() as i32, signal) } != 0 {
            let err = io::Error::last_os_error();
            self.force_stop(daemon);
            return Err(io::Error::other(format!("cannot signal powercut: {err}")));
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        let mut last_line = None;
        loop {
            match daemon
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => last_line = Some(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    self.force_stop(daemon);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("powercut did not stop within {STOP_DEADLINE:?}"),
                    ));
                }
            }
        }
        let (status, stderr) = daemon.finish();
        match last_line {
            Some(summary) if status.success() => Ok(summary),
            _ => {
                // It may have died before unmounting.
                let _ = lazy_unmount(&self.mountpoint);
                Err(io::Error::other(format!(
                    "powercut failed ({status}): {}",
                    stderr.trim()
                )))
            }
        }
    }

    /// The last resort: the mount's data is lost, but no mount is left behind.
    fn force_stop(&self, mut daemon: Daemon) {
        let _ = daemon.child.kill();
        let _ = daemon.finish();
        let _ = lazy_unmount(&self.mountpoint);
    }
}

impl Daemon {
    /// Waits for the exited (or killed) daemon; returns its status and stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait();
        let stderr = self.stderr.join().unwrap_or_default();
        match status {
            Ok(status) => (status, stderr),
            Err(err) => (ExitStatus::default(), format!("cannot wait for it: {err}")),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            if let Err(err) = self.stop(libc::SIGUSR1) {
                eprintln!("powercut at {}: {err}", self.mountpoint.display());
            }
        }
    }
}

/// The `powercut` daemon for tests of other crates: `$POWERCUT_BIN` if set, else what
/// `cargo build -p powercut --bin powercut` builds (with the `cargo` running the tests and its
/// `CARGO_TARGET_DIR`), built once per test process.
pub fn binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("POWERCUT_BIN") {
        return Ok(path.into());
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build).clone().map_err(io::Error::other)
}

fn build() -> Result<PathBuf, String> {
    // Cargo sets CARGO for the tests it runs; outside cargo, the one that built this crate.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    // Run where the calling test runs (cargo sets CARGO_MANIFEST_DIR for each test process to
    // its package, inside this workspace), not at the path this crate was compiled from: a
    // build directory shared by clones at other paths may hold this crate compiled from any
    // of them.
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let output = Command::new(&cargo)
        .current_dir(&package)
        .args(["build", "-p", "powercut", "--bin", "powercut"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p powercut failed ({}); its errors are above",
            output.status
        ));
    }
    // One JSON message per line; the binary's artifact names the executable.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "powercut")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo build -p powercut named no powercut executable".into())
}
