//! A DNS proxy on loopback that passes queries to a real server (the zone server) and
//! misbehaves, on demand, for the names under one suffix the way broken servers and
//! middleboxes do: truncating every UDP answer, closing TCP connections, answering with
//! the wrong id or with garbage. Names outside the suffix always pass through untouched,
//! so the other domains of a test keep a working server.
//!
//! It works on raw wire bytes (header fields at fixed offsets, RFC 1035 §4.1.1): the
//! faults are about bytes no well-formed message builder would write.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How answers for the faulty names are mangled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Passed through.
    Pass,
    /// UDP answers cut to the header and question with TC set; TCP answers whole.
    Truncate,
    /// UDP answers truncated, TCP connections closed as soon as the query is read.
    TruncateThenClose,
    /// Answers (UDP and TCP) carry another id than the query's.
    WrongId,
    /// The query's id followed by bytes that are not a DNS message.
    Garbage,
    /// FORMERR for every query that carries EDNS (an old server or a middlebox that
    /// rejects it); queries without EDNS are answered.
    FormErrOnEdns,
}

pub struct DnsProxy {
    addr: SocketAddr,
    state: Arc<Mutex<(String, Mode)>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DnsProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsProxy {
    /// Listens on a free port of 127.0.0.1 (UDP and TCP), forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> DnsProxy {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let state = Arc::new(Mutex::new((String::new(), Mode::Pass)));
        let udp = Arc::new(udp);
        let s = state.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let (udp, s) = (udp.clone(), s.clone());
                tokio::spawn(async move {
                    let mode = mode_for(&s, &query);
                    if let Some(reply) = udp_reply(upstream, &query, mode).await {
                        let _ = udp.send_to(&reply, from).await;
                    }
                });
            }
        });
        let s = state.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = tcp.accept().await else {
                    continue;
                };
                tokio::spawn(serve_tcp(conn, upstream, s.clone()));
            }
        });
        DnsProxy {
            addr,
            state,
            tasks: vec![udp_task, tcp_task],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes the names equal to or under `suffix` misbehave as `mode` (`Mode::Pass` heals).
    pub fn set(&self, suffix: &str, mode: Mode) {
        *self.state.lock().unwrap() = (suffix.trim_end_matches('.').to_ascii_lowercase(), mode);
    }
}

fn mode_for(state: &Mutex<(String, Mode)>, query: &[u8]) -> Mode {
    let (suffix, mode) = state.lock().unwrap().clone();
    match qname(query) {
        Some(name)
            if !suffix.is_empty() && (name == suffix || name.ends_with(&format!(".{suffix}"))) =>
        {
            mode
        }
        _ => Mode::Pass,
    }
}

/// The question's name, lower-case without the trailing dot.
pub fn qname(msg: &[u8]) -> Option<String> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(i)? as usize;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(i + 1..i + 1 + len)?).to_ascii_lowercase());
        i += 1 + len;
    }
    Some(labels.join("."))
}

/// Offset just past the question section (one question).
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let len = *msg.get(i)? as usize;
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    (i + 4 <= msg.len()).then_some(i + 4)
}

/// The same answer with TC set and nothing after the question (as a server does whose
/// answer does not fit the UDP payload).
fn truncated(reply: &[u8]) -> Vec<u8> {
    let end = question_end(reply).unwrap_or(reply.len().min(12));
    let mut out = reply[..end].to_vec();
    if out.len() >= 12 {
        out[2] |= 0x02;
        out[6..12].fill(0);
    }
    out
}

fn garbage(query: &[u8]) -> Vec<u8> {
    let mut out = query[..2.min(query.len())].to_vec();
    out.extend((0..61u8).map(|i| i.wrapping_mul(37) ^ 0xa5));
    out
}

/// Whether the query carries an EDNS OPT record (ARCOUNT > 0: the only additional record
/// a stub sends).
fn has_edns(query: &[u8]) -> bool {
    query.get(10..12).is_some_and(|c| c != [0, 0])
}

/// FORMERR: the query's header and question, QR set, RCODE 1, no records.
fn formerr(query: &[u8]) -> Vec<u8> {
    let end = question_end(query).unwrap_or(query.len().min(12));
    let mut out = query[..end].to_vec();
    if out.len() >= 12 {
        out[2] |= 0x80;
        out[3] = (out[3] & 0xf0) | 1;
        out[6..12].fill(0);
    }
    out
}

fn wrong_id(mut reply: Vec<u8>) -> Vec<u8> {
    if reply.len() >= 2 {
        reply[0] ^= 0x5a;
        reply[1] ^= 0xa5;
    }
    reply
}

/// Asks upstream over TCP (whole answers of any size).
async fn ask(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let fut = async {
        let mut conn = TcpStream::connect(upstream).await.ok()?;
        conn.write_all(&(query.len() as u16).to_be_bytes())
            .await
            .ok()?;
        conn.write_all(query).await.ok()?;
        read_framed(&mut conn).await
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

async fn read_framed(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

/// The UDP payload the client advertised (EDNS OPT), or 512.
fn udp_limit(query: &[u8]) -> usize {
    // The OPT record is the only additional record a stub resolver sends: its CLASS field
    // is the payload size, 2 bytes after the root name (0) and TYPE 41.
    let Some(q_end) = question_end(query) else {
        return 512;
    };
    match query.get(q_end..q_end + 5) {
        Some([0, 0, 41, hi, lo]) => (u16::from_be_bytes([*hi, *lo]) as usize).max(512),
        _ => 512,
    }
}

async fn udp_reply(upstream: SocketAddr, query: &[u8], mode: Mode) -> Option<Vec<u8>> {
    if mode == Mode::Garbage {
        return Some(garbage(query));
    }
    if mode == Mode::FormErrOnEdns && has_edns(query) {
        return Some(formerr(query));
    }
    let reply = ask(upstream, query).await?;
    Some(match mode {
        // An answer too large for the client's UDP payload is truncated, as by a real server.
        Mode::Pass if reply.len() > udp_limit(query) => truncated(&reply),
        Mode::Pass => reply,
        Mode::Truncate | Mode::TruncateThenClose => truncated(&reply),
        Mode::WrongId => wrong_id(reply),
        Mode::FormErrOnEdns if reply.len() > udp_limit(query) => truncated(&reply),
        Mode::FormErrOnEdns => reply,
        Mode::Garbage => unreachable!(),
    })
}

async fn serve_tcp(mut conn: TcpStream, upstream: SocketAddr, state: Arc<Mutex<(String, Mode)>>) {
    while let Some(query) = read_framed(&mut conn).await {
        let reply = match mode_for(&state, &query) {
            Mode::TruncateThenClose => return,
            Mode::Garbage => garbage(&query),
            Mode::FormErrOnEdns if has_edns(&query) => formerr(&query),
            Mode::WrongId => match ask(upstream, &query).await {
                Some(r) => wrong_id(r),
                None => return,
            },
            Mode::Pass | Mode::Truncate | Mode::FormErrOnEdns => {
                match ask(upstream, &query).await {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        if conn
            .write_all(&(reply.len() as u16).to_be_bytes())
            .await
            .is_err()
            || conn.write_all(&reply).await.is_err()
        {
            return;
        }
    }
}
