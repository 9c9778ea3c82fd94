//! TLS with rustls (ring provider): credentials, the client's blocking handshake and the read
//! and write halves its reader thread and callers use, and what the server's I/O loop needs
//! for its non-blocking handshake (errors in words, the peer's identity). The server drives
//! rustls itself in `server::conn`.
//!
//! A rustls connection is one object, but the driver wants a read half (the reader thread) and a
//! write half (any thread, serialised by the driver). Both halves share a [`TlsSession`]:
//!
//! - `tls`: the rustls connection, locked only to encrypt or decrypt, never across a socket call;
//! - `out`: the socket's write side. A thread that produced TLS records takes `out` *before* it
//!   lets go of `tls`, so records reach the socket in the order they were sealed, then writes
//!   them (blocking) holding only `out`.
//!
//! So the reader thread blocks in the socket read without any lock, and never waits for a
//! writer stalled on a full socket (it only needs `tls` for as long as a decryption takes).
//!
//! The handshake is done synchronously, with a deadline, before the halves are handed to the
//! driver; ALPN `h2` is required on both sides.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, RootCertStore};

use super::driver::{lock, ReadHalf};

/// The only application protocol spoken: HTTP/2 over TLS.
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// How long a TLS handshake may take by default (a silent or confused peer fails after this).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration that cannot be used: bad PEM, no certificate, a key that does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The PEM input held no certificate (`what` says which input).
    NoCertificates {
        /// Which input: "certificate chain", "root certificates", "client CA certificates",
        /// "platform certificate store", ….
        what: &'static str,
    },
    /// The PEM input could not be parsed.
    BadPem {
        /// Which input.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// No private key (PKCS#8, PKCS#1 or SEC1) in the key PEM.
    NoPrivateKey,
    /// A root or CA certificate was rejected.
    BadCertificate(String),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    Config(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoCertificates { what } => {
                write!(
                    f,
                    "no PEM certificate (BEGIN CERTIFICATE) found in the {what}"
                )
            }
            TlsError::BadPem { what, detail } => {
                write!(f, "cannot parse the {what} as PEM: {detail}")
            }
            TlsError::NoPrivateKey => f.write_str(
                "no private key found in the key PEM (expected BEGIN PRIVATE KEY, \
                 BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)",
            ),
            TlsError::BadCertificate(e) => write!(f, "unusable CA certificate: {e}"),
            TlsError::Config(e) => write!(f, "invalid TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

fn parse_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(pem) {
        certs.push(c.map_err(|e| TlsError::BadPem {
            what,
            detail: e.to_string(),
        })?);
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { what });
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => TlsError::BadPem {
            what: "private key",
            detail: other.to_string(),
        },
    })
}

fn parse_roots(pem: &[u8], what: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in parse_certs(pem, what)? {
        roots
            .add(c)
            .map_err(|e| TlsError::BadCertificate(describe(&e)))?;
    }
    Ok(roots)
}

/// Whether a TLS server asks clients for certificates (mutual TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Ask for a certificate; a client without one is let in unauthenticated, a client with
    /// one is verified against the CA (grpcio's `require_client_auth=False` with roots).
    Request,
    /// Require a certificate signed by the CA (grpcio's `require_client_auth=True`).
    RequireAndVerify,
}

/// A server's TLS identity and client-certificate policy: grpcio's `ssl_server_credentials`.
///
/// ```no_run
/// # use grpc_sync::{ServerCredentials, ClientAuth};
/// let creds = ServerCredentials::from_pem(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?
///     .with_client_ca(&std::fs::read("ca.pem")?, ClientAuth::RequireAndVerify)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerCredentials {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<(RootCertStore, ClientAuth)>,
}

impl Clone for ServerCredentials {
    fn clone(&self) -> Self {
        ServerCredentials {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            client_ca: self.client_ca.clone(),
        }
    }
}

impl fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCredentials")
            .field("chain_len", &self.chain.len())
            .field("client_auth", &self.client_ca.as_ref().map(|c| c.1))
            .finish_non_exhaustive()
    }
}

impl ServerCredentials {
    /// Credentials from a PEM certificate chain (leaf first) and its PEM private key.
    ///
    /// # Errors
    /// [`TlsError`] if either input is not PEM or holds no certificate or key.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ServerCredentials, TlsError> {
        let creds = ServerCredentials {
            chain: parse_certs(cert_chain_pem, "certificate chain")?,
            key: parse_key(key_pem)?,
            client_ca: None,
        };
        // Check that the key matches the certificate now rather than at the first connection.
        creds.server_config()?;
        Ok(creds)
    }

    /// Asks clients for certificates signed by one of the CAs in `ca_pem` (mutual TLS).
    ///
    /// # Errors
    /// [`TlsError`] if `ca_pem` holds no usable certificate.
    pub fn with_client_ca(
        mut self,
        ca_pem: &[u8],
        mode: ClientAuth,
    ) -> Result<ServerCredentials, TlsError> {
        self.client_ca = Some((parse_roots(ca_pem, "client CA certificates")?, mode));
        self.server_config()?;
        Ok(self)
    }

    /// The rustls configuration: ring provider, TLS 1.2 and 1.3, ALPN `h2` only.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let cfg_err = |e: rustls::Error| TlsError::Config(describe(&e));
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(cfg_err)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some((roots, mode)) => {
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots.clone()),
                    provider(),
                );
                let v = match mode {
                    ClientAuth::Request => v.allow_unauthenticated(),
                    ClientAuth::RequireAndVerify => v,
                };
                let v = v.build().map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(v)
            }
        };
        let mut cfg = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(cfg_err)?;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// A channel's TLS trust and identity: grpcio's `ssl_channel_credentials`.
