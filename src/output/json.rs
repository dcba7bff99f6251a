//! `check --format json`: one object per domain per line, fields as DESIGN.md fixes them
//! (`spf`/`dmarc` null when there is no record), plus a `checks` array of what ran.

use serde_json::{json, Value};

use crate::checks::DomainReport;

pub fn domain_json(r: &DomainReport) -> Value {
    let spf = r.spf.record.as_ref().map(|record| {
        json!({
            "record": record,
            "all": r.spf.all,
            "dns_lookups": r.spf.dns_lookups,
            "void_lookups": r.spf.void_lookups,
            "ip_results": r.spf.ip_results,
        })
    });
    let dmarc = r.dmarc.record.as_ref().map(|record| {
        json!({
            "record": record,
            "found_at": r.dmarc.found_at,
            "p": r.dmarc.p,
            "sp": r.dmarc.sp,
            "pct": r.dmarc.pct.unwrap_or(100),
            "effective_policy": r.dmarc.effective_policy,
        })
    });
    let checks: Vec<Value> = r
        .outcomes
        .iter()
        .map(|o| {
            json!({
                "check": o.check,
                "answered": o.answered,
                "success": o.success(&r.findings),
                "duration_seconds": o.duration.as_secs_f64(),
            })
        })
        .collect();
    json!({
        "domain": r.domain,
        "findings": r.findings,
        "spf": spf,
        "dkim": r.dkim.keys,
        "dmarc": dmarc,
        "mx": r.mx.hosts,
        "null_mx": r.mx.null_mx,
        "ptr": r.ptr.ips,
        "mta_sts": r.newer.mta_sts.as_ref().map(|rec| json!({"record": rec, "id": r.newer.mta_sts_id})),
        "tls_rpt": r.newer.tls_rpt.as_ref().map(|rec| json!({"record": rec, "rua": r.newer.tls_rpt_rua})),
        "bimi": r.newer.bimi.as_ref().map(|rec| json!({"record": rec, "logo": r.newer.bimi_logo, "authority": r.newer.bimi_authority})),
        "dnsbl": r.dnsbl.results,
        "dane": r.dane.hosts,
        "checks": checks,
    })
}

pub fn domain_line(r: &DomainReport) -> String {
    domain_json(r).to_string()
}
