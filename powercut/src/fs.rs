//! The FUSE face of the [`Tree`]: each kernel request becomes one call on the tree, and each
//! [`Refusal`] its errno (this file is the one place for that mapping). No durability rule lives
//! here.
//!
//! What the kernel is left to do, on purpose:
//! - POSIX and BSD locks: the INIT reply does not claim `FUSE_POSIX_LOCKS`/`FUSE_FLOCK_LOCKS`,
//!   so the kernel keeps locks itself, correctly for every process on this machine (SQLite's
//!   WAL locks included). All users of the mount are local.
//! - Permission checks: mounted with `default_permissions`, so `access` is never asked.
//! - The page cache: files are opened with `FOPEN_KEEP_CACHE` and never `direct_io`, so shared
//!   `mmap` works (SQLite maps its `-shm` file). Nothing changes the data behind the kernel's
//!   back, so its cache is never stale. Without the writeback cache (not requested) every
//!   `write(2)` reaches [`Tree::write`] before it returns.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::tree::{Attr, Change, Kind, Listed, Refusal, Tree};

/// How long the kernel may trust an attribute or a name it was given. Every change goes through
/// this mount, so the kernel's copy stays right; the TTL only bounds how long a bug could hide.
const TTL: Duration = Duration::from_secs(1);

/// Block size reported by `stat` and `statfs`.
const BLOCK: u32 = 4096;

/// The tree as the daemon shares it with the FUSE thread. The daemon takes the tree out at
/// shutdown; from then on every request fails with `EIO`, as a disk without power would, so no
/// write or fsync can land after the image is taken.
pub type SharedTree = Arc<Mutex<Option<Tree>>>;

/// The FUSE filesystem over a [`SharedTree`].
pub struct PowercutFs {
    tree: SharedTree,
    /// Directory listings taken at `opendir`, by handle, so a listing read in several `readdir`
    /// calls neither skips nor repeats a name when the directory changes meanwhile.
    listings: Mutex<Listings>,
    /// Owner reported for every inode: ownership is not modelled, everything belongs to the
    /// user that mounted.
    uid: u32,
    gid: u32,
}

#[derive(Default)]
struct Listings {
    next: u64,
    open: HashMap<u64, Vec<Listed>>,
}

impl PowercutFs {
    pub fn new(tree: SharedTree) -> PowercutFs {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        PowercutFs {
            tree,
            listings: Mutex::default(),
            uid,
            gid,
        }
    }

    /// Runs `op` on the tree, or fails with `EIO` once the power is off.
    fn with_tree<T>(&self, op: impl FnOnce(&mut Tree) -> Result<T, Refusal>) -> Result<T, Errno> {
        let mut guard = self.tree.lock().unwrap_or_else(PoisonError::into_inner);
        let tree = guard.as_mut().ok_or(Errno::EIO)?;
        op(tree).map_err(errno)
    }

    fn file_attr(&self, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size,
            blocks: attr.size.div_ceil(512),
            atime: attr.mtime,
            mtime: attr.mtime,
            ctime: attr.ctime,
            crtime: attr.ctime,
            kind: file_type(attr.kind),
            perm: attr.mode as u16,
            nlink: attr.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK,
            flags: 0,
        }
    }

    fn reply_entry(&self, result: Result<Attr, Errno>, reply: ReplyEntry) {
        match result {
            Ok(attr) => reply.entry(&TTL, &self.file_attr(&attr), Generation(0)),
            Err(err) => reply.error(err),
        }
    }

    fn reply_attr(&self, result: Result<Attr, Errno>, reply: ReplyAttr) {
        match result {
            Ok(attr) => reply.attr(&TTL, &self.file_attr(&attr)),
            Err(err) => reply.error(err),
        }
    }
}

fn reply_empty(result: Result<(), Errno>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(err) => reply.error(err),
    }
}

