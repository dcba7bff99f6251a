//! DMARC aggregate reports (RFC 7489 §7.2 and Appendix C; RFC 9990 with the namespace
//! `urn:ietf:params:xml:ns:dmarc-2.0`): XML bytes → `AggregateReport`.
//!
//! The XML is read as a stream of events (quick-xml), never as a tree, so a 50 MB report
//! costs its records, not a DOM. Elements are matched by local name, so both the
//! unnamespaced 7489 form and the RFC 9990 namespace (with or without a prefix) are read.
//!
//! Real reporters break the schema, and a report is still read when it can be:
//! upper-case results (lower-cased here), an empty `org_name` (the domain of `email`
//! stands in), a stray `<` or `&` in text (escaped before parsing), invalid UTF-8
//! (replaced), missing optional elements (`sp`, `pct`, `adkim`, … are `null`), results
//! outside the schema such as `hardfail` (kept as written). Only an input holding no
//! report is refused.
//!
//! Bounds: at most `MAX_RECORDS` records (then reading stops and `truncated` is set),
//! counts saturate, each text field is cut to `MAX_TEXT`.

use std::borrow::Cow;

use quick_xml::events::Event;
use serde::Serialize;

use super::{clip, keyword, non_empty, MAX_TEXT};

/// Records kept from one report; a report claiming more is cut here and flagged.
pub const MAX_RECORDS: usize = 100_000;

/// DKIM and SPF results and override reasons kept per record (real records have one to
/// three of each); more are read past, not stored.
pub const MAX_RESULTS_PER_RECORD: usize = 16;

/// Elements nested deeper than this are skipped (no DMARC element is deeper than 5).
const MAX_DEPTH: usize = 32;

/// Why bytes hold no aggregate report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    #[error("the input is empty")]
    Empty,
    #[error("not XML: {0}")]
    NotXml(String),
    #[error("the XML's root element is <{0}>, not <feedback>")]
    NotFeedback(String),
    #[error("<feedback> holds no report_metadata, policy_published or record")]
    EmptyFeedback,
}

/// RFC 7489 Appendix C:
/// ```text
/// <xs:element name="feedback"> <xs:sequence>
///   <xs:element name="version" type="xs:decimal" minOccurs="0"/>
///   <xs:element name="report_metadata" type="ReportMetadataType"/>
///   <xs:element name="policy_published" type="PolicyPublishedType"/>
///   <xs:element name="record" type="RecordType" maxOccurs="unbounded"/>
/// ```
/// with `ReportMetadataType` = `org_name email extra_contact_info? report_id
/// date_range(begin end) error*`. `org_name` falls back to the domain of `email` when
/// a reporter leaves it empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AggregateReport {
    pub org_name: String,
    pub email: Option<String>,
    pub report_id: String,
    pub begin: Option<i64>,
    pub end: Option<i64>,
    /// `policy_published/domain`: the domain the report is about.
    pub domain: String,
    pub policy: PolicyPublished,
    pub records: Vec<Record>,
    /// Messages in all records (saturating: a `count` of 2^63 twice is `u64::MAX`).
    pub messages: u64,
    /// More than `MAX_RECORDS` records, or the XML broke off: `records` is what was read.
    pub truncated: bool,
    pub version: Option<String>,
    /// `report_metadata/error` elements, as the reporter wrote them.
    pub errors: Vec<String>,
    /// Why the reading ended early, when it did (an XML error after some records).
    pub problem: Option<String>,
}

/// RFC 7489 Appendix C `PolicyPublishedType`:
/// ```text
/// domain, adkim? (r|s), aspf? (r|s), p (none|quarantine|reject), sp?, pct? (xs:integer), fo?
/// ```
/// RFC 9990 drops `pct` and adds `np`, `testing` (`y`/`n`) and `discovery_method`
/// (`psl`/`treewalk`). Every field is optional here: reporters omit what they like.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyPublished {
    pub p: Option<String>,
    pub sp: Option<String>,
    pub pct: Option<u32>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub np: Option<String>,
    pub fo: Option<String>,
    pub testing: Option<String>,
    pub discovery_method: Option<String>,
}

