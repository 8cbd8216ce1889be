//! TLS policy: certificates verified against the webpki roots by default; extra CA certificates
//! trusted for orchestrators only (a self-signed or privately issued orchestrator, still
//! verified); and an explicit opt-in that accepts any certificate while still checking that the
//! peer holds the key of the certificate it presents.
//!
//! It also sorts a refused handshake into a [`TlsProblem`], so that a user is told in plain
//! words what is wrong and a front end can say what to do about it.

use std::fmt;
use std::sync::Arc;

use livepay_core::Peer;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A client configuration: verified against the webpki roots plus `extra_roots`, or (with
/// `insecure`) accepting any certificate, `extra_roots` then being moot.
pub(crate) fn client_config(
    insecure: bool,
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let roots = root_store(extra_roots).map_err(|e| format!("orchestrator CA: {e}"))?;
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// The webpki roots plus `extra` (each a trust anchor in its own right).
fn root_store(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (n, cert) in extra.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|_| TlsConfigError::BadCertificate { index: n + 1 })?;
    }
    Ok(roots)
}

/// The certificates of a PEM file (other sections, such as a key, are skipped), each checked to
/// make a trust anchor.
pub(crate) fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let cert = item.map_err(|e| TlsConfigError::MalformedPem {
            reason: malformed_reason(&e),
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate);
    }
    root_store(&certs)?;
    Ok(certs)
}

/// What is wrong with a PEM file, without quoting it: the file may hold a private key too.
fn malformed_reason(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be read as PEM",
    }
}

/// Why extra CA certificates cannot be used. The PEM is read when the configuration is built,
/// so a wrong file is refused at start-up rather than surfacing later as a refused handshake.
/// Messages never quote the file (it may hold a private key by mistake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The PEM holds no `CERTIFICATE` section: an empty file, a key alone, a DER file, or text
    /// that is not PEM.
    NoCertificate,
    /// The PEM is not well formed.
    MalformedPem {
        /// What is wrong, in plain words.
        reason: &'static str,
    },
    /// A `CERTIFICATE` section does not hold a valid X.509 certificate.
    BadCertificate {
        /// Which certificate, counting from 1 in the order they appear.
        index: usize,
    },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCertificate => {
                f.write_str("the CA file holds no certificate (expected PEM `BEGIN CERTIFICATE` sections)")
            }
            Self::MalformedPem { reason } => write!(f, "the CA file is not valid PEM: {reason}"),
            Self::BadCertificate { index } => {
                write!(
                    f,
                    "certificate {index} in the CA file is not a valid X.509 certificate"
                )
            }
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// Why a TLS handshake was refused, sorted so that a front end can say what to do about it (an
/// unknown issuer on an orchestrator is fixed by trusting its CA; an expired certificate is
/// not). Display is plain words about "the certificate", for any peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The certificate does not chain to a trusted root: self-signed, or issued by a private CA.
    UnknownIssuer,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet (often a wrong clock, here or there).
    NotYetValid,
    /// The certificate is valid, but not for the host name (or address) in the URL.
    NotValidForName,
    /// The handshake failed before or apart from any certificate check: no protocol in common,
    /// not a TLS server, or the peer hung up.
    HandshakeFailed,
    /// The certificate was refused for another reason (revoked, wrong purpose, bad signature,
    /// malformed, …); the error's detail says which.
    Other,
}

impl TlsProblem {
    /// The problem a rustls error describes.
    pub(crate) fn of(error: &rustls::Error) -> Self {
        let rustls::Error::InvalidCertificate(error) = error else {
            return Self::HandshakeFailed;
        };
        match error {
            CertificateError::UnknownIssuer => Self::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => Self::NotYetValid,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Self::NotValidForName
            }
            _ => Self::Other,
        }
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownIssuer => {
                "the certificate is not signed by a trusted authority (self-signed, or from a private CA?)"
            }
            Self::Expired => "the certificate has expired",
            Self::NotYetValid => "the certificate is not valid yet (is a clock wrong?)",
            Self::NotValidForName => "the certificate is not valid for the host name in the URL",
            Self::HandshakeFailed => {
                "the server did not complete a TLS handshake (not a TLS server, no protocol in common, or it hung up)"
            }
            Self::Other => "the certificate was refused",
        })
    }
}

