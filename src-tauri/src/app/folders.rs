//! "Open folder": shows a directory in the system's file manager.
//!
//! The page names which folder (the session's recording or the results), never a path, so it
//! cannot make the app open anything else.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

/// Opens `dir` with the platform's file manager, without waiting for it.
pub fn open(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} does not exist (yet).", dir.display());
    }
    let program = if cfg!(target_os = "windows") {
        "explorer"
    } else if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut child = Command::new(program)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {program} to open {}", dir.display()))?;
    // Reap it when it exits so no zombie stays behind.
    std::thread::spawn(move || child.wait());
    Ok(())
}
