//! A directory tree held in memory, as it is read from the backing directory at mount and written
//! back to it at shutdown. It knows nothing about durability: the [`Tree`](crate::tree::Tree)
//! decides which image (durable or live) is written, this module only moves it to and from disk.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

/// One node of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    File(FileImage),
    Dir(DirImage),
}

/// A regular file: its bytes and the attributes that are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImage {
    pub data: Vec<u8>,
    /// Permission bits only (`0o7777`); the file type is the enum variant.
    pub mode: u32,
    pub mtime: SystemTime,
}

/// A directory: its entries by name, and the attributes that are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirImage {
    pub entries: BTreeMap<OsString, Image>,
    /// Permission bits only (`0o7777`).
    pub mode: u32,
    pub mtime: SystemTime,
}

impl DirImage {
    /// Reads the whole tree under `root`. Only regular files and directories can be modelled, so
    /// anything else (a symlink, a socket) is refused rather than silently dropped at the cut.
    pub fn load(root: &Path) -> io::Result<DirImage> {
        let meta = fs::symlink_metadata(root)?;
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)?;
            let image = if meta.is_dir() {
                Image::Dir(DirImage::load(&path)?)
            } else if meta.is_file() {
                Image::File(FileImage {
                    data: fs::read(&path)?,
                    mode: meta.permissions().mode() & 0o7777,
                    mtime: meta.modified()?,
                })
            } else {
                return Err(io::Error::other(format!(
                    "{}: only regular files and directories can be mounted",
                    path.display()
                )));
            };
            entries.insert(entry.file_name(), image);
        }
        Ok(DirImage {
            entries,
            mode: meta.permissions().mode() & 0o7777,
            mtime: meta.modified()?,
        })
    }

    /// Makes the tree under `root` exactly this image: what the image lacks is removed, every
    /// file is rewritten with the image's bytes, and every file and directory is fsynced, so the
    /// result is itself durable. `root`'s own mode and mtime are left as they are: it belongs to
    /// whoever made it.
    pub fn store(&self, root: &Path) -> io::Result<()> {
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let kept = match self.entries.get(&entry.file_name()) {
                None => false,
                Some(Image::File(_)) => entry.file_type()?.is_file(),
                Some(Image::Dir(_)) => entry.file_type()?.is_dir(),
            };
            if !kept {
                remove(&entry.path())?;
            }
        }
        for (name, image) in &self.entries {
            let path = root.join(name);
            match image {
                Image::File(file) => file.store(&path)?,
                Image::Dir(dir) => {
                    if !path.is_dir() {
                        fs::create_dir(&path)?;
                    }
                    dir.store(&path)?;
                    fs::set_permissions(&path, Permissions::from_mode(dir.mode))?;
                    // After the entries: writing them changed the directory's mtime.
                    File::open(&path)?.set_modified(dir.mtime)?;
                }
            }
        }
        File::open(root)?.sync_all()
    }
}

impl FileImage {
    fn store(&self, path: &Path) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(&self.data)?;
        file.set_permissions(Permissions::from_mode(self.mode))?;
        file.set_modified(self.mtime)?;
        file.sync_all()
    }
}

fn remove(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &[u8]) -> Image {
        Image::File(FileImage {
            data: data.to_vec(),
            mode: 0o640,
            mtime: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
        })
    }

    fn dir(entries: &[(&str, Image)]) -> DirImage {
        DirImage {
            entries: entries
                .iter()
                .map(|(name, image)| (OsString::from(name), image.clone()))
                .collect(),
            mode: 0o750,
            mtime: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000),
        }
    }

    #[test]
    fn storing_an_image_replaces_the_tree_and_loading_it_reads_the_same_image() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("stale.txt"), b"old").unwrap();
        fs::create_dir_all(root.path().join("gone/deeper")).unwrap();
        fs::create_dir(root.path().join("was-a-dir")).unwrap();
        fs::write(root.path().join("kept.bin"), b"a longer old content").unwrap();

        let image = dir(&[
            ("kept.bin", file(b"new")),
            ("was-a-dir", file(b"now a file")),
            (
                "sub",
                Image::Dir(dir(&[
                    ("inner", file(b"")),
                    ("empty", Image::Dir(dir(&[]))),
                ])),
            ),
        ]);
        image.store(root.path()).unwrap();

        let mut loaded = DirImage::load(root.path()).unwrap();
        // The root's attributes are the caller's, not the image's.
        loaded.mode = image.mode;
        loaded.mtime = image.mtime;
        assert_eq!(loaded, image);
    }

    #[test]
    fn a_symlink_in_the_backing_directory_is_refused_at_load() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("elsewhere", root.path().join("link")).unwrap();
        let err = DirImage::load(root.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("only regular files and directories")
        );
    }
}
