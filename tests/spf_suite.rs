//! The OpenSPF RFC 7208 test suite (`../shared/corpus/spf-suite/`), each scenario's zone
//! data served by a real DNS server on loopback and each case run through check_host().
//!
//! Driver rules, as the suite asks of its drivers: an `SPF` entry is served as TXT unless
//! the name has TXT entries of its own (RFC 7208 dropped the SPF RR type); `TIMEOUT` makes
//! the server silent for that name. Cases that do not apply are listed in `NOT_APPLICABLE`
//! with the reason.

mod util;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use mailauth_exporter::checks::spf::check_host;
use mailauth_exporter::resolver::{build_stack, QueryCounters, ResolverSettings};
use mailauth_exporter::zone_server::Fault;
use serde_yaml::Value;

/// (case name, reason) for cases that cannot run here.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    // The zone data names hosts with ':', '/' or spaces in their labels, which the
    // loopback server's zone-file parser refuses; the grammar side of these cases is
    // covered by the parser's unit tests.
    (
        "a-colon-domain",
        "owner name foo:bar/baz.example.com cannot be served",
    ),
    (
        "a-colon-domain-ip4mapped",
        "owner name foo:bar/baz.example.com cannot be served",
    ),
    (
        "mx-colon-domain",
        "owner name foo:bar/baz.example.com cannot be served",
    ),
    (
        "mx-colon-domain-ip4mapped",
        "owner name foo:bar/baz.example.com cannot be served",
    ),
    (
        "macro-mania-in-domain",
        "owner name with spaces and '%' cannot be served",
    ),
];

fn suite_path(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/spf-suite")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: the corpus lives in ../shared beside the repository",
        p.display()
    );
    p
}

/// Escapes one character-string for a zone file.
fn zone_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Names the zone-file parser accepts (letters, digits, '-', '_' and '*').
fn valid_owner(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_*".contains(&b))
        })
}

/// A name for the zone file: characters that are special there written as `\DDD`.
fn zone_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.trim_end_matches('.').bytes() {
        if b.is_ascii_alphanumeric() || b"-_.:/%*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
    out.push('.');
    out
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string()],
    }
}

/// Zone text for the root zone "." and the names that must time out.
fn build_zone(zonedata: &Value) -> (String, Vec<String>) {
    let mut text = String::from("$ORIGIN .\n$TTL 300\n. IN SOA ns.test. hostmaster.test. ( 1 3600 600 86400 300 )\n. IN NS ns.test.\n");
    let mut timeouts = Vec::new();
    let Some(map) = zonedata.as_mapping() else {
        return (text, timeouts);
    };
    for (name, entries) in map {
        let name = name.as_str().unwrap_or_default().to_string();
        let entries = entries.as_sequence().cloned().unwrap_or_default();
        // `TXT: NONE` marks a name with no TXT records (and no SPF-to-TXT copy).
        let has_txt = entries.iter().any(|e| e.get("TXT").is_some());
        let real_txt = entries
            .iter()
            .any(|e| e.get("TXT").is_some_and(|v| v.as_str() != Some("NONE")));
        if !valid_owner(&name) {
            continue;
        }
        let owner = zone_name(&name);
        for entry in &entries {
            if entry.as_str() == Some("TIMEOUT") {
                // With TXT records present the timeout concerns only SPF-type queries,
                // which RFC 7208 no longer makes.
                if !real_txt {
                    timeouts.push(name.clone());
                }
                continue;
            }
            let Some(m) = entry.as_mapping() else {
                continue;
            };
            for (rtype, value) in m {
                let rtype = rtype.as_str().unwrap_or_default();
                let line = match rtype {
                    "SPF" if has_txt => continue,
                    "TXT" if value.as_str() == Some("NONE") => continue,
                    "SPF" | "TXT" => {
                        let parts = strings(value);
                        if parts.is_empty() {
                            continue; // a TXT RR with no strings cannot be served
                        }
                        parts
                            .iter()
                            .map(|p| zone_string(p))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                    "A" | "AAAA" | "PTR" | "CNAME" => {
                        let v = value
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| strings(value).join(""));
                        if rtype == "A" && v.parse::<std::net::Ipv4Addr>().is_err() {
                            continue;
                        }
                        if rtype == "AAAA" && v.parse::<std::net::Ipv6Addr>().is_err() {
                            continue;
                        }
                        if (rtype == "PTR" || rtype == "CNAME") && !valid_owner(&v) {
                            continue;
                        }
                        if rtype == "A" || rtype == "AAAA" {
                            v
                        } else {
                            zone_name(&v)
                        }
                    }
                    "MX" => {
                        let seq = value.as_sequence().cloned().unwrap_or_default();
                        let pref = seq.first().and_then(Value::as_u64).unwrap_or(0);
                        let host = seq
                            .get(1)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .trim_end_matches('.')
                            .to_string();
                        if host.is_empty() {
                            format!("{pref} .")
                        } else if valid_owner(&host) {
                            format!("{pref} {}", zone_name(&host))
                        } else {
                            continue;
                        }
                    }
                    _ => continue,
                };
                let t = if rtype == "SPF" { "TXT" } else { rtype };
                text.push_str(&format!("{owner} IN {t} {line}\n"));
            }
        }
    }
    (text, timeouts)
}

