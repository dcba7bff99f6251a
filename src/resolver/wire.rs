//! The exporter's own DNS exchange: one query, one UDP datagram (TCP when the answer is
//! truncated), read into the typed [`Answer`]. Every check's lookup goes through here.
//!
//! Why not hickory-resolver's lookup path: the benchmark (BENCHMARKS.md) found the lint of
//! 10,000 domains CPU-bound in the resolver's per-query machinery, at about 75 µs of CPU
//! per query against dnsperf's few microseconds. The exporter needs little of it: it talks
//! to configured recursive resolvers (or resolv.conf's), caches one layer up
//! ([`super::CachingDns`]) and wants the raw distinctions (NXDOMAIN, NODATA, SERVFAIL,
//! REFUSED, timeout) rather than errors to interpret. Building and reading messages is
//! pure (hickory-proto does the wire format); the exchange is a small async function.
//!
//! DANE's queries also go through here with the DNSSEC OK bit (EDNS, RFC 3225) and the AD
//! bit (RFC 6840 §5.7) set, the way postfix asks: a validating resolver sets AD in its
//! response only for data it found secure (RFC 4035 §3.2.3). The exporter is meant to be
//! pointed at a local validating resolver (unbound, knot-resolver, systemd-resolved with
//! DNSSEC=yes), the only kind whose AD bit can be trusted, since the path to it is loopback.
//!
//! Each query gets a fresh random id and a socket to itself, taken from a pool of
//! sockets on random ports that are replaced after a bounded number of queries
//! ([`super::pool`]), and a response counts only when it comes from the server asked,
//! carries the id and repeats the question: the defences against forged answers (RFC 5452
//! §9.1). A datagram unanswered for the server's retransmission timeout ([`super::rtt`])
//! is sent again, so that a loss costs about one RTO, not the whole timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData as HRData, RecordType as HRecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::pool::SocketPool;
use super::rtt::{RttEstimator, INITIAL_RTO, MIN_RTO};
use super::{Answer, Authenticated, DnsError, RData, RecordType};
use crate::name::normalize_name;

/// The UDP payload size advertised with EDNS (the DNS flag day 2020 value: no fragments).
const EDNS_PAYLOAD: u16 = 1232;
/// How many aliases are followed when a server answers with a CNAME but not its target
/// (an authoritative server answering for another zone's alias).
const MAX_CHASE: usize = 8;

/// The query for `name`/`rtype` with RD set and EDNS; with `dnssec`, also AD and DO. Its
/// message id.
pub fn build_query(
    name: &str,
    rtype: RecordType,
    dnssec: bool,
) -> Result<(u16, Vec<u8>), DnsError> {
    build(name, rtype, dnssec, true)
}

/// The same, or without EDNS (`with_edns` false) for a server that rejects it: RD, and AD
/// with `dnssec` (a plain header bit, RFC 6840 §5.7; DO needs EDNS).
pub fn build(
    name: &str,
    rtype: RecordType,
    dnssec: bool,
    with_edns: bool,
) -> Result<(u16, Vec<u8>), DnsError> {
    let fqdn = format!("{}.", normalize_name(name));
    let qname = Name::from_ascii(&fqdn).map_err(|_| DnsError::InvalidName(name.to_string()))?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.metadata.authentic_data = dnssec;
    if with_edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD).set_dnssec_ok(dnssec);
        message.edns = Some(edns);
    }
    message
        .queries
        .push(Query::query(qname, hickory_type(rtype)));
    let bytes = message
        .to_vec()
        .map_err(|_| DnsError::QueryEncoding(name.to_string()))?;
    Ok((message.metadata.id, bytes))
}

/// One response, read.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub answer: Answer,
    /// The AD bit.
    pub authenticated: bool,
    /// Smallest TTL of the answer section; for a negative answer, the SOA's negative TTL.
    pub ttl: Option<u32>,
    /// The response ends at an alias whose target it does not answer for, and has no SOA
    /// that would make that final: the target to ask next.
    pub dangling_alias: Option<String>,
    /// The aliases the answer section followed.
    pub cname_chain: Vec<String>,
}

