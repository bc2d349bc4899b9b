//! Private shares: a file served only to holders of its link's secret.
//!
//! - The tracker, the DHT and every request to a peer know the file only
//!   by its *blinded id*, the SHA-256 of a label, the secret and the file
//!   id: without the secret nobody can tell which file it is, or find it by
//!   name. Its real id never crosses the wire (the downloader has it from
//!   the link, and checks the manifest against it).
//! - A downloader proves the secret on each connection with `AUTH <blinded
//!   id> <proof>`, where the proof is an HMAC-SHA256 keyed by the secret
//!   over the blinded id and the TLS exporter value of that very session
//!   (RFC 8446 §7.5): the secret never crosses the wire, and a recorded
//!   proof is worthless on any other connection.

use std::fmt;
use std::str::FromStr;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::manifest::{hex, FileId};

/// The exporter label of the proof; its context is the file id.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-p2pshare-private-share";

const BLIND_LABEL: &[u8] = b"p2pshare private share v1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PrivateError {
    #[error("not a share secret (expected 26 base32 letters and digits)")]
    BadSecret,
    #[error("not a proof (expected 64 hex digits)")]
    BadProof,
    #[error("the system's random number generator failed")]
    Random,
}

/// A share's secret: 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret(pub [u8; 16]);

impl Secret {
    pub fn generate() -> Result<Secret, PrivateError> {
        let mut bytes = [0u8; 16];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| PrivateError::Random)?;
        Ok(Secret(bytes))
    }

    /// The id under which the tracker and the DHT know the file `id`.
    pub fn blind(&self, id: &FileId) -> FileId {
        let mut h = Sha256::new();
        h.update(BLIND_LABEL);
        h.update(self.0);
        h.update(id.0);
        FileId(h.finalize().into())
    }

    /// The proof of this secret for file `id` on the session whose exporter
    /// value is `exporter`.
    pub fn proof(&self, id: &FileId, exporter: &[u8; 32]) -> Proof {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut msg = Vec::with_capacity(64);
        msg.extend_from_slice(&id.0);
        msg.extend_from_slice(exporter);
        let tag = hmac::sign(&key, &msg);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Proof(out)
    }

    /// Whether `proof` is this secret's for `id` on that session (a
    /// constant-time comparison).
    pub fn verify(&self, id: &FileId, exporter: &[u8; 32], proof: &Proof) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut msg = Vec::with_capacity(64);
        msg.extend_from_slice(&id.0);
        msg.extend_from_slice(exporter);
        hmac::verify(&key, &msg, &proof.0).is_ok()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::base32::encode(&self.0))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret where a log might keep it.
        f.write_str("Secret(..)")
    }
}

impl FromStr for Secret {
    type Err = PrivateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::base32::decode(s)
            .map(Secret)
            .ok_or(PrivateError::BadSecret)
    }
}

/// The id the tracker and the DHT know file `id` by: the id itself, or
/// for a private share (with a `secret`) its blinded id.
pub fn listed_id(id: &FileId, secret: Option<&Secret>) -> FileId {
    secret.map_or(*id, |s| s.blind(id))
}

/// A proof as it goes in an `AUTH` line: 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof(pub [u8; 32]);

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl FromStr for Proof {
    type Err = PrivateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Same form as a file id: 64 hex digits.
        let id: FileId = s.parse().map_err(|_| PrivateError::BadProof)?;
        Ok(Proof(id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_parse_and_blind() {
        let s = Secret::generate().unwrap();
        assert_eq!(s.to_string().parse::<Secret>().unwrap(), s);
        assert_ne!(Secret::generate().unwrap(), s);
        let id = FileId([1; 32]);
        assert_ne!(s.blind(&id), id);
        assert_eq!(s.blind(&id), s.blind(&id));
        assert_ne!(s.blind(&id), Secret([0; 16]).blind(&id));
        assert!("short".parse::<Secret>().is_err());
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_proof_holds_for_its_session_only() {
        let s = Secret::generate().unwrap();
        let id = FileId([2; 32]);
        let (here, elsewhere) = ([3u8; 32], [4u8; 32]);
        let proof = s.proof(&id, &here);
        assert!(s.verify(&id, &here, &proof));
        assert!(
            !s.verify(&id, &elsewhere, &proof),
            "replayed on another session"
        );
        assert!(!s.verify(&FileId([5; 32]), &here, &proof), "another file");
        assert!(
            !Secret([9; 16]).verify(&id, &here, &proof),
            "another secret"
        );
        assert_eq!(proof.to_string().parse::<Proof>(), Ok(proof));
        assert!("00".parse::<Proof>().is_err());
    }
}
