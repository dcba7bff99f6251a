//! An in-memory [`Dns`]: records per name, and the failures a real resolver gives
//! (NXDOMAIN, NODATA, SERVFAIL, a timeout) set per name, so that a check's decisions on
//! DNS answers can be unit-tested in a millisecond, without sockets or a zone server.
//!
//! It answers the way [`super::HickoryDns`] reads a recursive resolver's responses: a
//! CNAME is followed and listed in [`Answer::cname_chain`]; a name that holds records of
//! other types, or only names below it (an empty non-terminal), is NODATA; any other name
//! is NXDOMAIN; a name too long or with an empty label is [`DnsError::InvalidName`].
//! A timeout is returned at once: what is tested is how a check reads it, not the clock.
//!
//! Build a zone with the methods that take and return `self`
//! (`FakeDns::new().mx("example.com", 10, "mx1.example.com").address("mx1.example.com",
//! "192.0.2.1").fault("broken.example", Fault::ServFail)`) and pass `&dns` where a check
//! takes `&dyn Dns`; [`FakeDns::asked`] lists the questions the check asked. The tests of
//! `checks::mx`, `checks::ptr`, `checks::dnsbl` and `checks::dane` use it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::{
    Answer, Authenticated, AuthenticatedFuture, Dns, DnsError, LookupFuture, LookupResult, RData,
    RecordType,
};
use crate::name::{has_valid_labels, normalize_name, reverse_name};

/// Aliases followed before giving up, as the wire reader does.
const MAX_CHASE: usize = 8;

/// What a name (or one type at a name) answers instead of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// RCODE NXDOMAIN, even if records are set.
    NxDomain,
    /// NOERROR with no records.
    NoData,
    /// The resolver failed ([`DnsError::ServFail`]).
    ServFail,
    /// No answer in time ([`DnsError::Timeout`]), returned without waiting.
    Timeout,
}

/// The zone. Build it with the methods that take and return `self`; names are matched
/// without case or trailing dot, as DNS does.
#[derive(Debug, Default)]
pub struct FakeDns {
    records: HashMap<String, Vec<RData>>,
    /// By (name, type); a `None` type is every type at the name.
    faults: HashMap<(String, Option<RecordType>), Fault>,
    /// Names whose answers carry the AD bit ([`Dns::lookup_authenticated`]).
    secure: HashSet<String>,
    asked: Mutex<Vec<(String, RecordType)>>,
}

impl FakeDns {
    pub fn new() -> FakeDns {
        FakeDns::default()
    }

    /// Adds a record at `name`; its type is the record's.
    pub fn record(mut self, name: &str, data: RData) -> FakeDns {
        self.records
            .entry(normalize_name(name))
            .or_default()
            .push(data);
        self
    }

    /// An A or AAAA record, by the address's family.
    pub fn address(self, name: &str, ip: &str) -> FakeDns {
        let data = match ip.parse::<IpAddr>().expect("a literal IP address") {
            IpAddr::V4(a) => RData::A(a),
            IpAddr::V6(a) => RData::Aaaa(a),
        };
        self.record(name, data)
    }

    /// An MX record; `exchange` "." is the null MX (RFC 7505), kept as `""` like the wire
    /// reader does.
    pub fn mx(self, name: &str, preference: u16, exchange: &str) -> FakeDns {
        let exchange = normalize_name(exchange);
        self.record(
            name,
            RData::Mx {
                preference,
                exchange,
            },
        )
    }

    /// A TXT record of one character-string.
    pub fn txt(self, name: &str, text: &str) -> FakeDns {
        self.record(name, RData::Txt(vec![text.as_bytes().to_vec()]))
    }

    /// A PTR record for `ip` (at its reverse name) pointing at `host`.
    pub fn ptr(self, ip: &str, host: &str) -> FakeDns {
        let ip: IpAddr = ip.parse().expect("a literal IP address");
        self.record(&reverse_name(ip), RData::Ptr(normalize_name(host)))
    }

    /// `name` is an alias of `target`.
    pub fn cname(self, name: &str, target: &str) -> FakeDns {
        self.record(name, RData::Cname(normalize_name(target)))
    }

