//! One line to get a mounted powercut filesystem over fresh temp dirs, for these tests.
//!
//! Each test binary uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use powercut::Mount;
use tempfile::TempDir;

/// A powercut mount over a backing directory of its own. Field order matters: the mount is
/// dropped (stopped, unmounted) before its directories are removed, even when a test panics.
pub struct Disk {
    mount: Option<Mount>,
    backing: TempDir,
    _mountpoint: TempDir,
    mounted_at: PathBuf,
}

impl Disk {
    /// A mounted disk, or `None` when this machine cannot mount one (the test then skips, after
    /// saying why, unless `REQUIRE_FUSE` is set: see `powercut::skip_without_fuse`).
    pub fn mount(test: &str) -> Option<Disk> {
        if powercut::skip_without_fuse(test) {
            return None;
        }
        let backing = tempfile::tempdir().expect("backing dir");
        let mountpoint = tempfile::tempdir().expect("mount point");
        let daemon = Path::new(env!("CARGO_BIN_EXE_powercut"));
        let mount =
            Mount::start_with(daemon, backing.path(), mountpoint.path()).expect("powercut mounts");
        Some(Disk {
            mounted_at: mount.mountpoint().to_path_buf(),
            mount: Some(mount),
            backing,
            _mountpoint: mountpoint,
        })
    }

    /// `relative` inside the mount: where the code under test reads and writes.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.mounted_at.join(relative)
    }

    /// `relative` inside the backing directory: what is on "disk" after the cut.
    pub fn backing(&self, relative: &str) -> PathBuf {
        self.backing.path().join(relative)
    }

    /// Cuts the power; returns the daemon's summary line.
    pub fn cut(&mut self) -> String {
        self.mount
            .take()
            .expect("mounted")
            .cut()
            .expect("power cut")
    }

    /// Shuts down cleanly; returns the daemon's summary line.
    pub fn keep(&mut self) -> String {
        self.mount
            .take()
            .expect("mounted")
            .keep()
            .expect("clean shutdown")
    }
}
