//! A submission server in front of the real one (`tests/servers/smtp_relay.py`) that
//! passes connections through untouched, or, on demand, speaks SMTP itself and fails the
//! way real servers do at one step: 421 at the greeting, 4xx/5xx to MAIL, 4xx/5xx after
//! the end of DATA, the connection dropped in the middle of DATA, STARTTLS offered and
//! then no TLS. Up to the failing step it is a correct server (STARTTLS with the test
//! CA's certificate, AUTH PLAIN accepted), so each fault is reached for real.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Greeting421,
    Mail451,
    Mail550,
    Data451,
    Data554,
    DropMidData,
    StartTlsBroken,
}

pub struct SmtpFault {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    /// Messages the fault server itself took in full (and then refused or dropped).
    pub received: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpFault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn acceptor(cert: &Path, key: &Path) -> TlsAcceptor {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).unwrap(),
    ))
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).unwrap(),
    ))
    .unwrap()
    .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

impl SmtpFault {
    /// On a free port of 127.0.0.1, passing through to `upstream` while in `Mode::Pass`.
    pub async fn start(upstream: SocketAddr, cert: &Path, key: &Path) -> SmtpFault {
        mailauth_exporter::tls::install_crypto_provider();
        let tls = acceptor(cert, key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let received = Arc::new(Mutex::new(0));
        let (m, r) = (mode.clone(), received.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let mode = *m.lock().unwrap();
                tokio::spawn(session(conn, mode, tls.clone(), upstream, r.clone()));
            }
        });
        SmtpFault {
            port,
            mode,
            received,
            task,
        }
    }

    /// The mode for connections accepted from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

async fn session(
    mut conn: TcpStream,
    mode: Mode,
    tls: TlsAcceptor,
    upstream: SocketAddr,
    received: Arc<Mutex<usize>>,
) {
    match mode {
        Mode::Pass => {
            if let Ok(mut up) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
            }
            return;
        }
        Mode::Greeting421 => {
            let _ = conn
                .write_all(b"421 4.3.2 fault.test Service not available, closing\r\n")
                .await;
            return;
        }
        _ => {}
    }
    let mut plain = BufReader::new(conn);
    if reply(&mut plain, "220 fault.test ESMTP").await.is_none() {
        return;
    }
    loop {
        let Some(line) = read_line(&mut plain).await else {
            return;
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => {
                "250-fault.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 SIZE 10240000"
            }
            "STARTTLS" => break,
            "QUIT" => {
                let _ = reply(&mut plain, "221 2.0.0 Bye").await;
                return;
            }
            "NOOP" | "RSET" => "250 2.0.0 OK",
            _ => "530 5.7.0 Must issue a STARTTLS command first",
        };
        if reply(&mut plain, answer).await.is_none() {
            return;
        }
    }
    if reply(&mut plain, "220 2.0.0 Ready to start TLS")
        .await
        .is_none()
    {
        return;
    }
    let mut conn = plain.into_inner();
    if mode == Mode::StartTlsBroken {
        // Whatever follows "220 Ready" is not a TLS handshake.
        let _ = conn
            .write_all(b"454 4.7.0 TLS not available due to temporary reason\r\n")
            .await;
        return;
    }
    let Ok(stream) = tls.accept(conn).await else {
        return;
    };
    let mut s = BufReader::new(stream);
    loop {
        let Some(line) = read_line(&mut s).await else {
            return;
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => {
                "250-fault.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10240000"
            }
            "AUTH" if line.split_whitespace().count() >= 3 => "235 2.7.0 Authentication successful",
            "AUTH" => {
                if reply(&mut s, "334 ").await.is_none() || read_line(&mut s).await.is_none() {
                    return;
                }
                "235 2.7.0 Authentication successful"
            }
            "MAIL" => match mode {
                Mode::Mail451 => "451 4.3.0 Mail server temporarily rejected message",
                Mode::Mail550 => "550 5.7.1 Sender rejected",
                _ => "250 2.1.0 OK",
            },
            "RCPT" => "250 2.1.5 OK",
            "DATA" => {
                if reply(&mut s, "354 End data with <CR><LF>.<CR><LF>")
                    .await
                    .is_none()
                {
                    return;
                }
                if mode == Mode::DropMidData {
                    // Take the first line of the message, then drop the connection.
                    let _ = read_line(&mut s).await;
                    return;
                }
                loop {
                    match read_line(&mut s).await {
                        Some(l) if l == "." => break,
                        Some(_) => {}
                        None => return,
                    }
                }
                *received.lock().unwrap() += 1;
                match mode {
                    Mode::Data451 => "451 4.3.0 Queueing failed, try again",
                    Mode::Data554 => "554 5.6.0 Message content rejected",
                    _ => "250 2.0.0 Accepted (and dropped: this is a fault server)",
                }
            }
            "QUIT" => {
                let _ = reply(&mut s, "221 2.0.0 Bye").await;
                return;
            }
            "NOOP" | "RSET" => "250 2.0.0 OK",
            _ => "502 5.5.2 Command not recognized",
        };
        if reply(&mut s, answer).await.is_none() {
            return;
        }
    }
}

/// One line without its CRLF, bounded so that a runaway client cannot grow it.
async fn read_line<S: AsyncRead + Unpin>(s: &mut BufReader<S>) -> Option<String> {
    let mut buf = Vec::new();
    let n = (&mut *s)
        .take(100_000)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 {
        return None;
    }
    let line = String::from_utf8_lossy(&buf);
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>, text: &str) -> Option<()> {
    s.write_all(format!("{text}\r\n").as_bytes()).await.ok()?;
    s.flush().await.ok()
}
