//! The DNS layer against a real authoritative server on loopback.

mod util;

use mailauth_exporter::resolver::{Answer, Dns, DnsError, RData, RecordType};
use mailauth_exporter::zone_server::Fault;

const BODY: &str = r#"
@ IN TXT "v=spf1 -all"
s1._domainkey IN TXT "v=DKIM1; k=rsa; p=AAAA" "BBBB"
www IN A 192.0.2.1
alias IN CNAME www
@ IN MX 10 mx1
mx1 IN A 127.0.0.1
"#;

#[tokio::test]
async fn answers_keep_nxdomain_nodata_and_split_strings_apart() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, BODY))
        .unwrap();
    let (dns, counters) = util::client(&server);

    let txt = dns.lookup("example.test", RecordType::Txt).await.unwrap();
    assert_eq!(txt.txt_strings(), vec!["v=spf1 -all".to_string()]);

    let dkim = dns
        .lookup("s1._domainkey.example.test.", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(
        dkim.records(),
        &[RData::Txt(vec![
            b"v=DKIM1; k=rsa; p=AAAA".to_vec(),
            b"BBBB".to_vec()
        ])]
    );
    assert_eq!(
        dkim.txt_strings(),
        vec!["v=DKIM1; k=rsa; p=AAAABBBB".to_string()]
    );

    assert_eq!(
        *dns.lookup("nope.example.test", RecordType::Txt)
            .await
            .unwrap(),
        Answer::NxDomain
    );
    assert_eq!(
        *dns.lookup("www.example.test", RecordType::Txt)
            .await
            .unwrap(),
        Answer::NoData
    );

    let alias = dns
        .lookup("alias.example.test", RecordType::A)
        .await
        .unwrap();
    assert_eq!(alias.records(), &[RData::A("192.0.2.1".parse().unwrap())]);
    assert_eq!(alias.cname_chain(), &["www.example.test".to_string()]);

    let mx = dns.lookup("EXAMPLE.test", RecordType::Mx).await.unwrap();
    assert_eq!(
        mx.records(),
        &[RData::Mx {
            preference: 10,
            exchange: "mx1.example.test".into()
        }]
    );

    let snap = counters.snapshot();
    assert_eq!(snap[0], ("ok", 4));
    assert_eq!(snap[1], ("nxdomain", 1));
    assert_eq!(snap[2], ("nodata", 1));
}

/// The cache keeps record lists packed: what a second asker reads from it is the answer
/// the first one got from the wire, record for record, aliases included.
#[tokio::test]
async fn a_cached_answer_reads_back_as_it_came() {
    let server = util::server().await;
    let body = format!("{BODY}v6 IN AAAA 2001:db8::25\n@ IN MX 20 mx2.other.test.\n");
    server
        .set_zone("example.test", &util::zone("example.test", 60, &body))
        .unwrap();
    let (dns, counters) = util::client(&server);
    let questions = [
        ("example.test", RecordType::Txt),
        ("s1._domainkey.example.test", RecordType::Txt),
        ("alias.example.test", RecordType::A),
        ("v6.example.test", RecordType::Aaaa),
        ("example.test", RecordType::Mx),
        ("nope.example.test", RecordType::Txt),
    ];
    let mut first = Vec::new();
    for (name, rtype) in questions {
        first.push(dns.lookup(name, rtype).await.unwrap());
    }
    assert_eq!(counters.total(), questions.len() as u64);
    for ((name, rtype), wire) in questions.into_iter().zip(&first) {
        let cached = dns.lookup(name, rtype).await.unwrap();
        assert_eq!(*cached, **wire, "{name} {rtype}");
    }
    assert_eq!(
        counters.total(),
        questions.len() as u64,
        "all from the cache"
    );
    assert_eq!(first[1].records().len(), 1);
    assert_eq!(first[2].cname_chain(), &["www.example.test".to_string()]);
    assert_eq!(first[4].records().len(), 2);
}

