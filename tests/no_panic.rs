//! Every parser of outside text, fed arbitrary input and token soup built from its own
//! grammar's pieces: none may panic (a malformed record or header is an error value,
//! never a crash of the exporter). Bounded case counts keep this quick in CI; the
//! `PROPTEST_CASES` environment variable runs it longer.

use proptest::prelude::*;

use mailauth_exporter::checks::dkim::key;
use mailauth_exporter::checks::dmarc::parse as dmarc;
use mailauth_exporter::checks::spf::parse as spf;
use mailauth_exporter::config::{domains_file, Config};
use mailauth_exporter::mail::{auth_results, header, received, received_spf, verifier_report};
use mailauth_exporter::resolver::{wire, RecordType};

fn soup(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..40).prop_map(|v| v.concat())
}

const SPF: &[&str] = &[
    "v=spf1",
    " ",
    "  ",
    "include:",
    "a",
    "mx",
    "ptr",
    "exists:",
    "ip4:",
    "ip6:",
    "redirect=",
    "exp=",
    "all",
    "-",
    "~",
    "?",
    "+",
    "/",
    "//",
    "24",
    "128",
    "0",
    "%{",
    "}",
    "i",
    "d",
    "r",
    "2",
    ".",
    "-",
    "example.com",
    "192.0.2.1",
    "::1",
    ":",
    "=",
    "%%",
    "%_",
    "%-",
    "é",
    "\u{0}",
    "\t",
];
const DMARC: &[&str] = &[
    "v=DMARC1",
    ";",
    " ",
    "p=",
    "sp=",
    "np=",
    "pct=",
    "rua=",
    "ruf=",
    "mailto:",
    "a@example.com",
    "!",
    "10m",
    ",",
    "adkim=",
    "aspf=",
    "s",
    "r",
    "fo=",
    "1:d",
    "ri=",
    "86400",
    "reject",
    "none",
    "quarantine",
    "=",
    "%",
    "%2",
    "é",
];
const DKIM: &[&str] = &[
    "v=DKIM1",
    ";",
    " ",
    "k=",
    "rsa",
    "ed25519",
    "p=",
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ",
    "AAAA",
    "=",
    "t=",
    "y",
    "s",
    ":",
    "h=",
    "sha1",
    "sha256",
    "n=",
    "\u{1F600}",
];
const AR: &[&str] = &[
    "mx.example.com",
    "from",
    "by",
    "[",
    "]",
    "[IPv6:",
    "192.0.2.1",
    ";",
    " ",
    "\r\n ",
    "\n",
    "(",
    ")",
    "\"",
    "\\",
    "dkim",
    "spf",
    "=",
    "pass",
    "fail",
    "/",
    "1",
    "header",
    ".",
    "d",
    "example.com",
    "@",
    "reason",
    "none",
    "i=",
    "smtp.mailfrom",
    "a+b=c@x.test",
    "<",
    ">",
    "é",
];
const SPAM: &[&str] = &[
    "Yes",
    "NO",
    ",",
    " ",
    "\t",
    "score=",
    "required=",
    "-",
    "+",
    ".",
    "5",
    "3",
    "e9",
    "inf",
    "NaN",
    "add",
    "header",
    "no action",
    "reject",
    "é",
    "\r\n",
];
const REPORT: &[&str] = &[
    "Summary of Results\n",
    "SPF check:   pass\n",
    "\"iprev\" check: pass\n",
    "DKIM check: fail\n",
    "====================\n",
    "--------------------\n",
    "SPF check details:\n",
    "Result: pass\n",
    "DNS record(s):\n",
    "    rr\n",
    "\n",
    "\r\n",
    "Original Email\n",
    "X-Mailauth-Probe: abc\n",
    ":",
    " check:",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        .. ProptestConfig::default()
    })]

    #[test]
    fn spf_records(s in soup(SPF), raw in any::<String>()) {
        let _ = spf::parse(&s);
        let _ = spf::parse(&format!("v=spf1 {raw}"));
        let _ = spf::check_macro_string(&s, true);
    }

    #[test]
    fn dmarc_records(s in soup(DMARC), raw in any::<String>()) {
        let _ = dmarc::parse(&s);
        let _ = dmarc::parse(&raw);
        let _ = dmarc::is_dmarc(&raw);
        let _ = dmarc::parse_uri(&s);
    }

    #[test]
    fn dkim_records(s in soup(DKIM), raw in any::<String>()) {
        let _ = key::parse(&s);
        let _ = key::parse(&raw);
    }

    #[test]
    fn authentication_results(s in soup(AR), raw in any::<String>(), bytes in any::<Vec<u8>>()) {
        let _ = auth_results::parse_value("Authentication-Results", &s);
        let _ = auth_results::parse_value("ARC-Authentication-Results", &s);
        let _ = auth_results::parse_value("Authentication-Results", &raw);
        let _ = auth_results::parse_message(&bytes);
        let _ = received_spf::parse_value(&s);
        let _ = received_spf::parse_value(&raw);
        let _ = received::parse(&s);
        let _ = received::parse(&raw);
        let _ = mailauth_exporter::mail::trust::receiver_view(&bytes, &["mx.example.net".to_string()]);
        let _ = mailauth_exporter::mail::trust::spf_inputs(&bytes, &["mx.example.net".to_string()]);
        let _ = mailauth_exporter::mail::reply::bounce(&bytes);
        let _ = mailauth_exporter::mail::trust::spf_identity(&raw, Some(&s));
        let _ = header::fields(&bytes);
    }

    #[test]
    fn spam_fields(s in soup(SPAM), raw in any::<String>()) {
        use mailauth_exporter::mail::{header::Field, spam};
        for v in [&s, &raw] {
            let _ = spam::parse_flag(v);
            let _ = spam::parse_status(v);
            let _ = spam::parse_rspamd_action(v);
            if let Ok(score) = spam::parse_score(v) {
                prop_assert!(score.is_finite());
            }
            let verdict = spam::verdict(&[
                Field { name: "X-Spam-Status".into(), value: v.clone() },
                Field { name: "X-Rspamd-Score".into(), value: v.clone() },
            ]);
            prop_assert!(verdict.score.is_none_or(f64::is_finite));
        }
    }

    #[test]
    fn verifier_reports(s in soup(REPORT), raw in any::<String>()) {
        let _ = verifier_report::parse(&s);
        let _ = verifier_report::parse(&raw);
    }

    /// DNS responses come from the network: arbitrary bytes under our id, and a real
    /// response (the query turned around, with an answer appended) with bytes changed
    /// and cut off.
    #[test]
    fn dns_responses(
        tail in any::<Vec<u8>>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (id, query) = wire::build_query("c00017.example.test", RecordType::Txt, false).unwrap();
        let mut garbage = id.to_be_bytes().to_vec();
        garbage.extend_from_slice(&tail);
        let _ = wire::read_response(&garbage, id, "c00017.example.test", RecordType::Txt);
        let mut response = query.clone();
        response[2] |= 0x80; // QR: a response
        response[7] = 1; // ANCOUNT 1: a TXT record for the question's name, before the OPT
        let opt = response.len() - 11;
        let answer = [0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60, 0, 4, 3, b'a', b'b', b'c'];
        response.splice(opt..opt, answer);
        match wire::read_response(&response, id, "c00017.example.test", RecordType::Txt) {
            wire::Reading::Answer(r) => prop_assert_eq!(r.answer.txt_strings(), ["abc"]),
            other => prop_assert!(false, "the unchanged response: {:?}", other),
        }
        response.extend_from_slice(&tail);
        for (at, byte) in &edits {
            let i = at.index(response.len());
            response[i] = *byte;
        }
        let end = cut.index(response.len() + 1);
        let _ = wire::read_response(&response[..end], id, "c00017.example.test", RecordType::Txt);
    }

    #[test]
    fn config_and_domain_lists(raw in any::<String>()) {
        let _ = Config::parse(&raw, std::path::Path::new("fuzz.toml"));
        let _ = domains_file::parse(&raw);
    }
}