/// What a response says, once it is known to answer our query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// Not a response to this query (other id, other question, not a response): ignore it.
    Foreign,
    /// The UDP response was truncated: ask again over TCP.
    Truncated,
    /// FORMERR: the server could not read the query (an old server or a middlebox that
    /// rejects EDNS): ask again without EDNS (RFC 6891 §7).
    FormatError,
    Answer(Response),
    Failed(DnsError),
}

/// Reads a response to the query `id` for `name`/`rtype`.
pub fn read_response(bytes: &[u8], id: u16, name: &str, rtype: RecordType) -> Reading {
    let message = match Message::from_vec(bytes) {
        Ok(m) => m,
        // Our id from the server we asked (the socket is connected to it), but not a DNS
        // message: the server is broken, which must show as an error, not as a timeout.
        // Anything else unreadable is ignored like any foreign datagram.
        Err(e) if bytes.get(..2) == Some(&id.to_be_bytes()[..]) => {
            return Reading::Failed(DnsError::MalformedResponse(e.to_string()))
        }
        Err(_) => return Reading::Foreign,
    };
    let same_question = message.queries.len() == 1
        && message.queries[0].query_type() == hickory_type(rtype)
        && same_name(&message.queries[0].name().to_ascii(), name);
    if message.metadata.id != id
        || message.metadata.message_type != MessageType::Response
        || !same_question
    {
        return Reading::Foreign;
    }
    if message.metadata.truncation {
        return Reading::Truncated;
    }
    let authenticated = message.metadata.authentic_data;
    let soa_ttl = message.authorities.iter().find_map(|r| match &r.data {
        HRData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    let answer_ttl = message.answers.iter().map(|r| r.ttl).min();
    match message.metadata.response_code {
        ResponseCode::NoError => {
            let (records, cname_chain) =
                answer_records(message.answers.iter().map(|r| &r.data), rtype);
            let dangling_alias = match cname_chain.last() {
                Some(target) if records.is_empty() && soa_ttl.is_none() => Some(target.clone()),
                _ => None,
            };
            let answer = Answer::of(records, cname_chain.clone());
            let ttl = if answer.records().is_empty() {
                soa_ttl.or(answer_ttl)
            } else {
                answer_ttl
            };
            Reading::Answer(Response {
                answer,
                authenticated,
                ttl,
                dangling_alias,
                cname_chain,
            })
        }
        ResponseCode::NXDomain => Reading::Answer(Response {
            answer: Answer::NxDomain,
            authenticated,
            ttl: soa_ttl,
            dangling_alias: None,
            cname_chain: Vec::new(),
        }),
        ResponseCode::ServFail => Reading::Failed(DnsError::ServFail),
        ResponseCode::Refused => Reading::Failed(DnsError::Refused),
        ResponseCode::FormErr => Reading::FormatError,
        other => Reading::Failed(DnsError::UnexpectedRcode(other.to_string())),
    }
}

/// Names compare without case and trailing dot, without allocating.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Where queries go: the servers, asked in turn, each attempt going through the list.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub servers: Vec<Arc<Server>>,
    /// For one exchange with one server (UDP with its retransmissions; the TCP retry
    /// after a truncated answer has a timeout of its own).
    pub timeout: Duration,
    pub attempts: usize,
}

/// One server and what the exchange keeps about it: its round-trip estimate (when to
/// send again), the bound on queries in flight to it, its sockets, its retransmissions.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    rtt: Mutex<RttEstimator>,
    in_flight: Semaphore,
    sockets: SocketPool,
    /// Shared with the [`super::QueryCounters`] of the resolver, which keep it across a
    /// reload that builds the servers again (a counter must not go back).
    retransmissions: Arc<AtomicU64>,
}

impl Server {
    /// `timeout` caps the RTO; at most `max_in_flight` queries (at least one) are sent to
    /// the server at once, the others wait their turn within their timeout; each
    /// retransmission is counted in `retransmissions`.
    pub fn new(
        addr: SocketAddr,
        timeout: Duration,
        max_in_flight: usize,
        retransmissions: Arc<AtomicU64>,
    ) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            addr,
            rtt: Mutex::new(RttEstimator::new(INITIAL_RTO, MIN_RTO, timeout)),
            in_flight: Semaphore::new(max_in_flight),
            sockets: SocketPool::new(addr, max_in_flight),
            retransmissions,
        }
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.estimator().rto()
    }

    /// Datagrams sent again because the one before went unanswered for an RTO.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions.load(Ordering::Relaxed)
    }

    fn estimator(&self) -> std::sync::MutexGuard<'_, RttEstimator> {
        self.rtt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Looks up `name`, following aliases the server left dangling, with loops reported as