/// RFC 7489 Appendix C `RecordType` = `row identifiers auth_results`:
/// ```text
/// row          = source_ip count policy_evaluated(disposition dkim spf reason*)
/// identifiers  = envelope_to? envelope_from? (RFC 9990) header_from
/// auth_results = dkim* spf+
/// reason       = type (forwarded|sampled_out|trusted_forwarder|mailing_list|local_policy|other) comment?
/// ```
/// `dkim_aligned`/`spf_aligned` are `policy_evaluated`'s `dkim`/`spf`: the receiver's
/// verdict on alignment, as opposed to the raw `auth_results`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    pub source_ip: String,
    pub count: u64,
    pub disposition: Option<String>,
    pub dkim_aligned: Option<String>,
    pub spf_aligned: Option<String>,
    pub header_from: Option<String>,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub dkim: Vec<DkimResult>,
    pub spf: Vec<SpfResult>,
    pub reasons: Vec<Reason>,
    /// The `[[sender]]` the record matched, or `unknown`; absent without a config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `DKIMAuthResultType` = `domain selector? result human_result?`; result one of
/// `none pass fail policy neutral temperror permerror`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DkimResult {
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub result: Option<String>,
    pub human_result: Option<String>,
}

/// `SPFAuthResultType` = `domain scope? (helo|mfrom) result`; result one of
/// `none neutral pass fail softfail temperror permerror` (and `hardfail` in the wild).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpfResult {
    pub domain: Option<String>,
    pub scope: Option<String>,
    pub result: Option<String>,
}

/// `PolicyOverrideReason` = `type comment?`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reason {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub comment: Option<String>,
}

/// The report in `xml`, holding at most `MAX_RECORDS` records.
pub fn parse(xml: &[u8]) -> Result<AggregateReport, AggregateError> {
    parse_with_cap(xml, MAX_RECORDS)
}

/// The report in `xml`, holding at most `max_records` records.
pub fn parse_with_cap(xml: &[u8], max_records: usize) -> Result<AggregateReport, AggregateError> {
    let repaired = repair(xml);
    if repaired.iter().all(u8::is_ascii_whitespace) {
        return Err(AggregateError::Empty);
    }
    let text = decode(&repaired);
    let mut reader = quick_xml::Reader::from_str(&text);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.allow_dangling_amp = true;
    let mut state = State {
        cap: max_records,
        ..State::default()
    };
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                state.fail(e.to_string())?;
                break;
            }
        };
        match event {
            Event::Start(e) => state.open(e.local_name().into_inner())?,
            Event::Empty(e) => {
                state.open(e.local_name().into_inner())?;
                state.close(e.local_name().into_inner());
            }
            Event::End(e) => state.close(e.local_name().into_inner()),
            Event::Text(t) => state.text(&decode_entities(&t)),
            Event::CData(t) => state.text(&t),
            Event::GeneralRef(r) => state.text(&entity(&r)),
            Event::Eof => break,
            _ => {}
        }
        if state.records_seen > max_records {
            state.report.truncated = true;
            break;
        }
        if state.done {
            break;
        }
    }
    state.finish()
}

/// The reading state: the path of open elements and the record being filled.
#[derive(Default)]
struct State {
    report: AggregateReport,
    /// Local names of the open elements, root first.
    path: Vec<String>,
    /// Open elements past `MAX_DEPTH`, not kept in `path`.
    skipped_depth: usize,
    /// Text of the innermost element, at most `4 * MAX_TEXT` bytes.
    text: String,
    record: Option<Record>,
    records_seen: usize,
    /// Records kept at most.
    cap: usize,
    /// The root element was opened.
    started: bool,
    saw_content: bool,
    done: bool,
}

