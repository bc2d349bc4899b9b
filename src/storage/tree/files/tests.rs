use std::fs;
use std::path::Path;

use super::*;
use crate::select::Globs;
use crate::storage::tree::scan;
use crate::testing::temp_dir;

/// A file of `len` bytes, different for each `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn shared(paths: &[PathBuf], cache: &Arc<OpenFiles>) -> (Manifest, TreeFiles) {
    let none = Globs::new::<&str>(&[]).unwrap();
    let s = scan(paths, &none, &mut |_| {}).unwrap();
    let files = TreeFiles::new(s.root, &s.manifest, Arc::clone(cache)).unwrap();
    (s.manifest, files)
}

fn read(files: &TreeFiles, c: Chunk) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; c.len as usize];
    files.read_chunk(c, &mut buf).map(|()| buf)
}

fn folder(at: &Path) {
    fs::create_dir_all(at.join("a/b")).unwrap();
    fs::write(at.join("a/b/big"), bytes(1_200_000, 1)).unwrap();
    fs::write(at.join("a/small"), bytes(10, 2)).unwrap();
    fs::write(at.join("twin"), bytes(10, 2)).unwrap();
    fs::write(at.join("empty"), b"").unwrap();
}

#[test]
fn every_chunk_and_slice_is_read_from_its_file_at_its_offset() {
    let d = temp_dir("tree-files");
    folder(&d.join("t"));
    let cache = Arc::new(OpenFiles::with_bound(2));
    let (m, files) = shared(&[d.join("t")], &cache);
    assert_eq!(
        m.chunk_count(),
        4,
        "3 chunks of big, 1 of small (twin shared)"
    );
    for c in m.chunks() {
        let data = read(&files, c).unwrap();
        assert!(m.verify_chunk(c.index, &data), "chunk {}", c.index);
        // A slice of it, as the server sends: the same bytes.
        let slice = Chunk {
            index: c.index,
            offset: c.offset + 3,
            len: c.len - 3,
        };
        assert_eq!(read(&files, slice).unwrap(), data[3..]);
        let (file, offset) = files.file_range(slice).unwrap();
        let mut again = vec![0; slice.len as usize];
        file.read_exact_at(&mut again, offset).unwrap();
        assert_eq!(again, data[3..]);
        assert!(cache.len() <= 2);
    }
    let last = m.chunk(3).unwrap();
    assert_eq!(read(&files, last).unwrap(), bytes(10, 2));
    let beyond = Chunk {
        len: last.len + 1,
        ..last
    };
    assert!(read(&files, beyond).is_err(), "past the end of its file");
    assert!(files.write_chunk(last, b"x").is_err(), "read-only");
    assert_eq!(
        files.stamp().unwrap().inode,
        stamp_of(&fs::metadata(d.join("t")).unwrap()).inode
    );
    drop(files);
    assert!(cache.is_empty(), "a dropped tree's descriptors are closed");
}

#[test]
fn several_paths_are_read_beneath_their_parents() {
    let d = temp_dir("tree-files-several");
    folder(&d.join("t"));
    let paths = [d.join("t/a"), d.join("t/twin")];
    let (m, files) = shared(&paths, &Arc::default());
    for c in m.chunks() {
        assert!(m.verify_chunk(c.index, &read(&files, c).unwrap()));
    }
}

#[test]
fn a_symlink_planted_later_or_a_changed_size_is_never_served() {
    let d = temp_dir("tree-files-planted");
    let t = d.join("t");
    folder(&t);
    // A look-alike outside: same names, same sizes.
    folder(&d.join("outside"));
    fs::write(d.join("outside/a/small"), b"SECRET!!!!").unwrap();
    let cache = Arc::new(OpenFiles::with_bound(1));
    let (m, files) = shared(std::slice::from_ref(&t), &cache);
    let small = m.chunk(3).unwrap();
    fs::rename(t.join("a"), d.join("moved")).unwrap();
    std::os::unix::fs::symlink(d.join("outside/a"), t.join("a")).unwrap();
    assert!(
        read(&files, small).is_err(),
        "a directory swapped for a symlink"
    );
    fs::remove_file(t.join("a")).unwrap();
    fs::create_dir(t.join("a")).unwrap();
    std::os::unix::fs::symlink(d.join("outside/a/small"), t.join("a/small")).unwrap();
    assert!(read(&files, small).is_err(), "a file swapped for a symlink");
    fs::remove_file(t.join("a/small")).unwrap();
    fs::write(t.join("a/small"), b"longer than it was").unwrap();
    assert!(read(&files, small).is_err(), "another size");
    fs::write(t.join("a/small"), bytes(10, 2)).unwrap();
    assert_eq!(read(&files, small).unwrap(), bytes(10, 2));
}
