//! The filesystem's state and its durability rules: every inode holds two versions, the live one
//! that reads see and the durable one that a power cut leaves behind. Plain data, no FUSE types:
//! [`crate::fs`] turns kernel requests into calls here.
//!
//! Invariants:
//! - A file's durable bytes are its live bytes as of its last fsync (or as loaded at mount):
//!   [`Contents`] keeps both.
//! - A directory's `durable` entries are its `live` entries as of the last sync of anything. A
//!   directory whose live entries changed since then is in `dirty_dirs`; every other directory
//!   has `durable == live`. So the durable entries of all directories are one snapshot of the
//!   namespace, taken at the last sync, and that snapshot is a tree rooted at [`ROOT`].
//! - `live_links` counts the names an inode has in the live namespace, `durable_links` those in
//!   the durable snapshot, `lookups` the references the kernel holds. An inode with none of the
//!   three is freed: no request and no power cut can reach it any more.
//! - A refused operation changes nothing: every check comes before the first change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::mem;
use std::time::SystemTime;

use crate::contents::Contents;
use crate::image::{DirImage, FileImage, Image};

/// An inode number, as the kernel sees it.
pub type Ino = u64;

/// The mount's root directory; FUSE fixes it at 1.
pub const ROOT: Ino = 1;

/// Files are plain `Vec`s in memory; a write or truncate past this is refused (`EFBIG`) rather
/// than let one stray offset allocate gigabytes.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Longest name a directory entry may have, as on ext4.
pub const MAX_NAME_BYTES: usize = 255;

/// The two kinds of inode that are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Which version of the tree an image is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What reads through the mount see now: what a clean shutdown keeps.
    Live,
    /// What survives a power cut now.
    Durable,
}

/// Why an operation was refused; [`crate::fs`] maps each to its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Exists,
    NotADirectory,
    IsADirectory,
    NotEmpty,
    /// Moving a directory into itself, or an unsupported flag.
    Invalid,
    TooLarge,
    NameTooLong,
}

/// The attributes the kernel is told about an inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    /// Permission bits only (`0o7777`).
    pub mode: u32,
    pub nlink: u32,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// A `setattr`: each field that is `Some` is changed.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub mode: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<SystemTime>,
}

/// One entry of a directory listing, `.` and `..` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub ino: Ino,
    pub kind: Kind,
    pub name: OsString,
}

/// The whole filesystem: see the module doc for its invariants.
#[derive(Debug)]
pub struct Tree {
    nodes: HashMap<Ino, Node>,
    /// Inode numbers are never reused, so a number the kernel still holds cannot come to mean
    /// another file.
    next_ino: Ino,
    /// Directories whose live entries changed since the last sync.
    dirty_dirs: BTreeSet<Ino>,
}

#[derive(Debug)]
struct Node {
    mode: u32,
    mtime: SystemTime,
    ctime: SystemTime,
    live_links: u32,
    durable_links: u32,
    lookups: u64,
    body: Body,
}

#[derive(Debug)]
enum Body {
    File(Contents),
    Dir {
        live: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
        /// The live parent, for `..`; the root is its own parent.
        parent: Ino,
    },
}

impl Tree {
    /// The tree as loaded from the backing directory: all of it is durable.
    pub fn new(root: &DirImage) -> Tree {
        let mut tree = Tree {
            nodes: HashMap::new(),
            next_ino: ROOT,
            dirty_dirs: BTreeSet::new(),
        };
        let root_ino = tree.load_dir(root, ROOT);
        debug_assert_eq!(root_ino, ROOT);
        tree
    }