/// errors (RFC 1034 §3.6.2 asks resolvers to detect them).
pub async fn ask(
    upstream: &Upstream,
    name: &str,
    rtype: RecordType,
    dnssec: bool,
) -> Authenticated {
    let failed = |e| Authenticated {
        result: Err(e),
        authenticated: false,
        ttl: None,
    };
    let mut chain: Vec<String> = Vec::new();
    let mut ttl: Option<u32> = None;
    let mut authenticated = true;
    let mut current = normalize_name(name);
    for _ in 0..=MAX_CHASE {
        let response = match ask_once(upstream, &current, rtype, dnssec).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        ttl = match (ttl, response.ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        authenticated &= response.authenticated;
        chain.extend(response.cname_chain.iter().map(|c| normalize_name(c)));
        if cname_loop(name, &chain) {
            return failed(DnsError::CnameLoop(normalize_name(name)));
        }
        let answer = match (response.dangling_alias, response.answer) {
            (Some(target), _) if rtype != RecordType::Cname => {
                current = target;
                continue;
            }
            (_, Answer::Records { records, .. }) => Answer::Records {
                records,
                cname_chain: chain,
            },
            (_, other) => other,
        };
        return Authenticated {
            result: Ok(shared(answer)),
            authenticated,
            ttl: ttl.map(|t| Duration::from_secs(t.into())),
        };
    }
    failed(DnsError::CnameChainTooLong {
        name: normalize_name(name),
        limit: MAX_CHASE,
    })
}

/// The answer behind an `Arc`; the two negative answers are one allocation each for the
/// whole process (they are four in ten of the answers 10,000 domains keep in the cache),
/// and record lists are cut to their length.
fn shared(answer: Answer) -> Arc<Answer> {
    static NXDOMAIN: std::sync::OnceLock<Arc<Answer>> = std::sync::OnceLock::new();
    static NODATA: std::sync::OnceLock<Arc<Answer>> = std::sync::OnceLock::new();
    match answer {
        Answer::NxDomain => NXDOMAIN.get_or_init(|| Arc::new(Answer::NxDomain)).clone(),
        Answer::NoData => NODATA.get_or_init(|| Arc::new(Answer::NoData)).clone(),
        Answer::Records {
            mut records,
            mut cname_chain,
        } => {
            records.shrink_to_fit();
            cname_chain.shrink_to_fit();
            Arc::new(Answer::Records {
                records,
                cname_chain,
            })
        }
    }
}

/// Asks the servers in turn (each attempt goes through the list) until one answers.
async fn ask_once(
    upstream: &Upstream,
    name: &str,
    rtype: RecordType,
    dnssec: bool,
) -> Result<Response, DnsError> {
    if upstream.servers.is_empty() {
        return Err(DnsError::NoNameserver);
    }
    let mut last = DnsError::Timeout;
    for _ in 0..upstream.attempts.max(1) {
        for server in &upstream.servers {
            match exchange(server, upstream.timeout, name, rtype, dnssec).await {
                Ok(Reading::Answer(response)) => return Ok(response),
                Ok(Reading::Failed(e)) | Err(e) => last = e,
                Ok(Reading::FormatError) => last = DnsError::FormErr,
                Ok(Reading::Foreign | Reading::Truncated) => {}
            }
        }
    }
    Err(last)
}

/// One question to one server: over UDP (again without EDNS after FORMERR), over TCP
/// when the answer was truncated. The wait for a turn among the server's queries in flight
/// counts against the first UDP exchange's timeout.
async fn exchange(
    server: &Server,
    timeout: Duration,
    name: &str,
    rtype: RecordType,
    dnssec: bool,
) -> Result<Reading, DnsError> {
    let deadline = Instant::now() + timeout;
    let _turn = match tokio::time::timeout_at(deadline, server.in_flight.acquire()).await {
        Ok(Ok(permit)) => permit,
        // The semaphore is never closed; an elapsed wait is the query's timeout.
        Ok(Err(_)) | Err(_) => return Err(DnsError::Timeout),
    };
    let mut with_edns = true;
    let mut udp = udp_exchange(server, deadline, name, rtype, dnssec, true).await?;
    if udp == Reading::FormatError {
        with_edns = false;
        let deadline = Instant::now() + timeout;
        udp = udp_exchange(server, deadline, name, rtype, dnssec, false).await?;
    }
    match udp {
        Reading::Truncated => {}
        Reading::FormatError => return Ok(Reading::Failed(DnsError::FormErr)),
        reading => return Ok(reading),
    }
    let (id, query) = build(name, rtype, dnssec, with_edns)?;
    let tcp = tcp_exchange(server.addr, id, &query, name, rtype);
    match tokio::time::timeout(timeout, tcp).await {
        Ok(Err(
            e @ (DnsError::Network(_)
            | DnsError::TcpAnswerMismatch(_)
            | DnsError::FormErrOverTcp(_)
            | DnsError::QueryTooLong),
        )) => Err(DnsError::TcpFallback(Box::new(e))),
        Ok(reading) => reading,
        Err(_) => Err(DnsError::Timeout),
    }
}

fn io_error(e: std::io::Error) -> DnsError {
    match e.kind() {
        // Not the REFUSED rcode: an operator would look at ACLs instead of a dead resolver.
        std::io::ErrorKind::ConnectionRefused => DnsError::Unreachable,
        kind => DnsError::Network(kind),
    }
}

/// Transmissions of one UDP exchange at most. With the RTO doubling from its 50 ms floor,
/// eight of them span 12.75 s; the deadline ends the exchange in any case.
const MAX_TRANSMISSIONS: usize = 8;

/// The query over UDP until `deadline`, sent again each time an RTO passes unanswered
/// (the RTO doubling each time, RFC 6298 §5.5). Each transmission has its own random id:
/// an answer to any of them is accepted (all ask the same question of the same server),
/// and tells which transmission it answers, so its round trip is a valid sample (Karn).
async fn udp_exchange(
    server: &Server,
    deadline: Instant,
    name: &str,
    rtype: RecordType,
    dnssec: bool,
    with_edns: bool,
) -> Result<Reading, DnsError> {
    let mut socket = server.sockets.take().await.map_err(io_error)?;
    let mut sent: Vec<(u16, Instant)> = Vec::with_capacity(2);
    let mut rto = server.rto();
    // Larger than the advertised payload, for servers that ignore it; not zeroed.
    let mut buf = Vec::with_capacity(4096);
    let reading = loop {
        let (id, query) = build(name, rtype, dnssec, with_edns)?;
        if let Err(e) = socket.socket.send(&query).await {
            // A pooled socket can outlive the runtime it was registered with: a new one.
            if !socket.reused || !sent.is_empty() {
                return Err(io_error(e));
            }
            socket = server.sockets.open().await.map_err(io_error)?;
            socket.socket.send(&query).await.map_err(io_error)?;
        }
        let sent_at = Instant::now();
        sent.push((id, sent_at));
        let resend_at = if sent.len() < MAX_TRANSMISSIONS {
            (sent_at + rto).min(deadline)
        } else {
            deadline
        };
        if let Some((reading, asked_at)) =
            receive(&socket.socket, &mut buf, &sent, resend_at, name, rtype).await?
        {
            server.estimator().sample(asked_at.elapsed());
            break Ok(reading);
        }
        server.estimator().backoff(rto);
        if resend_at >= deadline {
            break Err(DnsError::Timeout);
        }
        server.retransmissions.fetch_add(1, Ordering::Relaxed);
        rto = rto.saturating_mul(2);
    };
    // Given back after an answer or a timeout; a socket that failed is dropped above.
    server.sockets.give_back(socket);
    reading
}

/// Reads datagrams until one answers a transmission in `sent` (the reading, and when
/// that transmission was sent), or `None` at `until`. Datagrams that answer something
/// else (or are garbage under another id) are skipped, not trusted; the socket is
/// connected, so only the server's datagrams arrive at all.
async fn receive(
    socket: &tokio::net::UdpSocket,
    buf: &mut Vec<u8>,
    sent: &[(u16, Instant)],
    until: Instant,
    name: &str,
    rtype: RecordType,
) -> Result<Option<(Reading, Instant)>, DnsError> {
    loop {
        buf.clear();
        let n = match tokio::time::timeout_at(until, socket.recv_buf(buf)).await {
            Err(_) => return Ok(None),
            Ok(received) => received.map_err(io_error)?,
        };
        let Some(&(id, asked_at)) = buf
            .get(..2)
            .and_then(|b| sent.iter().find(|(id, _)| id.to_be_bytes() == b))
        else {
            continue;
        };
        if n == buf.capacity() {
            // Cut off by the buffer: a server that ignored the advertised size. TCP has
            // room for the whole answer.
            return Ok(Some((Reading::Truncated, asked_at)));
        }
        match read_response(buf, id, name, rtype) {
            Reading::Foreign => continue,
            reading => return Ok(Some((reading, asked_at))),
        }
    }
}

async fn tcp_exchange(
    server: SocketAddr,
    id: u16,
    query: &[u8],
    name: &str,
    rtype: RecordType,
) -> Result<Reading, DnsError> {
    let mut tcp = tokio::net::TcpStream::connect(server)
        .await
        .map_err(io_error)?;
    let len = u16::try_from(query.len()).map_err(|_| DnsError::QueryTooLong)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    tcp.write_all(&framed).await.map_err(io_error)?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.map_err(io_error)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut buf).await.map_err(io_error)?;
    match read_response(&buf, id, name, rtype) {
        Reading::Foreign | Reading::Truncated => Err(DnsError::TcpAnswerMismatch(server)),
        Reading::FormatError => Err(DnsError::FormErrOverTcp(server)),
        reading => Ok(reading),
    }
}

