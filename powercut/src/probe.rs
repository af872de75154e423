//! Whether this machine can mount a powercut filesystem, and the one rule every test that needs
//! one follows when it cannot: say why and skip, unless `REQUIRE_FUSE` makes that a failure.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};

/// `CAP_SYS_ADMIN`'s bit in `/proc/self/status`'s `CapEff`: mount(2) needs it.
const CAP_SYS_ADMIN: u32 = 21;

/// `Ok` when a powercut mount can work here, else why not, in a sentence that says what to do.
///
/// The daemon mounts with mount(2) (there is no fusermount helper to fall back on), which needs
/// `/dev/fuse` and `CAP_SYS_ADMIN` (root, in practice).
pub fn fuse_available() -> Result<(), String> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(
                "/dev/fuse does not exist: load the fuse module (modprobe fuse), or give \
                        the container the device (--device /dev/fuse)"
                    .into(),
            );
        }
        Err(err) => {
            return Err(format!(
                "/dev/fuse cannot be opened for reading and writing: {err}"
            ));
        }
    }
    if !has_effective_capability(CAP_SYS_ADMIN)? {
        return Err(
            "mounting needs CAP_SYS_ADMIN (run as root): powercut mounts with mount(2) \
                    and has no fusermount helper"
                .into(),
        );
    }
    Ok(())
}

/// For a test that needs a mount: `true` when it must skip because [`fuse_available`] failed,
/// after printing one line that says why. Panics instead when `REQUIRE_FUSE` is set (to anything
/// but `0`), as CI does, so a run that should test a power cut never passes without one.
///
/// ```no_run
/// if powercut::skip_without_fuse("acked frames survive a power cut") {
///     return;
/// }
/// ```
pub fn skip_without_fuse(test: &str) -> bool {
    let Err(reason) = fuse_available() else {
        return false;
    };
    let required = std::env::var("REQUIRE_FUSE").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "REQUIRE_FUSE is set, but {reason}");
    // Straight to stderr: the test harness captures `eprintln!` of a passing test.
    let _ = writeln!(
        io::stderr(),
        "SKIPPED {test}: {reason} (REQUIRE_FUSE=1 makes this a failure)"
    );
    true
}

fn has_effective_capability(bit: u32) -> Result<bool, String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|err| format!("cannot read /proc/self/status to check capabilities: {err}"))?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or("/proc/self/status has no readable CapEff line")?;
    Ok(mask & (1 << bit) != 0)
}
