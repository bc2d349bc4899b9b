//! [`Parts`]: where the chunks of a folder download in progress are
//! written and read back (to verify on resume, and to serve other
//! downloaders meanwhile).
//!
//! Invariants: a chunk is written only into the file of the first selected
//! entry naming its content, at the chunk's offset in that file; files are
//! opened beneath the partial directory's handle with no symlink followed
//! (`beneath.rs`), so a symlink planted in the partial directory is never
//! written through; at most [`MAX_OPEN_SHARES`] of them are open at once
//! (10,000 files download under `ulimit -n 256`).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::beneath::open_beneath;
use super::Spans;
use crate::bounds::MAX_OPEN_SHARES;
use crate::manifest::Chunk;
use crate::storage::on_demand::stamp_of;
use crate::storage::{fs, OpenFiles, Stamp, Storage};

/// The files of a folder download in progress (see the module docs).
pub(super) struct Parts {
    /// The partial directory.
    dir: Arc<File>,
    spans: Spans,
    /// Per content: the tree path of the file that holds it, if selected.
    paths: Vec<Option<String>>,
    cache: OpenFiles,
    keys: Range<u64>,
    /// For messages.
    shown: PathBuf,
}

impl Parts {
    pub fn new(dir: Arc<File>, spans: Spans, paths: Vec<Option<String>>, shown: PathBuf) -> Self {
        let cache = OpenFiles::with_bound(MAX_OPEN_SHARES);
        let keys = cache.keys(paths.len() as u64);
        Parts {
            dir,
            spans,
            paths,
            cache,
            keys,
            shown,
        }
    }

    /// The open file holding `chunk`, and the chunk's offset in it.
    fn locate(&self, chunk: Chunk) -> io::Result<(Arc<File>, u64)> {
        let (at, offset) = self.spans.locate(chunk)?;
        let path = self.paths[at].as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a chunk of no selected file")
        })?;
        let file = self.cache.get(self.keys.start + at as u64, || {
            open_beneath(&self.dir, path, libc::O_RDWR, 0).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.shown.join(path).display()),
                )
            })
        })?;
        Ok((file, offset))
    }
}

impl Storage for Parts {
    fn read_chunk(&self, chunk: Chunk, buf: &mut [u8]) -> io::Result<()> {
        let (file, offset) = self.locate(chunk)?;
        file.read_exact_at(buf, offset)
    }

    fn write_chunk(&self, chunk: Chunk, data: &[u8]) -> io::Result<()> {
        let (file, offset) = self.locate(chunk)?;
        file.write_all_at(data, offset)?;
        fs::start_writeback(&file, offset, data.len());
        Ok(())
    }

    fn file_range(&self, chunk: Chunk) -> Option<(Arc<File>, u64)> {
        self.locate(chunk).ok()
    }

    /// Flushes every file written (each opened in turn, through the cache).
    fn sync(&self) -> io::Result<()> {
        for (at, path) in self.paths.iter().enumerate() {
            if let Some(path) = path {
                let file = self.cache.get(self.keys.start + at as u64, || {
                    open_beneath(&self.dir, path, libc::O_RDWR, 0)
                })?;
                file.sync_data()?;
            }
        }
        Ok(())
    }

    fn stamp(&self) -> io::Result<Stamp> {
        Ok(stamp_of(&self.dir.metadata()?))
    }
}
