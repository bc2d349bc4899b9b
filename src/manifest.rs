//! A file's manifest: its size, chunk size and the SHA-256 of every chunk.
//! The file id is the SHA-256 of the manifest's canonical text encoding, so a
//! manifest fetched from any peer can be checked against the id alone, and
//! every chunk can then be checked against the manifest.

pub mod tree;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bounds::{CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_MANIFEST_LEN, MAX_TREE_ENTRIES};
use tree::Tree;

/// First line of every manifest; names the format and its version.
const MAGIC: &str = "p2pshare-manifest 1";

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// Errors from parsing ids and manifests.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("not a file id (expected 64 hex digits): {0:?}")]
    BadId(String),
    #[error("manifest is {0} bytes, over the {MAX_MANIFEST_LEN}-byte limit")]
    TooLarge(usize),
    #[error("malformed manifest: {0}")]
    Malformed(&'static str),
    #[error("tree manifest has {0} entries, over the {MAX_TREE_ENTRIES}-entry limit")]
    TooManyEntries(usize),
    #[error("unsafe path in tree: {0}")]
    BadPath(String),
    #[error("manifest declares {declared} chunks but a {size}-byte file has {expected}")]
    ChunkCount {
        size: u64,
        declared: u64,
        expected: u64,
    },
}

/// A file's id: the SHA-256 of its manifest. Shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub Digest32);

impl FileId {
    /// The id's hex form, for prefix matching.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The first 12 hex digits, for short display and temporary file names.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({})", self.short())
    }
}

impl FromStr for FileId {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digest(s)
            .map(FileId)
            .ok_or_else(|| ManifestError::BadId(s.chars().take(80).collect()))
    }
}

/// One chunk of a file, validated against its manifest: index, byte offset and
/// length (the last chunk may be short).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub index: u32,
    pub offset: u64,
    pub len: u32,
}

/// A file's or a folder's manifest: the chunk space's size (for a tree,
/// the bytes of its distinct file contents), chunk size and chunk hashes,
/// and for a folder its [`Tree`] (which maps chunks to files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    size: u64,
    chunk_size: u32,
    hashes: Vec<Digest32>,
    tree: Option<Arc<Tree>>,
}

impl Manifest {
    /// A manifest for a file of `size` bytes with 512 KiB chunks.
    pub fn new(size: u64, hashes: Vec<Digest32>) -> Result<Self, ManifestError> {
        Self::with_chunk_size(size, CHUNK_SIZE, hashes)
    }

