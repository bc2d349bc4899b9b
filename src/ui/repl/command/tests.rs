//! Command parsing, one rule per test.

use super::*;

fn share(path: &str, private: bool) -> Option<Command> {
    Some(Command::Share {
        path: path.into(),
        private,
        exclude: Vec::new(),
    })
}

#[test]
fn parses_commands() {
    assert_eq!(Command::parse("  "), Ok(None));
    assert_eq!(Command::parse("share a.txt"), Ok(share("a.txt", false)));
    assert_eq!(
        Command::parse("share --private \"a b.txt\""),
        Ok(share("a b.txt", true))
    );
    assert_eq!(
        Command::parse("search"),
        Ok(Some(Command::Search(String::new())))
    );
    assert_eq!(
        Command::parse("search foo bar"),
        Ok(Some(Command::Search("foo bar".into())))
    );
    assert_eq!(
        Command::parse("download x.txt out/y.txt"),
        Ok(Some(Command::Download {
            target: "x.txt".into(),
            out: Some("out/y.txt".into()),
            only: Vec::new(),
        }))
    );
    assert_eq!(
        Command::parse("cancel 3"),
        Ok(Some(Command::Cancel("3".into())))
    );
    assert_eq!(Command::parse("wait"), Ok(Some(Command::Wait)));
    assert_eq!(Command::parse("resume"), Ok(Some(Command::Resume(None))));
    assert_eq!(Command::parse("quit"), Ok(Some(Command::Quit)));
    assert_eq!(Command::parse("status"), Ok(Some(Command::Status)));
    assert_eq!(Command::parse("limit"), Ok(Some(Command::Limit(None))));
    assert_eq!(
        Command::parse("limit up 10M"),
        Ok(Some(Command::Limit(Some((Direction::Up, Some(10 << 20))))))
    );
    assert_eq!(
        Command::parse("limit down off"),
        Ok(Some(Command::Limit(Some((Direction::Down, None)))))
    );
    for bad in [
        "share",
        "share a b",
        "share --public a",
        "share --private",
        "download",
        "download a b c",
        "cancel",
        "list x",
        "wait now",
        "status now",
        "frob",
        "share \"x",
        "limit up",
        "limit sideways 1M",
        "limit up fast",
    ] {
        assert!(Command::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_usage_line_is_in_the_help() {
    for usage in [
        SHARE,
        DOWNLOAD,
        LIMIT,
        "cancel NAME|ID|N",
        "resume [NAME|ID]",
    ] {
        assert!(HELP.contains(usage), "{usage:?} is not in the help");
    }
    for verb in VERBS.iter().filter(|v| **v != "exit") {
        assert!(
            HELP.contains(&format!("\n  {verb}")),
            "{verb} has no help line"
        );
    }
}

#[test]
fn an_unquoted_space_gets_a_hint() {
    let e = Command::parse("share my file.txt").unwrap_err();
    assert!(e.to_string().contains("share \"my file.txt\""), "{e}");
}

#[test]
fn mistyped_verbs_get_a_suggestion() {
    assert_eq!(
        Command::parse("downlaod x"),
        Err(CommandError::DidYouMean("downlaod".into(), "download"))
    );
    assert_eq!(
        Command::parse("Status"),
        Err(CommandError::DidYouMean("Status".into(), "status"))
    );
    assert_eq!(
        Command::parse("xyzzy"),
        Err(CommandError::Unknown("xyzzy".into()))
    );
}

#[test]
fn a_leading_tilde_is_home() {
    let home = std::env::var("HOME").unwrap_or_default();
    if home.is_empty() {
        return;
    }
    assert_eq!(expand_home("~/x"), PathBuf::from(&home).join("x"));
    assert_eq!(expand_home("~"), PathBuf::from(&home));
    assert_eq!(expand_home("a/~"), PathBuf::from("a/~"));
    assert_eq!(expand_home("~other/x"), PathBuf::from("~other/x"));
}

#[test]
fn folder_options_are_taken_wherever_they_stand() {
    assert_eq!(
        Command::parse("download pics --only '*.jpg' out --only raw"),
        Ok(Some(Command::Download {
            target: "pics".into(),
            out: Some("out".into()),
            only: vec!["*.jpg".into(), "raw".into()],
        }))
    );
    assert_eq!(
        Command::parse("share --exclude target --private src"),
        Ok(Some(Command::Share {
            path: "src".into(),
            private: true,
            exclude: vec!["target".into()],
        }))
    );
    assert!(Command::parse("download pics --only").is_err());
    assert!(Command::parse("share --only x src").is_err());
}