/// A chain of aliases that comes back to a name already in it (the queried name
/// included) ends nowhere: a broken zone, which must show as a DNS error, not as "no
/// record" (RFC 1034 §3.6.2 asks resolvers to detect such loops).
fn cname_loop(name: &str, chain: &[String]) -> bool {
    let mut seen = std::collections::HashSet::from([normalize_name(name)]);
    chain
        .iter()
        .any(|target| !seen.insert(normalize_name(target)))
}

/// The records of `rtype` in an answer section, and the CNAME targets that led to them.
fn answer_records<'a>(
    data: impl Iterator<Item = &'a HRData>,
    rtype: RecordType,
) -> (Vec<RData>, Vec<String>) {
    let mut records = Vec::new();
    let mut cname_chain = Vec::new();
    for d in data {
        match convert(d) {
            Some(RData::Cname(target)) if rtype != RecordType::Cname => cname_chain.push(target),
            Some(data) if data.record_type() == rtype => records.push(data),
            _ => {}
        }
    }
    (records, cname_chain)
}

pub(super) fn hickory_type(rtype: RecordType) -> HRecordType {
    match rtype {
        RecordType::A => HRecordType::A,
        RecordType::Aaaa => HRecordType::AAAA,
        RecordType::Mx => HRecordType::MX,
        RecordType::Txt => HRecordType::TXT,
        RecordType::Ptr => HRecordType::PTR,
        RecordType::Cname => HRecordType::CNAME,
        RecordType::Tlsa => HRecordType::TLSA,
    }
}

