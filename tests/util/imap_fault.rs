//! A plaintext IMAP proxy in front of Dovecot that passes sessions through, counting the
//! bytes the server sends, and on demand drops the connection the moment the client
//! enters IDLE, or in the middle of the server's answer to a message FETCH (after part of
//! the literal went through). Dovecot itself cannot be told to die at those points.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// The connection is dropped once the server has confirmed IDLE ("+ idling").
    DropInIdle,
    /// The connection is dropped after the first bytes of a `BODY.PEEK[]` answer.
    DropInFetch,
    /// As `DropInFetch`, but the connection stays open and silent (a hung server).
    StallInFetch,
}

pub struct ImapFault {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    /// Bytes sent by the server to the exporter, over all sessions.
    pub server_bytes: Arc<AtomicU64>,
    /// Connections dropped by a fault.
    pub dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImapFault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ImapFault {
    pub async fn start(upstream: SocketAddr) -> ImapFault {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let server_bytes = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (m, b, d) = (mode.clone(), server_bytes.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(session(conn, upstream, m.clone(), b.clone(), d.clone()));
            }
        });
        ImapFault {
            port,
            mode,
            server_bytes,
            dropped,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Client lines go up one by one (so the command in flight is known); server bytes come
/// back as they arrive.
async fn session(
    client: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    server_bytes: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    // What the client last asked for, read by the server-to-client half.
    let pending = Arc::new(Mutex::new(None::<Mode>));
    let p = pending.clone();
    let up = tokio::spawn(async move {
        let mut lines = BufReader::new(client_r);
        loop {
            let mut line = Vec::new();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
            let m = *mode.lock().unwrap();
            let armed = match m {
                Mode::DropInIdle if upper.trim_end().ends_with(" IDLE") => Some(m),
                Mode::DropInFetch | Mode::StallInFetch
                    if upper.contains("FETCH") && upper.contains("BODY.PEEK[]") =>
                {
                    Some(m)
                }
                _ => None,
            };
            if armed.is_some() {
                *p.lock().unwrap() = armed;
            }
            if server_w.write_all(&line).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match server_r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let armed = *pending.lock().unwrap();
        let chunk = &buf[..n];
        let cut = match armed {
            Some(Mode::DropInIdle) => chunk.windows(2).position(|w| w == b"+ ").map(|i| i + 2),
            // Part of the message literal: up to and a little past its `{size}` marker.
            Some(Mode::DropInFetch | Mode::StallInFetch) => chunk
                .windows(3)
                .position(|w| w == b"}\r\n")
                .map(|i| (i + 3 + 40).min(n)),
            _ => None,
        };
        let send = cut.map_or(chunk, |c| &chunk[..c]);
        server_bytes.fetch_add(send.len() as u64, Ordering::Relaxed);
        if client_w.write_all(send).await.is_err() {
            break;
        }
        if cut.is_some() {
            dropped.fetch_add(1, Ordering::Relaxed);
            if armed == Some(Mode::StallInFetch) {
                // Silent until the client gives up and closes.
                let _ = up.await;
                return;
            }
            break;
        }
    }
    up.abort();
}
