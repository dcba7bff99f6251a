//! The reports reader's benchmark (BENCHMARKS.md, "Reports"): parse and count 10,000
//! aggregate reports of typical size, then one of about 900 KB, as the reader does
//! (`reports::read`, `reports::tally`, one state-database commit per report), and print
//! the rates and the peak memory.
//!
//! ```sh
//! cargo run --release --example report_bench            # or: -- REPORTS RECORDS_OF_THE_BIG_ONE
//! ```
//! The reports are generated (deterministically): 10 records each, from 10 IPs, one
//! reporter per 100 reports, like a day of a mid-sized domain; the big one has about 2,000
//! records. Nothing here is a test: CI builds it, people run it.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use mailauth_exporter::reports::tally::{tally, Tally};
use mailauth_exporter::reports::{read, Limits};
use mailauth_exporter::state::StateStore;

fn report(id: usize, records: usize) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>\
         <org_name>reporter{}.example</org_name><email>noreply-dmarc@reporter{}.example</email>\
         <report_id>{id:016x}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>\
         </report_metadata>\n<policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>\
         <p>reject</p><sp>reject</sp><pct>100</pct></policy_published>\n",
        id / 100,
        id / 100
    );
    for r in 0..records {
        let pass = r % 7 != 0;
        let result = if pass { "pass" } else { "fail" };
        let _ = writeln!(
            xml,
            "<record><row><source_ip>192.0.{}.{}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>{}</disposition><dkim>{result}</dkim><spf>{result}</spf></policy_evaluated></row>\
             <identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from></identifiers>\
             <auth_results><dkim><domain>example.com</domain><selector>s{}</selector><result>{result}</result></dkim>\
             <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>{result}</result></spf></auth_results></record>",
            r / 250 % 250,
            r % 250,
            1 + r % 40,
            if pass { "none" } else { "reject" },
            r % 3
        );
    }
    xml.push_str("</feedback>\n");
    xml
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Parses, tallies and commits `inputs`; (seconds parsing, seconds in all, reports counted).
fn count(inputs: &[Vec<u8>], store: &StateStore) -> (f64, f64, usize) {
    let limits = Limits::default();
    let watched = |d: &str| d == "example.com";
    let started = Instant::now();
    let mut parsing = 0.0;
    let mut counted = 0;
    for bytes in inputs {
        let t = Instant::now();
        let unpacked = read(bytes, &limits).expect("a generated report reads");
        parsing += t.elapsed().as_secs_f64();
        for report in &unpacked.reports {
            let (t, _) = tally(report, &watched, &[], 1_700_000_000);
            if let Tally::Commit(c) = t {
                store
                    .commit_report(&c, 50, SystemTime::now())
                    .expect("commit");
                counted += 1;
            }
        }
    }
    (parsing, started.elapsed().as_secs_f64(), counted)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let big_records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = StateStore::open(dir.path()).expect("state database");

    let typical: Vec<Vec<u8>> = (0..n).map(|i| report(i, 10).into_bytes()).collect();
    let typical_bytes: usize = typical.iter().map(Vec::len).sum();
    let before = peak_rss_kib();
    let (parse_s, total_s, counted) = count(&typical, &store);
    println!(
        "bench: reports typical: {n} reports ({} bytes each on average), {counted} counted in {total_s:.2} s: {:.0} reports/s counted, {:.0} reports/s parsed ({parse_s:.2} s parsing)",
        typical_bytes / n.max(1),
        counted as f64 / total_s,
        n as f64 / parse_s,
    );
    println!(
        "bench: reports typical: peak RSS {} KiB (before {before} KiB)",
        peak_rss_kib()
    );
    drop(typical);

    let big = report(n + 1, big_records).into_bytes();
    let size = big.len();
    let before = peak_rss_kib();
    let (parse_s, total_s, counted) = count(&[big], &store);
    println!(
        "bench: reports big: {size} bytes, {big_records} records, {counted} counted in {:.1} ms ({:.1} ms parsing); peak RSS {} KiB (before {before} KiB)",
        total_s * 1000.0,
        parse_s * 1000.0,
        peak_rss_kib()
    );
}