    /// A manifest with an explicit chunk size (1 byte ..= 16 MiB).
    pub fn with_chunk_size(
        size: u64,
        chunk_size: u32,
        hashes: Vec<Digest32>,
    ) -> Result<Self, ManifestError> {
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(ManifestError::Malformed("chunk size out of range"));
        }
        let expected = size.div_ceil(u64::from(chunk_size));
        if expected != hashes.len() as u64 {
            return Err(ManifestError::ChunkCount {
                size,
                declared: hashes.len() as u64,
                expected,
            });
        }
        Ok(Manifest {
            size,
            chunk_size,
            hashes,
            tree: None,
        })
    }

    /// A tree's manifest; `tree::build` and `tree::decode` have checked
    /// that the contents' chunks are exactly `hashes`.
    fn tree(size: u64, chunk_size: u32, hashes: Vec<Digest32>, tree: Tree) -> Self {
        Manifest {
            size,
            chunk_size,
            hashes,
            tree: Some(Arc::new(tree)),
        }
    }

    /// The folder this manifest describes, if it is a folder's.
    pub fn as_tree(&self) -> Option<&Tree> {
        self.tree.as_deref()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn chunk_count(&self) -> u32 {
        // Fits: the encoded manifest is bounded by MAX_MANIFEST_LEN.
        self.hashes.len() as u32
    }

    /// The chunk at `index`, or `None` if the file has no such chunk. A
    /// tree's chunk offsets are in its chunk space (`index` × chunk size);
    /// its storage maps them to a file.
    pub fn chunk(&self, index: u32) -> Option<Chunk> {
        if index >= self.chunk_count() {
            return None;
        }
        let chunk_size = u64::from(self.chunk_size);
        let offset = u64::from(index) * chunk_size;
        let len = match &self.tree {
            None => (self.size - offset).min(chunk_size),
            Some(tree) => {
                let c = tree.content_of_chunk(index)?;
                (c.size - u64::from(index - c.first_chunk) * chunk_size).min(chunk_size)
            }
        };
        Some(Chunk {
            index,
            offset,
            len: len as u32,
        })
    }

    /// Every chunk, in order.
    pub fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        (0..self.chunk_count()).filter_map(|i| self.chunk(i))
    }

    /// The expected SHA-256 of chunk `index`.
    pub fn chunk_hash(&self, index: u32) -> Option<&Digest32> {
        self.hashes.get(index as usize)
    }

    /// Whether `data` is exactly chunk `index` of this file.
    pub fn verify_chunk(&self, index: u32, data: &[u8]) -> bool {
        match (self.chunk(index), self.chunk_hash(index)) {
            (Some(chunk), Some(want)) => {
                data.len() == chunk.len as usize && Sha256::digest(data).as_slice() == want
            }
            _ => false,
        }
    }

    /// The canonical encoding: the bytes whose SHA-256 is the file id.
    ///
    /// ```text
    /// p2pshare-manifest 1\nsize <bytes>\nchunk-size <bytes>\nchunks <n>\n<hex sha256>\n...
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        if let Some(t) = &self.tree {
            return tree::encode(self, t);
        }
        let mut out = format!(
            "{MAGIC}\nsize {}\nchunk-size {}\nchunks {}\n",
            self.size,
            self.chunk_size,
            self.hashes.len()
        );
        out.reserve(self.hashes.len() * 65);
        for h in &self.hashes {
            out.push_str(&hex(h));
            out.push('\n');
        }
        out.into_bytes()
    }

    /// The file id: SHA-256 of [`Manifest::encode`].
    pub fn id(&self) -> FileId {
        self.encoded_with_id().1
    }

    /// The canonical encoding and the id it hashes to, encoded once.
    pub fn encoded_with_id(&self) -> (Vec<u8>, FileId) {
        let encoded = self.encode();
        let id = FileId(Sha256::digest(&encoded).into());
        (encoded, id)
    }

    /// Parses a canonical encoding. Anything that would not re-encode to the
    /// same bytes is rejected, so one file has exactly one id.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::Malformed("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or(ManifestError::Malformed("missing final newline"))?;
        if body.starts_with(tree::TREE_MAGIC) {
            let manifest = tree::decode(body)?;
            if manifest.encode() != bytes {
                return Err(ManifestError::Malformed("not in canonical form"));
            }
            return Ok(manifest);
        }
        let mut lines = body.split('\n');
        if lines.next() != Some(MAGIC) {
            return Err(ManifestError::Malformed("unknown format line"));
        }
        let size = field(lines.next(), "size ")?;
        let chunk_size = u32::try_from(field(lines.next(), "chunk-size ")?)
            .map_err(|_| ManifestError::Malformed("chunk size out of range"))?;
        let declared = field(lines.next(), "chunks ")?;
        let hashes = lines
            .map(|l| parse_digest(l).ok_or(ManifestError::Malformed("bad chunk hash")))
            .collect::<Result<Vec<_>, _>>()?;
        if declared != hashes.len() as u64 {
            return Err(ManifestError::Malformed(
                "chunk count line disagrees with hash lines",
            ));
        }
        let manifest = Manifest::with_chunk_size(size, chunk_size, hashes)?;
        if manifest.encode() != bytes {
            return Err(ManifestError::Malformed("not in canonical form"));
        }
        Ok(manifest)
    }
}

fn field(line: Option<&str>, prefix: &'static str) -> Result<u64, ManifestError> {
    line.and_then(|l| l.strip_prefix(prefix))
        .and_then(|v| v.parse().ok())
        .ok_or(ManifestError::Malformed(prefix.trim_end()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses 64 hex digits (either case) into a digest.
fn parse_digest(s: &str) -> Option<Digest32> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
