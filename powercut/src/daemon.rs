//! The `powercut` process: loads the backing directory into a [`Tree`], mounts it, prints
//! [`MOUNTED_LINE`], and waits for the signal that says how the power goes off ([`Shutdown`]).
//! Then it stops serving, writes the chosen image back over the backing directory, unmounts
//! lazily, prints one summary line and exits 0 (or 1, with the reason on stderr).

use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::{mem, thread};

use fuser::{Config, MountOption};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::fs::{PowercutFs, SharedTree};
use crate::image::DirImage;
use crate::summary::Summary;
use crate::tree::{Tree, View};

/// Printed (and flushed) on stdout once the mount serves requests.
pub const MOUNTED_LINE: &str = "powercut: mounted";

const USAGE: &str = "usage: powercut [--until-stdin-closes] BACKING MOUNTPOINT

Mounts a copy of BACKING at MOUNTPOINT in memory. On SIGTERM or SIGINT (a power cut) only what
was fsynced is written back to BACKING; on SIGUSR1 (a clean shutdown) everything is.
--until-stdin-closes: also shut down cleanly when standard input closes (its parent died).";

/// How the daemon stops, chosen by the signal it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM or SIGINT: only the durable image reaches the backing directory.
    Cut,
    /// SIGUSR1: the live image does, as after a clean shutdown.
    Keep,
}

impl Shutdown {
    fn from_signal(signal: i32) -> Option<Shutdown> {
        match signal {
            SIGTERM | SIGINT => Some(Shutdown::Cut),
            SIGUSR1 => Some(Shutdown::Keep),
            _ => None,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Shutdown::Cut => "cut",
            Shutdown::Keep => "kept",
        }
    }
}

/// The command line, parsed.
struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
    /// Set by [`crate::Mount`]: a test process that dies without stopping its mount closes the
    /// daemon's stdin, and the daemon then shuts down cleanly rather than leave a mount behind.
    until_stdin_closes: bool,
}

/// The binary's `main`: `args` without the program name.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match parse(args) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("powercut: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&args) {
        Ok(summary) => {
            // Ignored: if whoever reads stdout is gone, the backing directory is written anyway.
            let _ = writeln!(io::stdout(), "{summary}").and_then(|()| io::stdout().flush());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("powercut: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` asks for the usage text.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut until_stdin_closes = false;
    let mut paths = Vec::new();
    for arg in args {
        match arg.to_str() {
            Some("--until-stdin-closes") => until_stdin_closes = true,
            Some("-h" | "--help") => return Ok(None),
            Some(flag) if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let [backing, mountpoint] = <[PathBuf; 2]>::try_from(paths)
        .map_err(|paths| format!("expected BACKING and MOUNTPOINT, got {} paths", paths.len()))?;
    Ok(Some(Args {
        backing,
        mountpoint,
        until_stdin_closes,
    }))
}

/// Everything from checking the arguments to writing the image back; returns the summary line.
fn serve(args: &Args) -> Result<String, String> {
    let backing = existing_dir(&args.backing, "backing directory")?;
    let mountpoint = existing_dir(&args.mountpoint, "mount point")?;
    if backing.starts_with(&mountpoint) || mountpoint.starts_with(&backing) {
        // Writing the image back would delete the mount point, or load would read the mount.
        return Err(format!(
            "the backing directory {} and the mount point {} must not contain each other",
            backing.display(),
            mountpoint.display()
        ));
    }
    crate::fuse_available()?;
    // Registered before mounting, so a signal that comes while mounting is answered once the
    // mount is up rather than killing the process with the mount half made.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGUSR1])
        .map_err(|err| format!("cannot install signal handlers: {err}"))?;

    let image = DirImage::load(&backing)
        .map_err(|err| format!("cannot load {}: {err}", backing.display()))?;
    let tree: SharedTree = Arc::new(Mutex::new(Some(Tree::new(&image))));
    drop(image);

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("powercut".into()),
        MountOption::DefaultPermissions,
    ];
    let session = fuser::spawn_mount(PowercutFs::new(Arc::clone(&tree)), &mountpoint, &config)
        .map_err(|err| format!("cannot mount at {}: {err}", mountpoint.display()))?;
    let mut stdout = io::stdout();
    writeln!(stdout, "{MOUNTED_LINE}")
        .and_then(|()| stdout.flush())
        .map_err(|err| format!("cannot say the mount is up: {err}"))?;

    if args.until_stdin_closes {
        thread::spawn(|| {
            let _ = io::copy(&mut io::stdin(), &mut io::sink());
            let _ = signal_hook::low_level::raise(SIGUSR1);
        });
    }
    let shutdown = signals
        .forever()
        .find_map(Shutdown::from_signal)
        .ok_or("the signal handler closed")?;

    // The power goes off here: from now on every request fails with EIO.
    let tree = tree
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or("the tree was already taken")?;
    let live = tree.image(View::Live);
    let durable = (shutdown == Shutdown::Cut).then(|| tree.image(View::Durable));
    let written = durable.as_ref().unwrap_or(&live);
    drop(tree);

    let unmounted = lazy_unmount(&mountpoint);
    // fuser's session would unmount again by path when dropped. Ours is already detached, and a
    // second unmount by path could hit whatever is mounted there next; the process exits next,
    // which closes /dev/fuse and ends the connection.
    mem::forget(session);
    written
        .store(&backing)
        .map_err(|err| format!("cannot write the image to {}: {err}", backing.display()))?;
    unmounted.map_err(|err| format!("cannot unmount {}: {err}", mountpoint.display()))?;
    Ok(format!(
        "powercut: {}: {}",
        shutdown.verb(),
        Summary::of(written, &live)
    ))
}

fn existing_dir(path: &Path, what: &str) -> Result<PathBuf, String> {
    let canonical = path
        .canonicalize()
        .map_err(|err| format!("{what} {}: {err}", path.display()))?;
    if !canonical.is_dir() {
        return Err(format!("{what} {} is not a directory", path.display()));
    }
    Ok(canonical)
}

/// `umount -l`: detached now, gone once nothing uses it. A writer that still has files open
/// (it should have been killed first) gets errors, not a hang.
pub(crate) fn lazy_unmount(mountpoint: &Path) -> io::Result<()> {
    let path = CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn the_command_line_takes_two_paths_and_one_flag() {
        let parsed = args(&["--until-stdin-closes", "b", "m"]).unwrap().unwrap();
        assert_eq!(
            (parsed.backing, parsed.mountpoint, parsed.until_stdin_closes),
            ("b".into(), "m".into(), true)
        );
        assert!(args(&["--help"]).unwrap().is_none());
        for wrong in [&["b"][..], &["b", "m", "x"], &["--force", "b", "m"]] {
            assert!(args(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn the_signal_chooses_between_a_cut_and_a_clean_shutdown() {
        assert_eq!(Shutdown::from_signal(SIGTERM), Some(Shutdown::Cut));
        assert_eq!(Shutdown::from_signal(SIGINT), Some(Shutdown::Cut));
        assert_eq!(Shutdown::from_signal(SIGUSR1), Some(Shutdown::Keep));
    }
}