    /// A TLSA record (RFC 6698 §2.1).
    pub fn tlsa(self, name: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> FakeDns {
        let data = data.to_vec();
        self.record(
            name,
            RData::Tlsa {
                usage,
                selector,
                matching,
                data,
            },
        )
    }

    /// Every question about `name` gets `fault`.
    pub fn fault(mut self, name: &str, fault: Fault) -> FakeDns {
        self.faults.insert((normalize_name(name), None), fault);
        self
    }

    /// Questions about `name` for `rtype` get `fault`; other types answer as usual.
    pub fn fault_for(mut self, name: &str, rtype: RecordType, fault: Fault) -> FakeDns {
        self.faults
            .insert((normalize_name(name), Some(rtype)), fault);
        self
    }

    /// Answers about `name` come back DNSSEC-validated (the AD bit).
    pub fn secure(mut self, name: &str) -> FakeDns {
        self.secure.insert(normalize_name(name));
        self
    }

    /// Every question asked so far, in order (names normalised): to assert what a check
    /// asks, and that it stops asking where it should.
    pub fn asked(&self) -> Vec<(String, RecordType)> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the name holds records or has names below it (an empty non-terminal
    /// exists too: NODATA, not NXDOMAIN, RFC 8020).
    fn exists(&self, name: &str) -> bool {
        let below = format!(".{name}");
        self.records
            .keys()
            .any(|n| n == name || n.ends_with(&below))
    }

    fn fault_at(&self, name: &str, rtype: RecordType) -> Option<Fault> {
        let key = |t| (name.to_string(), t);
        self.faults
            .get(&key(Some(rtype)))
            .or_else(|| self.faults.get(&key(None)))
            .copied()
    }

    fn answer(&self, name: &str, rtype: RecordType) -> LookupResult {
        if !has_valid_labels(name) {
            return Err(DnsError::InvalidName(name.to_string()));
        }
        let mut current = normalize_name(name);
        let mut chain: Vec<String> = Vec::new();
        for _ in 0..=MAX_CHASE {
            match self.fault_at(&current, rtype) {
                Some(Fault::NxDomain) => return Ok(Arc::new(Answer::NxDomain)),
                Some(Fault::NoData) => return Ok(Arc::new(Answer::NoData)),
                Some(Fault::ServFail) => return Err(DnsError::ServFail),
                Some(Fault::Timeout) => return Err(DnsError::Timeout),
                None => {}
            }
            let here = self.records.get(&current).map_or(&[][..], Vec::as_slice);
            let records: Vec<RData> = here
                .iter()
                .filter(|r| r.record_type() == rtype)
                .cloned()
                .collect();
            if !records.is_empty() {
                return Ok(Arc::new(Answer::of(records, chain)));
            }
            let alias = here.iter().find_map(|r| match r {
                RData::Cname(target) if rtype != RecordType::Cname => Some(target.clone()),
                _ => None,
            });
            match alias {
                Some(target) if target == normalize_name(name) || chain.contains(&target) => {
                    return Err(DnsError::CnameLoop(normalize_name(name)))
                }
                Some(target) => {
                    chain.push(target.clone());
                    current = target;
                }
                None if self.exists(&current) => return Ok(Arc::new(Answer::NoData)),
                None => return Ok(Arc::new(Answer::NxDomain)),
            }
        }
        Err(DnsError::CnameChainTooLong {
            name: normalize_name(name),
            limit: MAX_CHASE,
        })
    }

    fn ask(&self, name: &str, rtype: RecordType) -> LookupResult {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((normalize_name(name), rtype));
        self.answer(name, rtype)
    }
}

impl Dns for FakeDns {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> LookupFuture<'a> {
        let result = self.ask(name, rtype);
        Box::pin(async move { result })
    }

    fn lookup_authenticated<'a>(
        &'a self,
        name: &'a str,
        rtype: RecordType,
    ) -> AuthenticatedFuture<'a> {
        let result = self.ask(name, rtype);
        let authenticated = result.is_ok() && self.secure.contains(&normalize_name(name));
        Box::pin(async move {
            Authenticated {
                result,
                authenticated,
                ttl: None,
            }
        })
    }
}

