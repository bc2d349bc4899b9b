//! What unit tests share (compiled only for them). A leaf: imports nothing
//! of the crate, so a test in any layer may use it.

use std::fs;
use std::path::PathBuf;

/// A fresh, empty directory for one test, named by `tag` and this process.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("p2pshare-store-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
