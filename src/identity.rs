//! Who a peer or tracker is: a key pair and a self-signed certificate,
//! created at first start in its state directory and kept there (mode
//! 0600), and its [`PeerId`], the SHA-256 of the certificate (Syncthing's
//! scheme), shown as 26 base32 letters and digits. TLS (`net::tls`) proves
//! possession of the key on every connection, so an id cannot be claimed by
//! anyone else.
//!
//! The state directory must be this user's and writable by nobody else;
//! otherwise another local user could replace the key.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use thiserror::Error;

const KEY_FILE: &str = "identity.key";
const CERT_FILE: &str = "identity.crt";

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state directory {path} is unsafe: {reason}; fix it (chmod 700, chown) or pick another with --state-dir")]
    Unsafe { path: PathBuf, reason: String },
    #[error("no state directory: set --state-dir, XDG_STATE_HOME or HOME")]
    NoHome,
    #[error("cannot create an identity: {0}")]
    Generate(String),
    #[error("not a peer id (expected 26 base32 letters and digits): {0:?}")]
    BadId(String),
    #[error("state directory {path} is in use by another process ({holder}); give this one its own with --state-dir DIR")]
    InUse { path: PathBuf, holder: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The first 128 bits of the SHA-256 of a certificate: enough that nobody
/// can make another certificate with the same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 16]);

impl PeerId {
    /// The id of the certificate `der`.
    pub fn of_cert(der: &[u8]) -> PeerId {
        let digest = Sha256::digest(der);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        PeerId(id)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::base32::encode(&self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl FromStr for PeerId {
    type Err = IdentityError;

    /// Accepts either case, with `-` or spaces between groups.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        crate::base32::decode(&digits)
            .map(PeerId)
            .ok_or_else(|| IdentityError::BadId(s.chars().take(80).collect()))
    }
}

/// A key pair, its self-signed certificate, and the id they give.
pub struct Identity {
    pub id: PeerId,
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            id: self.id,
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// A new identity, kept nowhere (tests, one-off tools).
    pub fn ephemeral() -> Result<Identity, IdentityError> {
        let (cert, key) = generate()?;
        Ok(Identity {
            id: PeerId::of_cert(&cert),
            cert: CertificateDer::from(cert),
            key: PrivatePkcs8KeyDer::from(key),
        })
    }

    /// The identity kept in `dir`, created there (with `dir`) at first use.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        ensure_private_dir(dir)?;
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if !key_path.exists() || !cert_path.exists() {
            let (cert, key) = generate()?;
            write_private(&key_path, &key)?;
            write_private(&cert_path, &cert)?;
        }
        check_private_file(&key_path)?;
        let key = fs::read(&key_path).map_err(io_err(&key_path))?;
        let cert = fs::read(&cert_path).map_err(io_err(&cert_path))?;
        Ok(Identity {
            id: PeerId::of_cert(&cert),
            cert: CertificateDer::from(cert),
            key: PrivatePkcs8KeyDer::from(key),
        })
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// A new Ed25519 key (PKCS#8 DER) and a self-signed certificate for it.
fn generate() -> Result<(Vec<u8>, Vec<u8>), IdentityError> {
    let failed = |e: rcgen::Error| IdentityError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(failed)?;
    let params = rcgen::CertificateParams::new(vec!["p2pshare".to_string()]).map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// The state directory: `explicit`, else `$XDG_STATE_HOME/p2pshare`, else
/// `~/.local/state/p2pshare`; with `sub` appended for a default one (the
/// tracker keeps its own apart from a peer's on the same machine).
pub fn state_dir(explicit: Option<&Path>, sub: Option<&str>) -> Result<PathBuf, IdentityError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(state), _) if !state.is_empty() => PathBuf::from(state),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".local/state"),
        _ => return Err(IdentityError::NoHome),
    };
    let dir = base.join("p2pshare");
    Ok(match sub {
        Some(sub) => dir.join(sub),
        None => dir,
    })
}

/// Creates `dir` (0700) if needed and checks that it is a directory of
/// this user's that nobody else may write to.
pub fn ensure_private_dir(dir: &Path) -> Result<(), IdentityError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    let unsafe_because = |reason: String| IdentityError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        return Err(unsafe_because("not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(unsafe_because(format!(
            "owned by user {}, not {uid}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "writable by others (mode {:o})",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path`, mode 0600 (replacing a partial
/// earlier attempt atomically).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn check_private_file(path: &Path) -> Result<(), IdentityError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.mode() & 0o077 != 0 {
        // Tighten it rather than refuse: the directory check already says
        // nobody else could have replaced it.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state directory that does not exist yet, in a fresh directory.
    fn dir(tag: &str) -> PathBuf {
        crate::testing::temp_dir(&format!("id-{tag}")).join("state")
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
}
