//! The model of the crate docs, through real mounts: what a power cut keeps and what it throws
//! away, and that a clean shutdown keeps everything. Each test mounts its own temp dirs (root and
//! /dev/fuse needed; see `support::Disk::mount` for the skip rule).

mod support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use support::Disk;

#[test]
fn a_file_written_without_fsync_is_gone_after_a_cut_and_a_synced_one_is_back_exactly() {
    let Some(mut disk) = Disk::mount("power cut: unsynced file") else {
        return;
    };
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut synced = File::create(disk.path("synced.bin")).unwrap();
    synced.write_all(&bytes).unwrap();
    synced.sync_all().unwrap();
    drop(synced);
    fs::write(disk.path("unsynced.txt"), b"never fsynced").unwrap();
    assert_eq!(
        fs::read(disk.path("unsynced.txt")).unwrap(),
        b"never fsynced",
        "readable while the power is on"
    );

    let summary = disk.cut();

    assert_eq!(fs::read(disk.backing("synced.bin")).unwrap(), bytes);
    assert!(!disk.backing("unsynced.txt").exists(), "{summary}");
}

#[test]
fn a_file_named_before_another_files_fsync_comes_back_empty() {
    let Some(mut disk) = Disk::mount("power cut: durable name, unsynced data") else {
        return;
    };
    fs::write(disk.path("named.txt"), b"data never fsynced").unwrap();
    File::create(disk.path("other"))
        .unwrap()
        .sync_all()
        .unwrap();

    disk.cut();

    assert_eq!(fs::read(disk.backing("named.txt")).unwrap(), b"");
}

#[test]
fn appends_and_overwrites_after_the_last_fsync_are_cut_off() {
    let Some(mut disk) = Disk::mount("power cut: appends after fsync") else {
        return;
    };
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(disk.path("frames.log"))
        .unwrap();
    log.write_all(b"frame 1\n").unwrap();
    log.write_all(b"frame 2\n").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"frame 3\n").unwrap();
    let overwrite = OpenOptions::new()
        .write(true)
        .open(disk.path("frames.log"))
        .unwrap();
    overwrite.write_all_at(b"FRAME", 0).unwrap();
    drop((log, overwrite));
    assert_eq!(
        fs::read(disk.path("frames.log")).unwrap(),
        b"FRAME 1\nframe 2\nframe 3\n"
    );

    let summary = disk.cut();

    assert_eq!(
        fs::read(disk.backing("frames.log")).unwrap(),
        b"frame 1\nframe 2\n",
        "{summary}"
    );
}

#[test]
fn renames_before_a_sync_of_any_file_survive_and_namespace_changes_after_it_do_not() {
    let Some(mut disk) = Disk::mount("power cut: renames") else {
        return;
    };
    fs::create_dir(disk.path("sessions")).unwrap();
    let mut tmp = File::create(disk.path("sessions/s1.tmp")).unwrap();
    tmp.write_all(b"{\"frames\":3}").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(disk.path("sessions/s1.tmp"), disk.path("sessions/s1.json")).unwrap();
    fs::create_dir(disk.path("sessions/new")).unwrap();
    fs::rename(disk.path("sessions/new"), disk.path("sessions/s1-audio")).unwrap();
    fs::write(disk.path("doomed"), b"synced, then unlinked").unwrap();
    // The sync of an unrelated file commits every name change before it.
    let anchor = File::create(disk.path("anchor")).unwrap();
    anchor.sync_all().unwrap();
    File::open(disk.path("doomed")).unwrap().sync_all().unwrap();

    // After the last sync: none of these reach the disk.
    fs::rename(disk.path("sessions/s1.json"), disk.path("sessions/s1.old")).unwrap();
    fs::remove_dir(disk.path("sessions/s1-audio")).unwrap();
    fs::create_dir(disk.path("later")).unwrap();
    fs::remove_file(disk.path("doomed")).unwrap();

    let summary = disk.cut();

    assert_eq!(
        fs::read(disk.backing("sessions/s1.json")).unwrap(),
        b"{\"frames\":3}",
        "{summary}"
    );
    assert!(disk.backing("sessions/s1-audio").is_dir());
    assert_eq!(
        fs::read(disk.backing("doomed")).unwrap(),
        b"synced, then unlinked"
    );
    for absent in [
        "sessions/s1.tmp",
        "sessions/s1.old",
        "sessions/new",
        "later",
    ] {
        assert!(!disk.backing(absent).exists(), "{absent} should be gone");
    }
}

