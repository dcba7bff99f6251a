//! HTTPS for the exporter's own endpoints: a rustls server config built from the web
//! config's `tls_server_config`, and a listener for axum that completes TLS handshakes
//! off the accept loop (a slow or silent client cannot hold up the others).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::web_config::{ClientAuth, TlsSettings, TlsVersion};
use super::WebSecurity;
use crate::tls::{read_certificates, read_private_key, read_roots, PemFileError};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 64;

/// Why the web config's TLS settings give no server config.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    #[error(transparent)]
    File(#[from] PemFileError),
    #[error("tls_server_config: {0}")]
    Versions(String),
    #[error("client_ca_file {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    /// The key does not belong to the certificate, or rustls cannot use the pair.
    #[error("cert_file {} / key_file {}: {reason}", cert.display(), key.display())]
    CertificateAndKey {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Reads the certificate, key and client CA files and builds the server config.
pub fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, ServerTlsError> {
    crate::tls::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certificates("cert_file", &tls.cert_file)?;
    // The key's bytes never appear in a message: only the path and the parser's verdict.
    let key = read_private_key("key_file", &tls.key_file)?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| ServerTlsError::Versions(e.to_string()))?;
    let builder = match (tls.client_auth, &tls.client_ca_file) {
        (ClientAuth::NoClientCert, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            read_roots("client_ca_file", ca_file, &mut roots)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| {
                ServerTlsError::ClientCa {
                    path: ca_file.clone(),
                    reason: e.to_string(),
                }
            })?)
        }
    };
    let mut config =
        builder
            .with_single_cert(chain, key)
            .map_err(|e| ServerTlsError::CertificateAndKey {
                cert: tls.cert_file.clone(),
                key: tls.key_file.clone(),
                reason: e.to_string(),
            })?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out of axum's `accept` already wrapped in TLS.
/// Handshakes run in their own tasks, each with the TLS settings current when it began;
/// the accept task stops when this is dropped.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, security: Arc<WebSecurity>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accept_task = tokio::spawn(accept_loop(listener, security, tx));
        Ok(Self {
            ready,
            local,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    security: Arc<WebSecurity>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(config) = security.current().tls else {
            continue; // TLS is never switched off while serving; drop the connection
        };
        let acceptor = TlsAcceptor::from(config);
        let tx = tx.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match result {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task is gone (only on abort): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