/// Runs a check's future to its end on a runtime of its own: the unit tests of checks
/// against this resolver are synchronous functions.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> FakeDns {
        FakeDns::new()
            .txt("example.com", "v=spf1 -all")
            .address("www.example.com", "192.0.2.1")
            .address("www.example.com", "2001:db8::1")
            .cname("alias.example.com", "www.example.com")
            .cname("loop1.example.com", "loop2.example.com")
            .cname("loop2.example.com", "loop1.example.com")
            .txt("_x._y.deep.example.com", "t")
            .fault("fail.example.com", Fault::ServFail)
            .fault_for("www.example.com", RecordType::Txt, Fault::Timeout)
            .secure("example.com")
    }

    use super::block_on as run;

    #[test]
    fn answers_records_of_the_asked_type_only() {
        let dns = zone();
        let a = run(dns.lookup("WWW.example.com.", RecordType::A)).unwrap();
        assert_eq!(a.records(), [RData::A("192.0.2.1".parse().unwrap())]);
        let aaaa = run(dns.lookup("www.example.com", RecordType::Aaaa)).unwrap();
        assert_eq!(aaaa.records().len(), 1);
        assert_eq!(
            run(dns.lookup("example.com", RecordType::Txt))
                .unwrap()
                .txt_strings(),
            ["v=spf1 -all"]
        );
    }

    #[test]
    fn absent_names_and_types_are_told_apart() {
        let dns = zone();
        let ask = |n: &str, t| run(dns.lookup(n, t)).map(|a| (*a).clone());
        assert_eq!(ask("example.com", RecordType::Mx), Ok(Answer::NoData));
        assert_eq!(
            ask("nothing.example.com", RecordType::A),
            Ok(Answer::NxDomain)
        );
        // An empty non-terminal exists.
        assert_eq!(
            ask("_y.deep.example.com", RecordType::Txt),
            Ok(Answer::NoData)
        );
        assert_eq!(ask("deep.example.com", RecordType::Txt), Ok(Answer::NoData));
        assert_eq!(
            ask("eep.example.com", RecordType::Txt),
            Ok(Answer::NxDomain)
        );
    }

    #[test]
    fn faults_per_name_and_per_type() {
        let dns = zone();
        assert_eq!(
            run(dns.lookup("fail.example.com", RecordType::A)),
            Err(DnsError::ServFail)
        );
        assert_eq!(
            run(dns.lookup("www.example.com", RecordType::Txt)),
            Err(DnsError::Timeout)
        );
        assert!(run(dns.lookup("www.example.com", RecordType::A)).is_ok());
        let nx = FakeDns::new()
            .txt("gone.example", "x")
            .fault("gone.example", Fault::NxDomain)
            .fault_for("empty.example", RecordType::Mx, Fault::NoData);
        assert_eq!(
            *run(nx.lookup("gone.example", RecordType::Txt)).unwrap(),
            Answer::NxDomain
        );
        assert_eq!(
            *run(nx.lookup("empty.example", RecordType::Mx)).unwrap(),
            Answer::NoData
        );
    }

    #[test]
    fn aliases_are_followed_and_loops_are_errors() {
        let dns = zone();
        let a = run(dns.lookup("alias.example.com", RecordType::A)).unwrap();
        assert_eq!(a.records().len(), 1);
        assert_eq!(a.cname_chain(), ["www.example.com"]);
        let c = run(dns.lookup("alias.example.com", RecordType::Cname)).unwrap();
        assert_eq!(c.records(), [RData::Cname("www.example.com".into())]);
        assert!(c.cname_chain().is_empty());
        assert!(matches!(
            run(dns.lookup("loop1.example.com", RecordType::A)),
            Err(DnsError::CnameLoop(_))
        ));
    }

    #[test]
    fn invalid_names_are_refused_before_asking() {
        let dns = zone();
        let long = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            run(dns.lookup(&long, RecordType::A)),
            Err(DnsError::InvalidName(_))
        ));
        assert!(matches!(
            run(dns.lookup("a..example", RecordType::A)),
            Err(DnsError::InvalidName(_))
        ));
    }

    #[test]
    fn only_secure_names_are_authenticated() {
        let dns = zone();
        let ok = run(dns.lookup_authenticated("example.com", RecordType::Txt));
        assert!(ok.authenticated && ok.result.is_ok());
        let plain = run(dns.lookup_authenticated("www.example.com", RecordType::A));
        assert!(!plain.authenticated && plain.result.is_ok());
        assert_eq!(
            dns.asked(),
            [
                ("example.com".to_string(), RecordType::Txt),
                ("www.example.com".to_string(), RecordType::A)
            ]
        );
    }
}
