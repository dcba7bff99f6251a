//! Scale-out: two exporter instances share a list of domains through Prometheus's own
//! `hashmod` relabelling and the `/probe?domain=` endpoint; each domain is checked by
//! exactly one instance (a real Prometheus, Debian's package).

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mailauth_exporter::commands::demo;
use mailauth_exporter::config::Config;
use mailauth_exporter::service::app::App;
use util::prometheus::Prometheus;

const DOMAINS: &[&str] = &[
    "healthy.demo.test",
    "lookups.demo.test",
    "weak.demo.test",
    "open.demo.test",
    "parked.demo.test",
    "sloppy-parked.demo.test",
];

async fn instance(ns: std::net::SocketAddr) -> (String, std::sync::Arc<App>) {
    // No [[domain]]: the instances learn their domains from the /probe requests only,
    // which needs probe_any_domain.
    let text = format!(
        "[exporter]\ndns_interval = \"1h\"\nprobe_any_domain = true\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n"
    );
    let app = App::start(
        Config::parse(&text, std::path::Path::new("s.toml")).unwrap(),
        None,
        false,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    (addr, app)
}

fn shard_job(shard: usize, exporter: &str) -> String {
    let targets: Vec<String> = DOMAINS.iter().map(|d| format!("'{d}'")).collect();
    format!(
        "  - job_name: mailauth-shard-{shard}\n    metrics_path: /probe\n    static_configs:\n      - targets: [{}]\n    relabel_configs:\n\
         \x20     - source_labels: [__address__]\n        target_label: __param_domain\n\
         \x20     - source_labels: [__address__]\n        target_label: domain\n\
         \x20     - source_labels: [__address__]\n        modulus: 2\n        target_label: __tmp_hash\n        action: hashmod\n\
         \x20     - source_labels: [__tmp_hash]\n        regex: '{shard}'\n        action: keep\n\
         \x20     - target_label: __address__\n        replacement: '{exporter}'\n",
        targets.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_domain_is_checked_by_exactly_one_instance() {
    let zones = demo::start_zone_server().await.unwrap();
    let (a, app_a) = instance(zones.addr()).await;
    let (b, app_b) = instance(zones.addr()).await;
    let scrape = format!("{}{}", shard_job(0, &a), shard_job(1, &b));
    let prom = Prometheus::start_with(&scrape, "groups: []\n").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let owners: BTreeMap<String, BTreeSet<String>> = loop {
        let v = prom
            .query("count by (domain, instance) (mailauth_dns_check_success)")
            .await;
        let mut owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in v["data"]["result"].as_array().unwrap() {
            let d = r["metric"]["domain"].as_str().unwrap().to_string();
            owners
                .entry(d)
                .or_default()
                .insert(r["metric"]["instance"].as_str().unwrap().to_string());
        }
        if owners.len() == DOMAINS.len() {
            break owners;
        }
        assert!(
            Instant::now() < deadline,
            "not every domain was probed: {owners:?}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut per_instance: BTreeMap<String, usize> = BTreeMap::new();
    for (domain, instances) in &owners {
        assert_eq!(instances.len(), 1, "{domain} is checked by {instances:?}");
        *per_instance
            .entry(instances.iter().next().unwrap().clone())
            .or_default() += 1;
    }
    // All of them, each once (above), and by both: a shard that owns nothing is a scale-out
    // that does not scale.
    assert_eq!(
        owners.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        DOMAINS.iter().copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(per_instance.values().sum::<usize>(), DOMAINS.len());
    assert_eq!(
        per_instance
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([a.as_str(), b.as_str()]),
        "each instance owns at least one domain: {owners:?}"
    );
    // Each instance kept only what it was asked for: nothing in its own /metrics store.
    for app in [&app_a, &app_b] {
        assert!(app.metrics.domain_entries().is_empty());
        app.stop();
    }
    // The scraped findings are the real ones: the 12-lookup SPF tree, from its one owner.
    let v = prom
        .query("mailauth_spf_dns_lookups{domain=\"lookups.demo.test\"}")
        .await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "one owner: {result:?}");
    assert_eq!(result[0]["value"][1], "12");
}
