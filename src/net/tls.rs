//! TLS 1.3 for every connection between peers and from peers to trackers
//! (rustls, ring provider). Certificates are self-signed; what matters is
//! the [`PeerId`] (the certificate's hash) and that the handshake proves
//! the key behind it:
//!
//! - a client *pins* the server's id when it knows it (a tracker's `PEERS`
//!   row, a ticket, the tracker's known id): the expected id rides in the
//!   server name (`<id>.id.p2pshare.invalid`), so one client config serves
//!   every connection, and any other certificate fails the handshake; the
//!   name is for our verifier only and is not sent (no SNI);
//!   unpinned (a DHT peer, a tracker met for the first time) it accepts any
//!   certificate and the caller records the id it learned;
//! - both verifiers still check the handshake signature with the
//!   provider's algorithms: skipping that would let anyone who has seen a
//!   certificate impersonate its owner;
//! - servers ask for a client certificate (required between peers,
//!   optional at the tracker, which also speaks plain text to `nc`), and
//!   read the client's id from it after the handshake.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, DnsName, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error as TlsError, ServerConfig,
    SignatureScheme,
};

use crate::identity::{Identity, PeerId};

/// The server name a client uses when it does not know the server's id.
const UNPINNED: &str = "unpinned.p2pshare.invalid";
const PINNED_SUFFIX: &str = ".id.p2pshare.invalid";

/// The crypto provider every TLS config uses (and `identity` checks keys
/// with).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = suites(hardware_aes());
        Arc::new(provider)
    }))
}

/// The TLS 1.3 suites in the order we offer them. With AES in hardware,
/// AES-128-GCM first: the same GHASH as AES-256 with 10 rounds instead of
/// 14 (ring seals 16 KiB records about 10% faster with it, and 4x faster
/// than with ChaCha20; see docs/BENCHMARKS.md, "TLS"); without it,
/// ChaCha20-Poly1305, which is faster in software. The server takes the
/// client's first choice it supports, so two peers agree on it.
fn suites(hardware_aes: bool) -> Vec<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    match hardware_aes {
        true => vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
        ],
        false => vec![
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
        ],
    }
}

/// Whether this CPU has AES and carry-less multiply instructions (what
/// ring's fast AES-GCM needs).
fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// The server name that pins `id` (or pins nothing).
pub fn server_name(id: Option<PeerId>) -> ServerName<'static> {
    let name = match id {
        Some(id) => format!("{id}{PINNED_SUFFIX}"),
        None => UNPINNED.to_string(),
    };
    // Both forms are valid DNS names: base32 lower case and dots.
    ServerName::DnsName(
        DnsName::try_from(name)
            .unwrap_or_else(|_| DnsName::try_from(UNPINNED).expect("a constant valid name")),
    )
}

fn pinned_id(name: &ServerName<'_>) -> Option<PeerId> {
    let ServerName::DnsName(dns) = name else {
        return None;
    };
    dns.as_ref().strip_suffix(PINNED_SUFFIX)?.parse().ok()
}

/// Client side: accepts exactly the certificate the server name pins, or
/// any certificate when it pins none; always checks the signature.
#[derive(Debug)]
struct PinVerifier;

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let got = PeerId::of_cert(end_entity);
        match pinned_id(server_name) {
            Some(want) if want != got => Err(TlsError::General(format!(
                "peer id {got} is not the expected {want}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::General("TLS 1.2 is not spoken here".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// Server side: any client certificate is welcome (its id is what the
/// server looks at), as long as the handshake proves its key.
#[derive(Debug)]
struct AnyClient {
    mandatory: bool,
}

impl ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::General("TLS 1.2 is not spoken here".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// What a process needs to speak TLS: its client and server configs.
#[derive(Clone)]
pub struct Tls {
    pub identity: Arc<Identity>,
    pub client: Arc<ClientConfig>,
    /// Requires a client certificate (peer to peer).
    pub server: Arc<ServerConfig>,
    /// Asks for one but serves without (the tracker, for plain-text
    /// readers who upgrade, and for anonymous TLS clients).
    pub server_optional: Arc<ServerConfig>,
}

impl Tls {
    pub fn new(identity: Identity) -> Result<Tls, TlsError> {
        let identity = Arc::new(identity);
        let versions = &[&rustls::version::TLS13];
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier))
            .with_client_auth_cert(vec![identity.cert.clone()], identity.key())?;
        // Every connection proves its certificate afresh.
        client.resumption = rustls::client::Resumption::disabled();
        // The server name carries the pin to our verifier; sent as SNI it
        // would tell a passive observer which peer id is dialled (and mark
        // the traffic as p2pshare). No server here looks at SNI.
        client.enable_sni = false;
        let server_with = |mandatory| -> Result<Arc<ServerConfig>, TlsError> {
            let mut server = ServerConfig::builder_with_provider(provider())
                .with_protocol_versions(versions)?
                .with_client_cert_verifier(Arc::new(AnyClient { mandatory }))
                .with_single_cert(vec![identity.cert.clone()], identity.key())?;
            server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            server.send_tls13_tickets = 0;
            Ok(Arc::new(server))
        };
        Ok(Tls {
            server: server_with(true)?,
            server_optional: server_with(false)?,
            client: Arc::new(client),
            identity,
        })
    }

    /// This process's id.
    pub fn id(&self) -> PeerId {
        self.identity.id
    }
}

#[cfg(test)]
impl Tls {
    /// A TLS setup with a fresh identity: the one way unit tests make a
    /// side of a connection.
    pub(crate) fn ephemeral() -> Tls {
        Tls::new(Identity::ephemeral().expect("an identity")).expect("TLS configs")
    }
}

/// The id of the certificate the other side presented, if any.
pub fn peer_id_of(certs: Option<&[CertificateDer<'_>]>) -> Option<PeerId> {
    certs?.first().map(|c| PeerId::of_cert(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves every pending TLS byte from `from` to `to`; whether any moved.
    fn pump(from: &mut rustls::Connection, to: &mut rustls::Connection) -> bool {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).unwrap();
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
        !bytes.is_empty()
    }

    #[test]
    fn peers_agree_on_the_fastest_suite() {
        let (ours, theirs) = (Tls::ephemeral(), Tls::ephemeral());
        let name = server_name(Some(theirs.id()));
        let mut client =
            rustls::Connection::from(rustls::ClientConnection::new(ours.client, name).unwrap());
        let mut server =
            rustls::Connection::from(rustls::ServerConnection::new(theirs.server).unwrap());
        while pump(&mut client, &mut server) | pump(&mut server, &mut client) {}
        assert!(!client.is_handshaking() && !server.is_handshaking());
        let want = suites(hardware_aes())[0].suite();
        assert_eq!(
            client.negotiated_cipher_suite().map(|s| s.suite()),
            Some(want)
        );
        assert_eq!(
            server.negotiated_cipher_suite().map(|s| s.suite()),
            Some(want)
        );
        assert_eq!(
            suites(true)[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert_eq!(
            suites(false)[0].suite(),
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        );
    }

    #[test]
    fn the_server_name_carries_the_pin() {
        let id = Tls::ephemeral().id();
        assert_eq!(pinned_id(&server_name(Some(id))), Some(id));
        assert_eq!(pinned_id(&server_name(None)), None);
    }
}
