//! TLS client settings for IMAP (and anything else that needs a rustls config): the
//! system's roots plus an optional private CA, or, only when the config says so for a
//! named host, no verification at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Installs ring as the process's rustls provider (idempotent). Called by `main` and by
/// anything that builds a config, so that library users and tests need not remember.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why [`read_to_end_bounded`] gave up.
#[derive(Debug)]
pub enum BoundedReadError {
    /// The peer sent more than the limit.
    TooLarge,
    Io(std::io::Error),
}

/// Everything `stream` sends until it closes, at most `max` bytes (the peer's whole answer
/// is bounded, so one streaming an endless response is cut off). A TLS peer that closes
/// without close_notify is common: what was read until then counts.
pub async fn read_to_end_bounded<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> Result<Vec<u8>, BoundedReadError> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(BoundedReadError::Io(e)),
        };
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > max {
            return Err(BoundedReadError::TooLarge);
        }
    }
}

/// Why a PEM file the config names (`ca_file`, `cert_file`, `key_file`, `client_ca_file`)
/// cannot be used. Each names the config key and the path, never the file's bytes (a key
/// file's content must not reach a log line).
#[derive(Debug, thiserror::Error)]
pub enum PemFileError {
    #[error("{key} {}: {source}", path.display())]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key} {}: {reason}", path.display())]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{key} {}: no PEM certificate in it", path.display())]
    NoCertificate { key: &'static str, path: PathBuf },
    /// A certificate the root store refuses (not a CA certificate rustls can use).
    #[error("{key} {}: {reason}", path.display())]
    Refused {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{key} {}: no PEM private key in it", path.display())]
    NoPrivateKey { key: &'static str, path: PathBuf },
    /// The parser's error is not shown: it may quote the key's bytes.
    #[error("{key} {}: unreadable PEM", path.display())]
    UnreadableKey { key: &'static str, path: PathBuf },
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, PemFileError> {
    std::fs::read(path).map_err(|source| PemFileError::Unreadable {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of the PEM file at `path` (the config's `key` names it in errors); at
/// least one.
pub fn read_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let pem = read(key, path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemFileError::BadPem {
            key,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemFileError::NoCertificate {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key of the PEM file at `path`.
pub fn read_private_key(
    key: &'static str,
    path: &Path,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, PemFileError> {
    let pem = read(key, path)?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(PemFileError::NoPrivateKey {
            key,
            path: path.to_path_buf(),
        }),
        Err(_) => Err(PemFileError::UnreadableKey {
            key,
            path: path.to_path_buf(),
        }),
    }
}

/// Adds the certificates of the PEM file at `path` to `roots`.
pub fn read_roots(
    key: &'static str,
    path: &Path,
    roots: &mut RootCertStore,
) -> Result<(), PemFileError> {
    for cert in read_certificates(key, path)? {
        roots.add(cert).map_err(|e| PemFileError::Refused {
            key,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

pub fn client_config(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<ClientConfig>, PemFileError> {
    install_crypto_provider();
    let builder = ClientConfig::builder();
    if insecure {
        let verifier = Arc::new(AcceptAnyCertificate(
            rustls::crypto::ring::default_provider(),
        ));
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        read_roots("ca_file", path, &mut roots)?;
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// A config that completes the handshake with any certificate, for reading the chain a
/// server presents (DANE checks it against TLSA records itself, RFC 7672 §3).
pub fn capture_config() -> Arc<ClientConfig> {
    install_crypto_provider();
    let verifier = Arc::new(AcceptAnyCertificate(
        rustls::crypto::ring::default_provider(),
    ));
    Arc::new(
        ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

/// Accepts any certificate (signatures are still checked for the handshake itself).
#[derive(Debug)]
struct AcceptAnyCertificate(rustls::crypto::CryptoProvider);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file holding `text`, and the directory that holds it.
    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pem");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn pem_file_errors_name_the_key_and_path_only() {
        let (_d, empty) = file("");
        let e = read_certificates("ca_file", &empty).unwrap_err();
        assert!(matches!(
            e,
            PemFileError::NoCertificate { key: "ca_file", .. }
        ));
        assert_eq!(
            e.to_string(),
            format!("ca_file {}: no PEM certificate in it", empty.display())
        );

        let missing = empty.with_file_name("absent.pem");
        assert!(matches!(
            read_certificates("cert_file", &missing),
            Err(PemFileError::Unreadable {
                key: "cert_file",
                ..
            })
        ));

        // A private key's bytes never reach the message.
        let secret =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw=\n-----END PRIVATE KEY-----\n";
        let (_d2, bad_key) = file(secret);
        let e = read_private_key("key_file", &bad_key).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(
            text.ends_with(": unreadable PEM") || text.ends_with(": no PEM private key in it"),
            "{text}"
        );

        let (_d3, no_key) = file("just text\n");
        assert!(matches!(
            read_private_key("key_file", &no_key),
            Err(PemFileError::NoPrivateKey {
                key: "key_file",
                ..
            })
        ));
        assert!(matches!(
            client_config(Some(&no_key), false),
            Err(PemFileError::NoCertificate { key: "ca_file", .. })
        ));
    }
}
