use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn example_config_parses_with_every_documented_key() {
    let text = include_str!("../../config.example.toml");
    let config = parse(text).expect("config.example.toml must be valid");
    assert!(!config.domains.is_empty());
    assert!(!config.probes.is_empty());
    assert!(config.smtp.values().all(|s| s.secret().is_set()));
}

#[test]
fn defaults_apply_to_an_empty_file() {
    let config = parse("").unwrap();
    assert_eq!(config.exporter.dns_interval, Duration::from_secs(300));
    assert_eq!(config.exporter.listen_address, DEFAULT_LISTEN_ADDRESS);
    assert_eq!(config.dns.attempts, 2);
    assert!(config.dns.nameservers.is_empty());
}

#[test]
fn nameservers_take_ip_or_ip_port() {
    let config =
        parse("[dns]\nnameservers = [\"127.0.0.1\", \"127.0.0.2:5353\", \"[::1]:53\"]\n").unwrap();
    let expected: Vec<SocketAddr> = vec![
        "127.0.0.1:53".parse().unwrap(),
        "127.0.0.2:5353".parse().unwrap(),
        "[::1]:53".parse().unwrap(),
    ];
    assert_eq!(config.dns.nameservers, expected);
}

#[test]
fn domain_fields() {
    let config = parse(
        "[[domain]]\nname = \"example.com\"\ndkim_selectors = [\"s1\"]\nsending_ips = [\"192.0.2.10\", \"2001:db8::10\"]\nhelo = \"mail.example.com\"\nexpect_dmarc_policy = \"reject\"\nparked = false\n",
    )
    .unwrap();
    let d = &config.domains[0];
    assert_eq!(d.name(), "example.com");
    assert_eq!(d.sending_ips.len(), 2);
    assert_eq!(d.expect_dmarc_policy, Some(Policy::Reject));
}

/// Each file in tests/configs/bad is refused, and the error names file, line and key.
#[test]
fn bad_configs_are_refused_with_location_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "unknown-key.toml",
            2,
            "exporter.dns_intervall",
            "unknown field",
        ),
        (
            "bad-duration.toml",
            2,
            "exporter.dns_interval",
            "invalid duration",
        ),
        ("bad-ip.toml", 3, "domain.sending_ips", "invalid IP address"),
        (
            "duplicate-domain.toml",
            5,
            "domain.name",
            "duplicate domain \"example.com\"",
        ),
        ("wrong-type.toml", 2, "dns.attempts", "invalid type"),
        (
            "bad-nameserver.toml",
            2,
            "dns.nameservers",
            "invalid nameserver",
        ),
        (
            "password-inline.toml",
            3,
            "smtp.out.password",
            "password_file or password_env",
        ),
        (
            "probe-unknown-smtp.toml",
            11,
            "probe.smtp",
            "no [smtp.outbound] section",
        ),
        (
            "bad-dmarc-policy.toml",
            3,
            "domain.expect_dmarc_policy",
            "unknown variant",
        ),
        (
            "bad-domain-name.toml",
            2,
            "domain.name",
            "invalid domain name",
        ),
        (
            "zero-interval.toml",
            2,
            "exporter.dns_interval",
            "greater than zero",
        ),
        ("broken-toml.toml", 1, "", ""),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(files.len(), cases.len(), "every bad config has a case");
    for (file, line, key, text) in cases {
        let path = dir.join(file);
        let err = Config::load(&path).expect_err(file);
        let shown = err.to_string();
        assert_eq!(err.line, Some(*line), "{file}: {shown}");
        assert!(
            shown.starts_with(&path.display().to_string()),
            "{file}: {shown}"
        );
        if !key.is_empty() {
            assert_eq!(err.key.as_deref(), Some(*key), "{file}: {shown}");
        }
        assert!(shown.contains(text), "{file}: {shown}");
        assert!(!shown.contains("hunter2"), "secret leaked: {shown}");
    }
}

const PROBE_BASE: &str = "[[domain]]\nname = \"example.com\"\n[smtp.s]\nhost = \"127.0.0.1\"\n\
[mailbox.m]\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword_env = \"P\"\n\
[[probe]]\ndomain = \"example.com\"\nfrom = \"probe@example.com\"\nsmtp = \"s\"\n";

#[test]
fn state_dir_is_optional() {
    assert_eq!(parse("").unwrap().exporter.state_dir, None);
    let config = parse("[exporter]\nstate_dir = \"/var/lib/mailauth-exporter\"\n").unwrap();
    assert_eq!(
        config.exporter.state_dir.as_deref(),
        Some(Path::new("/var/lib/mailauth-exporter"))
    );
}

#[test]
fn reply_from_only_on_verifier_targets_and_only_an_address() {
    let target = |kind: &str, reply: &str| {
        format!("{PROBE_BASE}[[probe.target]]\nkind = \"{kind}\"\nto = \"check-auth@verifier.test\"\nmailbox = \"m\"\nreply_from = \"{reply}\"\n")
    };
    let config = parse(&target("verifier", "auth-results@verifier.test")).unwrap();
    let t = &config.probes[0].targets[0];
    assert!(t.is_reply_from("Auth-Results@Verifier.Test"));
    assert!(!t.is_reply_from("other@verifier.test"));
    let err = parse(&target("mailbox", "auth-results@verifier.test")).unwrap_err();
    assert!(err.to_string().contains("reply_from is for kind"), "{err}");
    let err = parse(&target("verifier", "not-an-address")).unwrap_err();
    assert!(err.to_string().contains("not an email address"), "{err}");
}

#[test]
fn without_reply_from_the_domain_of_to_decides() {
    let config = parse(&format!("{PROBE_BASE}[[probe.target]]\nkind = \"verifier\"\nto = \"check-auth@verifier.test\"\nmailbox = \"m\"\n")).unwrap();
    let t = &config.probes[0].targets[0];
    assert!(t.is_reply_from("auth-results@verifier.test"));
    assert!(t.is_reply_from("<auth-results@VERIFIER.test.>"));
    assert!(!t.is_reply_from("auth-results@evil-verifier.test"));
    assert!(!t.is_reply_from("verifier.test"));
    assert!(!t.is_reply_from(""));
}

#[test]
fn describe_says_where_state_is_kept() {
    let text = describe(&parse("").unwrap());
    assert!(text.contains("state: in memory only"), "{text}");
    let text = describe(&parse("[exporter]\nstate_dir = \"/var/lib/m\"\n").unwrap());
    assert!(text.contains("state: /var/lib/m/state.sqlite3"), "{text}");
}
