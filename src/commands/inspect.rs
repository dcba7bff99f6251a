//! `inspect FILE|-`: what receivers and verifiers said about one saved message, and the
//! message's DKIM signatures verified afresh, so that a user can paste a bounced or
//! received mail and see why it failed.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{read_input, InputError, MAX_INPUT_BYTES};
use crate::cli::{Format, InspectArgs};
use crate::mail::auth_results::{self, AuthResultsField};
use crate::mail::body::body_text;
use crate::mail::dkim_verify::{self, DkimVerification};
use crate::mail::received_spf::{self, ReceivedSpf};
use crate::mail::verifier_report::{self, VerifierReport};
use crate::resolver::{build_stack, QueryCounters, ResolverSettings};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub authentication_results: Vec<AuthResultsField>,
    pub received_spf: Vec<ReceivedSpf>,
    pub verifier_report: Option<VerifierReport>,
    pub dkim_verification: Vec<DkimVerification>,
}

/// Everything but DKIM verification (no network).
pub fn inspect_offline(raw: &[u8], trusted_ids: &[String]) -> Inspection {
    let mut fields = auth_results::parse_message(raw);
    for f in &mut fields {
        f.trusted = f
            .authserv_id
            .as_ref()
            .is_some_and(|id| trusted_ids.iter().any(|t| t.eq_ignore_ascii_case(id)));
    }
    Inspection {
        authentication_results: fields,
        received_spf: received_spf::parse_message(raw),
        verifier_report: verifier_report::parse(&body_text(raw)),
        dkim_verification: Vec::new(),
    }
}

pub async fn inspect(
    raw: &[u8],
    trusted_ids: &[String],
    settings: &ResolverSettings,
) -> Inspection {
    let mut inspection = inspect_offline(raw, trusted_ids);
    let counters = Arc::new(QueryCounters::default());
    match build_stack(settings, Duration::ZERO, counters) {
        Ok(dns) => {
            inspection.dkim_verification = dkim_verify::verify(raw, dns.wire().resolver())
                .await
                .unwrap_or_default();
        }
        Err(e) => {
            inspection.dkim_verification = vec![DkimVerification {
                domain: None,
                selector: None,
                result: "temperror".into(),
                reason: Some(format!("no resolver: {e}")),
                reason_code: Some("dns_error"),
            }];
        }
    }
    inspection
}

/// Why `inspect` has no message to read (exit 2).
#[derive(Debug, thiserror::Error)]
enum MessageInputError {
    #[error("cannot read the message: {0}")]
    Unreadable(std::io::Error),
    #[error("the message is larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    #[error("the input is empty")]
    Empty,
}

fn read_message(args: &InspectArgs) -> Result<Vec<u8>, MessageInputError> {
    let raw = read_input(&args.file).map_err(|e| match e {
        // A file's error names the file; standard input's needs no name.
        InputError::Unreadable(e) if args.file.as_os_str() != "-" => MessageInputError::Unreadable(
            std::io::Error::new(e.kind(), format!("{}: {e}", args.file.display())),
        ),
        InputError::Unreadable(e) => MessageInputError::Unreadable(e),
        InputError::TooLarge => MessageInputError::TooLarge,
    })?;
    if raw.is_empty() {
        return Err(MessageInputError::Empty);
    }
    Ok(raw)
}

/// Runs on the command line's runtime (main builds one for every command).
pub async fn run(args: &InspectArgs) -> ExitCode {
    let raw = match read_message(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let settings = ResolverSettings {
        nameservers: args.nameservers.clone(),
        timeout: Duration::from_secs(3),
        attempts: 1,
        ..ResolverSettings::default()
    };
    let inspection = inspect(&raw, &args.trusted_authserv_ids, &settings).await;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&inspection).unwrap_or_default()),
        Format::Text => print!("{}", render_text(&inspection)),
    }
    ExitCode::SUCCESS
}

pub fn render_text(i: &Inspection) -> String {
    let mut out = String::new();
    if i.authentication_results.is_empty() {
        out.push_str("No Authentication-Results fields.\n");
    }
    for f in &i.authentication_results {
        let id = f.authserv_id.as_deref().unwrap_or("(no authserv-id)");
        let trust = if f.trusted { "trusted" } else { "untrusted" };
        let inst = f.instance.map(|n| format!(" i={n}")).unwrap_or_default();
        let _ = writeln!(out, "{}{inst} from {id} ({trust})", f.field);
        if f.none {
            out.push_str("  none: no checks were made\n");
        }
        for r in &f.results {
            let props: Vec<String> = r
                .properties
                .iter()
                .map(|p| format!("{}.{}={}", p.ptype, p.property, p.value))
                .collect();
            let reason = r
                .reason
                .as_ref()
                .map(|x| format!(" reason={x:?}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {:<10}{reason} {}",
                r.method,
                r.result,
                props.join(" ")
            );
        }
        if let Some(e) = &f.error {
            let _ = writeln!(out, "  ! does not follow RFC 8601: {e}");
        }
    }
    for s in &i.received_spf {
        let props: Vec<String> = s
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "Received-SPF: {} {}", s.result, props.join(" "));
    }
    if let Some(r) = &i.verifier_report {
        out.push_str("Verifier report:\n");
        for l in &r.summary {
            let _ = writeln!(out, "  {:<14} {}", l.check, l.result);
        }
    }
    for d in &i.dkim_verification {
        let _ = writeln!(
            out,
            "DKIM signature d={} s={}: {}{}",
            d.domain.as_deref().unwrap_or("?"),
            d.selector.as_deref().unwrap_or("?"),
            d.result,
            d.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    out
}
