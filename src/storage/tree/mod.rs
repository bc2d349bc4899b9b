//! Folders on disk: a tree manifest's files, read to share them and
//! written to download them. [`scan`] walks a folder into its manifest;
//! [`TreeFiles`] serves a shared tree's chunks from its files;
//! [`PartialTree`] is a folder download in progress, published whole or not
//! at all. A chunk of a tree belongs to one content (`manifest::tree`), so
//! each maps a chunk to one file and an offset in it: the file offset of a
//! chunk (or of a slice of one) is `chunk.offset - first_chunk * chunk_size`
//! of its content.
//!
//! Invariant shared by all three: no path inside a tree is ever resolved
//! through a symlink, whatever is planted meanwhile (the walk reads entry
//! types without following them; files are opened beneath a directory
//! handle one component at a time with `O_NOFOLLOW`).

mod beneath;
pub mod files;
mod hash_files;
pub mod partial;
mod parts;
mod publish;
pub mod scan;
mod skeleton;

pub use files::TreeFiles;
pub use partial::PartialTree;
pub use scan::{scan, Scanned, Skipped, TreeRoot};

use std::io;

use crate::manifest::tree::Tree;
use crate::manifest::Chunk;

/// Where each content of a tree lies in its chunk space: the one mapping
/// from a chunk (or a slice of one) to a content and an offset in its file.
struct Spans {
    chunk_size: u64,
    /// (first chunk, chunks, size) of each content, in chunk order.
    spans: Vec<(u32, u32, u64)>,
}

impl Spans {
    fn new(tree: &Tree, chunk_size: u32) -> Spans {
        let spans = tree
            .contents()
            .iter()
            .map(|c| (c.first_chunk, c.chunks, c.size))
            .collect();
        Spans {
            chunk_size: u64::from(chunk_size),
            spans,
        }
    }

    /// The content holding `chunk` and the chunk's offset in its file; an
    /// error if it is no chunk of the tree or runs past its file's end.
    fn locate(&self, chunk: Chunk) -> io::Result<(usize, u64)> {
        let bad = |why| io::Error::new(io::ErrorKind::InvalidInput, why);
        let at = self.spans.partition_point(|s| s.0 <= chunk.index);
        let at = at
            .checked_sub(1)
            .filter(|&at| chunk.index - self.spans[at].0 < self.spans[at].1)
            .ok_or_else(|| bad("no such chunk"))?;
        let (first, _, size) = self.spans[at];
        let offset = chunk
            .offset
            .checked_sub(u64::from(first) * self.chunk_size)
            .filter(|o| o + u64::from(chunk.len) <= size)
            .ok_or_else(|| bad("chunk outside its file"))?;
        Ok((at, offset))
    }
}