impl State {
    fn open(&mut self, name: &str) -> Result<(), AggregateError> {
        self.text.clear();
        if !self.started {
            if !name.eq_ignore_ascii_case("feedback") {
                return Err(AggregateError::NotFeedback(clip(name)));
            }
            self.started = true;
        }
        if self.path.len() >= MAX_DEPTH {
            self.skipped_depth += 1;
            return Ok(());
        }
        // XML names are case-sensitive, DMARC's are lower-case; a reporter's
        // `<Record>` is read all the same.
        self.path.push(name.to_ascii_lowercase());
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        match path.as_slice() {
            ["feedback", "record"] => {
                self.records_seen += 1;
                self.record = Some(Record::default());
            }
            ["feedback", "record", "row", "policy_evaluated", "reason"] => {
                if let Some(r) = self
                    .record
                    .as_mut()
                    .filter(|r| r.reasons.len() < MAX_RESULTS_PER_RECORD)
                {
                    r.reasons.push(Reason::default());
                }
            }
            ["feedback", "record", "auth_results", "dkim"] => {
                if let Some(r) = self
                    .record
                    .as_mut()
                    .filter(|r| r.dkim.len() < MAX_RESULTS_PER_RECORD)
                {
                    r.dkim.push(DkimResult::default());
                }
            }
            ["feedback", "record", "auth_results", "spf"] => {
                if let Some(r) = self
                    .record
                    .as_mut()
                    .filter(|r| r.spf.len() < MAX_RESULTS_PER_RECORD)
                {
                    r.spf.push(SpfResult::default());
                }
            }
            ["feedback", "report_metadata" | "policy_published"] => self.saw_content = true,
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str) {
        let room = (4 * MAX_TEXT).saturating_sub(self.text.len());
        if room == 0 {
            return;
        }
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&text[..end]);
    }

    /// Closes the innermost element named `name` (and any left open inside it: a
    /// reporter's unclosed tag does not shift every later path).
    fn close(&mut self, name: &str) {
        if self.skipped_depth > 0 {
            self.skipped_depth -= 1;
            self.text.clear();
            return;
        }
        let Some(at) = self.path.iter().rposition(|n| n.eq_ignore_ascii_case(name)) else {
            self.text.clear();
            return;
        };
        let text = std::mem::take(&mut self.text);
        // Only the element itself carries the text; elements left open inside it are
        // dropped without a value.
        let mut closed = self.path.drain(at..);
        let element = closed.next().unwrap_or_default();
        drop(closed);
        let mut path = std::mem::take(&mut self.path);
        path.push(element);
        let full: Vec<&str> = path.iter().map(String::as_str).collect();
        self.assign(&full, &text);
        self.done |= full.as_slice() == ["feedback"];
        path.pop();
        self.path = path;
    }

    fn assign(&mut self, path: &[&str], text: &str) {
        let report = &mut self.report;
        let policy = &mut report.policy;
        match path {
            ["feedback", "version"] => report.version = non_empty(text),
            ["feedback", "report_metadata", field] => match *field {
                "org_name" => report.org_name = clip(text),
                "email" => report.email = non_empty(text),
                "report_id" => report.report_id = clip(text),
                "error" if report.errors.len() < 100 => report.errors.push(clip(text)),
                _ => {}
            },
            ["feedback", "report_metadata", "date_range", "begin"] => report.begin = epoch(text),
            ["feedback", "report_metadata", "date_range", "end"] => report.end = epoch(text),
            ["feedback", "policy_published", field] => {
                let value = non_empty(text).map(|t| t.to_ascii_lowercase());
                match *field {
                    "domain" => report.domain = clip(text),
                    "p" => policy.p = value,
                    "sp" => policy.sp = value,
                    "np" => policy.np = value,
                    "adkim" => policy.adkim = value,
                    "aspf" => policy.aspf = value,
                    "fo" => policy.fo = value,
                    "testing" => policy.testing = value,
                    "discovery_method" => policy.discovery_method = value,
                    "pct" => policy.pct = text.trim().parse().ok(),
                    _ => {}
                }
            }
            ["feedback", "record"] => {
                if let Some(record) = self.record.take() {
                    self.saw_content = true;
                    report.messages = report.messages.saturating_add(record.count);
                    if report.records.len() < self.cap {
                        report.records.push(record);
                    }
                }
            }
            ["feedback", "record", rest @ ..] => {
                if let Some(record) = &mut self.record {
                    assign_record(record, rest, text);
                }
            }
            _ => {}
        }
    }

