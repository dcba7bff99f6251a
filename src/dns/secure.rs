//! Queries that ask the resolver whether it validated the answer with DNSSEC, the way
//! postfix does for DANE: the query carries the DNSSEC OK bit (EDNS, RFC 3225) and the AD
//! bit (RFC 6840 §5.7), and a validating resolver sets AD in its response only for data it
//! found secure (RFC 4035 §3.2.3). The exporter is meant to be pointed at a local
//! validating resolver (unbound, knot-resolver, systemd-resolved with DNSSEC=yes), the
//! only kind whose AD bit can be trusted, since the path to it is loopback.
//!
//! hickory-resolver sets the DO bit only when it validates itself, so these few queries
//! are sent here directly: building and reading the messages is pure, the exchange (UDP,
//! then TCP when truncated) is a small async function.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::Name;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::{answer_records, hickory_type};
use super::{normalize_name, Answer, DnsError, LookupResult, RecordType};

/// An answer and whether the resolver vouched for it (AD set in its response).
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub result: LookupResult,
    pub authenticated: bool,
    /// How long the answer may be reused: the smallest TTL of the answer records, or of
    /// the SOA for a negative answer; `None` when the response gave none.
    pub ttl: Option<Duration>,
}

/// The query for `name`/`rtype` with RD, AD and DO set; its message id.
pub fn build_query(name: &str, rtype: RecordType) -> Result<(u16, Vec<u8>), DnsError> {
    let fqdn = format!("{}.", normalize_name(name));
    let qname = Name::from_ascii(&fqdn).map_err(|_| DnsError::InvalidName(name.to_string()))?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.metadata.authentic_data = true;
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    message.edns = Some(edns);
    message
        .queries
        .push(Query::query(qname, hickory_type(rtype)));
    let bytes = message
        .to_vec()
        .map_err(|e| DnsError::Other(format!("cannot encode a query for {name}: {e}")))?;
    Ok((message.metadata.id, bytes))
}

/// What a response says, once it is known to answer our query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// Not a response to this query (other id, other question, not a response): ignore it.
    Foreign,
    /// The UDP response was truncated: ask again over TCP.
    Truncated,
    /// The answer, whether the resolver set AD, and the smallest TTL in the response.
    Answer(Answer, bool, Option<u32>),
    Failed(DnsError),
}

/// Reads a response to the query `id` for `name`/`rtype`.
pub fn read_response(bytes: &[u8], id: u16, name: &str, rtype: RecordType) -> Reading {
    let Ok(message) = Message::from_vec(bytes) else {
        return Reading::Foreign;
    };
    let asked = normalize_name(name);
    let same_question = message.queries.len() == 1
        && normalize_name(&message.queries[0].name().to_ascii()) == asked
        && message.queries[0].query_type() == hickory_type(rtype);
    if message.metadata.id != id
        || message.metadata.message_type != MessageType::Response
        || !same_question
    {
        return Reading::Foreign;
    }
    if message.metadata.truncation {
        return Reading::Truncated;
    }
    let ad = message.metadata.authentic_data;
    let ttl = message
        .answers
        .iter()
        .chain(message.authorities.iter())
        .map(|r| r.ttl)
        .min();
    match message.metadata.response_code {
        ResponseCode::NoError => {
            let (records, cname_chain) =
                answer_records(message.answers.iter().map(|r| &r.data), rtype);
            let answer = Answer::of(records, cname_chain);
            Reading::Answer(answer, ad, ttl)
        }
        ResponseCode::NXDomain => Reading::Answer(Answer::NxDomain, ad, ttl),
        ResponseCode::ServFail => Reading::Failed(DnsError::ServFail),
        ResponseCode::Refused => Reading::Failed(DnsError::Refused),
        other => Reading::Failed(DnsError::Other(format!("response code {other}"))),
    }
}

/// Asks `servers` in turn (each attempt goes through the list) until one answers.
pub async fn ask(
    servers: &[SocketAddr],
    timeout: Duration,
    attempts: usize,
    name: &str,
    rtype: RecordType,
) -> Authenticated {
    let failed = |e| Authenticated {
        result: Err(e),
        authenticated: false,
        ttl: None,
    };
    if servers.is_empty() {
        return failed(DnsError::Other("no nameserver configured".into()));
    }
    let mut last = DnsError::Timeout;
    for _ in 0..attempts.max(1) {
        for server in servers {
            let reading = match exchange(*server, timeout, name, rtype).await {
                Ok(r) => r,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match reading {
                Reading::Answer(answer, ad, ttl) => {
                    return Authenticated {
                        result: Ok(Arc::new(answer)),
                        authenticated: ad,
                        ttl: ttl.map(|t| Duration::from_secs(t.into())),
                    }
                }
                Reading::Failed(e) => last = e,
                Reading::Foreign | Reading::Truncated => {}
            }
        }
    }
    failed(last)
}

async fn exchange(
    server: SocketAddr,
    timeout: Duration,
    name: &str,
    rtype: RecordType,
) -> Result<Reading, DnsError> {
    let (id, query) = build_query(name, rtype)?;
    let udp = tokio::time::timeout(timeout, udp_exchange(server, id, &query, name, rtype))
        .await
        .map_err(|_| DnsError::Timeout)??;
    if udp != Reading::Truncated {
        return Ok(udp);
    }
    let (id, query) = build_query(name, rtype)?;
    tokio::time::timeout(timeout, tcp_exchange(server, id, &query, name, rtype))
        .await
        .map_err(|_| DnsError::Timeout)?
}

fn io_error(e: std::io::Error) -> DnsError {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => DnsError::Refused,
        _ => DnsError::Other(e.to_string()),
    }
}