fn errno(refusal: Refusal) -> Errno {
    match refusal {
        Refusal::NotFound => Errno::ENOENT,
        Refusal::Exists => Errno::EEXIST,
        Refusal::NotADirectory => Errno::ENOTDIR,
        Refusal::IsADirectory => Errno::EISDIR,
        Refusal::NotEmpty => Errno::ENOTEMPTY,
        Refusal::Invalid => Errno::EINVAL,
        Refusal::TooLarge => Errno::EFBIG,
        Refusal::NameTooLong => Errno::ENAMETOOLONG,
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

fn system_time(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for PowercutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.reply_entry(self.with_tree(|tree| tree.lookup(parent.0, name)), reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        // After the cut there is nothing left to free.
        let _ = self.with_tree(|tree| {
            tree.forget(ino.0, nlookup);
            Ok(())
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.reply_attr(self.with_tree(|tree| tree.attr(ino.0)), reply);
    }

    /// Ownership (`uid`, `gid`) and access times are not modelled and are ignored.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = Change {
            mode,
            size,
            mtime: mtime.map(system_time),
        };
        self.reply_attr(self.with_tree(|tree| tree.change(ino.0, change)), reply);
    }

    /// Only regular files: devices, fifos and sockets are not modelled.
    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        let result = self.with_tree(|tree| tree.create(parent.0, name, Kind::File, mode & !umask));
        self.reply_entry(result, reply);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.with_tree(|tree| tree.create(parent.0, name, Kind::Dir, mode & !umask));
        self.reply_entry(result, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.with_tree(|tree| tree.unlink(parent.0, name)), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.with_tree(|tree| tree.rmdir(parent.0, name)), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // RENAME_EXCHANGE and RENAME_WHITEOUT are not modelled.
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            reply.error(Errno::EINVAL);
            return;
        }
        let replace = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        let result =
            self.with_tree(|tree| tree.rename(parent.0, name, newparent.0, newname, replace));
        reply_empty(result, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with_tree(|tree| tree.attr(ino.0)) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(err) => reply.error(err),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut guard = self.tree.lock().unwrap_or_else(PoisonError::into_inner);
        // Replied under the lock: the slice borrows the tree, and copying it out first would
        // cost a second copy of every read.
        match guard
            .as_mut()
            .ok_or(Errno::EIO)
            .and_then(|tree| tree.read(ino.0, offset, size).map_err(errno))
        {
            Ok(data) => reply.data(data),
            Err(err) => reply.error(err),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with_tree(|tree| tree.write(ino.0, offset, data)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(err) => reply.error(err),
        }
    }

    /// `close` makes nothing durable: only fsync does.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    /// `fsync` and `fdatasync` alike: the file's bytes and the whole namespace become durable.
    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.with_tree(|tree| tree.sync(ino.0)), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with_tree(|tree| tree.list(ino.0)) {
            Ok(listing) => {
                let mut listings = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
                listings.next += 1;
                let handle = listings.next;
                listings.open.insert(handle, listing);
                reply.opened(FileHandle(handle), FopenFlags::empty());
            }
            Err(err) => reply.error(err),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listings = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(listing) = listings.open.get(&fh.0) else {
            reply.error(Errno::EBADF);
            return;
        };
        // An entry's offset is the position of the next one: where to resume after it.
        for (position, entry) in listing.iter().enumerate().skip(offset as usize) {
            let next = position as u64 + 1;
            if reply.add(INodeNo(entry.ino), next, file_type(entry.kind), &entry.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let mut listings = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
        listings.open.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.with_tree(|tree| tree.sync(ino.0)), reply);
    }

    /// A fixed 64 GiB volume, so `df` and free-space checks see room; the memory is the real
    /// limit.
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCKS: u64 = (64 << 30) / BLOCK as u64;
        const INODES: u64 = 1 << 24;
        match self.with_tree(|tree| Ok(tree.usage())) {
            Ok((inodes, bytes)) => {
                let free = BLOCKS.saturating_sub(bytes.div_ceil(BLOCK as u64));
                let free_inodes = INODES.saturating_sub(inodes);
                reply.statfs(BLOCKS, free, free, INODES, free_inodes, BLOCK, 255, BLOCK);
            }
            Err(err) => reply.error(err),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.with_tree(|tree| tree.create(parent.0, name, Kind::File, mode & !umask)) {
            Ok(attr) => reply.created(
                &TTL,
                &self.file_attr(&attr),
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(err) => reply.error(err),
        }
    }

    /// Plain preallocation (which may grow the file) and `FALLOC_FL_KEEP_SIZE` (which changes
    /// nothing visible); punching holes and the like are not modelled.
    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = match mode {
            0 => self.with_tree(|tree| tree.allocate(ino.0, offset, length)),
            libc::FALLOC_FL_KEEP_SIZE => self.with_tree(|tree| tree.attr(ino.0).map(|_| ())),
            _ => Err(Errno::EOPNOTSUPP),
        };
        reply_empty(result, reply);
    }
}