    /// An XML error: after some of a report, what was read stands (flagged); before
    /// any, the input is not XML.
    fn fail(&mut self, reason: String) -> Result<(), AggregateError> {
        if self.path.is_empty() && !self.saw_content && self.records_seen == 0 {
            return Err(AggregateError::NotXml(clip(&reason)));
        }
        // A record cut off by the error is kept: its fields were read.
        self.keep_open_record();
        self.report.truncated = true;
        self.report.problem = Some(clip(&reason));
        Ok(())
    }

    /// A record cut off by the end of the input or an XML error is kept: its fields
    /// were read.
    fn keep_open_record(&mut self) {
        if let Some(record) = self.record.take() {
            if self.report.records.len() < self.cap {
                self.report.messages = self.report.messages.saturating_add(record.count);
                self.report.records.push(record);
            }
        }
    }

    fn finish(mut self) -> Result<AggregateReport, AggregateError> {
        if !self.saw_content {
            return Err(if self.started {
                AggregateError::EmptyFeedback
            } else {
                AggregateError::NotXml("no element".into())
            });
        }
        if !self.done && !self.report.truncated {
            // The stream ended inside <feedback>: a report cut short, read as far as it goes.
            self.keep_open_record();
            self.report.truncated = true;
            self.report.problem = Some("the XML ends before </feedback>".into());
        }
        let report = &mut self.report;
        if report.org_name.is_empty() {
            report.org_name = report
                .email
                .as_deref()
                .and_then(email_domain)
                .unwrap_or_default();
        }
        Ok(self.report)
    }
}

