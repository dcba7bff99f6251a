//! DNS faults a real server cannot be made to produce on demand, produced by a proxy in
//! front of the real zone server (`util::dns_proxy`): truncated UDP answers (TCP fallback),
//! a TCP connection closed under the query, answers with the wrong id, garbage; and two a
//! real zone produces by itself: CNAME loops and a gigantic TXT set.
//!
//! First the resolver alone (each fault's error class and counter), then the running
//! exporter: the faulty domain's checks show `dns.error`, the other domains' checks and
//! `/metrics` carry on, and the faulty domain recovers by itself once the fault ends.

mod util;

use std::sync::Arc;
use std::time::Duration;

use mailauth_exporter::config::Config;
use mailauth_exporter::resolver::RecordType;
use mailauth_exporter::resolver::{Dns, DnsError, HickoryDns, QueryCounters, ResolverSettings};
use mailauth_exporter::service::app::App;
use mailauth_exporter::zone_server::ZoneServer;
use util::dns_proxy::{DnsProxy, Mode};
use util::http::{find_value, has, metrics_until, value};

/// Enough TXT records that the set is ~40 KB: over any UDP payload, within one TCP message.
const BIG_TXT_RECORDS: usize = 200;

fn zone_body() -> String {
    let mut body = String::from(
        r#"
good            IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.good     IN TXT "v=DMARC1; p=reject"
bad             IN TXT "v=spf1 ip4:192.0.2.2 -all"
_dmarc.bad      IN TXT "v=DMARC1; p=reject"
big             IN TXT "v=spf1 ip4:192.0.2.3 -all"
_dmarc.big      IN TXT "v=DMARC1; p=reject"
loop            IN CNAME loop2
loop2           IN CNAME loop
incloop         IN TXT "v=spf1 include:l1.faults.test -all"
_dmarc.incloop  IN TXT "v=DMARC1; p=reject"
l1              IN CNAME l2
l2              IN CNAME l1
"#,
    );
    for i in 0..BIG_TXT_RECORDS {
        body.push_str(&format!(
            "big IN TXT \"verification-{i:03}={}\"\n",
            "x".repeat(180)
        ));
    }
    body
}

async fn zone_and_proxy() -> (ZoneServer, DnsProxy) {
    let server = util::server().await;
    server
        .set_zone("faults.test", &util::zone("faults.test", 60, &zone_body()))
        .unwrap();
    let proxy = DnsProxy::start(server.addr()).await;
    (server, proxy)
}

/// The wire client without a cache, so each lookup reaches the proxy.
fn wire(proxy: &DnsProxy) -> (HickoryDns, Arc<QueryCounters>) {
    wire_with(proxy, Duration::from_millis(500), 256)
}

fn wire_with(
    proxy: &DnsProxy,
    timeout: Duration,
    max_in_flight: usize,
) -> (HickoryDns, Arc<QueryCounters>) {
    let counters = Arc::new(QueryCounters::default());
    let settings = ResolverSettings {
        nameservers: vec![proxy.addr()],
        timeout,
        attempts: 1,
        max_in_flight,
    };
    (
        HickoryDns::new(&settings, counters.clone()).unwrap(),
        counters,
    )
}

fn count(counters: &QueryCounters, result: &str) -> u64 {
    counters
        .snapshot()
        .iter()
        .find(|(r, _)| *r == result)
        .map_or(0, |(_, n)| *n)
}