    fn load_dir(&mut self, image: &DirImage, parent: Ino) -> Ino {
        let ino = self.allocate_ino();
        let mut entries = BTreeMap::new();
        for (name, child) in &image.entries {
            let child_ino = match child {
                Image::Dir(dir) => self.load_dir(dir, ino),
                Image::File(file) => {
                    let child_ino = self.allocate_ino();
                    let body = Body::File(Contents::synced(file.data.clone()));
                    self.nodes
                        .insert(child_ino, Node::loaded(body, file.mode, file.mtime));
                    child_ino
                }
            };
            entries.insert(name.clone(), child_ino);
        }
        let body = Body::Dir {
            live: entries.clone(),
            durable: entries,
            parent,
        };
        self.nodes
            .insert(ino, Node::loaded(body, image.mode, image.mtime));
        ino
    }

    fn allocate_ino(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    /// Finds `name` in `parent`, counting the reference the kernel takes to it.
    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> Result<Attr, Refusal> {
        let ino = self.child(parent, name)?;
        self.hand_out(ino)
    }

    /// The kernel drops `count` references to `ino`.
    pub fn forget(&mut self, ino: Ino, count: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(count);
        }
        self.release_if_unreferenced(ino);
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr, Refusal> {
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.body {
            Body::File(contents) => (Kind::File, contents.live().len() as u64, node.live_links),
            Body::Dir { live, .. } => {
                let subdirs = live
                    .values()
                    .filter(|child| self.kind(**child) == Ok(Kind::Dir))
                    .count();
                let nlink = if node.live_links == 0 {
                    0
                } else {
                    2 + subdirs as u32
                };
                (Kind::Dir, 0, nlink)
            }
        };
        Ok(Attr {
            ino,
            kind,
            size,
            mode: node.mode,
            nlink,
            mtime: node.mtime,
            ctime: node.ctime,
        })
    }

    /// A `chmod`, `truncate` or `utimes`. A new size is file data: durable only at the file's
    /// next fsync.
    pub fn change(&mut self, ino: Ino, change: Change) -> Result<Attr, Refusal> {
        if let Some(size) = change.size {
            self.file(ino)?;
            if size > MAX_FILE_BYTES {
                return Err(Refusal::TooLarge);
            }
        }
        let now = SystemTime::now();
        let node = self.node_mut(ino)?;
        if let Some(mode) = change.mode {
            node.mode = mode & 0o7777;
            node.ctime = now;
        }
        if let (Some(size), Body::File(contents)) = (change.size, &mut node.body) {
            contents.resize(size as usize);
            node.mtime = now;
            node.ctime = now;
        }
        if let Some(mtime) = change.mtime {
            node.mtime = mtime;
            node.ctime = now;
        }
        self.attr(ino)
    }

    /// Makes a new, empty file or directory `name` in `parent`, and counts the kernel's
    /// reference to it. Its name is durable at the next sync of anything; a file's bytes only
    /// at its own fsync.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        mode: u32,
    ) -> Result<Attr, Refusal> {
        if name.len() > MAX_NAME_BYTES {
            return Err(Refusal::NameTooLong);
        }
        if self.entries(parent)?.contains_key(name) {
            return Err(Refusal::Exists);
        }
        let ino = self.allocate_ino();
        let body = match kind {
            Kind::File => Body::File(Contents::default()),
            Kind::Dir => Body::Dir {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent,
            },
        };
        let now = SystemTime::now();
        let node = Node {
            mode: mode & 0o7777,
            mtime: now,
            ctime: now,
            live_links: 1,
            durable_links: 0,
            lookups: 0,
            body,
        };
        self.nodes.insert(ino, node);
        self.insert_entry(parent, name, ino)?;
        self.hand_out(ino)
    }

