use super::*;
use std::os::unix::fs::PermissionsExt;

/// A state directory that does not exist yet, in a fresh directory.
fn dir(tag: &str) -> crate::testing::TempDir {
    crate::testing::temp_dir(&format!("id-{tag}")).within("state")
}

#[test]
fn ids_print_and_parse_back() {
    for bytes in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
        let id = PeerId(bytes);
        let text = id.to_string();
        assert_eq!(text.len(), 26);
        assert!(
            text.bytes()
                .all(|b| b"abcdefghijklmnopqrstuvwxyz234567".contains(&b)),
            "{text}"
        );
        assert_eq!(text.parse::<PeerId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<PeerId>().unwrap(), id);
        let grouped = format!("{}-{}", &text[..13], &text[13..]);
        assert_eq!(grouped.parse::<PeerId>().unwrap(), id);
    }
    for bad in ["", "abc", &"a".repeat(27), &"1".repeat(26), &"7".repeat(26)] {
        assert!(bad.parse::<PeerId>().is_err(), "{bad:?}");
    }
}

#[test]
fn an_identity_is_created_once_and_kept() {
    let d = dir("keep");
    let first = Identity::load_or_create(&d).unwrap();
    let again = Identity::load_or_create(&d).unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.id, PeerId::of_cert(&first.cert));
    let mode = fs::metadata(d.join(KEY_FILE)).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_ne!(Identity::ephemeral().unwrap().id, first.id);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_half_or_damaged_identity_is_refused_and_the_key_kept() {
    let d = dir("half");
    let id = Identity::load_or_create(&d).unwrap();
    let key = fs::read(d.join(KEY_FILE)).unwrap();
    fs::remove_file(d.join(CERT_FILE)).unwrap();
    let e = Identity::load_or_create(&d)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("identity.crt is missing beside"), "{e}");
    assert!(e.contains("remove") && e.contains("identity.key"), "{e}");
    assert_eq!(fs::read(d.join(KEY_FILE)).unwrap(), key, "the key is kept");
    fs::write(d.join(CERT_FILE), &id.cert).unwrap();
    fs::write(d.join(KEY_FILE), b"garbage").unwrap();
    let e = Identity::load_or_create(&d)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("identity.key is damaged"), "{e}");
    fs::remove_file(d.join(KEY_FILE)).unwrap();
    fs::write(d.join(KEY_FILE), generate().unwrap().1).unwrap();
    let e = Identity::load_or_create(&d)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("identity.crt is damaged (not the certificate of"),
        "{e}"
    );
    fs::write(d.join(KEY_FILE), &key).unwrap();
    assert_eq!(
        Identity::load_or_create(&d).unwrap().id,
        id.id,
        "whole again"
    );
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_link_at_the_key_is_refused_and_its_target_untouched() {
    let d = dir("link");
    Identity::load_or_create(&d).unwrap();
    let victim = d.parent().unwrap().join("victim");
    fs::rename(d.join(KEY_FILE), &victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, d.join(KEY_FILE)).unwrap();
    let e = Identity::load_or_create(&d)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("identity.key is a symbolic link"), "{e}");
    assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o644);
    fs::remove_dir_all(d.parent().unwrap()).unwrap();
}

#[test]
fn a_directory_others_may_write_is_refused() {
    let d = dir("unsafe");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        Identity::load_or_create(&d),
        Err(IdentityError::Unsafe { .. })
    ));
    assert!(!d.join(KEY_FILE).exists(), "nothing written there");
    fs::remove_dir_all(d).unwrap();
}