///
/// ```no_run
/// # use grpc_sync::{Channel, ChannelCredentials};
/// let creds = ChannelCredentials::from_ca_pem(&std::fs::read("ca.pem")?)?
///     .with_server_name_override("foo.test.google.fr");
/// let channel = Channel::secure("localhost:50051", creds)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChannelCredentials {
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name: Option<String>,
}

impl Clone for ChannelCredentials {
    fn clone(&self) -> Self {
        ChannelCredentials {
            roots: self.roots.clone(),
            identity: self
                .identity
                .as_ref()
                .map(|(c, k)| (c.clone(), k.clone_key())),
            server_name: self.server_name.clone(),
        }
    }
}

impl fmt::Debug for ChannelCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelCredentials")
            .field("roots", &self.roots.len())
            .field("client_identity", &self.identity.is_some())
            .field("server_name_override", &self.server_name)
            .finish()
    }
}

impl ChannelCredentials {
    /// Trusts the CA certificates in `roots_pem` (one or more PEM certificates).
    ///
    /// # Errors
    /// [`TlsError`] if `roots_pem` holds no usable certificate.
    pub fn from_ca_pem(roots_pem: &[u8]) -> Result<ChannelCredentials, TlsError> {
        Ok(ChannelCredentials {
            roots: parse_roots(roots_pem, "root certificates")?,
            identity: None,
            server_name: None,
        })
    }

    /// Trusts the operating system's root certificates (feature `native-roots`), as grpcio
    /// does when `ssl_channel_credentials()` is given no roots. Certificates the platform
    /// store holds but rustls cannot parse are skipped.
    ///
    /// # Errors
    /// [`TlsError::NoCertificates`] if no usable root certificate was found.
    #[cfg(feature = "native-roots")]
    pub fn native_roots() -> Result<ChannelCredentials, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(TlsError::NoCertificates {
                what: "platform certificate store",
            });
        }
        Ok(ChannelCredentials {
            roots,
            identity: None,
            server_name: None,
        })
    }

    /// Presents this certificate chain and key to servers that ask for one (mutual TLS).
    ///
    /// # Errors
    /// [`TlsError`] if either input is not PEM, or the key does not match the certificate.
    pub fn with_client_identity(
        mut self,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<ChannelCredentials, TlsError> {
        self.identity = Some((
            parse_certs(cert_chain_pem, "client certificate chain")?,
            parse_key(key_pem)?,
        ));
        self.client_config()?;
        Ok(self)
    }

    /// Checks the server's certificate against `name` instead of the target's host, and sends
    /// it as SNI (grpcio's `grpc.ssl_target_name_override`).
    pub fn with_server_name_override(mut self, name: &str) -> ChannelCredentials {
        self.server_name = Some(name.to_string());
        self
    }

    /// The name override, if any.
    pub(crate) fn server_name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration: ring provider, TLS 1.2 and 1.3, ALPN `h2` only.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(describe(&e)))?
            .with_root_certificates(self.roots.clone());
        let mut cfg = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| TlsError::Config(describe(&e)))?,
        };
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Why a TLS handshake failed. Its `Display` says what went wrong in words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake did not finish within the handshake timeout.
    Timeout(Duration),
    /// The peer closed the connection before the handshake finished.
    PeerClosed {
        /// Which side we are ("server" or "client"), for the hint in the message.
        peer_is: &'static str,
    },
    /// The peer sent bytes that are not TLS (for example a plaintext HTTP/2 preface).
    NotTls {
        /// What the bytes looked like.
        looks_like: &'static str,
    },
    /// TLS itself failed: certificate checks, alerts, protocol errors (in words).
    Tls(String),
    /// The handshake finished but the peer did not agree on ALPN `h2`.
    NoH2 {
        /// The protocol the peer selected, if any.
        selected: Option<String>,
    },
    /// A socket error.
    Io(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Timeout(d) => {
                write!(f, "the TLS handshake did not finish within {d:?}")
            }
            HandshakeError::PeerClosed { peer_is } => write!(
                f,
                "the {peer_is} closed the connection during the TLS handshake \
                 (the {peer_is} does not speak TLS?)"
            ),
            HandshakeError::NotTls { looks_like } => write!(
                f,
                "the peer does not speak TLS: it sent {looks_like} instead of a TLS record"
            ),
            HandshakeError::Tls(e) => f.write_str(e),
            HandshakeError::NoH2 { selected: None } => f.write_str(
                "the peer did not negotiate HTTP/2 (no ALPN protocol; gRPC requires ALPN h2)",
            ),
            HandshakeError::NoH2 { selected: Some(p) } => write!(
                f,
                "the peer did not negotiate HTTP/2 (ALPN selected {p:?}; gRPC requires h2)"
            ),
            HandshakeError::Io(e) => write!(f, "socket error during the TLS handshake: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

fn alert_name(a: &AlertDescription) -> String {
    // "UnknownCA" -> "unknown_ca", as the RFC spells alerts.
    let mut out = String::new();
    let s = format!("{a:?}");
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Which end of a handshake we are: says whose certificate an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    /// The other end: "server" for a client.
    fn peer(self) -> &'static str {
        match self {
            Side::Client => "server",
            Side::Server => "client",
        }
    }
}

/// A rustls error outside a handshake (configuration, CA certificates), in words.
pub(crate) fn describe(e: &rustls::Error) -> String {
    describe_as(e, None)
}

/// A rustls error from a handshake or a connection, in words that say whose certificate or
/// message is wrong and what to do about it.
pub(crate) fn describe_handshake(e: &rustls::Error, we: Side) -> String {
    describe_as(e, Some(we))
}

fn describe_as(e: &rustls::Error, we: Option<Side>) -> String {
    use rustls::Error as E;
    let peer = we.map_or("peer", Side::peer);
    match e {
        E::InvalidCertificate(c) => {
            let whose = match we {
                Some(s) => format!("the {}'s certificate", s.peer()),
                None => "the certificate".to_string(),
            };
            format!(
                "certificate verify failed: {}",
                describe_cert(c, &whose, we)
            )
        }
        E::NoCertificatesPresented if we == Some(Side::Server) => {
            "the client presented no certificate, but this server requires one (mutual TLS, \
             ClientAuth::RequireAndVerify): give the client a certificate signed by a CA in \
             the server's client-CA roots (ChannelCredentials::with_client_identity)"
                .into()
        }
        E::NoCertificatesPresented => format!(
            "the {peer} presented no certificate, but one is required (mutual TLS: configure \
             a certificate)"
        ),
        E::NoApplicationProtocol => {
            "no common ALPN protocol: the peer does not offer h2 (gRPC requires HTTP/2)".into()
        }
        E::AlertReceived(a) => format!(
            "{} (TLS alert {} received)",
            alert_text(a, we, peer),
            alert_name(a)
        ),
        E::InvalidMessage(m) => invalid_message(m, peer),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            format!("the {peer} broke the TLS protocol: {e}")
        }
        E::PeerMisbehaved(p) => format!("the {peer} broke the TLS protocol ({p:?})"),
        E::PeerIncompatible(p) => peer_incompatible(p, peer),
        E::DecryptError => format!(
            "a TLS record from the {peer} did not decrypt (corrupted on the way, or a broken \
             TLS implementation)"
        ),
        E::InconsistentKeys(_) => "the private key does not belong to the certificate: give \
             the key whose public half the certificate holds"
            .into(),
        other => format!("TLS error: {other}"),
    }
}

