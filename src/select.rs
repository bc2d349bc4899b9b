//! Which files of a folder a command means: `--only GLOB` and
//! `--exclude GLOB`, matched against paths inside the folder (`/`
//! separated, relative to its root).
//!
//! A glob matches a path if it matches the whole path or one of its parent
//! directories (`--only photos` takes everything under `photos/`), and a
//! glob without a `/` also matches any single component (`--exclude
//! target` leaves out every `target` directory, `--only '*.jpg'` takes
//! every JPEG at any depth), as in `.gitignore`. `*` and `?` never match a
//! `/`; `**` matches any number of components. Globs come from the command
//! line, so a bad one is refused with its reason, never guessed at.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use thiserror::Error;

use crate::bounds::MAX_GLOBS;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BadGlob {
    #[error("bad glob {glob:?}: {why}")]
    Syntax { glob: String, why: String },
    #[error("at most {MAX_GLOBS} globs")]
    TooMany,
}

/// A set of globs (see the module docs); an empty set matches nothing.
#[derive(Clone, Debug)]
pub struct Globs {
    /// Globs with a `/`: matched against whole paths and their parents.
    paths: GlobSet,
    /// Globs without one: matched against each component as well.
    names: GlobSet,
    empty: bool,
}

impl Globs {
    pub fn new<S: AsRef<str>>(globs: &[S]) -> Result<Globs, BadGlob> {
        if globs.len() > MAX_GLOBS {
            return Err(BadGlob::TooMany);
        }
        let mut paths = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for glob in globs {
            let text = glob.as_ref().trim_end_matches('/');
            let bad = |why: String| BadGlob::Syntax {
                glob: glob.as_ref().chars().take(80).collect(),
                why,
            };
            if text.is_empty() {
                return Err(bad("it is empty".into()));
            }
            let compiled = GlobBuilder::new(text.trim_start_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            if text.contains('/') {
                paths.add(compiled);
            } else {
                names.add(compiled);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| BadGlob::Syntax {
                glob: String::new(),
                why: e.to_string(),
            })
        };
        Ok(Globs {
            paths: build(paths)?,
            names: build(names)?,
            empty: globs.is_empty(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether `path` (relative, `/` separated) or a parent of it matches.
    pub fn matches(&self, path: &str) -> bool {
        if self.empty {
            return false;
        }
        let mut end = 0;
        for component in path.split('/') {
            let prefix = &path[..end + component.len()];
            if self.names.is_match(component) || self.paths.is_match(prefix) {
                return true;
            }
            end += component.len() + 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(g: &[&str]) -> Globs {
        Globs::new(g).unwrap()
    }

    #[test]
    fn a_name_glob_matches_any_component_at_any_depth() {
        let g = globs(&["*.jpg", "target"]);
        assert!(g.matches("a.jpg"));
        assert!(g.matches("deep/in/b.jpg"));
        assert!(g.matches("target/debug/x"));
        assert!(g.matches("src/target"));
        assert!(!g.matches("a.jpeg"));
        assert!(!g.matches("targets/x"));
    }

    #[test]
    fn a_path_glob_matches_from_the_root_and_takes_what_is_under_it() {
        let g = globs(&["photos/2024", "src/*.rs", "docs/**/*.md"]);
        assert!(g.matches("photos/2024/a.jpg"));
        assert!(!g.matches("old/photos/2024/a.jpg"));
        assert!(g.matches("src/main.rs"));
        assert!(!g.matches("src/bin/main.rs"), "* does not cross a /");
        assert!(g.matches("docs/a/b/c.md"));
        assert!(g.matches("docs/c.md"));
    }

    #[test]
    fn empty_sets_match_nothing_and_bad_globs_are_refused() {
        assert!(!globs(&[]).matches("a"));
        assert!(Globs::new(&["a[b"]).is_err());
        assert!(Globs::new(&[""]).is_err());
        assert!(Globs::new(&["/"]).is_err());
        let many = vec!["a"; MAX_GLOBS + 1];
        assert_eq!(Globs::new(&many).unwrap_err(), BadGlob::TooMany);
        assert!(
            globs(&["dir/"]).matches("dir/x"),
            "a trailing / is a directory"
        );
    }
}