    /// Removes the file `name` from `parent`. Until the next sync the durable snapshot still
    /// has it, with its last synced bytes.
    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), Refusal> {
        let ino = self.child(parent, name)?;
        if self.kind(ino)? == Kind::Dir {
            return Err(Refusal::IsADirectory);
        }
        self.remove_entry(parent, name)?;
        self.unlinked(ino);
        Ok(())
    }

    /// Removes the empty directory `name` from `parent`.
    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), Refusal> {
        let ino = self.child(parent, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Refusal::NotEmpty);
        }
        self.remove_entry(parent, name)?;
        self.unlinked(ino);
        Ok(())
    }

    /// Moves `name` in `parent` to `new_name` in `new_parent`, replacing what is there unless
    /// `replace` is false (`RENAME_NOREPLACE`), with rename(2)'s refusals.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        replace: bool,
    ) -> Result<(), Refusal> {
        if new_name.len() > MAX_NAME_BYTES {
            return Err(Refusal::NameTooLong);
        }
        let ino = self.child(parent, name)?;
        let kind = self.kind(ino)?;
        let target = self.entries(new_parent)?.get(new_name).copied();
        if target == Some(ino) {
            // rename(2): old and new naming the same file is a no-op.
            return Ok(());
        }
        if let Some(target) = target {
            if !replace {
                return Err(Refusal::Exists);
            }
            match (kind, self.kind(target)?) {
                (Kind::File, Kind::Dir) => return Err(Refusal::IsADirectory),
                (Kind::Dir, Kind::File) => return Err(Refusal::NotADirectory),
                (Kind::Dir, Kind::Dir) if !self.entries(target)?.is_empty() => {
                    return Err(Refusal::NotEmpty);
                }
                _ => {}
            }
        }
        if kind == Kind::Dir && self.is_within(new_parent, ino) {
            return Err(Refusal::Invalid);
        }

        if let Some(target) = target {
            self.remove_entry(new_parent, new_name)?;
            self.unlinked(target);
        }
        self.remove_entry(parent, name)?;
        self.insert_entry(new_parent, new_name, ino)?;
        let node = self.node_mut(ino)?;
        node.ctime = SystemTime::now();
        if let Body::Dir { parent, .. } = &mut node.body {
            *parent = new_parent;
        }
        Ok(())
    }

    /// Up to `size` live bytes of the file from `offset`; fewer at its end.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8], Refusal> {
        let data = self.file(ino)?.live();
        let start = usize::try_from(offset).map_or(data.len(), |o| o.min(data.len()));
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(&data[start..end])
    }

    /// Writes `data` at `offset` of the live file, filling any gap with zeros.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Refusal> {
        let fits = offset
            .checked_add(data.len() as u64)
            .is_some_and(|end| end <= MAX_FILE_BYTES);
        if !fits {
            return Err(Refusal::TooLarge);
        }
        self.file(ino)?;
        let now = SystemTime::now();
        let node = self.node_mut(ino)?;
        if let Body::File(contents) = &mut node.body {
            contents.write(offset as usize, data);
        }
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// `fallocate` without `FALLOC_FL_KEEP_SIZE`: the file grows to at least `offset + len`.
    pub fn allocate(&mut self, ino: Ino, offset: u64, len: u64) -> Result<(), Refusal> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= MAX_FILE_BYTES)
            .ok_or(Refusal::TooLarge)?;
        if (self.file(ino)?.live().len() as u64) < end {
            self.change(
                ino,
                Change {
                    size: Some(end),
                    ..Change::default()
                },
            )?;
        }
        Ok(())
    }

    /// An fsync, fdatasync or directory fsync of `ino`: a file's live bytes become its durable
    /// bytes, and, as a journal commit would, the whole live namespace becomes durable.
    pub fn sync(&mut self, ino: Ino) -> Result<(), Refusal> {
        if let Body::File(contents) = &mut self.node_mut(ino)?.body {
            contents.sync();
        }
        self.commit_namespace();
        Ok(())
    }

    /// The directory's entries as they are now, `.` and `..` first.
    pub fn list(&self, dir: Ino) -> Result<Vec<Listed>, Refusal> {
        let node = self.node(dir)?;
        let Body::Dir { live, parent, .. } = &node.body else {
            return Err(Refusal::NotADirectory);
        };
        let mut listed = vec![
            Listed {
                ino: dir,
                kind: Kind::Dir,
                name: ".".into(),
            },
            Listed {
                ino: *parent,
                kind: Kind::Dir,
                name: "..".into(),
            },
        ];
        for (name, ino) in live {
            listed.push(Listed {
                ino: *ino,
                kind: self.kind(*ino)?,
                name: name.clone(),
            });
        }
        Ok(listed)
    }

    /// The tree as it would be on disk after a clean shutdown ([`View::Live`]) or after a power
    /// cut ([`View::Durable`]). Modes and mtimes are the current ones in both: only contents
    /// and names are rolled back.
    pub fn image(&self, view: View) -> DirImage {
        self.dir_image(ROOT, view)
    }

    fn dir_image(&self, ino: Ino, view: View) -> DirImage {
        let node = &self.nodes[&ino];
        let Body::Dir { live, durable, .. } = &node.body else {
            unreachable!("dir_image is only called on directories");
        };
        let entries = match view {
            View::Live => live,
            View::Durable => durable,
        };
        let entries = entries
            .iter()
            .map(|(name, child)| {
                let child_node = &self.nodes[child];
                let image = match &child_node.body {
                    Body::File(contents) => Image::File(FileImage {
                        data: match view {
                            View::Live => contents.live().to_vec(),
                            View::Durable => contents.durable().to_vec(),
                        },
                        mode: child_node.mode,
                        mtime: child_node.mtime,
                    }),
                    Body::Dir { .. } => Image::Dir(self.dir_image(*child, view)),
                };
                (name.clone(), image)
            })
            .collect();
        DirImage {
            entries,
            mode: node.mode,
            mtime: node.mtime,
        }
    }

    /// How many inodes are held, and the live bytes of all files, for `statfs`.
    pub fn usage(&self) -> (u64, u64) {
        let bytes = self
            .nodes
            .values()
            .map(|node| match &node.body {
                Body::File(contents) => contents.live().len() as u64,
                Body::Dir { .. } => 0,
            })
            .sum();
        (self.nodes.len() as u64, bytes)
    }

    /// Every dirty directory's live entries become its durable entries, and `durable_links`
    /// follow. Inodes that lost their last durable name are freed only after all directories
    /// are updated, since one may gain a name in a directory committed later in the loop.
    fn commit_namespace(&mut self) {
        let mut dropped = Vec::new();
        for dir in mem::take(&mut self.dirty_dirs) {
            let Some(Node {
                body: Body::Dir { live, durable, .. },
                ..
            }) = self.nodes.get_mut(&dir)
            else {
                // Freed since it changed: it had no durable name, so nothing to commit.
                continue;
            };
            let old = mem::replace(durable, live.clone());
            let new: Vec<Ino> = durable.values().copied().collect();
            for ino in new {
                if let Some(node) = self.nodes.get_mut(&ino) {
                    node.durable_links += 1;
                }
            }
            for ino in old.into_values() {
                if let Some(node) = self.nodes.get_mut(&ino) {
                    node.durable_links -= 1;
                }
                dropped.push(ino);
            }
        }
        for ino in dropped {
            self.release_if_unreferenced(ino);
        }
    }

    fn release_if_unreferenced(&mut self, ino: Ino) {
        let unreferenced = self.nodes.get(&ino).is_some_and(|node| {
            node.live_links == 0 && node.durable_links == 0 && node.lookups == 0
        });
        if ino != ROOT && unreferenced {
            self.nodes.remove(&ino);
        }
    }

    fn hand_out(&mut self, ino: Ino) -> Result<Attr, Refusal> {
        self.node_mut(ino)?.lookups += 1;
        self.attr(ino)
    }

    fn unlinked(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.live_links -= 1;
            node.ctime = SystemTime::now();
        }
        self.release_if_unreferenced(ino);
    }

    fn insert_entry(&mut self, dir: Ino, name: &OsStr, ino: Ino) -> Result<(), Refusal> {
        self.entries_mut(dir)?.insert(name.to_owned(), ino);
        self.touch_dir(dir)
    }

    fn remove_entry(&mut self, dir: Ino, name: &OsStr) -> Result<(), Refusal> {
        self.entries_mut(dir)?.remove(name);
        self.touch_dir(dir)
    }

    fn touch_dir(&mut self, dir: Ino) -> Result<(), Refusal> {
        let now = SystemTime::now();
        let node = self.node_mut(dir)?;
        node.mtime = now;
        node.ctime = now;
        self.dirty_dirs.insert(dir);
        Ok(())
    }

    /// Whether `dir` is `ancestor` or lies below it in the live namespace.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.nodes.get(&dir).map(|node| &node.body) {
                Some(Body::Dir { parent, .. }) if *parent != dir => dir = *parent,
                _ => return false,
            }
        }
    }

    fn child(&self, dir: Ino, name: &OsStr) -> Result<Ino, Refusal> {
        self.entries(dir)?
            .get(name)
            .copied()
            .ok_or(Refusal::NotFound)
    }

    fn kind(&self, ino: Ino) -> Result<Kind, Refusal> {
        Ok(match self.node(ino)?.body {
            Body::File(_) => Kind::File,
            Body::Dir { .. } => Kind::Dir,
        })
    }

    fn node(&self, ino: Ino) -> Result<&Node, Refusal> {
        self.nodes.get(&ino).ok_or(Refusal::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Refusal> {
        self.nodes.get_mut(&ino).ok_or(Refusal::NotFound)
    }

    fn file(&self, ino: Ino) -> Result<&Contents, Refusal> {
        match &self.node(ino)?.body {
            Body::File(contents) => Ok(contents),
            Body::Dir { .. } => Err(Refusal::IsADirectory),
        }
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>, Refusal> {
        match &self.node(dir)?.body {
            Body::Dir { live, .. } => Ok(live),
            Body::File(_) => Err(Refusal::NotADirectory),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>, Refusal> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir { live, .. } => Ok(live),
            Body::File(_) => Err(Refusal::NotADirectory),
        }
    }
}

impl Node {
    /// A node read from the backing directory: named and durable as it is.
    fn loaded(body: Body, mode: u32, mtime: SystemTime) -> Node {
        Node {
            mode,
            mtime,
            ctime: mtime,
            live_links: 1,
            durable_links: 1,
            lookups: 0,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_tree() -> Tree {
        Tree::new(&DirImage {
            entries: BTreeMap::new(),
            mode: 0o755,
            mtime: SystemTime::UNIX_EPOCH,
        })
    }

    fn new_file(tree: &mut Tree, parent: Ino, name: &str, data: &[u8]) -> Ino {
        let ino = tree
            .create(parent, name.as_ref(), Kind::File, 0o644)
            .unwrap()
            .ino;
        tree.write(ino, 0, data).unwrap();
        ino
    }

    /// The durable image as `path -> bytes` (directories as `path/` with no bytes).
    fn durable(tree: &Tree) -> BTreeMap<String, Vec<u8>> {
        flatten(&tree.image(View::Durable))
    }

    fn flatten(dir: &DirImage) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for (name, image) in &dir.entries {
            let name = name.to_string_lossy().into_owned();
            match image {
                Image::File(file) => {
                    out.insert(name, file.data.clone());
                }
                Image::Dir(sub) => {
                    out.insert(format!("{name}/"), Vec::new());
                    for (path, data) in flatten(sub) {
                        out.insert(format!("{name}/{path}"), data);
                    }
                }
            }
        }
        out
    }

    fn entries(list: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(path, data)| (path.to_string(), data.to_vec()))
            .collect()
    }

    #[test]
    fn a_file_never_synced_is_not_in_the_durable_image() {
        let mut tree = empty_tree();
        new_file(&mut tree, ROOT, "a", b"unsynced");
        assert_eq!(durable(&tree), entries(&[]));
        assert_eq!(
            flatten(&tree.image(View::Live)),
            entries(&[("a", b"unsynced")])
        );
    }

    #[test]
    fn an_fsync_makes_that_files_bytes_and_every_name_durable() {
        let mut tree = empty_tree();
        let other = new_file(&mut tree, ROOT, "other", b"never synced");
        let synced = new_file(&mut tree, ROOT, "synced", b"bytes");
        tree.sync(synced).unwrap();
        assert_eq!(
            durable(&tree),
            entries(&[("other", b""), ("synced", b"bytes")])
        );
        tree.sync(other).unwrap();
        assert_eq!(
            durable(&tree),
            entries(&[("other", b"never synced"), ("synced", b"bytes")])
        );
    }

    #[test]
    fn writes_and_truncates_after_the_last_fsync_are_rolled_back() {
        let mut tree = empty_tree();
        let ino = new_file(&mut tree, ROOT, "log", b"0123456789");
        tree.sync(ino).unwrap();
        tree.write(ino, 10, b"appended").unwrap();
        tree.write(ino, 0, b"XX").unwrap();
        assert_eq!(durable(&tree), entries(&[("log", b"0123456789")]));
        tree.change(
            ino,
            Change {
                size: Some(3),
                ..Change::default()
            },
        )
        .unwrap();
        assert_eq!(durable(&tree), entries(&[("log", b"0123456789")]));
        tree.sync(ino).unwrap();
        assert_eq!(durable(&tree), entries(&[("log", b"XX2")]));
    }

    #[test]
    fn a_directory_fsync_commits_renames_and_a_later_rename_is_undone() {
        let mut tree = empty_tree();
        let dir = tree
            .create(ROOT, "d".as_ref(), Kind::Dir, 0o755)
            .unwrap()
            .ino;
        let file = new_file(&mut tree, dir, "x.tmp", b"data");
        tree.sync(file).unwrap();
        tree.rename(dir, "x.tmp".as_ref(), dir, "x".as_ref(), true)
            .unwrap();
        tree.sync(dir).unwrap();
        tree.rename(dir, "x".as_ref(), ROOT, "moved".as_ref(), true)
            .unwrap();
        tree.create(ROOT, "later".as_ref(), Kind::Dir, 0o755)
            .unwrap();
        assert_eq!(durable(&tree), entries(&[("d/", b""), ("d/x", b"data")]));
    }

    #[test]
    fn an_unlinked_file_comes_back_with_its_synced_bytes_until_the_next_sync() {
        let mut tree = empty_tree();
        let ino = new_file(&mut tree, ROOT, "f", b"synced");
        tree.sync(ino).unwrap();
        tree.write(ino, 0, b"SYNCED AND MORE").unwrap();
        tree.unlink(ROOT, "f".as_ref()).unwrap();
        assert_eq!(durable(&tree), entries(&[("f", b"synced")]));
        assert_eq!(tree.attr(ino).unwrap().nlink, 0, "open, but unlinked");

        tree.sync(ROOT).unwrap();
        assert_eq!(durable(&tree), entries(&[]));
        assert!(tree.attr(ino).is_ok(), "the kernel still holds it");
        tree.forget(ino, 1);
        assert_eq!(tree.attr(ino), Err(Refusal::NotFound), "freed");
    }

    #[test]
    fn an_inode_is_freed_only_when_no_name_and_no_kernel_reference_is_left() {
        let mut tree = empty_tree();
        let ino = new_file(&mut tree, ROOT, "f", b"x");
        tree.sync(ino).unwrap();
        tree.forget(ino, 1);
        assert!(tree.attr(ino).is_ok(), "still named");
        tree.unlink(ROOT, "f".as_ref()).unwrap();
        assert!(tree.attr(ino).is_ok(), "still durably named");
        tree.sync(ROOT).unwrap();
        assert_eq!(tree.attr(ino), Err(Refusal::NotFound));
        assert_eq!(tree.usage(), (1, 0), "only the root is left");
    }

    #[test]
    fn a_file_replaced_by_rename_survives_a_cut_until_the_rename_is_synced() {
        let mut tree = empty_tree();
        let old = new_file(&mut tree, ROOT, "state", b"old");
        tree.sync(old).unwrap();
        let new = new_file(&mut tree, ROOT, "state.tmp", b"new");
        tree.sync(new).unwrap();
        tree.rename(ROOT, "state.tmp".as_ref(), ROOT, "state".as_ref(), true)
            .unwrap();
        assert_eq!(
            durable(&tree),
            entries(&[("state", b"old"), ("state.tmp", b"new")])
        );
        tree.sync(ROOT).unwrap();
        assert_eq!(durable(&tree), entries(&[("state", b"new")]));
    }

    #[test]
    fn refused_operations_change_nothing() {
        let mut tree = empty_tree();
        let dir = tree
            .create(ROOT, "d".as_ref(), Kind::Dir, 0o755)
            .unwrap()
            .ino;
        let sub = tree
            .create(dir, "sub".as_ref(), Kind::Dir, 0o755)
            .unwrap()
            .ino;
        new_file(&mut tree, dir, "f", b"x");
        new_file(&mut tree, ROOT, "g", b"y");
        tree.sync(ROOT).unwrap();
        let before = flatten(&tree.image(View::Live));

        let refusals = [
            (tree.rmdir(ROOT, "d".as_ref()), Refusal::NotEmpty),
            (tree.unlink(ROOT, "d".as_ref()), Refusal::IsADirectory),
            (tree.rmdir(dir, "f".as_ref()), Refusal::NotADirectory),
            (
                tree.rename(ROOT, "g".as_ref(), dir, "f".as_ref(), false),
                Refusal::Exists,
            ),
            (
                tree.rename(ROOT, "g".as_ref(), dir, "sub".as_ref(), true),
                Refusal::IsADirectory,
            ),
            (
                tree.rename(dir, "sub".as_ref(), dir, "f".as_ref(), true),
                Refusal::NotADirectory,
            ),
            (
                tree.rename(ROOT, "d".as_ref(), sub, "inside".as_ref(), true),
                Refusal::Invalid,
            ),
            (tree.unlink(ROOT, "missing".as_ref()), Refusal::NotFound),
        ];
        for (result, refusal) in refusals {
            assert_eq!(result, Err(refusal));
        }
        assert_eq!(
            tree.create(ROOT, "g".as_ref(), Kind::File, 0o644),
            Err(Refusal::Exists)
        );
        let g = tree.lookup(ROOT, "g".as_ref()).unwrap().ino;
        assert_eq!(tree.write(g, MAX_FILE_BYTES, b"z"), Err(Refusal::TooLarge));
        assert_eq!(flatten(&tree.image(View::Live)), before);
        assert!(tree.dirty_dirs.is_empty(), "no refusal touched a directory");
    }

    #[test]
    fn reads_stop_at_the_end_of_the_file_and_writes_past_it_fill_with_zeros() {
        let mut tree = empty_tree();
        let ino = new_file(&mut tree, ROOT, "f", b"abc");
        tree.write(ino, 5, b"z").unwrap();
        assert_eq!(tree.read(ino, 0, 100).unwrap(), b"abc\0\0z");
        assert_eq!(tree.read(ino, 4, 1).unwrap(), b"\0");
        assert_eq!(tree.read(ino, 100, 1).unwrap(), b"");
    }

    #[test]
    fn a_listing_has_dot_and_dotdot_then_the_names_in_order() {
        let mut tree = empty_tree();
        let dir = tree
            .create(ROOT, "d".as_ref(), Kind::Dir, 0o755)
            .unwrap()
            .ino;
        new_file(&mut tree, dir, "b", b"");
        new_file(&mut tree, dir, "a", b"");
        let names: Vec<_> = tree
            .list(dir)
            .unwrap()
            .into_iter()
            .map(|listed| (listed.name.into_string().unwrap(), listed.kind))
            .collect();
        assert_eq!(
            names,
            [
                (".".to_string(), Kind::Dir),
                ("..".to_string(), Kind::Dir),
                ("a".to_string(), Kind::File),
                ("b".to_string(), Kind::File),
            ]
        );
        assert_eq!(tree.list(dir).unwrap()[1].ino, ROOT);
    }
}