/// What the peer's alert says about us, and what to do.
fn alert_text(a: &AlertDescription, we: Option<Side>, peer: &str) -> String {
    use AlertDescription as A;
    let ours = match we {
        Some(Side::Client) => "our client certificate",
        _ => "our certificate",
    };
    let roots = match we {
        Some(Side::Client) => "the server's client-CA roots",
        Some(Side::Server) => "the client's trusted roots",
        None => "the peer's trusted roots",
    };
    match a {
        A::UnknownCA => {
            format!("the {peer} does not trust {ours}: it is not signed by a CA in {roots}")
        }
        A::CertificateRequired => format!(
            "the {peer} requires a client certificate and we sent none (mutual TLS): add one \
             with ChannelCredentials::with_client_identity"
        ),
        A::CertificateExpired => format!(
            "the {peer} says {ours} has expired or is not valid yet: renew it, or check the \
             clocks"
        ),
        A::CertificateRevoked => format!("the {peer} says {ours} was revoked"),
        A::BadCertificate | A::CertificateUnknown => format!(
            "the {peer} rejected {ours} (its log says why: for example an X.509 v1 \
             certificate, which rustls and BoringSSL refuse)"
        ),
        A::UnsupportedCertificate => format!(
            "the {peer} cannot use {ours} for this purpose (check its extended key usage: \
             clientAuth for a client, serverAuth for a server)"
        ),
        A::DecryptError => format!(
            "the {peer} could not verify a signature of ours (is {ours} signed with an \
             algorithm it supports, and does our key match it?)"
        ),
        A::AccessDenied => format!("the {peer} denied access to {ours}"),
        A::NoApplicationProtocol => {
            "no common ALPN protocol: the peer does not speak h2 (gRPC requires HTTP/2)".into()
        }
        A::HandshakeFailure => format!(
            "the {peer} could not agree on TLS parameters with us (no common cipher suite, key \
             exchange group or signature scheme)"
        ),
        A::ProtocolVersion => {
            format!("no common TLS version with the {peer} (rustls speaks TLS 1.2 and 1.3)")
        }
        A::DecodeError => {
            format!("the {peer} could not parse our TLS messages (does it speak TLS?)")
        }
        A::UnrecognisedName => format!(
            "the {peer} has no certificate for the name we asked for (SNI): check the target \
             name or with_server_name_override"
        ),
        _ => format!("the {peer} ended the TLS session"),
    }
}

