//! What unit tests share (compiled only for them). A leaf: imports nothing
//! of the crate, so a test in any layer may use it.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A fresh, empty directory for one test, removed (with all in it) when
/// dropped, so that a run leaves nothing in the temporary directory.
pub(crate) struct TempDir {
    root: PathBuf,
    /// The path handed out: the root, or a path below it ([`within`](Self::within)).
    path: PathBuf,
}

impl TempDir {
    /// The same directory's guard, handing out `name` below it (which need
    /// not exist: e.g. a state directory a test wants created for it).
    pub(crate) fn within(mut self, name: &str) -> TempDir {
        self.path = self.path.join(name);
        self
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A fresh, empty directory for one test, named by `tag` and this process.
pub(crate) fn temp_dir(tag: &str) -> TempDir {
    let root = std::env::temp_dir().join(format!("p2pshare-store-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    TempDir {
        path: root.clone(),
        root,
    }
}

/// Polls `done` every 10 ms until it holds; fails the test, naming `what`,
/// if it does not within 5 s. For state another thread changes, where a
/// fixed sleep would be a guess.
pub(crate) fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "no {what} within 5 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