/// A refused TLS handshake: with which peer, why (typed), and the technical detail for logs.
/// It reads as its detail (`Deref<Target = str>`), as `HttpError::Tls`'s `String` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    peer: Peer,
    problem: TlsProblem,
    detail: String,
}

impl TlsFailure {
    /// A failure with `peer`, for `problem`; `detail` is the underlying error's text (it must
    /// hold no secret).
    pub fn new(peer: Peer, problem: TlsProblem, detail: impl Into<String>) -> Self {
        Self {
            peer,
            problem,
            detail: detail.into(),
        }
    }

    /// The peer whose certificate (or handshake) failed: only an orchestrator can be trusted
    /// through [`HttpConfig::orchestrator_ca`](crate::HttpConfig::orchestrator_ca).
    pub const fn peer(&self) -> Peer {
        self.peer
    }

    /// Why, typed.
    pub const fn problem(&self) -> TlsProblem {
        self.problem
    }

    /// The underlying error chain, one line (no secret).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Whether trusting the peer's CA ([`HttpConfig::with_orchestrator_ca_pem`]) would be the
    /// fix: an orchestrator whose certificate chains to no trusted root. A front end uses it to
    /// suggest the option only when it applies.
    ///
    /// [`HttpConfig::with_orchestrator_ca_pem`]: crate::HttpConfig::with_orchestrator_ca_pem
    pub fn orchestrator_ca_may_help(&self) -> bool {
        self.peer == Peer::Orchestrator && self.problem == TlsProblem::UnknownIssuer
    }
}

impl std::ops::Deref for TlsFailure {
    type Target = str;

    fn deref(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = match self.peer {
            Peer::Orchestrator => "orchestrator",
            Peer::Signer => "signer",
        };
        write!(f, "TLS handshake with the {peer} failed: {}", self.problem)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Accepts any certificate chain, but verifies the handshake signature with the certificate's
/// key, so the connection is still encrypted to whoever holds that key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_are_added_on_top_of_the_webpki_roots() {
        let store = root_store(&[]).expect("webpki roots");
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        let bad = [CertificateDer::from(b"not DER".to_vec())];
        assert_eq!(
            root_store(&bad).err(),
            Some(TlsConfigError::BadCertificate { index: 1 })
        );
    }

    #[test]
    fn rustls_errors_sort_into_problems() {
        use rustls::Error;
        let cases = [
            (CertificateError::UnknownIssuer, TlsProblem::UnknownIssuer),
            (CertificateError::Expired, TlsProblem::Expired),
            (CertificateError::NotValidYet, TlsProblem::NotYetValid),
            (CertificateError::NotValidForName, TlsProblem::NotValidForName),
            (CertificateError::Revoked, TlsProblem::Other),
            (CertificateError::BadSignature, TlsProblem::Other),
        ];
        for (error, problem) in cases {
            assert_eq!(TlsProblem::of(&Error::InvalidCertificate(error)), problem);
        }
        assert_eq!(
            TlsProblem::of(&Error::NoCertificatesPresented),
            TlsProblem::HandshakeFailed
        );
    }

    #[test]
    fn only_an_unknown_issuer_on_an_orchestrator_suggests_its_ca() {
        let cases = [
            (Peer::Orchestrator, TlsProblem::UnknownIssuer, true),
            (Peer::Signer, TlsProblem::UnknownIssuer, false),
            (Peer::Orchestrator, TlsProblem::Expired, false),
        ];
        for (peer, problem, helps) in cases {
            let failure = TlsFailure::new(peer, problem, "x");
            assert_eq!(failure.orchestrator_ca_may_help(), helps, "{failure}");
        }
    }
}
