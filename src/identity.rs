//! Who a peer or tracker is: a key pair and a self-signed certificate,
//! created at first start in its state directory and kept there (mode
//! 0600), and its [`PeerId`], the SHA-256 of the certificate (Syncthing's
//! scheme), shown as 26 base32 letters and digits. TLS (`net::tls`) proves
//! possession of the key on every connection, so an id cannot be claimed by
//! anyone else.
//!
//! The state directory must be this user's and writable by nobody else;
//! otherwise another local user could replace the key. A key is never
//! replaced by this code either: an identity with a file missing or
//! damaged is refused, naming the file, since a new key is a new id that
//! every peer which pinned the old one refuses. Both files are read through
//! [`state_file`] (no link followed, nothing but a regular file).

use std::fmt;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::InconsistentKeys;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bounds::MAX_IDENTITY_FILE;
use crate::state_file::{self, StateFileError};

use crate::state_file::names::{IDENTITY_CERT as CERT_FILE, IDENTITY_KEY as KEY_FILE};

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
    #[error(transparent)]
    File(#[from] StateFileError),
    #[error("{missing} is missing beside {present}: {fix}")]
    Half {
        missing: PathBuf,
        present: PathBuf,
        fix: String,
    },
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
    /// A key is never replaced: with one of the two files missing, or
    /// either damaged, this refuses, naming the file and what to do.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        ensure_private_dir(dir)?;
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        let (key, cert) = match (state_file::open(&key_path)?, state_file::open(&cert_path)?) {
            (None, None) => return create(&key_path, &cert_path),
            (Some(key), Some(cert)) => {
                // Tighten rather than refuse: the directory check already
                // says nobody else could have replaced it.
                key.make_private()?;
                (key.read(MAX_IDENTITY_FILE)?, cert.read(MAX_IDENTITY_FILE)?)
            }
            (Some(_), None) => return Err(half(cert_path, key_path)),
            (None, Some(_)) => return Err(half(key_path, cert_path)),
        };
        check_pair(&key_path, &key, &cert_path, &cert)?;
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

/// A new identity, written to `key_path` and `cert_path` (neither of which
/// is there: a key is never replaced). If the key cannot be written, the
/// certificate just written goes too, so the next start begins afresh.
fn create(key_path: &Path, cert_path: &Path) -> Result<Identity, IdentityError> {
    let (cert, key) = generate()?;
    state_file::write_new(cert_path, &cert)?;
    if let Err(e) = state_file::write_new(key_path, &key) {
        let _ = fs::remove_file(cert_path);
        return Err(e.into());
    }
    Ok(Identity {
        id: PeerId::of_cert(&cert),
        cert: CertificateDer::from(cert),
        key: PrivatePkcs8KeyDer::from(key),
    })
}

/// The error for an identity of which only `present` is left.
fn half(missing: PathBuf, present: PathBuf) -> IdentityError {
    IdentityError::Half {
        fix: restore_or_start_anew(&[&present]),
        missing,
        present,
    }
}

/// What to do about a missing or damaged identity file: restore it, or
/// remove what is left of the identity (`remove`) for a new one.
fn restore_or_start_anew(remove: &[&Path]) -> String {
    let remove: Vec<String> = remove.iter().map(|p| p.display().to_string()).collect();
    format!(
        "restore it from a backup, or remove {} to start with a new identity \
         (whoever pinned the old id will then refuse this one)",
        remove.join(" and ")
    )
}

/// Checks that `key` is a key and `cert` its certificate, before TLS
/// fails on them without saying which file is at fault.
fn check_pair(
    key_path: &Path,
    key: &[u8],
    cert_path: &Path,
    cert: &[u8],
) -> Result<(), IdentityError> {
    let damaged = |path: &Path, why: String, other: &Path| StateFileError::Damaged {
        path: path.to_path_buf(),
        why,
        fix: restore_or_start_anew(&[path, other]),
    };
    // The same key provider the TLS configs use (ring's), named here so
    // that identity stays below the socket layer.
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| damaged(key_path, e.to_string(), cert_path))?;
    let pair = CertifiedKey::new(vec![CertificateDer::from(cert.to_vec())], signer);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(damaged(
            cert_path,
            format!("not the certificate of {}", key_path.display()),
            key_path,
        )
        .into()),
        Err(e) => Err(damaged(cert_path, e.to_string(), key_path).into()),
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

#[cfg(test)]
mod tests;