#[tokio::test]
async fn server_failures_are_errors_not_absence() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, BODY))
        .unwrap();
    server
        .set_fault("broken.example.test", Some(Fault::ServFail))
        .unwrap();
    server
        .set_fault("silent.example.test", Some(Fault::Silence))
        .unwrap();
    let (dns, counters) = util::client(&server);

    assert_eq!(
        dns.lookup("broken.example.test", RecordType::Txt)
            .await
            .unwrap_err(),
        DnsError::ServFail
    );
    assert_eq!(
        dns.lookup("other.example.org", RecordType::Txt)
            .await
            .unwrap_err(),
        DnsError::Refused
    );
    assert_eq!(
        dns.lookup("silent.example.test", RecordType::Txt)
            .await
            .unwrap_err(),
        DnsError::Timeout
    );
    let snap = counters.snapshot();
    assert_eq!(
        (snap[3], snap[4], snap[5]),
        (("servfail", 1), ("timeout", 1), ("refused", 1))
    );
}

#[tokio::test]
async fn one_query_per_name_while_fresh_and_changes_seen_after_ttl() {
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 1, BODY))
        .unwrap();
    let (dns, counters) = util::client(&server);

    // Many concurrent askers, one wire query.
    let lookups = (0..50).map(|_| dns.lookup("example.test", RecordType::Txt));
    let answers = futures::future::join_all(lookups).await;
    assert!(answers
        .iter()
        .all(|a| a.as_ref().unwrap().txt_strings() == ["v=spf1 -all"]));
    assert_eq!(counters.total(), 1);

    server
        .set_zone(
            "example.test",
            &util::zone(
                "example.test",
                1,
                &BODY.replace("v=spf1 -all", "v=spf1 ~all"),
            ),
        )
        .unwrap();
    // The cached answer is still within its 1 s TTL; once it has expired the change shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let txt = dns
            .lookup("example.test", RecordType::Txt)
            .await
            .unwrap()
            .txt_strings();
        if txt == ["v=spf1 ~all"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "change not seen");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An authoritative server answers an alias into another zone with the CNAME alone; the
/// client follows it to the target, as a recursive resolver would have, keeps the chain
/// and the smallest TTL, and a dangling alias to a missing name is NXDOMAIN.
#[tokio::test]
async fn aliases_into_other_zones_are_followed() {
    let server = util::server().await;
    server
        .set_zone(
            "provider.test",
            &util::zone(
                "provider.test",
                60,
                "spf IN TXT \"v=spf1 ip4:192.0.2.9 -all\"\nhop IN CNAME hop2.customer.test.\n",
            ),
        )
        .unwrap();
    server
        .set_zone(
            "customer.test",
            &util::zone(
                "customer.test",
                60,
                "_spf IN CNAME spf.provider.test.\nhop IN CNAME hop.provider.test.\nhop2 IN CNAME spf.provider.test.\ngone IN CNAME nothing.provider.test.\n",
            ),
        )
        .unwrap();
    let (dns, _) = util::client(&server);
    let spf = dns
        .lookup("_spf.customer.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(spf.txt_strings(), ["v=spf1 ip4:192.0.2.9 -all"]);
    assert_eq!(spf.cname_chain(), ["spf.provider.test"]);

    let hops = dns
        .lookup("hop.customer.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(hops.txt_strings(), ["v=spf1 ip4:192.0.2.9 -all"]);
    assert_eq!(
        hops.cname_chain(),
        [
            "hop.provider.test",
            "hop2.customer.test",
            "spf.provider.test"
        ]
    );

    assert_eq!(
        *dns.lookup("gone.customer.test", RecordType::Txt)
            .await
            .unwrap(),
        Answer::NxDomain
    );
}

/// A nameserver on IPv6 loopback is asked like one on IPv4 (the stub's socket follows the
/// server's address family).
#[tokio::test]
async fn an_ipv6_nameserver_is_asked() {
    let Ok(server) =
        mailauth_exporter::zone_server::ZoneServer::start("::1".parse().unwrap()).await
    else {
        panic!("cannot serve on [::1]: IPv6 loopback is needed by this test");
    };
    server
        .set_zone(
            "six.test",
            &util::zone("six.test", 60, "@ IN TXT \"v=spf1 -all\"\n"),
        )
        .unwrap();
    assert!(server.addr().is_ipv6());
    let (dns, counters) = util::client(&server);
    let txt = dns.lookup("six.test", RecordType::Txt).await.unwrap();
    assert_eq!(txt.txt_strings(), ["v=spf1 -all"]);
    assert_eq!(counters.snapshot()[0], ("ok", 1));
}
