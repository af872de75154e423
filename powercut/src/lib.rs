//! A FUSE filesystem for tests that simulates a power cut: a process writes through the mount
//! as it would to a disk, the test kills it, cuts the power, and finds in the backing directory
//! only what the process made durable with fsync.
//!
//! # The model
//!
//! - At mount, the backing directory's tree is loaded into memory: that is the initial durable
//!   state. From then on every operation through the mount works on the in-memory tree
//!   (the private `tree` module keeps it); the backing directory is not touched until shutdown.
//! - **File contents** become durable only when that file is fsynced or fdatasynced. `close`
//!   (FUSE `flush`) does not make anything durable. A size change (truncate, a write past the
//!   end, `fallocate`) is part of the contents.
//! - **The namespace** (create, mkdir, unlink, rmdir, rename, anywhere in the tree) becomes
//!   durable at the next sync of anything: an fsync or fdatasync of any file, or an fsync of any
//!   directory. This is a journaled filesystem: a journal commit carries every metadata change
//!   made before it, while file data still needs its own fsync. So a file whose name is durable
//!   but whose data was never synced comes back empty (or with its last synced contents), and an
//!   unlinked or renamed-over file comes back under its old name until the next sync.
//! - **Power cut** (`SIGTERM` or `SIGINT` to the daemon, [`Mount::cut`]): from that instant every
//!   request to the mount fails with `EIO`; the durable tree replaces the backing directory's
//!   contents exactly (what it lacks is removed, every file is rewritten and fsynced); the mount
//!   is detached (`umount -l`); one summary line is printed; the daemon exits 0.
//! - **Clean shutdown** (`SIGUSR1`, [`Mount::keep`]): the same, with the live tree: everything is
//!   kept, synced or not, so a test can show the layer itself loses nothing.
//!
//! # What is not modelled
//!
//! - Only regular files and directories (a symlink or device in the backing directory is
//!   refused at mount); no hard links, no xattrs.
//! - Modes and mtimes are written back as they are at shutdown, not rolled back with the data;
//!   ownership is not kept (files belong to the user that runs the daemon).
//! - No torn writes: an unsynced write is lost whole, a synced one is kept whole. Writes are not
//!   reordered either: a file comes back exactly as it was at its last fsync.
//! - `sync(2)`/`syncfs(2)` and `O_SYNC` rely on the kernel sending fsync; a plain `sync` makes
//!   nothing durable here.
//! - Locks are the kernel's local POSIX locks (see the private `fs` module), so every user of the
//!   mount must be on this machine, which a test's are.
//! - Everything is held in memory, each file up to 1 GiB.
//!
//! # Use from a test
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! if powercut::skip_without_fuse("acked frames survive a power cut") {
//!     return Ok(());
//! }
//! let backing = tempfile::tempdir()?;
//! let mountpoint = tempfile::tempdir()?;
//! let mount = powercut::Mount::start(backing.path(), mountpoint.path())?;
//! // ... run the process under test with its data in mount.mountpoint(), kill -9 it ...
//! let summary = mount.cut()?;
//! // ... open backing.path(): only what was fsynced is there ...
//! # Ok(())
//! # }
//! ```
//!
//! The daemon is the binary `powercut BACKING MOUNTPOINT`; it needs `/dev/fuse` and the right to
//! mount(2) (root): [`fuse_available`] says whether that holds here.

mod contents;
mod daemon;
mod fs;
mod image;
mod mount;
mod probe;
mod summary;
mod tree;

pub use daemon::{MOUNTED_LINE, Shutdown, main};
pub use mount::{Mount, binary};
pub use probe::{fuse_available, skip_without_fuse};