fn invalid_message(m: &rustls::InvalidMessage, peer: &str) -> String {
    use rustls::InvalidMessage as M;
    match m {
        M::InvalidContentType | M::UnknownProtocolVersion | M::MessageTooLarge => format!(
            "received data that is not TLS ({m:?}): the {peer} does not speak TLS? (a \
             plaintext gRPC server on this port)"
        ),
        _ => format!("the {peer} sent a malformed TLS message ({m:?})"),
    }
}

fn peer_incompatible(p: &rustls::PeerIncompatible, peer: &str) -> String {
    use rustls::PeerIncompatible as P;
    match p {
        P::NoCipherSuitesInCommon => format!(
            "no cipher suite in common with the {peer} (rustls offers AES-GCM and ChaCha20-Poly1305 \
             suites only)"
        ),
        P::NoKxGroupsInCommon => format!(
            "no key exchange group in common with the {peer} (rustls offers X25519, P-256 and P-384)"
        ),
        P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon => {
            format!("no signature scheme in common with the {peer}")
        }
        P::ServerDoesNotSupportTls12Or13
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::SupportedVersionsExtensionRequired => format!(
            "the {peer} speaks only TLS versions older than 1.2 (rustls speaks TLS 1.2 and 1.3)"
        ),
        other => format!("the {peer}'s TLS is incompatible with ours: {other:?}"),
    }
}

/// A certificate error in words: what is wrong with `whose` ("the client's certificate") and
/// what to do.
fn describe_cert(c: &CertificateError, whose: &str, we: Option<Side>) -> String {
    use CertificateError as C;
    let roots = match we {
        Some(Side::Server) => "the server's client-CA roots (ServerCredentials::with_client_ca)",
        Some(Side::Client) => "our trusted roots (ChannelCredentials::from_ca_pem)",
        None => "the trusted roots",
    };
    let purpose = match we {
        Some(Side::Server) => "clientAuth",
        _ => "serverAuth",
    };
    match c {
        C::UnknownIssuer => format!(
            "{whose} is signed by an unknown CA: not signed by a CA in {roots}; issue it from \
             one of those CAs, or add its CA to them"
        ),
        C::ExpiredContext { time, not_after } => format!(
            "{whose} has expired: valid until {}, and it is now {}; renew it",
            utc(not_after.as_secs()),
            utc(time.as_secs())
        ),
        C::Expired => format!("{whose} has expired; renew it"),
        C::NotValidYetContext { time, not_before } => format!(
            "{whose} is not valid yet: valid from {}, and it is now {}; check the clocks",
            utc(not_before.as_secs()),
            utc(time.as_secs())
        ),
        C::NotValidYet => format!("{whose} is not valid yet; check the clocks"),
        C::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "name mismatch: {whose} is not valid for {:?}, it is for {}; connect with a name it \
             holds, or set the name to check with with_server_name_override \
             (grpc.ssl_target_name_override)",
            expected.to_str(),
            if presented.is_empty() {
                "no name at all (rustls checks only the subjectAltName extension, never the \
                 CN: add the names there)"
                    .to_string()
            } else {
                presented
                    .iter()
                    .map(|n| presented_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        C::NotValidForName => format!(
            "name mismatch: {whose} is not valid for the name we connected to; connect with a \
             name it holds, or use with_server_name_override"
        ),
        C::BadSignature => format!(
            "{whose} has a bad signature: it was not signed by the CA it names (or was altered)"
        ),
        // The unit variant is deprecated but older verifiers may still return it.
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "{whose} is signed with an algorithm rustls does not accept (SHA-1 or MD5?); \
             re-issue it with ECDSA, Ed25519 or RSA with SHA-256 or better"
        ),
        C::Revoked => format!("{whose} has been revoked"),
        C::UnknownRevocationStatus => {
            format!("{whose}: its revocation status is unknown (no CRL covers it)")
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => format!(
            "{whose} may not be used for this (its extended key usage lacks {purpose}); issue \
             one with extendedKeyUsage = {purpose}"
        ),
        C::BadEncoding => format!("{whose} is not a well-formed DER X.509 certificate"),
        C::UnhandledCriticalExtension => format!(
            "{whose} has a critical extension rustls does not understand; issue one without it"
        ),
        C::Other(other) => webpki_text(&other.0.to_string(), whose),
        other => format!("{whose} was refused: {other}"),
    }
}

/// A name from webpki's list of the names a certificate holds (`DnsName("a.example")`,
/// `IpAddress(10.0.0.1)`), as [`SubjectAltName`] prints it (`DNS:a.example`, `IP:10.0.0.1`).
fn presented_name(debug: &str) -> String {
    let inner = |prefix: &str| {
        debug
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(|r| r.trim_matches('"').to_string())
    };
    if let Some(n) = inner("DnsName(") {
        format!("DNS:{n}")
    } else if let Some(n) = inner("IpAddress(") {
        format!("IP:{n}")
    } else if let Some(n) = inner("UniformResourceIdentifier(") {
        format!("URI:{n}")
    } else {
        debug.to_string()
    }
}

/// Words for the webpki errors rustls has no variant of its own for (it passes them on in
/// `CertificateError::Other`). webpki's `Display` is its variant's name, which is what this
/// matches on: a test with a v1 certificate (tests/tls.rs) keeps it honest.
fn webpki_text(name: &str, whose: &str) -> String {
    match name {
        "UnsupportedCertVersion" => format!(
            "{whose} is X.509 v1 (not v3), which rustls does not accept; issue a v3 \
             certificate (openssl: sign with -extfile/-extensions, so that it has extensions)"
        ),
        "CaUsedAsEndEntity" => format!(
            "{whose} is a CA certificate (basicConstraints CA:TRUE) used as a leaf; issue a \
             leaf certificate from that CA instead"
        ),
        "EndEntityUsedAsCa" => format!(
            "{whose} chains through a leaf certificate used as a CA; the issuer in the chain \
             must have basicConstraints CA:TRUE"
        ),
        "UnsupportedCriticalExtension" => format!(
            "{whose} has a critical extension rustls does not understand; issue one without it"
        ),
        "InvalidSerialNumber" => format!(
            "{whose} has an invalid serial number (it must be positive and at most 20 bytes)"
        ),
        "MalformedExtensions" | "ExtensionValueInvalid" | "BadDer" | "BadDerTime" => {
            format!("{whose} is malformed ({name})")
        }
        "PathLenConstraintViolated" | "MaximumPathDepthExceeded" => format!(
            "{whose} chains through too many CAs ({name}): a CA's pathLenConstraint forbids it"
        ),
        "NameConstraintViolation" => {
            format!("{whose} names a host its CA's name constraints do not allow")
        }
        "SignatureAlgorithmMismatch" => {
            format!("{whose} is malformed: its two signature algorithm fields differ")
        }
        _ => format!("{whose} was refused: {name}"),
    }
}

/// A Unix time as `2001-01-01 00:00:00 UTC` (the civil-from-days algorithm; no date crate).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Maps an I/O error from the rustls side to words (rustls errors come wrapped in io errors).
fn io_to_text(e: &io::Error, we: Side) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return describe_handshake(inner, we);
    }
    e.to_string()
}

