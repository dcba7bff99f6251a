//! A DNS proxy on loopback that passes queries to a real server (the zone server) and
//! misbehaves, on demand, for the names under one suffix the way broken servers and
//! middleboxes do: truncating every UDP answer, closing TCP connections, answering with
//! the wrong id or with garbage. Names outside the suffix always pass through untouched,
//! so the other domains of a test keep a working server.
//!
//! It also counts the UDP queries it receives per name, and can drop datagrams (a server
//! whose receive queue overflowed), answer slowly while counting the questions it holds at
//! once, or send a forged answer from another port ahead of the real one.
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
    /// The first N UDP queries for the names are dropped (a server whose receive queue
    /// overflowed), the later ones answered.
    DropFirst(u32),
    /// Every UDP answer held for the given time (a slow server); the distinct questions
    /// held at once are counted ([`DnsProxy::most_held`]).
    Slow(Duration),
    /// Each UDP answer is preceded by a forged copy sent from another port of the proxy's
    /// address, with `192.0.2.` in its records changed to `203.0.11` (see [`forged`]).
    ForgeFromOtherPort,
}

#[derive(Default)]
struct State {
    suffix: String,
    mode: Option<Mode>,
    dropped: u32,
    /// UDP queries received, by name.
    seen: std::collections::HashMap<String, usize>,
    /// Questions held by `Mode::Slow` now (by name, with their count), and the most at once.
    held: std::collections::HashMap<String, usize>,
    most_held: usize,
}

pub struct DnsProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
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
        let state = Arc::new(Mutex::new(State::default()));
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
                    let name = qname(&query).unwrap_or_default();
                    *s.lock().unwrap().seen.entry(name.clone()).or_default() += 1;
                    let mode = mode_for(&s, &query);
                    match mode {
                        Mode::DropFirst(n) => {
                            let mut state = s.lock().unwrap();
                            if state.dropped < n {
                                state.dropped += 1;
                                return;
                            }
                        }
                        Mode::Slow(delay) => {
                            hold(&s, &name, 1);
                            // The fault itself (a slow server), not a synchronisation.
                            tokio::time::sleep(delay).await;
                            hold(&s, &name, -1);
                        }
                        _ => {}
                    }
                    let Some(reply) = udp_reply(upstream, &query, mode).await else {
                        return;
                    };
                    if mode == Mode::ForgeFromOtherPort {
                        let forger = UdpSocket::bind((addr.ip(), 0)).await.unwrap();
                        let _ = forger.send_to(&forged(&reply), from).await;
                    }
                    let _ = udp.send_to(&reply, from).await;
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
        let mut state = self.state.lock().unwrap();
        state.suffix = suffix.trim_end_matches('.').to_ascii_lowercase();
        state.mode = Some(mode);
        state.dropped = 0;
    }

    /// UDP queries received for `name` (lower-case, without the trailing dot).
    pub fn seen(&self, name: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// The most distinct questions `Mode::Slow` held at once.
    pub fn most_held(&self) -> usize {
        self.state.lock().unwrap().most_held
    }
}

fn hold(state: &Mutex<State>, name: &str, delta: isize) {
    let mut state = state.lock().unwrap();
    let count = state.held.entry(name.to_string()).or_default();
    *count = count.checked_add_signed(delta).unwrap();
    if *count == 0 {
        state.held.remove(name);
    }
    state.most_held = state.most_held.max(state.held.len());
}

fn mode_for(state: &Mutex<State>, query: &[u8]) -> Mode {
    let state = state.lock().unwrap();
    let suffix = &state.suffix;
    match qname(query) {
        Some(name)
            if !suffix.is_empty() && (name == *suffix || name.ends_with(&format!(".{suffix}"))) =>
        {
            state.mode.unwrap_or(Mode::Pass)
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

/// The reply with every `192.0.2.` in its bytes changed to `203.0.11` (the same length, so
/// the message stays well-formed): an answer no zone of the tests holds.
fn forged(reply: &[u8]) -> Vec<u8> {
    let mut out = reply.to_vec();
    let (from, to) = (b"192.0.2.", b"203.0.11");
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
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
        Mode::Pass | Mode::DropFirst(_) | Mode::Slow(_) | Mode::ForgeFromOtherPort
            if reply.len() > udp_limit(query) =>
        {
            truncated(&reply)
        }
        Mode::Pass | Mode::DropFirst(_) | Mode::Slow(_) | Mode::ForgeFromOtherPort => reply,
        Mode::Truncate | Mode::TruncateThenClose => truncated(&reply),
        Mode::WrongId => wrong_id(reply),
        Mode::FormErrOnEdns if reply.len() > udp_limit(query) => truncated(&reply),
        Mode::FormErrOnEdns => reply,
        Mode::Garbage => unreachable!(),
    })
}

async fn serve_tcp(mut conn: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    while let Some(query) = read_framed(&mut conn).await {
        let reply = match mode_for(&state, &query) {
            Mode::TruncateThenClose => return,
            Mode::Garbage => garbage(&query),
            Mode::FormErrOnEdns if has_edns(&query) => formerr(&query),
            Mode::WrongId => match ask(upstream, &query).await {
                Some(r) => wrong_id(r),
                None => return,
            },
            Mode::Pass
            | Mode::Truncate
            | Mode::FormErrOnEdns
            | Mode::DropFirst(_)
            | Mode::Slow(_)
            | Mode::ForgeFromOtherPort => match ask(upstream, &query).await {
                Some(r) => r,
                None => return,
            },
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