async fn udp_exchange(
    server: SocketAddr,
    id: u16,
    query: &[u8],
    name: &str,
    rtype: RecordType,
) -> Result<Reading, DnsError> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let socket = tokio::net::UdpSocket::bind(local).await.map_err(io_error)?;
    socket.connect(server).await.map_err(io_error)?;
    socket.send(query).await.map_err(io_error)?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io_error)?;
        // Datagrams that answer something else (or are garbage) are skipped, not trusted.
        match read_response(&buf[..n], id, name, rtype) {
            Reading::Foreign => continue,
            reading => return Ok(reading),
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
    let len = u16::try_from(query.len()).map_err(|_| DnsError::Other("query too long".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    tcp.write_all(&framed).await.map_err(io_error)?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.map_err(io_error)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut buf).await.map_err(io_error)?;
    match read_response(&buf, id, name, rtype) {
        Reading::Foreign | Reading::Truncated => Err(DnsError::Other(format!(
            "{server} answered over TCP with something else"
        ))),
        reading => Ok(reading),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{CNAME, TLSA};
    use hickory_resolver::proto::rr::{RData as HRData, Record};

    fn response(query: &[u8], edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::from_vec(query).unwrap();
        m.metadata.message_type = MessageType::Response;
        m.metadata.authentic_data = false;
        edit(&mut m);
        m.to_vec().unwrap()
    }

    #[test]
    fn query_sets_rd_ad_and_do() {
        let (id, bytes) = build_query("_25._tcp.MX.example.", RecordType::Tlsa).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, id);
        assert!(m.metadata.recursion_desired && m.metadata.authentic_data);
        assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
        assert_eq!(m.queries[0].name().to_ascii(), "_25._tcp.mx.example.");
    }

    #[test]
    fn reads_records_and_the_ad_bit() {
        let name = "_25._tcp.mx.example";
        let (id, q) = build_query(name, RecordType::Tlsa).unwrap();
        let owner = Name::from_ascii("_25._tcp.mx.example.").unwrap();
        let alias = Name::from_ascii("tlsa.example.").unwrap();
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
        });
        let Reading::Answer(answer, ad, ttl) = read_response(&bytes, id, name, RecordType::Tlsa)
        else {
            panic!("no answer");
        };
        assert!(ad);
        assert_eq!(ttl, Some(30), "the smallest TTL of the answer");
        assert_eq!(answer.records().len(), 1);
        assert_eq!(answer.cname_chain(), ["tlsa.example"]);
        // Without AD: the same records, not vouched for.
        let bytes = response(&q, |_| {});
        assert_eq!(
            read_response(&bytes, id, name, RecordType::Tlsa),
            Reading::Answer(Answer::NoData, false, None)
        );
    }

    #[test]
    fn foreign_truncated_and_failed_responses() {
        let name = "_25._tcp.mx.example";
        let (id, q) = build_query(name, RecordType::Tlsa).unwrap();
        let other_id = response(&q, |m| m.metadata.id = id.wrapping_add(1));
        assert_eq!(
            read_response(&other_id, id, name, RecordType::Tlsa),
            Reading::Foreign
        );
        assert_eq!(
            read_response(&q, id, name, RecordType::Tlsa),
            Reading::Foreign,
            "the query itself is not a response"
        );
        assert_eq!(
            read_response(b"\x00\x01garbage", id, name, RecordType::Tlsa),
            Reading::Foreign
        );
        let other_name = response(&q, |m| {
            m.queries[0] = Query::query(
                Name::from_ascii("x.example.").unwrap(),
                hickory_type(RecordType::Tlsa),
            )
        });
        assert_eq!(
            read_response(&other_name, id, name, RecordType::Tlsa),
            Reading::Foreign
        );
        let tc = response(&q, |m| m.metadata.truncation = true);
        assert_eq!(
            read_response(&tc, id, name, RecordType::Tlsa),
            Reading::Truncated
        );
        let sf = response(&q, |m| m.metadata.response_code = ResponseCode::ServFail);
        assert_eq!(
            read_response(&sf, id, name, RecordType::Tlsa),
            Reading::Failed(DnsError::ServFail)
        );
        let nx = response(&q, |m| {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.metadata.authentic_data = true;
        });
        assert_eq!(
            read_response(&nx, id, name, RecordType::Tlsa),
            Reading::Answer(Answer::NxDomain, true, None)
        );
    }
}