/// The two halves of a rustls connection, shared by [`TlsReader`] and [`TlsWriter`].
struct TlsSession {
    tls: Mutex<rustls::Connection>,
    out: Mutex<TcpStream>,
    /// Whether any application data came from the peer (set by the reader): a close before
    /// that is worth explaining, on either half.
    got_data: std::sync::atomic::AtomicBool,
}

/// Why a peer closes a TLS connection right after the handshake, before any data.
const CLOSED_AFTER_HANDSHAKE: &str = "the peer closed the TLS connection right after the \
     handshake, before sending anything: did it reject our certificate, or require a client \
     certificate we did not send?";

impl TlsSession {
    /// Takes the records `tls` has to send, then (holding `out` before letting go of `tls`, to
    /// keep record order) writes them.
    fn send_pending(
        &self,
        mut tls: std::sync::MutexGuard<'_, rustls::Connection>,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        scratch.clear();
        while tls.wants_write() {
            tls.write_tls(scratch)?;
        }
        if scratch.is_empty() {
            return Ok(());
        }
        let mut out = lock(&self.out);
        drop(tls);
        out.write_all(scratch)
    }
}

/// The read half of a TLS connection: raw bytes from the socket (no lock held while blocked),
/// decrypted under the session lock.
pub(crate) struct TlsReader {
    session: Arc<TlsSession>,
    sock: TcpStream,
    raw: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Whether any application data came: a close before that is worth explaining.
    got_data: bool,
    scratch: Vec<u8>,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut tls = lock(&self.session.tls);
            let mut filled = 0;
            let mut closed = false;
            loop {
                match tls.reader().read(&mut buf[filled..]) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if filled == buf.len() || self.pos == self.end {
                    break;
                }
                let mut rest = &self.raw[self.pos..self.end];
                let n = tls.read_tls(&mut rest)?;
                self.pos += n;
                if let Err(e) = tls.process_new_packets() {
                    // Send our alert, if any, then fail with the cause in words.
                    let _ = self.session.send_pending(tls, &mut self.scratch);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("TLS error: {}", describe_handshake(&e, Side::Client)),
                    ));
                }
            }
            if tls.wants_write() {
                // Key updates and the like: answer them.
                self.session.send_pending(tls, &mut self.scratch)?;
            } else {
                drop(tls);
            }
            if filled > 0 {
                self.got_data = true;
                self.session
                    .got_data
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(filled);
            }
            if (closed || self.eof) && !self.got_data {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    CLOSED_AFTER_HANDSHAKE,
                ));
            }
            if closed || self.eof {
                return Ok(0);
            }
            let n = self.sock.read(&mut self.raw)?;
            if n == 0 {
                self.eof = true;
            }
            self.pos = 0;
            self.end = n;
        }
    }
}

impl ReadHalf for TlsReader {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(d)
    }
}

