//! Tests of other crates cannot use `CARGO_BIN_EXE_powercut`; `powercut::binary()` builds and
//! finds the daemon for them. This runs it the way they would.

use std::process::Command;

#[test]
fn binary_builds_and_finds_the_daemon_for_tests_of_other_crates() {
    let daemon = powercut::binary().expect("cargo builds powercut");
    let help = Command::new(&daemon).arg("--help").output().unwrap();
    assert!(help.status.success(), "{}", daemon.display());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: powercut"));
}
