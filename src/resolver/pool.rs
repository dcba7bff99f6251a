//! UDP sockets for one server, reused instead of one socket per query (creating and
//! closing a socket per query was a sixth of the lint's CPU in BENCHMARKS.md's profile).
//!
//! RFC 5452 asks for a random source port per query, so that a forger must guess the
//! port as well as the id. Each pooled socket is bound to a port the kernel picks at
//! random from its ephemeral range (Linux randomises UDP ephemeral ports), and is retired
//! after [`MAX_USES`] queries or [`MAX_AGE`], as unbound keeps a range of open ports and
//! moves on (`outgoing-range`): an off-path forger who learns one port gets a bounded
//! number of queries out of it. A socket serves one query at a time (taken from the pool,
//! given back after the answer), so no demultiplexing is needed, and it is connected to
//! its server: the kernel drops datagrams from any other address. A late answer to an
//! earlier query on the same socket carries another id (or question) and is skipped by
//! the reader like any foreign datagram.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// Queries one socket serves before it is closed: socket creation costs 1 % of what it
/// cost with one socket per query, and a port stays in use for a few seconds at most
/// under load.
pub const MAX_USES: u32 = 100;
/// How long a socket is kept at most, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// A socket connected to the pool's server.
#[derive(Debug)]
pub struct PooledSocket {
    pub socket: UdpSocket,
    uses: u32,
    born: Instant,
    /// Taken from the pool rather than new: a socket of a runtime that has ended may fail,
    /// and is then replaced by a new one.
    pub reused: bool,
}

/// The idle sockets for one server.
#[derive(Debug)]
pub struct SocketPool {
    server: SocketAddr,
    idle: Mutex<Vec<PooledSocket>>,
    max_idle: usize,
    max_uses: u32,
    max_age: Duration,
}

impl SocketPool {
    /// At most `max_idle` sockets are kept idle (the bound on queries in flight to the
    /// server: more are never used at once).
    pub fn new(server: SocketAddr, max_idle: usize) -> Self {
        Self::with_limits(server, max_idle, MAX_USES, MAX_AGE)
    }

    pub fn with_limits(
        server: SocketAddr,
        max_idle: usize,
        max_uses: u32,
        max_age: Duration,
    ) -> Self {
        Self {
            server,
            idle: Mutex::new(Vec::new()),
            max_idle,
            max_uses,
            max_age,
        }
    }

    /// An idle socket, or a new one on a random port connected to the server.
    pub async fn take(&self) -> std::io::Result<PooledSocket> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match idle {
            Some(mut s) => {
                s.reused = true;
                Ok(s)
            }
            None => self.open().await,
        }
    }

    /// A new socket, never one from the pool.
    pub async fn open(&self) -> std::io::Result<PooledSocket> {
        let local: SocketAddr = if self.server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(self.server).await?;
        Ok(PooledSocket {
            socket,
            uses: 0,
            born: Instant::now(),
            reused: false,
        })
    }

    /// Gives a socket back after a query; it is closed instead when it has served its
    /// queries, is too old, or the pool is full.
    pub fn give_back(&self, mut socket: PooledSocket) {
        socket.uses += 1;
        if socket.uses >= self.max_uses || socket.born.elapsed() >= self.max_age {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(s: &PooledSocket) -> u16 {
        s.socket.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn sockets_are_reused_then_rotate_after_their_queries() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pool = SocketPool::with_limits(server.local_addr().unwrap(), 4, 3, MAX_AGE);
        let first = pool.take().await.unwrap();
        assert!(!first.reused);
        let p = port(&first);
        assert_eq!(
            first.socket.peer_addr().unwrap(),
            server.local_addr().unwrap()
        );
        pool.give_back(first);
        for _ in 0..2 {
            let s = pool.take().await.unwrap();
            assert!(s.reused);
            assert_eq!(port(&s), p, "reused while under its query bound");
            pool.give_back(s);
        }
        // Three queries served: closed, and the next query gets a new socket.
        assert!(!pool.take().await.unwrap().reused);
    }

    #[tokio::test]
    async fn sockets_rotate_with_age_and_the_idle_set_is_bounded() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pool = SocketPool::with_limits(server.local_addr().unwrap(), 1, 100, Duration::ZERO);
        let s = pool.take().await.unwrap();
        pool.give_back(s);
        assert!(!pool.take().await.unwrap().reused, "too old to be kept");

        let pool = SocketPool::with_limits(server.local_addr().unwrap(), 1, 100, MAX_AGE);
        let (a, b) = (pool.take().await.unwrap(), pool.take().await.unwrap());
        pool.give_back(a);
        pool.give_back(b);
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }
}