async fn spf_of(dns: &HickoryDns, name: &str) -> Result<Vec<String>, DnsError> {
    dns.lookup(name, RecordType::Txt).await.map(|a| {
        a.txt_strings()
            .into_iter()
            .filter(|t| t.starts_with("v=spf1"))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_is_an_error_of_its_own_class_and_heals() {
    let (_server, proxy) = zone_and_proxy().await;
    let (dns, counters) = wire(&proxy);
    let bad = "bad.faults.test";
    let want = vec!["v=spf1 ip4:192.0.2.2 -all".to_string()];

    // Truncated over UDP: the same answer over TCP.
    proxy.set(bad, Mode::Truncate);
    assert_eq!(spf_of(&dns, bad).await, Ok(want.clone()));

    // Truncated, and the TCP connection closed: an error, never "no record".
    proxy.set(bad, Mode::TruncateThenClose);
    let before = count(&counters, "error");
    let err = spf_of(&dns, bad).await.unwrap_err();
    assert!(matches!(&err, DnsError::TcpFallback(_)), "{err:?}");
    assert_eq!(count(&counters, "error"), before + 1);

    // An answer for another id is not an answer: the query times out.
    proxy.set(bad, Mode::WrongId);
    let before = count(&counters, "timeout");
    assert_eq!(spf_of(&dns, bad).await, Err(DnsError::Timeout));
    assert_eq!(count(&counters, "timeout"), before + 1);

    // Garbage with the right id: an error, never records.
    proxy.set(bad, Mode::Garbage);
    let before = count(&counters, "error");
    let err = spf_of(&dns, bad).await.unwrap_err();
    assert_eq!(count(&counters, "error"), before + 1);
    assert!(matches!(err, DnsError::MalformedResponse(_)), "{err:?}");

    // A server that rejects EDNS with FORMERR is asked again without it (RFC 6891 §7),
    // and the big answer then comes over TCP.
    proxy.set(bad, Mode::FormErrOnEdns);
    assert_eq!(spf_of(&dns, bad).await, Ok(want.clone()));
    proxy.set("big.faults.test", Mode::FormErrOnEdns);
    let big = spf_of(&dns, "big.faults.test").await;
    assert_eq!(big, Ok(vec!["v=spf1 ip4:192.0.2.3 -all".to_string()]));
    proxy.set(bad, Mode::Pass);

    // Other names were never touched, and the faulty one heals with the fault.
    assert_eq!(
        spf_of(&dns, "good.faults.test").await,
        Ok(vec!["v=spf1 ip4:192.0.2.1 -all".to_string()])
    );
    proxy.set(bad, Mode::Pass);
    assert_eq!(spf_of(&dns, bad).await, Ok(want));
}

/// A timeout far longer than any deadline of these tests: an answer within the deadline
/// came from a retransmission, not from a second attempt after the timeout.
const LONG_TIMEOUT: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_datagram_is_sent_again_after_an_rto_not_after_the_timeout() {
    let (_server, proxy) = zone_and_proxy().await;
    let (dns, counters) = wire_with(&proxy, LONG_TIMEOUT, 256);
    let bad = "bad.faults.test";
    proxy.set(bad, Mode::DropFirst(1));
    let answer = tokio::time::timeout(DEADLINE, spf_of(&dns, bad))
        .await
        .expect("answered by a retransmission, well before the 30 s timeout");
    assert_eq!(answer, Ok(vec!["v=spf1 ip4:192.0.2.2 -all".to_string()]));
    assert_eq!(
        proxy.seen(bad),
        2,
        "the dropped query and its retransmission"
    );
    let servers = counters.servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].server, proxy.addr());
    assert_eq!(servers[0].retransmissions, 1);
    assert!(
        servers[0].rto < LONG_TIMEOUT && servers[0].rto > Duration::ZERO,
        "{servers:?}"
    );
    assert_eq!(count(&counters, "ok"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_in_flight_to_a_server_stay_within_the_bound() {
    let (_server, proxy) = zone_and_proxy().await;
    let (dns, _counters) = wire_with(&proxy, LONG_TIMEOUT, 4);
    let dns = Arc::new(dns);
    proxy.set("slow.faults.test", Mode::Slow(Duration::from_millis(150)));
    let mut lookups = tokio::task::JoinSet::new();
    for i in 0..16 {
        let dns = dns.clone();
        lookups.spawn(async move {
            dns.lookup(&format!("n{i}.slow.faults.test"), RecordType::Txt)
                .await
        });
    }
    let all = async {
        let mut answers = Vec::new();
        while let Some(answer) = lookups.join_next().await {
            answers.push(answer.unwrap());
        }
        answers
    };
    let answers = tokio::time::timeout(DEADLINE, all)
        .await
        .expect("all answered");
    assert_eq!(answers.len(), 16);
    for answer in answers {
        assert_eq!(
            answer.as_deref(),
            Ok(&mailauth_exporter::resolver::Answer::NxDomain)
        );
    }
    let most = proxy.most_held();
    assert!(most <= 4, "{most} questions in flight at once, bound 4");
    assert!(most >= 2, "the bound still lets queries overlap: {most}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_from_another_address_is_not_taken_on_a_pooled_socket() {
    let (_server, proxy) = zone_and_proxy().await;
    let (dns, _counters) = wire(&proxy);
    let bad = "bad.faults.test";
    proxy.set(bad, Mode::ForgeFromOtherPort);
    // Several lookups, so that pooled sockets are reused under the forger's fire.
    for _ in 0..5 {
        assert_eq!(
            spf_of(&dns, bad).await,
            Ok(vec!["v=spf1 ip4:192.0.2.2 -all".to_string()]),
            "the forged copy (ip4:203.0.112) came from another port and was dropped"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigantic_txt_sets_come_whole_over_tcp_and_cname_loops_end() {
    let (_server, proxy) = zone_and_proxy().await;
    let (dns, _counters) = wire(&proxy);

    let big = dns
        .lookup("big.faults.test", RecordType::Txt)
        .await
        .unwrap();
    let texts = big.txt_strings();
    assert_eq!(texts.len(), BIG_TXT_RECORDS + 1);
    assert!(texts.contains(&"v=spf1 ip4:192.0.2.3 -all".to_string()));

    // A CNAME loop ends in bounded time as an error: a broken zone, not "no record".
    let looped = dns.lookup("loop.faults.test", RecordType::Txt).await;
    assert!(matches!(&looped, Err(DnsError::CnameLoop(_))), "{looped:?}");
    let looped = dns.lookup("l1.faults.test", RecordType::Txt).await;
    assert!(matches!(&looped, Err(DnsError::CnameLoop(_))), "{looped:?}");
}

struct Exporter {
    base: String,
    _app: Arc<App>,
}

async fn exporter(proxy: &DnsProxy) -> Exporter {
    let text = format!(
        r#"[exporter]
dns_interval = "1s"

[dns]
nameservers = ["{}"]
timeout = "500ms"
attempts = 1
cache_max_ttl = "1s"

[[domain]]
name = "good.faults.test"

[[domain]]
name = "bad.faults.test"

[[domain]]
name = "big.faults.test"

[[domain]]
name = "loop.faults.test"

[[domain]]
name = "incloop.faults.test"
"#,
        proxy.addr()
    );
    let config = Config::parse(&text, "dns_faults.toml".as_ref()).unwrap();
    let app = App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    Exporter { base, _app: app }
}

/// When the domain's SPF check last ran; `None` before its first run.
fn last_run(body: &str, domain: &str) -> Option<f64> {
    find_value(
        body,
        &format!(
            r#"mailauth_dns_check_last_run_timestamp_seconds{{domain="{domain}",check="spf"}}"#
        ),
    )
}

const BAD_SPF_OK: &str = r#"mailauth_dns_check_success{domain="bad.faults.test",check="spf"} 1"#;
const BAD_SPF_FAILED: &str =
    r#"mailauth_dns_check_success{domain="bad.faults.test",check="spf"} 0"#;
const BAD_DNS_ERROR: &str =
    r#"mailauth_finding{domain="bad.faults.test",check="spf",code="dns.error",severity="error"} 1"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_shows_each_fault_carries_on_and_recovers() {
    let (_server, proxy) = zone_and_proxy().await;
    let e = exporter(&proxy).await;

    let body = metrics_until(&e.base, "every domain checked once", |b| {
        ["good", "bad", "big", "loop", "incloop"]
            .iter()
            .all(|d| last_run(b, &format!("{d}.faults.test")).is_some_and(|t| t > 0.0))
    })
    .await;
    assert!(has(&body, BAD_SPF_OK), "{body}");
    // The server's transport series, labelled with its configured address.
    let server = proxy.addr();
    let rto = find_value(
        &body,
        &format!(r#"mailauth_dns_rto_seconds{{server="{server}"}}"#),
    );
    assert!(rto.is_some_and(|r| r > 0.0 && r <= 0.5), "{body}");
    assert!(
        find_value(
            &body,
            &format!(r#"mailauth_dns_retransmissions_total{{server="{server}"}}"#)
        )
        .is_some(),
        "{body}"
    );
    // The gigantic TXT set arrived whole (over TCP): its one SPF record is found.
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="big.faults.test",check="spf"} 1"#
        ),
        "{body}"
    );
    // CNAME loops: the looped domain has no SPF and the include into a loop is an error,
    // neither one a hang nor a pass.
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="loop.faults.test",check="spf"} 0"#
        ),
        "{body}"
    );
    assert!(
        has(
            &body,
            r#"mailauth_dns_check_success{domain="incloop.faults.test",check="spf"} 0"#
        ),
        "{body}"
    );

    for mode in [Mode::TruncateThenClose, Mode::WrongId, Mode::Garbage] {
        proxy.set("bad.faults.test", mode);
        let body = metrics_until(&e.base, &format!("{mode:?} shown as dns.error"), |b| {
            has(b, BAD_SPF_FAILED) && has(b, BAD_DNS_ERROR)
        })
        .await;
        // Read while the fault is on, so that "checked again" below happens during it.
        let good_before = last_run(&body, "good.faults.test").expect("good checked");
        assert!(
            !body.contains(r#"domain="bad.faults.test",check="spf",code="spf.missing""#),
            "{mode:?}: a fault is not a missing record\n{body}"
        );
        // The good domain is checked again meanwhile, and passes, while the fault lasts.
        let body = metrics_until(&e.base, "the good domain checked again", |b| {
            last_run(b, "good.faults.test").is_some_and(|t| t > good_before)
        })
        .await;
        assert!(
            has(&body, BAD_SPF_FAILED),
            "{mode:?}: the fault is still on\n{body}"
        );
        assert!(
            has(
                &body,
                r#"mailauth_dns_check_success{domain="good.faults.test",check="spf"} 1"#
            ),
            "{body}"
        );
        let errors = value(&body, r#"mailauth_dns_queries_total{result="error"}"#)
            + value(&body, r#"mailauth_dns_queries_total{result="timeout"}"#);
        assert!(errors > 0.0, "{body}");

        // The fault ends: the domain recovers by itself.
        proxy.set("bad.faults.test", Mode::Pass);
        metrics_until(&e.base, &format!("recovery from {mode:?}"), |b| {
            has(b, BAD_SPF_OK) && !has(b, BAD_DNS_ERROR)
        })
        .await;
    }

    // Truncation alone is no fault: the answers come over TCP.
    proxy.set("bad.faults.test", Mode::Truncate);
    let before = metrics_until(&e.base, "a scrape", |_| true).await;
    let t0 = last_run(&before, "bad.faults.test").expect("bad checked");
    let body = metrics_until(&e.base, "bad checked again while truncated", |b| {
        last_run(b, "bad.faults.test").is_some_and(|t| t > t0)
    })
    .await;
    assert!(has(&body, BAD_SPF_OK), "{body}");
}
