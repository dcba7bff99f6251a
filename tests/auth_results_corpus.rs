//! The Authentication-Results parser against 195 real header fields
//! (`../shared/corpus/auth-results/`): every conformant field exactly as expected, every
//! non-conformant one with an error and at least the results its expectation lists
//! before the fault.

use mailauth_exporter::mail::auth_results::{parse_value, AuthResultsField};
use serde_json::Value;

fn dir() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/auth-results");
    assert!(
        p.exists(),
        "{} is missing: the corpus lives in ../shared beside the repository",
        p.display()
    );
    p
}

fn field_of(raw: &str) -> AuthResultsField {
    let (name, value) = raw.split_once(':').expect("a header field");
    parse_value(name.trim(), value)
}

fn same_results(got: &AuthResultsField, expected: &[Value], file: &str) -> Result<(), String> {
    if got.results.len() < expected.len() {
        return Err(format!(
            "{file}: {} results, expected at least {}",
            got.results.len(),
            expected.len()
        ));
    }
    for (g, e) in got.results.iter().zip(expected) {
        let eq = |a: &str, b: &Value| b.as_str().is_some_and(|b| a.eq_ignore_ascii_case(b));
        if !eq(&g.method, &e["method"]) || !eq(&g.result, &e["result"]) {
            return Err(format!(
                "{file}: {}={} vs {}={}",
                g.method, g.result, e["method"], e["result"]
            ));
        }
        if g.method_version.map(u64::from) != e["method_version"].as_u64() {
            return Err(format!(
                "{file}: method_version {:?} vs {}",
                g.method_version, e["method_version"]
            ));
        }
        if g.reason.as_deref() != e["reason"].as_str() {
            return Err(format!("{file}: reason {:?} vs {}", g.reason, e["reason"]));
        }
        let props = e["properties"].as_array().unwrap();
        if g.properties.len() != props.len() {
            return Err(format!(
                "{file}: {} properties of {} vs {}",
                g.properties.len(),
                g.method,
                props.len()
            ));
        }
        for (gp, ep) in g.properties.iter().zip(props) {
            if !eq(&gp.ptype, &ep["ptype"])
                || !eq(&gp.property, &ep["property"])
                || Some(gp.value.as_str()) != ep["value"].as_str()
            {
                return Err(format!(
                    "{file}: {}.{}={:?} vs {}",
                    gp.ptype, gp.property, gp.value, ep
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_corpus_field() {
    let d = dir();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    let entries = expected["entries"].as_array().unwrap();
    let (mut conformant, mut lenient, mut failures) = (0, 0, Vec::new());
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let raw = String::from_utf8_lossy(&std::fs::read(d.join(file)).unwrap()).into_owned();
        let got = field_of(&raw);
        if e["conformant_rfc8601"] == true {
            let mut problems = Vec::new();
            if let Some(err) = &got.error {
                problems.push(format!("{file}: unexpected error {err}"));
            }
            if got.authserv_id.as_deref() != e["authserv_id"].as_str() {
                problems.push(format!(
                    "{file}: authserv-id {:?} vs {}",
                    got.authserv_id, e["authserv_id"]
                ));
            }
            if got.instance.map(u64::from) != e["arc_instance"].as_u64() {
                problems.push(format!(
                    "{file}: instance {:?} vs {}",
                    got.instance, e["arc_instance"]
                ));
            }
            if got.version.map(u64::from) != e["authres_version"].as_u64() {
                problems.push(format!(
                    "{file}: version {:?} vs {}",
                    got.version, e["authres_version"]
                ));
            }
            if got.none != (e["none"] == true) {
                problems.push(format!("{file}: none {} vs {}", got.none, e["none"]));
            }
            let results = e["results"].as_array().unwrap();
            if got.results.len() != results.len() {
                problems.push(format!(
                    "{file}: {} results vs {}",
                    got.results.len(),
                    results.len()
                ));
            }
            if let Err(p) = same_results(&got, results, file) {
                problems.push(p);
            }
            if problems.is_empty() {
                conformant += 1;
            }
            failures.extend(problems);
        } else {
            let before = e["results_before_error"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut problems = Vec::new();
            if got.error.is_none() {
                problems.push(format!(
                    "{file}: no error reported for a non-conformant field ({})",
                    e["parse_error"]
                ));
            }
            if let Some(id) = e["authserv_id_if_lenient"].as_str() {
                if got.authserv_id.as_deref() != Some(id) {
                    problems.push(format!(
                        "{file}: lenient authserv-id {:?} vs {id}",
                        got.authserv_id
                    ));
                }
            }
            if let Err(p) = same_results(&got, &before, file) {
                problems.push(p);
            }
            if problems.is_empty() {
                lenient += 1;
            }
            failures.extend(problems);
        }
    }
    println!("auth-results corpus: {conformant} conformant exact, {lenient} non-conformant read leniently, {} problems", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(conformant + lenient, entries.len());
}

#[test]
fn every_received_spf_field() {
    use mailauth_exporter::mail::received_spf::parse_value as parse_spf;
    let d = dir();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("received-spf/expected.json")).unwrap(),
    )
    .unwrap();
    let entries = expected["entries"].as_array().unwrap();
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let raw = String::from_utf8_lossy(&std::fs::read(d.join(file)).unwrap()).into_owned();
        let value = raw.split_once(':').unwrap().1;
        let got = parse_spf(value).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert!(
            got.result
                .eq_ignore_ascii_case(e["result"].as_str().unwrap()),
            "{file}"
        );
        assert_eq!(got.comment.as_deref(), e["comment"].as_str(), "{file}");
        let pairs: Vec<(String, String)> = e["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got.pairs, pairs, "{file}");
    }
    assert!(entries.len() >= 15);
}
