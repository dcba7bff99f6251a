//! `inspect`: a saved message with Authentication-Results from a trusted and an untrusted
//! authserv-id, Received-SPF, a verifier report in the body, and a real DKIM signature
//! verified against a loopback DNS server.

mod util;

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mailauth_exporter::commands::inspect::inspect_offline;
use rustls::pki_types::PrivateKeyDer;

fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    util::openssl(dir, args)
}

const BODY: &str = "Hello.\r\n\r\nSummary of Results\r\n==========================\r\nSPF check:          pass\r\nDKIM check:         fail\r\nDMARC check:        fail\r\n";

/// A signed message and the zone text that publishes its key.
fn signed_message(dir: &std::path::Path) -> (Vec<u8>, String) {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
        dir,
    );
    let private = openssl(
        &["rsa", "-in", "key.pem", "-traditional", "-outform", "DER"],
        dir,
    );
    let der = openssl(
        &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER"],
        dir,
    );
    let public = base64_encode(&der);
    let message = format!(
        "From: probe@example.test\r\nTo: box@receiver.test\r\nSubject: inspect me\r\nMessage-ID: <1@example.test>\r\n\r\n{BODY}"
    );
    let signer = DkimSigner::from_key(
        RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(private.into())).unwrap(),
    )
    .domain("example.test")
    .selector("s1")
    .headers(["From", "To", "Subject", "Message-ID"]);
    let signature = signer.sign(message.as_bytes()).unwrap();
    let headers = "Authentication-Results: mx.receiver.test; dkim=pass header.d=example.test header.s=s1; spf=pass smtp.mailfrom=probe@example.test\r\n\
Authentication-Results: forged.example; dkim=pass header.d=example.test\r\n\
Received-SPF: pass (mx.receiver.test: domain of probe@example.test designates 127.0.0.1 as permitted sender) client-ip=127.0.0.1; envelope-from=\"probe@example.test\";\r\n";
    let raw = format!("{headers}{}{message}", signature.to_header());
    let zone = format!(
        "s1._domainkey IN TXT \"v=DKIM1; k=rsa; p={}\" \"{}\"\n",
        &public[..200],
        &public[200..]
    );
    (raw.into_bytes(), zone)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn run_inspect(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let args: Vec<&str> = std::iter::once("inspect")
        .chain(args.iter().copied())
        .collect();
    util::run_binary(&args, stdin.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_reports_every_source_and_verifies_dkim() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, zone) = signed_message(dir.path());
    let server = util::server().await;
    server
        .set_zone("example.test", &util::zone("example.test", 60, &zone))
        .unwrap();
    let ns = server.addr().to_string();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, &raw).unwrap();
    let file_arg = file.to_str().unwrap().to_string();

    let args = [
        "--trusted-authserv-id",
        "mx.receiver.test",
        "--nameserver",
        &ns,
        "--format",
        "json",
    ];
    let (code, out, err) = tokio::task::spawn_blocking({
        let mut a = vec![file_arg.clone()];
        a.extend(args.iter().map(|s| s.to_string()));
        move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run_inspect(&a, None)
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ar = v["authentication_results"].as_array().unwrap();
    assert_eq!(ar.len(), 2);
    assert_eq!(
        (ar[0]["authserv_id"].as_str(), ar[0]["trusted"].as_bool()),
        (Some("mx.receiver.test"), Some(true))
    );
    assert_eq!(
        ar[0]["results"][0]["properties"][0],
        serde_json::json!({"ptype": "header", "property": "d", "value": "example.test"})
    );
    assert_eq!(
        (ar[1]["authserv_id"].as_str(), ar[1]["trusted"].as_bool()),
        (Some("forged.example"), Some(false))
    );
    assert_eq!(v["received_spf"][0]["result"], "pass");
    assert_eq!(v["received_spf"][0]["properties"]["client-ip"], "127.0.0.1");
    assert_eq!(
        v["verifier_report"]["summary"][1],
        serde_json::json!({"check": "DKIM", "result": "fail"})
    );
    let dkim = &v["dkim_verification"][0];
    assert_eq!(
        (
            dkim["domain"].as_str(),
            dkim["selector"].as_str(),
            dkim["result"].as_str()
        ),
        (Some("example.test"), Some("s1"), Some("pass")),
        "{v}"
    );

    // The body altered after signing: DKIM fails, and says why.
    let tampered = String::from_utf8(raw.clone())
        .unwrap()
        .replace("Hello.", "Hello!");
    let (code, out, _) = tokio::task::spawn_blocking({
        let ns = ns.clone();
        move || {
            run_inspect(
                &["-", "--nameserver", &ns, "--format", "json"],
                Some(tampered.as_bytes()),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dkim_verification"][0]["result"], "fail", "{v}");
    assert!(
        v["dkim_verification"][0]["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("body"),
        "{v}"
    );

    // The key gone from DNS: not a pass, with a reason.
    server
        .set_zone("example.test", &util::zone("example.test", 60, ""))
        .unwrap();
    let (_, out, _) = tokio::task::spawn_blocking({
        let ns = ns.clone();
        move || run_inspect(&[&file_arg, "--nameserver", &ns, "--format", "json"], None)
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["dkim_verification"][0]["result"], "pass", "{v}");
    assert!(v["dkim_verification"][0]["reason"].is_string(), "{v}");

    // Text output for people.
    let (code, out, _) = run_inspect(
        &["-", "--trusted-authserv-id", "mx.receiver.test"],
        Some(&raw),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("Authentication-Results from mx.receiver.test (trusted)"),
        "{out}"
    );
    assert!(out.contains("from forged.example (untrusted)"), "{out}");
}

#[test]
fn unreadable_input_exits_2() {
    let (code, _, err) = run_inspect(&["/nonexistent/message.eml"], None);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("cannot read the message: /nonexistent/message.eml: "),
        "{err}"
    );
    let (code, _, err) = run_inspect(&["-"], Some(b""));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err, "the input is empty\n");
}

/// Each corpus header, inspected as a one-field message with its authserv-id trusted,
/// against the corpus's own expectations (`expected.json`, written from the RFC 8601
/// grammar, not by this parser): the methods and results in order, every one for a
/// conformant field and those before the fault for a non-conformant one, and trusted
/// exactly when an authserv-id is expected. The full comparison (properties, reasons,
/// versions) is `tests/auth_results_corpus.rs`; this is about the way through `inspect`:
/// the field found in a message, unfolded, and judged by its authserv-id.
#[test]
fn inspect_on_every_corpus_file() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/auth-results");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let entries = expected["entries"].as_array().unwrap();
    let mut n = 0;
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let raw = std::fs::read(dir.join(file)).unwrap();
        let id = e["authserv_id"]
            .as_str()
            .or_else(|| e["authserv_id_if_lenient"].as_str());
        let trusted: Vec<String> = id.map(str::to_string).into_iter().collect();
        let inspected = inspect_offline(&raw, &trusted);
        assert_eq!(inspected.authentication_results.len(), 1, "{file}");
        let got = &inspected.authentication_results[0];
        assert_eq!(got.trusted, id.is_some(), "{file}");
        // 225.txt has a bare line break inside the field: in a message that ends the
        // field, so inspect reads less of it than the corpus expects of the whole text.
        if file == "225.txt" {
            n += 1;
            continue;
        }
        let conformant = e["conformant_rfc8601"] == true;
        let want: Vec<(String, String)> = e[if conformant {
            "results"
        } else {
            "results_before_error"
        }]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        r["method"].as_str().unwrap().to_ascii_lowercase(),
                        r["result"].as_str().unwrap().to_ascii_lowercase(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
        let have: Vec<(String, String)> = got
            .results
            .iter()
            .map(|r| (r.method.to_ascii_lowercase(), r.result.to_ascii_lowercase()))
            .collect();
        if conformant {
            assert_eq!(have, want, "{file}");
        } else {
            assert!(have.starts_with(&want), "{file}: {have:?} vs {want:?}");
        }
        n += 1;
    }
    assert!(n >= 195, "{n}");
}

/// What people paste when they ask "why did my mail fail": a colleague's reply quoting
/// the verifier's report (`> `, and `>> ` for the older quote), read from standard input.
#[test]
fn quoted_verifier_report_through_stdin() {
    let message = "From: colleague@example.test\r\nTo: me@example.test\r\nSubject: Re: Authentication Report\r\nMessage-ID: <2@example.test>\r\n\r\n\
Looks like DKIM is broken, see below.\r\n\r\n\
On Mon, 1 Dec 2025, check-auth@verifier.test wrote:\r\n\
> ==========================================================\r\n\
> Summary of Results\r\n\
> ==========================================================\r\n\
> SPF check:          pass\r\n\
> \"iprev\" check:      pass\r\n\
> DKIM check:         fail\r\n\
> DMARC check:        fail\r\n\
>\r\n\
> ----------------------------------------------------------\r\n\
> DKIM check details:\r\n\
> ----------------------------------------------------------\r\n\
> Result:         fail (body hash mismatch)\r\n\
> ID(s) verified: header.d=example.test\r\n";
    let (_, out, err) = run_inspect(&["-", "--format", "json"], Some(message.as_bytes()));
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let summary = &v["verifier_report"]["summary"];
    assert_eq!(
        summary,
        &serde_json::json!([
            {"check": "SPF", "result": "pass"},
            {"check": "iprev", "result": "pass"},
            {"check": "DKIM", "result": "fail"},
            {"check": "DMARC", "result": "fail"},
        ]),
        "{out}"
    );
    assert_eq!(
        v["verifier_report"]["details"]["DKIM"][0]["result"], "fail (body hash mismatch)",
        "{out}"
    );
    // The text form shows it too.
    let (_, text, _) = run_inspect(&["-"], Some(message.as_bytes()));
    assert!(text.contains("Verifier report:"), "{text}");
}
