//! A folder manifest's canonical text (see the parent module's docs for
//! the format): encoding, and a decoder that checks every rule before it
//! returns a [`Tree`].

use super::{bad_path, check_paths, lay_out, Entry, EntryKind, Tree, TREE_MAGIC};
use crate::bounds::{MAX_CHUNK_SIZE, MAX_TREE_ENTRIES};
use crate::manifest::{field, hex, parse_digest, Digest32, FileId, Manifest, ManifestError};

/// The canonical encoding of a tree's manifest.
pub(in crate::manifest) fn encode(m: &Manifest, tree: &Tree) -> Vec<u8> {
    let mut out = format!(
        "{TREE_MAGIC}\nchunk-size {}\nentries {}\n",
        m.chunk_size,
        tree.entries.len()
    );
    for e in &tree.entries {
        match e.kind {
            EntryKind::File { size, exec, id, .. } => {
                let x = if exec { 'x' } else { '-' };
                out.push_str(&format!("f {x} {size} {id} {}\n", e.path));
            }
            EntryKind::Dir => out.push_str(&format!("d {}\n", e.path)),
        }
    }
    out.push_str(&format!("chunks {}\n", m.hashes.len()));
    out.reserve(m.hashes.len() * 65);
    for h in &m.hashes {
        out.push_str(&hex(h));
        out.push('\n');
    }
    out.into_bytes()
}

/// Parses a tree manifest's text (already checked for size, UTF-8 and the
/// final newline); the caller checks it re-encodes to the same bytes.
pub(in crate::manifest) fn decode(body: &str) -> Result<Manifest, ManifestError> {
    let mut lines = body.split('\n');
    if lines.next() != Some(TREE_MAGIC) {
        return Err(ManifestError::Malformed("unknown format line"));
    }
    let chunk_size = u32::try_from(field(lines.next(), "chunk-size ")?)
        .map_err(|_| ManifestError::Malformed("chunk size out of range"))?;
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(ManifestError::Malformed("chunk size out of range"));
    }
    let count = field(lines.next(), "entries ")?;
    if count > MAX_TREE_ENTRIES as u64 {
        return Err(ManifestError::TooManyEntries(count as usize));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let line = lines
            .next()
            .ok_or(ManifestError::Malformed("fewer entries than declared"))?;
        entries.push(parse_entry(line)?);
    }
    check_paths(&entries)?;
    let (contents, chunk_total) = lay_out(&mut entries, chunk_size)?;
    let declared = field(lines.next(), "chunks ")?;
    let hashes = lines
        .map(|l| parse_digest(l).ok_or(ManifestError::Malformed("bad chunk hash")))
        .collect::<Result<Vec<_>, _>>()?;
    if declared != hashes.len() as u64 || declared != u64::from(chunk_total) {
        return Err(ManifestError::Malformed(
            "chunk count disagrees with the files",
        ));
    }
    for e in &entries {
        if let EntryKind::File { size: 0, id, .. } = e.kind {
            check_id(id, 0, chunk_size, Vec::new(), &e.path)?;
        }
    }
    for c in &contents {
        let own = hashes[c.first_chunk as usize..(c.first_chunk + c.chunks) as usize].to_vec();
        if let Err(e) = check_id(c.id, c.size, chunk_size, own, "") {
            // The path only for the message: found once, on failure.
            let path = entries
                .iter()
                .find(|e| matches!(e.kind, EntryKind::File { id, .. } if id == c.id))
                .map_or("", |e| e.path.as_str());
            return Err(match e {
                ManifestError::BadPath(_) => {
                    bad_path(path, "has a file id that does not match its chunk hashes")
                }
                other => other,
            });
        }
    }
    let size = contents.iter().map(|c| c.size).sum();
    Ok(Manifest::tree(
        size,
        chunk_size,
        hashes,
        Tree { entries, contents },
    ))
}

/// Whether `id` is the id of a file of `size` bytes with these chunk hashes.
fn check_id(
    id: FileId,
    size: u64,
    chunk_size: u32,
    hashes: Vec<Digest32>,
    path: &str,
) -> Result<(), ManifestError> {
    let own = Manifest::with_chunk_size(size, chunk_size, hashes)?;
    if own.id() == id {
        Ok(())
    } else {
        Err(bad_path(
            path,
            "has a file id that does not match its chunk hashes",
        ))
    }
}

fn parse_entry(line: &str) -> Result<Entry, ManifestError> {
    if let Some(path) = line.strip_prefix("d ") {
        return Ok(Entry {
            path: path.to_string(),
            kind: EntryKind::Dir,
        });
    }
    let rest = line
        .strip_prefix("f ")
        .ok_or(ManifestError::Malformed("an entry is neither f nor d"))?;
    let mut parts = rest.splitn(4, ' ');
    let exec = match parts.next() {
        Some("x") => true,
        Some("-") => false,
        _ => return Err(ManifestError::Malformed("bad executable flag")),
    };
    let size = parts
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ManifestError::Malformed("bad file size"))?;
    let id = parts
        .next()
        .and_then(parse_digest)
        .map(FileId)
        .ok_or(ManifestError::Malformed("bad file id"))?;
    let path = parts
        .next()
        .ok_or(ManifestError::Malformed("an entry without a path"))?;
    Ok(Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            size,
            exec,
            id,
            content: None,
        },
    })
}