/// The write half of a TLS connection: seals under the session lock, writes holding only the
/// socket's write lock.
pub(crate) struct TlsWriter {
    session: Arc<TlsSession>,
    scratch: Vec<u8>,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Chunks keep the sealed copy small however large the write.
        for chunk in buf.chunks(64 * 1024) {
            let mut tls = lock(&self.session.tls);
            tls.writer().write_all(chunk)?;
            if let Err(e) = self.session.send_pending(tls, &mut self.scratch) {
                // TLS 1.3 finishes the client's handshake before the server checks the client
                // certificate; a server that rejects it closes, and our first write can fail
                // before the reader sees the alert. Say what that usually means.
                let early = !self
                    .session
                    .got_data
                    .load(std::sync::atomic::Ordering::Relaxed);
                if early
                    && matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    )
                {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e}: {CLOSED_AFTER_HANDSHAKE}"),
                    ));
                }
                return Err(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A finished handshake: the halves for the driver, and what we learned about the peer.
pub(crate) struct Established {
    pub reader: TlsReader,
    pub writer: TlsWriter,
}

/// What the first bytes of a non-TLS peer look like, for the error message.
pub(crate) fn looks_like(first: &[u8]) -> &'static str {
    if first.starts_with(b"PRI * HTTP/2") {
        "a plaintext HTTP/2 connection preface (a client without TLS?)"
    } else if first.iter().take_while(|b| b.is_ascii_uppercase()).count() >= 3
        && first.iter().find(|b| !b.is_ascii_uppercase()) == Some(&b' ')
    {
        "a plaintext HTTP/1 request"
    } else {
        "bytes that are not a TLS record"
    }
}

fn map_io(e: io::Error, we: Side, timeout: Duration) -> HandshakeError {
    if e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .is_some()
    {
        return HandshakeError::Tls(io_to_text(&e, we));
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HandshakeError::Timeout(timeout),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => HandshakeError::PeerClosed { peer_is: we.peer() },
        _ => HandshakeError::Io(e.to_string()),
    }
}

/// Runs the handshake on `sock` until done or `timeout`; `first` holds bytes already read.
fn handshake(
    mut conn: rustls::Connection,
    sock: &TcpStream,
    first: &[u8],
    timeout: Duration,
) -> Result<Established, HandshakeError> {
    let we = if matches!(conn, rustls::Connection::Client(_)) {
        Side::Client
    } else {
        Side::Server
    };
    let deadline = Instant::now() + timeout;
    let mut s = sock;
    let mut pre = first;
    while !pre.is_empty() {
        let n = conn
            .read_tls(&mut pre)
            .map_err(|e| map_io(e, we, timeout))?;
        if n == 0 {
            break;
        }
        if let Err(e) = conn.process_new_packets() {
            while conn.wants_write() && conn.write_tls(&mut s).is_ok() {}
            return Err(HandshakeError::Tls(describe_handshake(&e, we)));
        }
    }
    while conn.is_handshaking() || conn.wants_write() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HandshakeError::Timeout(timeout));
        }
        let _ = sock.set_read_timeout(Some(left));
        let _ = sock.set_write_timeout(Some(left));
        if !conn.is_handshaking() {
            conn.write_tls(&mut s).map_err(|e| map_io(e, we, timeout))?;
            continue;
        }
        conn.complete_io(&mut s)
            .map_err(|e| map_io(e, we, timeout))?;
    }
    let _ = sock.set_read_timeout(None);
    let _ = sock.set_write_timeout(None);
    if conn.alpn_protocol() != Some(ALPN_H2) {
        let selected = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        return Err(HandshakeError::NoH2 { selected });
    }
    // Sealed writes go straight out: the driver bounds what it hands us.
    conn.set_buffer_limit(None);
    let (rd, wr) = match (sock.try_clone(), sock.try_clone()) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => return Err(HandshakeError::Io(e.to_string())),
    };
    let session = Arc::new(TlsSession {
        got_data: std::sync::atomic::AtomicBool::new(false),
        tls: Mutex::new(conn),
        out: Mutex::new(wr),
    });
    Ok(Established {
        reader: TlsReader {
            session: session.clone(),
            sock: rd,
            raw: vec![0u8; 32 * 1024],
            pos: 0,
            end: 0,
            eof: false,
            got_data: false,
            scratch: Vec::new(),
        },
        writer: TlsWriter {
            session,
            scratch: Vec::new(),
        },
    })
}

/// The client side of the handshake, checking the server's certificate against `name`.
/// `first` holds bytes of the server's already read off `sock` (behind an HTTP CONNECT proxy,
/// those that came with its reply).
pub(crate) fn connect(
    config: &Arc<rustls::ClientConfig>,
    name: &str,
    sock: &TcpStream,
    first: &[u8],
    timeout: Duration,
) -> Result<Established, HandshakeError> {
    let host = name.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_string())
        .map_err(|_| HandshakeError::Tls(format!("{name:?} is not a valid TLS server name")))?;
    let conn = rustls::ClientConnection::new(config.clone(), server_name)
        .map_err(|e| HandshakeError::Tls(describe_handshake(&e, Side::Client)))?;
    handshake(conn.into(), sock, first, timeout)
}

/// The read half of a plaintext client connection that recognises a TLS server's answer
/// (a TLS record where HTTP/2 frames were expected) and says so instead of a frame error.
pub(crate) struct PlainClientReader<R> {
    inner: R,
    seen_any: bool,
}

impl<R> PlainClientReader<R> {
    /// Wraps the socket's read half.
    pub fn new(inner: R) -> Self {
        PlainClientReader {
            inner,
            seen_any: false,
        }
    }
}