fn convert(data: &HRData) -> Option<RData> {
    Some(match data {
        HRData::A(a) => RData::A(a.0),
        HRData::AAAA(a) => RData::Aaaa(a.0),
        HRData::MX(mx) => RData::Mx {
            preference: mx.preference,
            exchange: normalize_name(&mx.exchange.to_ascii()),
        },
        HRData::TXT(txt) => RData::Txt(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
        HRData::PTR(ptr) => RData::Ptr(normalize_name(&ptr.0.to_ascii())),
        HRData::CNAME(c) => RData::Cname(normalize_name(&c.0.to_ascii())),
        HRData::TLSA(t) => RData::Tlsa {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching: u8::from(t.matching),
            data: t.cert_data.clone(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{CNAME, SOA, TLSA, TXT};
    use hickory_resolver::proto::rr::Record;

    fn response(query: &[u8], edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::from_vec(query).unwrap();
        m.metadata.message_type = MessageType::Response;
        m.metadata.authentic_data = false;
        edit(&mut m);
        m.to_vec().unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let data = SOA::new(
            name("ns.example."),
            name("host.example."),
            1,
            3600,
            600,
            86400,
            minimum,
        );
        Record::from_rdata(name("example."), ttl, HRData::SOA(data))
    }

    fn read(bytes: &[u8], id: u16, qname: &str, rtype: RecordType) -> Response {
        match read_response(bytes, id, qname, rtype) {
            Reading::Answer(r) => r,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn dnssec_queries_set_rd_ad_and_do() {
        let (id, bytes) = build_query("_25._tcp.MX.example.", RecordType::Tlsa, true).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, id);
        assert!(m.metadata.recursion_desired && m.metadata.authentic_data);
        let edns = m.edns.as_ref().unwrap();
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), EDNS_PAYLOAD);
        assert_eq!(m.queries[0].name().to_ascii(), "_25._tcp.mx.example.");
    }

    #[test]
    fn plain_queries_set_rd_and_edns_only() {
        let (_, bytes) = build_query("Example.", RecordType::Txt, false).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.metadata.recursion_desired);
        assert!(!m.metadata.authentic_data);
        assert!(!m.edns.as_ref().unwrap().flags().dnssec_ok);
        assert_eq!(m.queries[0].name().to_ascii(), "example.");
        assert!(matches!(
            build_query("a..b", RecordType::Txt, false),
            Err(DnsError::InvalidName(_))
        ));
    }

    #[test]
    fn plain_queries_carry_no_edns() {
        let (_, bytes) = build("example", RecordType::Tlsa, true, false).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.edns.is_none());
        assert!(m.metadata.recursion_desired && m.metadata.authentic_data);
        let (id, q) = build_query("example", RecordType::Tlsa, true).unwrap();
        let formerr = response(&q, |m| m.metadata.response_code = ResponseCode::FormErr);
        assert_eq!(
            read_response(&formerr, id, "example", RecordType::Tlsa),
            Reading::FormatError
        );
    }

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64)
            .map(|_| build_query("example", RecordType::A, false).unwrap().0)
            .collect();
        assert!(ids.len() > 32, "ids must be random: {ids:?}");
    }

    #[test]
    fn reads_records_and_the_ad_bit() {
        let qname = "_25._tcp.mx.example";
        let (id, q) = build_query(qname, RecordType::Tlsa, true).unwrap();
        let owner = name("_25._tcp.mx.example.");
        let alias = name("tlsa.example.");
        let tlsa = TLSA::new(3.into(), 1.into(), 1.into(), vec![0xab; 32]);
        let bytes = response(&q, |m| {
            m.metadata.authentic_data = true;
            m.answers.push(Record::from_rdata(
                owner.clone(),
                60,
                HRData::CNAME(CNAME(alias.clone())),
            ));
            m.answers
                .push(Record::from_rdata(alias.clone(), 30, HRData::TLSA(tlsa)));
            // Authority records do not shorten a positive answer's life.
            m.authorities.push(soa(5, 5));
        });
        let r = read(&bytes, id, qname, RecordType::Tlsa);
        assert!(r.authenticated);
        assert_eq!(r.ttl, Some(30), "the smallest TTL of the answer");
        assert_eq!(r.answer.records().len(), 1);
        assert_eq!(r.answer.cname_chain(), ["tlsa.example"]);
        assert_eq!(r.dangling_alias, None);
        // Without AD: the same question, not vouched for.
        let bytes = response(&q, |_| {});
        let r = read(&bytes, id, qname, RecordType::Tlsa);
        assert_eq!(
            (r.answer, r.authenticated, r.ttl),
            (Answer::NoData, false, None)
        );
    }

    #[test]
    fn the_question_is_matched_without_case_or_trailing_dot() {
        let (id, q) = build_query("MiXeD.Example", RecordType::Txt, false).unwrap();
        let bytes = response(&q, |m| {
            m.queries[0] = Query::query(name("mixed.EXAMPLE."), hickory_type(RecordType::Txt));
            m.answers.push(Record::from_rdata(
                name("mixed.example."),
                300,
                HRData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
            ));
        });
        let r = read(&bytes, id, "mixed.example.", RecordType::Txt);
        assert_eq!(r.answer.txt_strings(), ["v=spf1 -all"]);
        assert_eq!(r.ttl, Some(300));
    }

    #[test]
    fn negative_answers_live_for_the_soa_negative_ttl() {
        let (id, q) = build_query("none.example", RecordType::Txt, false).unwrap();
        // RFC 2308 §5: the smaller of the SOA record's TTL and its MINIMUM field.
        let nx = response(&q, |m| {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.authorities.push(soa(3600, 120));
        });
        let r = read(&nx, id, "none.example", RecordType::Txt);
        assert_eq!((r.answer, r.ttl), (Answer::NxDomain, Some(120)));
        let nodata = response(&q, |m| m.authorities.push(soa(60, 900)));
        let r = read(&nodata, id, "none.example", RecordType::Txt);
        assert_eq!((r.answer, r.ttl), (Answer::NoData, Some(60)));
    }

    #[test]
    fn an_alias_without_its_target_is_left_to_follow() {
        let (id, q) = build_query("www.example", RecordType::A, false).unwrap();
        let alias = |m: &mut Message| {
            m.answers.push(Record::from_rdata(
                name("www.example."),
                300,
                HRData::CNAME(CNAME(name("Host.Other."))),
            ))
        };
        let bytes = response(&q, alias);
        let r = read(&bytes, id, "www.example", RecordType::A);
        assert_eq!(r.answer, Answer::NoData);
        assert_eq!(r.dangling_alias.as_deref(), Some("host.other"));
        assert_eq!(r.cname_chain, ["host.other"]);
        // With the SOA of the target's zone, the empty answer is final (NODATA at the target).
        let bytes = response(&q, |m| {
            alias(m);
            m.authorities.push(soa(60, 60));
        });
        assert_eq!(
            read(&bytes, id, "www.example", RecordType::A).dangling_alias,
            None
        );
    }

    #[test]
    fn foreign_truncated_and_failed_responses() {
        let qname = "_25._tcp.mx.example";
        let tlsa = RecordType::Tlsa;
        let (id, q) = build_query(qname, tlsa, true).unwrap();
        let other_id = response(&q, |m| m.metadata.id = id.wrapping_add(1));
        assert_eq!(read_response(&other_id, id, qname, tlsa), Reading::Foreign);
        assert_eq!(
            read_response(&q, id, qname, tlsa),
            Reading::Foreign,
            "the query itself is not a response"
        );
        let garbage = |id: u16| [&id.to_be_bytes()[..], b"garbage"].concat();
        assert_eq!(
            read_response(&garbage(id.wrapping_add(1)), id, qname, tlsa),
            Reading::Foreign
        );
        assert!(
            matches!(
                read_response(&garbage(id), id, qname, tlsa),
                Reading::Failed(DnsError::MalformedResponse(_))
            ),
            "garbage under our id is the server's error"
        );
        let other_name = response(&q, |m| {
            m.queries[0] = Query::query(name("x.example."), hickory_type(tlsa))
        });
        assert_eq!(
            read_response(&other_name, id, qname, tlsa),
            Reading::Foreign
        );
        let other_type = response(&q, |m| {
            m.queries[0] = Query::query(name("_25._tcp.mx.example."), hickory_type(RecordType::A))
        });
        assert_eq!(
            read_response(&other_type, id, qname, tlsa),
            Reading::Foreign
        );
        let tc = response(&q, |m| m.metadata.truncation = true);
        assert_eq!(read_response(&tc, id, qname, tlsa), Reading::Truncated);
        let sf = response(&q, |m| m.metadata.response_code = ResponseCode::ServFail);
        assert_eq!(
            read_response(&sf, id, qname, tlsa),
            Reading::Failed(DnsError::ServFail)
        );
        let refused = response(&q, |m| m.metadata.response_code = ResponseCode::Refused);
        assert_eq!(
            read_response(&refused, id, qname, tlsa),
            Reading::Failed(DnsError::Refused)
        );
        let nx = response(&q, |m| {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.metadata.authentic_data = true;
        });
        let r = read(&nx, id, qname, tlsa);
        assert_eq!(
            (r.answer, r.authenticated, r.ttl),
            (Answer::NxDomain, true, None)
        );
    }

    #[test]
    fn alias_chains_that_return_to_a_name_are_loops() {
        let chain = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(cname_loop("a.test.", &chain(&["b.test", "a.test"])));
        assert!(cname_loop(
            "a.test",
            &chain(&["b.test", "c.test", "B.test"])
        ));
        assert!(!cname_loop("a.test", &chain(&["b.test", "c.test"])));
        assert!(!cname_loop("a.test", &[]));
    }
}