fn assign_record(record: &mut Record, path: &[&str], text: &str) {
    match path {
        ["row", "source_ip"] => record.source_ip = clip(text),
        ["row", "count"] => record.count = count(text),
        ["row", "policy_evaluated", "disposition"] => record.disposition = non_empty_keyword(text),
        ["row", "policy_evaluated", "dkim"] => record.dkim_aligned = non_empty_keyword(text),
        ["row", "policy_evaluated", "spf"] => record.spf_aligned = non_empty_keyword(text),
        ["row", "policy_evaluated", "reason", field] => {
            if let Some(reason) = record.reasons.last_mut() {
                match *field {
                    "type" => reason.kind = non_empty_keyword(text),
                    "comment" => reason.comment = non_empty(text),
                    _ => {}
                }
            }
        }
        ["identifiers", "header_from"] => record.header_from = non_empty(text),
        ["identifiers", "envelope_from"] => record.envelope_from = non_empty(text),
        ["identifiers", "envelope_to"] => record.envelope_to = non_empty(text),
        ["auth_results", "dkim", field] => {
            if let Some(dkim) = record.dkim.last_mut() {
                match *field {
                    "domain" => dkim.domain = non_empty(text),
                    "selector" => dkim.selector = non_empty(text),
                    "result" => dkim.result = non_empty_keyword(text),
                    "human_result" => dkim.human_result = non_empty(text),
                    _ => {}
                }
            }
        }
        ["auth_results", "spf", field] => {
            if let Some(spf) = record.spf.last_mut() {
                match *field {
                    "domain" => spf.domain = non_empty(text),
                    "scope" => spf.scope = non_empty_keyword(text),
                    "result" => spf.result = non_empty_keyword(text),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn non_empty_keyword(text: &str) -> Option<String> {
    let k = keyword(text);
    (!k.is_empty()).then_some(k)
}

/// A `count`: digits, saturating at `u64::MAX` (a claimed 10^30 messages is "too many",
/// not a wrap-around); anything else is 0.
fn count(text: &str) -> u64 {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    t.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}

/// `begin`/`end`: epoch seconds (`xs:integer`); a reporter's `1709683200.0` is read too.
fn epoch(text: &str) -> Option<i64> {
    let t = text.trim();
    t.parse::<i64>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f as i64)
    })
}

/// The domain of `email` (`noreply@google.com`, `Google <noreply@google.com>`).
fn email_domain(email: &str) -> Option<String> {
    let address = email
        .rsplit('<')
        .next()
        .unwrap_or(email)
        .trim_end_matches('>')
        .trim();
    let domain = address.rsplit_once('@')?.1.trim();
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// A predefined or character entity (`amp`, `#60`, `#x3C`); an unknown one stays as
/// written (`&nbsp;`), since no DTD is read.
fn entity(name: &str) -> String {
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    decoded.map_or_else(|| format!("&{name};"), String::from)
}

/// Entities inside a text event (older quick-xml hands them over inside the text).
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.find(';').filter(|&end| end <= 10) {
            Some(end) => {
                out.push_str(&entity(&after[..end]));
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The text of the XML: UTF-8, with invalid sequences replaced; when the declaration
/// names Latin-1 (or its Windows superset) and the bytes are not UTF-8, each byte is
/// its code point, which is exact for ISO-8859-1 and close for Windows-1252.
fn decode(xml: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(xml) {
        return Cow::Borrowed(text);
    }
    let head = String::from_utf8_lossy(&xml[..xml.len().min(100)]).to_ascii_lowercase();
    let declared = head
        .split("?>")
        .next()
        .filter(|decl| decl.contains("<?xml"))
        .unwrap_or_default();
    if ["iso-8859-1", "latin1", "latin-1", "windows-1252"]
        .iter()
        .any(|name| declared.contains(name))
    {
        return Cow::Owned(xml.iter().map(|&b| char::from(b)).collect());
    }
    String::from_utf8_lossy(xml)
}

/// The bytes with what real reporters get wrong made well-formed enough to stream: a
/// UTF-8 byte-order mark dropped, a `<` that cannot start markup (`a < b`) written as
/// `&lt;`, an `&` that starts no entity (`AT&T`) written as `&amp;`; CDATA sections and
/// comments are left as they are. Borrowed when nothing needed repair (the usual case).
fn repair(xml: &[u8]) -> Cow<'_, [u8]> {
    let xml = xml.strip_prefix(b"\xef\xbb\xbf").unwrap_or(xml);
    let stray_lt = |i: usize| {
        xml.get(i + 1).is_none_or(|&next| {
            !(next.is_ascii_alphabetic() || matches!(next, b'_' | b'/' | b'!' | b'?' | b':'))
        })
    };
    let stray_amp = |i: usize| {
        let rest = &xml[i + 1..xml.len().min(i + 12)];
        let Some(end) = rest.iter().position(|&b| b == b';') else {
            return true;
        };
        let name = &rest[..end];
        name.is_empty()
            || !(name[0] == b'#' || name[0].is_ascii_alphabetic())
            || !name[1..].iter().all(u8::is_ascii_alphanumeric)
    };
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied) = (0, 0);
    'scan: while i < xml.len() {
        let replacement: &[u8] = match xml[i] {
            b'<' => {
                for (open, close) in [(&b"<![CDATA["[..], &b"]]>"[..]), (b"<!--", b"-->")] {
                    if xml[i..].starts_with(open) {
                        let body = i + open.len();
                        i = xml[body..]
                            .windows(close.len())
                            .position(|w| w == close)
                            .map_or(xml.len(), |at| body + at + close.len());
                        continue 'scan;
                    }
                }
                if !stray_lt(i) {
                    i += 1;
                    continue;
                }
                b"&lt;"
            }
            b'&' if stray_amp(i) => b"&amp;",
            _ => {
                i += 1;
                continue;
            }
        };
        let o = out.get_or_insert_with(|| Vec::with_capacity(xml.len() + 64));
        o.extend_from_slice(&xml[copied..i]);
        o.extend_from_slice(replacement);
        i += 1;
        copied = i;
    }
    match out {
        None => Cow::Borrowed(xml),
        Some(mut o) => {
            o.extend_from_slice(&xml[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(records: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Example</org_name>\
             <email>dmarc@example.net</email><report_id>r1</report_id><date_range>\
             <begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>\
             <policy_published><domain>example.com</domain><p>reject</p></policy_published>\
             {records}</feedback>"
        )
    }

    fn record(ip: &str, count: &str, dkim: &str) -> String {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{dkim}</dkim><spf>fail</spf></policy_evaluated>\
             </row><identifiers><header_from>example.com</header_from></identifiers>\
             <auth_results><spf><domain>example.com</domain><result>pass</result></spf>\
             </auth_results></record>"
        )
    }

    #[test]
    fn reads_the_rfc_7489_shape() {
        let r = parse(wrap(&record("192.0.2.1", "12", "pass")).as_bytes()).unwrap();
        assert_eq!(r.org_name, "Example");
        assert_eq!(r.report_id, "r1");
        assert_eq!((r.begin, r.end), (Some(1_700_000_000), Some(1_700_086_399)));
        assert_eq!(r.domain, "example.com");
        assert_eq!(r.policy.p.as_deref(), Some("reject"));
        assert_eq!(r.policy.sp, None);
        assert_eq!(r.policy.pct, None);
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.messages, 12);
        let rec = &r.records[0];
        assert_eq!(rec.source_ip, "192.0.2.1");
        assert_eq!(rec.dkim_aligned.as_deref(), Some("pass"));
        assert_eq!(rec.spf_aligned.as_deref(), Some("fail"));
        assert_eq!(rec.spf[0].result.as_deref(), Some("pass"));
        assert!(!r.truncated);
    }

    #[test]
    fn reads_the_rfc_9990_namespace_with_a_prefix() {
        let xml = "<d:feedback xmlns:d=\"urn:ietf:params:xml:ns:dmarc-2.0\"><d:report_metadata>\
            <d:org_name>x.example</d:org_name><d:report_id>7</d:report_id></d:report_metadata>\
            <d:policy_published><d:domain>example.com</d:domain><d:p>none</d:p><d:np>reject</d:np>\
            <d:testing>n</d:testing><d:discovery_method>treewalk</d:discovery_method></d:policy_published>\
            <d:record><d:row><d:source_ip>2001:db8::1</d:source_ip><d:count>3</d:count></d:row></d:record>\
            </d:feedback>";
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.policy.np.as_deref(), Some("reject"));
        assert_eq!(r.policy.discovery_method.as_deref(), Some("treewalk"));
        assert_eq!(r.records[0].source_ip, "2001:db8::1");
        assert_eq!(r.messages, 3);
    }

    #[test]
    fn results_are_lower_cased() {
        let r = parse(wrap(&record("192.0.2.1", "1", " PASS ")).as_bytes()).unwrap();
        assert_eq!(r.records[0].dkim_aligned.as_deref(), Some("pass"));
        let xml = wrap("<record><row><source_ip>a</source_ip><count>1</count><policy_evaluated>\
            <disposition>Quarantine</disposition></policy_evaluated></row><auth_results><spf>\
            <domain>x</domain><scope>MFROM</scope><result>HardFail</result></spf></auth_results></record>");
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.records[0].disposition.as_deref(), Some("quarantine"));
        assert_eq!(r.records[0].spf[0].scope.as_deref(), Some("mfrom"));
        assert_eq!(r.records[0].spf[0].result.as_deref(), Some("hardfail"));
    }

    #[test]
    fn empty_org_name_falls_back_to_the_email_domain() {
        let xml = wrap("").replace("<org_name>Example</org_name>", "<org_name></org_name>");
        assert_eq!(parse(xml.as_bytes()).unwrap().org_name, "example.net");
        let xml = wrap("")
            .replace("<org_name>Example</org_name>", "<org_name/>")
            .replace("dmarc@example.net", "DMARC &lt;dmarc@Mail.Example.net&gt;");
        assert_eq!(parse(xml.as_bytes()).unwrap().org_name, "mail.example.net");
    }

    #[test]
    fn a_stray_less_than_and_ampersand_in_text_are_read() {
        let xml = wrap(
            "<record><row><source_ip>192.0.2.1</source_ip><count>2</count><policy_evaluated>\
             <reason><type>other</type><comment>score < 5 & AT&T</comment></reason>\
             </policy_evaluated></row></record>",
        );
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(
            r.records[0].reasons[0].comment.as_deref(),
            Some("score < 5 & AT&T")
        );
        assert_eq!(r.messages, 2);
        assert!(!r.truncated);
    }

    #[test]
    fn element_names_in_another_case_are_read() {
        let xml = wrap(&record("192.0.2.1", "4", "pass"))
            .replace("<record>", "<Record>")
            .replace("</record>", "</RECORD>")
            .replace("source_ip>", "Source_IP>");
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.records[0].source_ip, "192.0.2.1");
        assert_eq!(r.messages, 4);
    }

    #[test]
    fn entities_are_decoded() {
        let xml = wrap("").replace("Example", "A &amp; B &#60;&#x3e; &nbsp;");
        assert_eq!(parse(xml.as_bytes()).unwrap().org_name, "A & B <> &nbsp;");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut xml = wrap(&record("192.0.2.1", "1", "pass")).into_bytes();
        let at = xml.windows(7).position(|w| w == b"Example").unwrap();
        xml[at + 1] = 0xff;
        xml[at + 2] = 0xfe;
        let r = parse(&xml).unwrap();
        assert_eq!(r.org_name, "E\u{fffd}\u{fffd}mple");
        assert_eq!(r.records.len(), 1);
    }

    #[test]
    fn a_declared_latin1_report_is_read_as_latin1() {
        let xml = wrap("").replace(
            "<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        );
        let bytes = xml.replace("Example", "M\u{fc}nchen").into_bytes();
        // The same text in Latin-1: ü is the one byte 0xfc.
        let latin1: Vec<u8> = String::from_utf8(bytes)
            .unwrap()
            .chars()
            .map(|c| c as u8)
            .collect();
        assert_eq!(parse(&latin1).unwrap().org_name, "M\u{fc}nchen");
    }

    #[test]
    fn a_bom_and_cdata_are_read() {
        let xml = format!(
            "\u{feff}{}",
            wrap("").replace(
                "<report_id>r1</report_id>",
                "<report_id><![CDATA[r<1>]]></report_id>"
            )
        );
        assert_eq!(parse(xml.as_bytes()).unwrap().report_id, "r<1>");
    }

    #[test]
    fn counts_saturate() {
        let two_pow_63 = "9223372036854775808";
        let xml = wrap(&format!(
            "{}{}{}",
            record("192.0.2.1", two_pow_63, "pass"),
            record("192.0.2.2", two_pow_63, "pass"),
            record("192.0.2.3", "99999999999999999999999999", "pass")
        ));
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.records[0].count, 1 << 63);
        assert_eq!(r.records[2].count, u64::MAX);
        assert_eq!(r.messages, u64::MAX);
        assert_eq!(count("-5"), 0);
        assert_eq!(count("12 "), 12);
        assert_eq!(count("x"), 0);
    }

    #[test]
    fn records_past_the_cap_stop_the_reading() {
        let records: String = (0..10)
            .map(|i| record(&format!("192.0.2.{i}"), "1", "pass"))
            .collect();
        let r = parse_with_cap(wrap(&records).as_bytes(), 4).unwrap();
        assert_eq!(r.records.len(), 4);
        assert_eq!(r.messages, 4);
        assert!(r.truncated);
        let r = parse_with_cap(wrap(&records).as_bytes(), 10).unwrap();
        assert_eq!((r.records.len(), r.messages, r.truncated), (10, 10, false));
    }

    #[test]
    fn a_report_of_more_than_100000_records_is_cut_at_the_cap() {
        let one = record("192.0.2.1", "2", "pass");
        let mut records = String::with_capacity(one.len() * (MAX_RECORDS + 5));
        for _ in 0..MAX_RECORDS + 5 {
            records.push_str(&one);
        }
        let r = parse(wrap(&records).as_bytes()).unwrap();
        assert_eq!(r.records.len(), MAX_RECORDS);
        assert_eq!(r.messages, 2 * MAX_RECORDS as u64);
        assert!(r.truncated);
    }

    #[test]
    fn results_per_record_are_capped() {
        let many = "<dkim><domain>a.example</domain><result>pass</result></dkim>".repeat(10_000);
        let xml = wrap(&format!(
            "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>\
             <auth_results>{many}</auth_results></record>"
        ));
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.records[0].dkim.len(), MAX_RESULTS_PER_RECORD);
        assert_eq!(r.messages, 1);
    }

    #[test]
    fn long_text_is_cut() {
        let long = "a".repeat(100_000);
        let xml = wrap("").replace(
            "<report_id>r1</report_id>",
            &format!("<report_id>{long}</report_id>"),
        );
        assert_eq!(parse(xml.as_bytes()).unwrap().report_id.len(), MAX_TEXT);
    }

    #[test]
    fn a_report_cut_short_keeps_what_was_read() {
        let xml = wrap(&record("192.0.2.1", "5", "pass"));
        let cut = &xml[..xml.find("</feedback>").unwrap() - 30];
        let r = parse(cut.as_bytes()).unwrap();
        assert!(r.truncated);
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].count, 5);
        assert!(r.problem.is_some());
    }

    #[test]
    fn unclosed_inner_tags_do_not_shift_later_records() {
        let xml = wrap(
            "<record><row><source_ip>192.0.2.1</source_ip><count>1</count><junk></row></record>\
             <record><row><source_ip>192.0.2.2</source_ip><count>2</count></row></record>",
        );
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[1].source_ip, "192.0.2.2");
        assert_eq!(r.messages, 3);
    }

    #[test]
    fn what_holds_no_report_is_refused() {
        assert_eq!(parse(b""), Err(AggregateError::Empty));
        assert_eq!(parse(b"  \n"), Err(AggregateError::Empty));
        assert!(matches!(
            parse(b"<html><body>hi</body></html>"),
            Err(AggregateError::NotFeedback(n)) if n == "html"
        ));
        assert_eq!(
            parse(b"<feedback></feedback>"),
            Err(AggregateError::EmptyFeedback)
        );
        assert_eq!(parse(b"<feedback/>"), Err(AggregateError::EmptyFeedback));
        assert!(parse(b"just text").is_err());
        assert!(parse(b"{\"a\":1}").is_err());
    }

    #[test]
    fn dates_as_decimals_and_garbage() {
        assert_eq!(epoch(" 1709683200 "), Some(1_709_683_200));
        assert_eq!(epoch("1709683200.0"), Some(1_709_683_200));
        assert_eq!(epoch("soon"), None);
        assert_eq!(epoch("1e300"), None);
    }
}