impl<R: Read> Read for PlainClientReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.seen_any && n > 0 {
            self.seen_any = true;
            // TLS record: content type alert (21) or handshake (22), version 3.x. An HTTP/2
            // server's first frame is SETTINGS, whose first byte (a length) is never that.
            if (buf[0] == 0x15 || buf[0] == 0x16) && (n < 2 || buf[1] == 0x03) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server answered with TLS: it requires a secure channel \
                     (use Channel::secure / ChannelBuilder::tls)",
                ));
            }
        }
        if !self.seen_any && n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without answering \
                 (does it require TLS? then use Channel::secure)",
            ));
        }
        Ok(n)
    }
}

impl<R: ReadHalf> ReadHalf for PlainClientReader<R> {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(d)
    }
}

/// One entry of a certificate's subject alternative name extension.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// `dNSName`.
    Dns(String),
    /// `iPAddress`.
    Ip(IpAddr),
    /// `rfc822Name`.
    Email(String),
    /// `uniformResourceIdentifier` (SPIFFE IDs live here).
    Uri(String),
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(s) => write!(f, "DNS:{s}"),
            SubjectAltName::Ip(ip) => write!(f, "IP:{ip}"),
            SubjectAltName::Email(s) => write!(f, "email:{s}"),
            SubjectAltName::Uri(s) => write!(f, "URI:{s}"),
        }
    }
}

/// The identity in a verified peer certificate: subject and subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    subject: String,
    common_name: Option<String>,
    sans: Vec<SubjectAltName>,
    der: Vec<u8>,
}

impl PeerIdentity {
    /// Parses the identity out of a DER certificate; `None` if it is not a certificate.
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (subject_rdns, sans) = der::parse_cert(der)?;
        let mut common_name = None;
        let mut parts = Vec::new();
        for (oid, value) in &subject_rdns {
            let name = der::attr_name(oid);
            if name == "CN" && common_name.is_none() {
                common_name = Some(value.clone());
            }
            parts.push(format!("{name}={value}"));
        }
        // RFC 4514 order: the most specific (last) RDN first, as OpenSSL and grpcio print it.
        parts.reverse();
        Some(PeerIdentity {
            subject: parts.join(","),
            common_name,
            sans,
            der: der.to_vec(),
        })
    }

    /// The subject distinguished name, RFC 4514 style: `CN=client,O=Example`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's common name (grpcio's `x509_common_name`).
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The subject alternative names (grpcio's `x509_subject_alternative_name`).
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.sans
    }

    /// The DNS names among the subject alternative names.
    pub fn dns_names(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|s| match s {
            SubjectAltName::Dns(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// The peer's certificate, DER-encoded.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }
}

/// What TLS established about a connection: grpcio's `auth_context()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    protocol: String,
    cipher_suite: String,
    peer: Option<PeerIdentity>,
}

impl AuthContext {
    pub(crate) fn from_conn(conn: &rustls::Connection) -> AuthContext {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(v) => format!("{v:?}"),
            None => "unknown".to_string(),
        };
        let cipher_suite = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let peer = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| PeerIdentity::from_der(c.as_ref()));
        AuthContext {
            protocol,
            cipher_suite,
            peer,
        }
    }

    /// Always `"ssl"`, as grpcio's `transport_security_type`.
    pub fn transport_security_type(&self) -> &str {
        "ssl"
    }

    /// The TLS version: `"TLSv1.3"` or `"TLSv1.2"`.
    pub fn protocol_version(&self) -> &str {
        &self.protocol
    }

    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub fn cipher_suite(&self) -> &str {
        &self.cipher_suite
    }

    /// The peer's verified certificate identity; `None` if it presented no certificate (a
    /// client on a server that only requests certificates, or does not ask for them).
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// Whether the peer proved an identity with a certificate (grpcio's
    /// `peer_identities() is not None`).
    pub fn is_peer_authenticated(&self) -> bool {
        self.peer.is_some()
    }
}

/// A callback told about failed TLS handshakes on a server: the peer address and the cause.
#[derive(Clone)]
pub(crate) struct HandshakeHook(pub Arc<HandshakeCallback>);

/// The callback behind [`HandshakeHook`]: `f(peer, error)`.
pub(crate) type HandshakeCallback = dyn Fn(&str, &HandshakeError) + Send + Sync;

impl fmt::Debug for HandshakeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeHook")
    }
}

/// Just enough DER to read a certificate's subject and subject alternative names. Every
/// function returns `None` on malformed input; nothing panics.
mod der {
    use super::*;