fn expected(case: &Value) -> Vec<String> {
    strings(&case["result"])
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

async fn run_suite(file: &str) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(suite_path(file)).unwrap();
    let server = util::server().await;
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let scenario = Value::deserialize(doc).unwrap();
        let (zone, timeouts) = build_zone(&scenario["zonedata"]);
        server.set_zone(".", &zone).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\n{zone}",
                scenario["description"].as_str().unwrap_or("")
            )
        });
        for name in &timeouts {
            server.set_fault(name, Some(Fault::Silence)).unwrap();
        }
        let counters = std::sync::Arc::new(QueryCounters::default());
        let settings = ResolverSettings {
            nameservers: vec![server.addr()],
            timeout: Duration::from_millis(300),
            attempts: 1,
            ..ResolverSettings::default()
        };
        let dns = build_stack(&settings, Duration::from_secs(60), counters).unwrap();
        let tests: BTreeMap<String, Value> =
            serde_yaml::from_value(scenario["tests"].clone()).unwrap();
        for (name, case) in tests {
            if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
                skipped += 1;
                continue;
            }
            let ip: IpAddr = case["host"].as_str().unwrap().parse().unwrap();
            let mailfrom = case["mailfrom"].as_str().unwrap_or("").to_string();
            let helo = case["helo"].as_str().unwrap_or("").to_string();
            let domain = if mailfrom.is_empty() {
                helo.clone()
            } else {
                mailfrom
                    .rsplit_once('@')
                    .map_or(mailfrom.clone(), |(_, d)| d.to_string())
            };
            let got = check_host(&*dns, ip, &domain, &mailfrom, &helo).await;
            let want = expected(&case);
            if want.iter().any(|w| w == got.as_str()) {
                passed += 1;
            } else {
                failures.push(format!(
                    "{file} {name}: got {}, expected {want:?}",
                    got.as_str()
                ));
            }
        }
        for name in &timeouts {
            server.set_fault(name, None).unwrap();
        }
    }
    (passed, skipped, failures)
}

use serde::Deserialize;

/// Runs a suite file and requires every applicable case to pass, and at least `min` cases.
async fn assert_suite(label: &str, file: &str, min: usize) {
    let (passed, skipped, failures) = run_suite(file).await;
    println!(
        "{label} suite: {passed} passed, {skipped} not applicable, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(passed >= min, "only {passed} cases ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openspf_rfc7208_suite() {
    assert_suite("RFC 7208", "openspf-rfc7208-tests.pyspf-HEAD.yml", 190).await;
}

/// The older RFC 4408 suite, for the cases whose expectations RFC 7208 did not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openspf_rfc4408_suite() {
    assert_suite("RFC 4408", "openspf-rfc4408-tests.pyspf-HEAD.yml", 180).await;
}
