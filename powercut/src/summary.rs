//! The one line the daemon prints when it stops: what it wrote to the backing directory and what
//! the cut threw away, so a test log shows at a glance whether the cut discarded anything.

use std::fmt;

use crate::image::{DirImage, Image};

/// Counts over the written image, compared with the live one it was taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files and directories written, and the files' bytes.
    pub files: usize,
    pub dirs: usize,
    pub bytes: u64,
    /// Live paths (files or directories) that the written image does not have.
    pub lost: usize,
    /// Files written with other bytes than they had live.
    pub rolled_back: usize,
    /// Live bytes that did not make it: a lost file's whole size, a rolled-back file's bytes
    /// after the longest prefix it shares with what was written (for an append-only file,
    /// exactly its unsynced tail).
    pub discarded_bytes: u64,
}

impl Summary {
    pub fn of(written: &DirImage, live: &DirImage) -> Summary {
        let mut summary = Summary::default();
        summary.count(written, Some(live));
        summary
    }

    fn count(&mut self, written: &DirImage, live: Option<&DirImage>) {
        for (name, image) in &written.entries {
            let live_twin = live.and_then(|live| live.entries.get(name));
            match image {
                Image::File(file) => {
                    self.files += 1;
                    self.bytes += file.data.len() as u64;
                    if let Some(Image::File(live_file)) = live_twin {
                        if live_file.data != file.data {
                            self.rolled_back += 1;
                            let shared = common_prefix(&live_file.data, &file.data);
                            self.discarded_bytes += (live_file.data.len() - shared) as u64;
                        }
                    }
                }
                Image::Dir(dir) => {
                    self.dirs += 1;
                    let live_dir = match live_twin {
                        Some(Image::Dir(live_dir)) => Some(live_dir),
                        _ => None,
                    };
                    self.count(dir, live_dir);
                }
            }
        }
        if let Some(live) = live {
            for (name, image) in &live.entries {
                let same_kind = matches!(
                    (image, written.entries.get(name)),
                    (Image::File(_), Some(Image::File(_))) | (Image::Dir(_), Some(Image::Dir(_)))
                );
                if !same_kind {
                    self.lost += 1;
                    self.discarded_bytes += live_bytes(image);
                }
            }
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn live_bytes(image: &Image) -> u64 {
    match image {
        Image::File(file) => file.data.len() as u64,
        Image::Dir(dir) => dir.entries.values().map(live_bytes).sum(),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} files ({} bytes) in {} directories; lost {} paths, rolled back {} files, \
             discarded {} bytes",
            self.files, self.bytes, self.dirs, self.lost, self.rolled_back, self.discarded_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::*;
    use crate::image::FileImage;

    fn file(data: &[u8]) -> Image {
        Image::File(FileImage {
            data: data.to_vec(),
            mode: 0o644,
            mtime: SystemTime::UNIX_EPOCH,
        })
    }

    fn dir(entries: Vec<(&str, Image)>) -> DirImage {
        DirImage {
            entries: entries
                .into_iter()
                .map(|(name, image)| (name.into(), image))
                .collect::<BTreeMap<_, _>>(),
            mode: 0o755,
            mtime: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_cut_counts_lost_paths_and_the_unsynced_tail_of_rolled_back_files() {
        let live = dir(vec![
            ("log", file(b"synced+tail")),
            ("same", file(b"x")),
            ("new", file(b"1234")),
            ("newdir", Image::Dir(dir(vec![("inner", file(b"12"))]))),
        ]);
        let written = dir(vec![("log", file(b"synced")), ("same", file(b"x"))]);
        assert_eq!(
            Summary::of(&written, &live),
            Summary {
                files: 2,
                dirs: 0,
                bytes: 7,
                lost: 2,
                rolled_back: 1,
                discarded_bytes: 5 + 4 + 2,
            }
        );
    }

    #[test]
    fn a_clean_shutdown_loses_nothing() {
        let live = dir(vec![("d", Image::Dir(dir(vec![("f", file(b"abc"))])))]);
        let summary = Summary::of(&live, &live);
        assert_eq!((summary.lost, summary.discarded_bytes), (0, 0));
        assert_eq!((summary.files, summary.dirs, summary.bytes), (1, 1, 3));
    }
}