    /// One TLV: tag, contents, what follows.
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&l0, rest) = rest.split_first()?;
        let (len, rest) = if l0 < 0x80 {
            (l0 as usize, rest)
        } else {
            let n = (l0 & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, c, r) = tlv(input)?;
        (t == tag).then_some((c, r))
    }

    type Rdns = Vec<(Vec<u8>, String)>;

    /// The subject's attributes (OID, value) in DER order, and the SANs.
    pub(super) fn parse_cert(der: &[u8]) -> Option<(Rdns, Vec<SubjectAltName>)> {
        let (cert, _) = expect(der, 0x30)?;
        let (tbs, _) = expect(cert, 0x30)?;
        let mut rest = tbs;
        if rest.first() == Some(&0xA0) {
            rest = tlv(rest)?.2; // version
        }
        rest = expect(rest, 0x02)?.1; // serial
        rest = expect(rest, 0x30)?.1; // signature algorithm
        rest = expect(rest, 0x30)?.1; // issuer
        rest = expect(rest, 0x30)?.1; // validity
        let (subject, mut rest) = expect(rest, 0x30)?;
        rest = expect(rest, 0x30)?.1; // subject public key info
        let mut sans = Vec::new();
        while let Some((tag, content, r)) = tlv(rest) {
            rest = r;
            if tag == 0xA3 {
                sans = parse_extensions(content).unwrap_or_default();
            }
        }
        Some((parse_name(subject)?, sans))
    }

    fn parse_name(mut name: &[u8]) -> Option<Rdns> {
        let mut out = Vec::new();
        while !name.is_empty() {
            let (set, r) = expect(name, 0x31)?;
            name = r;
            let mut set = set;
            while !set.is_empty() {
                let (atv, r) = expect(set, 0x30)?;
                set = r;
                let (oid, r) = expect(atv, 0x06)?;
                let (tag, value, _) = tlv(r)?;
                let text = match tag {
                    // BMPString: UTF-16BE.
                    0x1E => {
                        let units: Vec<u16> = value
                            .chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => String::from_utf8_lossy(value).into_owned(),
                };
                out.push((oid.to_vec(), text));
            }
        }
        Some(out)
    }

    fn parse_extensions(ext: &[u8]) -> Option<Vec<SubjectAltName>> {
        let (mut list, _) = expect(ext, 0x30)?;
        while !list.is_empty() {
            let (one, r) = expect(list, 0x30)?;
            list = r;
            let (oid, mut r) = expect(one, 0x06)?;
            if r.first() == Some(&0x01) {
                r = tlv(r)?.2; // critical
            }
            if oid != [0x55, 0x1D, 0x11] {
                continue;
            }
            let (value, _) = expect(r, 0x04)?;
            let (mut names, _) = expect(value, 0x30)?;
            let mut sans = Vec::new();
            while !names.is_empty() {
                let (tag, v, r) = tlv(names)?;
                names = r;
                let text = || String::from_utf8_lossy(v).into_owned();
                match tag {
                    0x81 => sans.push(SubjectAltName::Email(text())),
                    0x82 => sans.push(SubjectAltName::Dns(text())),
                    0x86 => sans.push(SubjectAltName::Uri(text())),
                    0x87 => {
                        if let Ok(b) = <[u8; 4]>::try_from(v) {
                            sans.push(SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::from(b))));
                        } else if let Ok(b) = <[u8; 16]>::try_from(v) {
                            sans.push(SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::from(b))));
                        }
                    }
                    _ => {}
                }
            }
            return Some(sans);
        }
        Some(Vec::new())
    }

    /// The short name of a subject attribute, or its dotted OID.
    pub(super) fn attr_name(oid: &[u8]) -> String {
        match oid {
            [0x55, 0x04, 0x03] => "CN".into(),
            [0x55, 0x04, 0x06] => "C".into(),
            [0x55, 0x04, 0x07] => "L".into(),
            [0x55, 0x04, 0x08] => "ST".into(),
            [0x55, 0x04, 0x0A] => "O".into(),
            [0x55, 0x04, 0x0B] => "OU".into(),
            [0x55, 0x04, 0x05] => "serialNumber".into(),
            [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01] => "emailAddress".into(),
            [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC".into(),
            [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID".into(),
            _ => dotted(oid),
        }
    }

    fn dotted(oid: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut acc: u64 = 0;
        for &b in oid {
            acc = (acc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(acc);
                acc = 0;
            }
        }
        let Some(&first) = arcs.first() else {
            return String::new();
        };
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut s = format!("{a}.{b}");
        for x in &arcs[1..] {
            s.push('.');
            s.push_str(&x.to_string());
        }
        s
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn garbage_never_panics() {
            for len in 0..64 {
                let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x30) as u8).collect();
                let _ = parse_cert(&junk);
            }
            assert!(parse_cert(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        }

        #[test]
        fn dotted_oids() {
            assert_eq!(dotted(&[0x55, 0x04, 0x2A]), "2.5.4.42");
            assert_eq!(attr_name(&[0x55, 0x04, 0x03]), "CN");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(978_307_199), "2000-12-31 23:59:59 UTC");
        assert_eq!(utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
    }

    #[test]
    fn presented_names_print_as_sans() {
        assert_eq!(presented_name("DnsName(\"a.example\")"), "DNS:a.example");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "IP:10.0.0.1");
        assert_eq!(
            presented_name("UniformResourceIdentifier(\"spiffe://x\")"),
            "URI:spiffe://x"
        );
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn alerts_name_whose_certificate_on_each_side() {
        let e = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        let client = describe_handshake(&e, Side::Client);
        assert!(client.starts_with("the server does not trust our client certificate"));
        assert!(
            client.ends_with("(TLS alert unknown_ca received)"),
            "{client}"
        );
        let server = describe_handshake(&e, Side::Server);
        assert!(server.contains("the client's trusted roots"), "{server}");
        let e = rustls::Error::NoCertificatesPresented;
        assert!(describe_handshake(&e, Side::Server).contains("with_client_identity"));
    }

    #[test]
    fn unknown_webpki_errors_keep_their_name() {
        assert_eq!(
            webpki_text("SomethingNew", "the client's certificate"),
            "the client's certificate was refused: SomethingNew"
        );
    }
}
