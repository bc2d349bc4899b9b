use super::*;

#[test]
fn a_history_that_is_a_link_or_a_fifo_is_not_opened() {
    let d = crate::testing::temp_dir("history");
    let path = d.join("history");
    assert!(!checked(&path).unwrap(), "none yet");
    std::fs::write(d.join("elsewhere"), b"#V2\n").unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), &path).unwrap();
    assert!(matches!(checked(&path), Err(StateFileError::Link { .. })));
    std::fs::remove_file(&path).unwrap();
    let fifo = std::ffi::CString::new(path.clone().into_os_string().into_encoded_bytes());
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.unwrap().as_ptr(), 0o600) }, 0);
    assert!(matches!(
        checked(&path),
        Err(StateFileError::NotAFile { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"#V2\nsearch\n").unwrap();
    assert!(checked(&path).unwrap());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn history_lives_in_the_xdg_state_directory() {
    let p = |x: Option<&str>, h: Option<&str>| history_path(x.map(Into::into), h.map(Into::into));
    assert_eq!(
        p(Some("/state"), Some("/home/u")),
        Some(PathBuf::from("/state/p2pshare/history"))
    );
    assert_eq!(
        p(None, Some("/home/u")),
        Some(PathBuf::from("/home/u/.local/state/p2pshare/history"))
    );
    // Relative or empty values are ignored, as the XDG spec says.
    assert_eq!(
        p(Some("rel"), Some("/home/u")),
        Some(PathBuf::from("/home/u/.local/state/p2pshare/history"))
    );
    assert_eq!(p(Some(""), None), None);
    assert_eq!(p(None, None), None);
}

#[test]
fn splits_words_like_the_parser() {
    fn s(t: &str) -> (Vec<String>, &str) {
        let (words, start) = split_for_completion(t);
        (words, &t[start..])
    }
    assert_eq!(s(""), (vec![], ""));
    assert_eq!(s("dow"), (vec![], "dow"));
    assert_eq!(s("download "), (vec!["download".into()], ""));
    assert_eq!(s("download  my"), (vec!["download".into()], "my"));
    assert_eq!(
        s("download \"a b\" ou"),
        (vec!["download".into(), "a b".into()], "ou")
    );
    assert_eq!(s("share a\\ b "), (vec!["share".into(), "a b".into()], ""));
    assert_eq!(s("download 'my fi"), (vec!["download".into()], "'my fi"));
}

#[test]
fn candidates_are_quoted_for_the_parser() {
    let names = ["my file.txt", "my.txt", "other"];
    let got = candidates("my", names);
    let shown: Vec<_> = got.iter().map(|p| p.display.as_str()).collect();
    assert_eq!(shown, vec!["my file.txt", "my.txt"]);
    assert_eq!(got[0].replacement, "'my file.txt'");
    assert_eq!(got[1].replacement, "my.txt");
    // The replacement parses back to the name.
    assert_eq!(
        shlex::split(&format!("download {}", got[0].replacement)),
        Some(vec!["download".into(), "my file.txt".into()])
    );
    assert_eq!(candidates("'my f", names).len(), 1);
    let verbs: Vec<_> = candidates("s", VERBS.iter().copied())
        .into_iter()
        .map(|p| p.replacement)
        .collect();
    assert_eq!(verbs, vec!["search", "share", "status"]);
}
