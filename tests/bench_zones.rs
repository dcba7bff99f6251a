//! The benchmark's zone generator (bench/gen_zones.py) makes valid zones whose problems are
//! the ones it says: a small run is served by the test DNS server and checked by the real
//! binary with `check --domains-file --stats`, the way bench/run.sh does against knot.
//! Also checks that one run asks each distinct name once, however many domains share it.

mod util;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const DOMAINS: usize = 30;

fn generate(out: &Path) {
    let status = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/gen_zones.py"))
        .args(["--domains", &DOMAINS.to_string(), "--keys", "1", "--out"])
        .arg(out)
        .status()
        .expect("python3");
    assert!(status.success(), "gen_zones.py failed");
}

/// `key=value` pairs of the `stats:` line on standard error.
fn stats(stderr: &str) -> HashMap<String, String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stats: "))
        .unwrap_or_else(|| panic!("no stats line in {stderr:?}"));
    line["stats: ".len()..]
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_zones_load_and_produce_the_announced_findings() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let server = util::server().await;
    let origins = std::fs::read_to_string(dir.path().join("zones.txt")).unwrap();
    for origin in origins.lines() {
        let text = std::fs::read_to_string(dir.path().join("zones").join(format!("{origin}.zone")))
            .unwrap();
        server
            .set_zone(origin, &text)
            .unwrap_or_else(|e| panic!("zone {origin}: {e}"));
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let opts = &manifest["options"];
    let mut args: Vec<String> = vec![
        "check".into(),
        "--domains-file".into(),
        dir.path().join("domains.txt").display().to_string(),
        "--nameserver".into(),
        server.addr().to_string(),
        "--format".into(),
        "json".into(),
        "--stats".into(),
        "--concurrency".into(),
        "8".into(),
    ];
    for s in opts["dkim_selectors"].as_array().unwrap() {
        args.extend(["--dkim-selector".into(), s.as_str().unwrap().into()]);
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mailauth-exporter"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Problem domains have error findings, and every check was answered.
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: Vec<&str> = reports
        .iter()
        .map(|r| r["domain"].as_str().unwrap())
        .collect();
    let expected_order: Vec<String> = std::fs::read_to_string(dir.path().join("domains.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed, expected_order, "reports come in the file's order");

    let domains = manifest["domains"].as_object().unwrap();
    let mut problems_seen = HashSet::new();
    for report in &reports {
        let name = report["domain"].as_str().unwrap();
        let entry = &domains[name];
        let codes: HashSet<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert!(!codes.contains("dns.error"), "{name}: {codes:?}");
        let errors: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .collect();
        match entry["problem"].as_str() {
            None => assert!(errors.is_empty(), "healthy {name} has errors: {errors:?}"),
            Some(problem) => {
                problems_seen.insert(problem.to_string());
                for code in entry["codes"].as_array().unwrap() {
                    let code = code.as_str().unwrap();
                    assert!(
                        codes.contains(code),
                        "{name} ({problem}): no {code} in {codes:?}"
                    );
                }
            }
        }
        let dkim = report["dkim"].as_array().unwrap();
        if entry["problem"].is_null() {
            assert!(
                dkim.iter().all(|k| k["key_bits"] == 2048),
                "{name}: {dkim:?}"
            );
        }
    }
    for problem in [
        "too_many_lookups",
        "spf_missing",
        "dkim_missing",
        "subdomain",
    ] {
        assert!(problems_seen.contains(problem), "no {problem} domain");
    }

    // Each (name, type) went to the wire once: the shared provider includes, the platform's
    // PTR records and MX hosts were asked once for all domains.
    let s = stats(&stderr);
    assert_eq!(s["domains"], DOMAINS.to_string());
    assert_eq!(s["dns_queries"], s["distinct_names"], "{s:?}");
    let queries: usize = s["dns_queries"].parse().unwrap();
    assert!(queries > DOMAINS * 5, "{s:?}");
    assert_eq!(s["timeout"], "0");
}