#[test]
fn an_fsync_of_a_directory_makes_names_durable_but_not_contents() {
    let Some(mut disk) = Disk::mount("power cut: directory fsync") else {
        return;
    };
    fs::create_dir(disk.path("dir")).unwrap();
    fs::write(disk.path("dir/file"), b"unsynced").unwrap();
    File::open(disk.path("dir")).unwrap().sync_all().unwrap();

    disk.cut();

    assert_eq!(fs::read(disk.backing("dir/file")).unwrap(), b"");
}

#[test]
fn a_clean_shutdown_keeps_everything_synced_or_not() {
    let Some(mut disk) = Disk::mount("clean shutdown") else {
        return;
    };
    fs::create_dir_all(disk.path("a/b")).unwrap();
    fs::write(disk.path("a/b/unsynced"), b"kept without fsync").unwrap();
    let mut log = File::create(disk.path("log")).unwrap();
    log.write_all(b"synced ").unwrap();
    log.sync_all().unwrap();
    log.write_all(b"and not").unwrap();
    drop(log);
    fs::rename(disk.path("a/b"), disk.path("a/c")).unwrap();

    let summary = disk.keep();

    assert!(
        summary.contains("lost 0 paths, rolled back 0 files"),
        "{summary}"
    );
    assert_eq!(
        fs::read(disk.backing("a/c/unsynced")).unwrap(),
        b"kept without fsync"
    );
    assert_eq!(fs::read(disk.backing("log")).unwrap(), b"synced and not");
    assert!(!disk.backing("a/b").exists());
}

#[test]
fn what_the_backing_directory_held_at_mount_is_durable_and_what_the_cut_lacks_is_removed() {
    // Mounts by hand: the backing directory is filled before the mount.
    if powercut::skip_without_fuse("power cut: initial state") {
        return;
    }
    let backing = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    fs::create_dir(backing.path().join("old")).unwrap();
    fs::write(backing.path().join("old/kept"), b"was there").unwrap();
    fs::write(backing.path().join("removed"), b"was there too").unwrap();
    let daemon = Path::new(env!("CARGO_BIN_EXE_powercut"));
    let mount = powercut::Mount::start_with(daemon, backing.path(), mountpoint.path()).unwrap();
    let root = mount.mountpoint().to_path_buf();

    assert_eq!(fs::read(root.join("old/kept")).unwrap(), b"was there");
    fs::write(root.join("old/kept"), b"overwritten, unsynced").unwrap();
    fs::remove_file(root.join("removed")).unwrap();
    File::open(&root).unwrap().sync_all().unwrap();
    mount.cut().unwrap();

    assert_eq!(
        fs::read(backing.path().join("old/kept")).unwrap(),
        b"was there"
    );
    assert!(!backing.path().join("removed").exists());
}

#[test]
fn a_missing_mount_point_is_refused_with_a_clear_message() {
    let backing = tempfile::tempdir().unwrap();
    let daemon = Path::new(env!("CARGO_BIN_EXE_powercut"));
    let missing = backing.path().join("no-such-dir");
    let other = tempfile::tempdir().unwrap();
    let err = powercut::Mount::start_with(daemon, other.path(), &missing).unwrap_err();
    assert!(
        err.to_string().contains("mount point") && err.to_string().contains("no-such-dir"),
        "{err}"
    );
}
