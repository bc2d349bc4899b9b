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
pub mod scan;

pub use files::TreeFiles;
pub use scan::{scan, Scanned, Skipped, TreeRoot};
