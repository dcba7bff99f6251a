//! The landing page's source table of a domain: who sent as it in the last days, by the
//! aggregate reports counted (`state::reports::SourceRow`, one row per day, source and IP),
//! summed per source with its busiest IPs.

use std::collections::BTreeMap;

use crate::state::reports::SourceRow;

/// IPs listed per source, by volume.
pub const TOP_IPS: usize = 20;

/// Days the table covers, today included.
pub const DAYS: i64 = 7;

/// One source's messages over the table's days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSummary {
    pub source: String,
    pub messages: u64,
    /// Messages whose DKIM / SPF result aligned and passed, as the receivers judged.
    pub dkim_pass: u64,
    pub spf_pass: u64,
    pub quarantine: u64,
    pub reject: u64,
    /// The busiest IPs (at most [`TOP_IPS`]) with their messages, most first.
    pub ips: Vec<(String, u64)>,
    /// IPs beyond the listed ones.
    pub more_ips: usize,
}

impl SourceSummary {
    /// Messages neither quarantined nor rejected.
    pub fn delivered(&self) -> u64 {
        self.messages
            .saturating_sub(self.quarantine)
            .saturating_sub(self.reject)
    }
}

/// `part` of `whole` as a percentage for people (`-` of nothing).
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

/// The rows summed per source, the source with most messages first (`unknown` sorts like
/// any other, so a flood of unknown mail is at the top).
pub fn summarize(rows: &[SourceRow]) -> Vec<SourceSummary> {
    let mut by_source: BTreeMap<&str, (SourceSummary, BTreeMap<&str, u64>)> = BTreeMap::new();
    for row in rows {
        let (sum, ips) = by_source.entry(&row.source).or_insert_with(|| {
            (
                SourceSummary {
                    source: row.source.clone(),
                    ..SourceSummary::default()
                },
                BTreeMap::new(),
            )
        });
        sum.messages = sum.messages.saturating_add(row.messages);
        sum.dkim_pass = sum.dkim_pass.saturating_add(row.dkim_pass);
        sum.spf_pass = sum.spf_pass.saturating_add(row.spf_pass);
        sum.quarantine = sum.quarantine.saturating_add(row.quarantine);
        sum.reject = sum.reject.saturating_add(row.reject);
        let n = ips.entry(&row.ip).or_default();
        *n = n.saturating_add(row.messages);
    }
    let mut out: Vec<SourceSummary> = by_source
        .into_values()
        .map(|(mut sum, ips)| {
            let mut ips: Vec<(String, u64)> =
                ips.into_iter().map(|(ip, n)| (ip.to_string(), n)).collect();
            ips.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            sum.more_ips = ips.len().saturating_sub(TOP_IPS);
            ips.truncate(TOP_IPS);
            sum.ips = ips;
            sum
        })
        .collect();
    out.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| a.source.cmp(&b.source))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: i64, source: &str, ip: &str, messages: u64, dkim: u64, reject: u64) -> SourceRow {
        SourceRow {
            domain: "example.test".into(),
            day,
            source: source.into(),
            ip: ip.into(),
            messages,
            dkim_pass: dkim,
            reject,
            ..SourceRow::default()
        }
    }

    #[test]
    fn rows_are_summed_per_source_over_days_and_ips() {
        let rows = [
            row(1, "office", "192.0.2.1", 10, 10, 0),
            row(2, "office", "192.0.2.1", 5, 5, 0),
            row(2, "office", "192.0.2.2", 1, 0, 1),
            row(2, "unknown", "203.0.113.9", 40, 0, 40),
        ];
        let table = summarize(&rows);
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].source, "unknown", "the busiest source first");
        let office = &table[1];
        assert_eq!(
            (office.messages, office.dkim_pass, office.reject),
            (16, 15, 1)
        );
        assert_eq!(
            office.ips,
            [("192.0.2.1".to_string(), 15), ("192.0.2.2".to_string(), 1)]
        );
        assert_eq!(office.delivered(), 15);
        assert_eq!(percent(office.dkim_pass, office.messages), "93.8 %");
        assert_eq!(percent(0, 0), "-");
    }

    #[test]
    fn only_the_busiest_ips_are_listed() {
        let rows: Vec<SourceRow> = (0..30)
            .map(|i| row(1, "unknown", &format!("10.0.0.{i}"), i, 0, 0))
            .collect();
        let table = summarize(&rows);
        assert_eq!(table[0].ips.len(), TOP_IPS);
        assert_eq!(table[0].more_ips, 10);
        assert_eq!(table[0].ips[0], ("10.0.0.29".to_string(), 29));
    }
}
