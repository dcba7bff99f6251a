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
    assert!(config
        .smtp
        .values()
        .all(|s| s.secret().is_set() || s.oauth2.is_some()));
    assert!(config.smtp.values().any(|s| s.auth == AuthMethod::Xoauth2));
    assert!(config.mailbox.values().any(|m| m
        .oauth2
        .as_ref()
        .is_some_and(|o| o.grant == Grant::RefreshToken)));
}

#[test]
fn defaults_apply_to_an_empty_file() {
    let config = parse("").unwrap();
    assert_eq!(config.exporter.dns_interval, Duration::from_secs(300));
    assert_eq!(config.exporter.listen_address, DEFAULT_LISTEN_ADDRESS);
    assert_eq!(config.dns.attempts, 2);
    assert!(config.dns.nameservers.is_empty());
    assert_eq!(config.dns.max_in_flight, 256);
}

#[test]
fn queries_in_flight_are_bounded_by_at_least_one() {
    assert_eq!(
        parse("[dns]\nmax_in_flight = 8\n")
            .unwrap()
            .dns
            .max_in_flight,
        8
    );
    let err = parse("[dns]\nmax_in_flight = 0\n").unwrap_err().to_string();
    assert!(err.contains("[dns] max_in_flight"), "{err}");
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

/// Each file in tests/configs/bad is refused, and the error names file, line and key, or,
/// for the rules about a whole table (`[exporter]`, `[dns]`, `[smtp.NAME]`,
/// `[mailbox.NAME]`), the file and the table in the message. One file per rule of
/// `Config::validate` and per kind of parse error.
#[test]
fn bad_configs_are_refused_with_location_and_key() {
    // (file, Some((line, key)) or None for an error without a location, text). An empty
    // key is not checked (broken TOML: the key is the parser's guess).
    type At = Option<(usize, &'static str)>;
    let cases: &[(&str, At, &str)] = &[
        (
            "unknown-key.toml",
            Some((2, "exporter.dns_intervall")),
            "unknown field",
        ),
        (
            "bad-duration.toml",
            Some((2, "exporter.dns_interval")),
            "invalid duration",
        ),
        (
            "bad-ip.toml",
            Some((3, "domain.sending_ips")),
            "invalid IP address",
        ),
        (
            "duplicate-domain.toml",
            Some((5, "domain.name")),
            "duplicate domain \"example.com\"",
        ),
        ("wrong-type.toml", Some((2, "dns.attempts")), "invalid type"),
        (
            "bad-nameserver.toml",
            Some((2, "dns.nameservers")),
            "invalid nameserver",
        ),
        (
            "password-inline.toml",
            Some((3, "smtp.out.password")),
            "password_file or password_env",
        ),
        (
            "probe-unknown-smtp.toml",
            Some((11, "probe.smtp")),
            "no [smtp.outbound] section",
        ),
        (
            "bad-dmarc-policy.toml",
            Some((3, "domain.expect_dmarc_policy")),
            "unknown variant",
        ),
        (
            "bad-domain-name.toml",
            Some((2, "domain.name")),
            "invalid domain name",
        ),
        (
            "zero-interval.toml",
            Some((2, "exporter.dns_interval")),
            "greater than zero",
        ),
        ("broken-toml.toml", Some((1, "")), ""),
        (
            "zero-concurrency.toml",
            None,
            "[exporter] concurrency must be at least 1",
        ),
        (
            "bad-dkim-selector.toml",
            Some((2, "domain.name")),
            "domain \"example.com\": invalid DKIM selector \"bad selector\"",
        ),
        (
            "smtp-password-file-and-env.toml",
            None,
            "[smtp.out]: give password_file or password_env, not both",
        ),
        (
            "mailbox-password-missing.toml",
            None,
            "[mailbox.inbox]: give exactly one of password_file or password_env",
        ),
        (
            "bad-blocklist.toml",
            None,
            "[dns] blocklists: \"bl example\" is not a DNS zone name",
        ),
        (
            "probe-unknown-domain.toml",
            Some((9, "probe.domain")),
            "probe domain \"example.net\" has no [[domain]] entry",
        ),
        (
            "probe-unknown-mailbox.toml",
            Some((16, "probe.target.mailbox")),
            "no [mailbox.inbox] section",
        ),
        (
            "plaintext-password.toml",
            Some((4, "smtp.out.tls")),
            "allow_plaintext_auth",
        ),
        (
            "junk-folder-is-the-inbox.toml",
            None,
            "[mailbox.inbox] junk_folders: \"INBOX\" is the mailbox's own folder",
        ),
        (
            "junk-is-failure-on-verifier.toml",
            Some((21, "probe.target.mailbox")),
            "junk_is_failure is for kind = \"mailbox\" targets only",
        ),
        (
            "oauth2-table-missing.toml",
            None,
            "[mailbox.inbox]: auth = \"xoauth2\" needs an [mailbox.inbox.oauth2] table",
        ),
        (
            "oauth2-table-with-password-auth.toml",
            None,
            "[smtp.out]: an [smtp.out.oauth2] table needs auth = \"xoauth2\" or \"oauthbearer\"",
        ),
        (
            "oauth2-token-url-not-https.toml",
            None,
            "[mailbox.inbox.oauth2]: token_url \"http://login.example.com/token\" must be an https:// URL",
        ),
        (
            "oauth2-client-secret-file-and-env.toml",
            None,
            "[smtp.out.oauth2]: give client_secret_file or client_secret_env, not both",
        ),
        (
            "oauth2-with-password.toml",
            None,
            "[mailbox.inbox]: auth = \"xoauth2\" takes no password_file / password_env",
        ),
        (
            "oauth2-client-secret-inline.toml",
            Some((8, "smtp.out.oauth2.client_secret")),
            "use client_secret_file or client_secret_env",
        ),
        (
            "oauth2-refresh-token-missing.toml",
            None,
            "grant = \"refresh_token\" needs exactly one of refresh_token_file or refresh_token_env",
        ),
        (
            "oauth2-refresh-token-with-client-credentials.toml",
            None,
            "refresh_token_file / refresh_token_env are for grant = \"refresh_token\" only",
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(files.len(), cases.len(), "every bad config has a case");
    for (file, at, text) in cases {
        let path = dir.join(file);
        let err = Config::load(&path).expect_err(file);
        let shown = err.to_string();
        assert_eq!(err.line, at.map(|(line, _)| line), "{file}: {shown}");
        assert!(
            shown.starts_with(&path.display().to_string()),
            "{file}: {shown}"
        );
        match at {
            Some((_, "")) => {}
            Some((_, key)) => assert_eq!(err.key.as_deref(), Some(*key), "{file}: {shown}"),
            None => assert_eq!(err.key, None, "{file}: {shown}"),
        }
        assert!(shown.contains(text), "{file}: {shown}");
        assert!(!shown.contains("hunter2"), "secret leaked: {shown}");
    }
}

/// `tls = "none"` with credentials is refused unless the entry allows it, for SMTP and
/// IMAP alike; without credentials SMTP on plain text is fine (nothing secret is sent).
#[test]
fn plaintext_auth_needs_an_explicit_allowance() {
    let smtp = "[smtp.out]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"P\"\n";
    let err = parse(smtp).unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(err.key.as_deref(), Some("smtp.out.tls"), "{err}");
    assert!(parse(&format!("{smtp}allow_plaintext_auth = true\n")).is_ok());
    assert!(parse("[smtp.out]\nhost = \"127.0.0.1\"\ntls = \"none\"\n").is_ok());
    let imap = "[mailbox.m]\nhost = \"127.0.0.1\"\nport = 143\ntls = \"none\"\nusername = \"u\"\npassword_env = \"P\"\n";
    let err = parse(imap).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("mailbox.m.tls"), "{err}");
    assert!(err.to_string().contains("clear text"), "{err}");
    assert!(parse(&format!("{imap}allow_plaintext_auth = true\n")).is_ok());
}

#[test]
fn exporter_safety_defaults() {
    let config = parse("").unwrap();
    assert!(!config.exporter.probe_any_domain);
    assert_eq!(config.exporter.probe_timeout, Duration::from_secs(30));
    assert_eq!(config.exporter.max_connections, 512);
    assert!(parse("[exporter]\nmax_connections = 0\n").is_err());
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

const STATE: &str = "[exporter]\nstate_dir = \"/var/lib/m\"\n";
const INBOX: &str =
    "[mailbox.rua]\nhost = \"imap.example.com\"\nusername = \"dmarc\"\npassword_env = \"P\"\n";

#[test]
fn report_sources_and_senders_parse_with_defaults() {
    let text = format!(
        "{STATE}{INBOX}[[reports]]\nname = \"rua\"\nmailbox = \"rua\"\n\n[[reports]]\nname = \"spool\"\ndirectory = \"/var/spool/dmarc\"\npoll_interval = \"1m\"\n\n\
         [[sender]]\nname = \"google-workspace\"\nip_ranges = [\"192.0.2.0/24\", \"2001:db8::/32\"]\ndkim_domains = [\"Example.com\"]\nspf = \"include:_spf.google.com\"\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.exporter.max_reporters, 50);
    assert_eq!(config.reports.len(), 2);
    assert_eq!(config.reports[0].archive_folder, "Archive");
    assert_eq!(config.reports[0].invalid_folder, "Invalid");
    assert_eq!(config.reports[0].poll_interval, Duration::from_secs(300));
    assert_eq!(config.reports[1].poll_interval, Duration::from_secs(60));
    assert_eq!(config.senders.len(), 1);
    let parts = config.senders[0].parts().unwrap();
    assert_eq!(parts.ip_ranges.len(), 2);
    assert_eq!(parts.dkim_domains, ["example.com"]);
    assert_eq!(parts.spf.as_deref(), Some("include:_spf.google.com"));
}

#[test]
fn bad_report_sources_and_senders_are_refused_with_the_reason() {
    let cases = [
        (
            format!("{INBOX}[[reports]]\nname = \"rua\"\nmailbox = \"rua\"\n"),
            "needs [exporter] state_dir",
        ),
        (
            format!("{STATE}[[reports]]\nname = \"rua\"\n"),
            "exactly one of mailbox or directory",
        ),
        (
            format!("{STATE}{INBOX}[[reports]]\nname = \"rua\"\nmailbox = \"rua\"\ndirectory = \"/x\"\n"),
            "exactly one of mailbox or directory",
        ),
        (
            format!("{STATE}[[reports]]\nname = \"rua\"\nmailbox = \"nope\"\n"),
            "no [mailbox.nope] section",
        ),
        (
            format!("{STATE}{INBOX}[[reports]]\nname = \"rua\"\nmailbox = \"rua\"\narchive_folder = \"inbox\"\n"),
            "must be a folder other than the one read",
        ),
        (
            format!("{STATE}[[reports]]\nname = \"a b\"\ndirectory = \"/x\"\n"),
            "use 1-64 letters",
        ),
        (
            format!("{STATE}[[reports]]\nname = \"a\"\ndirectory = \"/x\"\n[[reports]]\nname = \"a\"\ndirectory = \"/y\"\n"),
            "duplicate [[reports]] name",
        ),
        (
            "[exporter]\nmax_reporters = 0\n".to_string(),
            "max_reporters must be at least 1",
        ),
        (
            "[[sender]]\nname = \"unknown\"\nip_ranges = [\"192.0.2.0/24\"]\n".to_string(),
            "records no sender matches",
        ),
        (
            "[[sender]]\nname = \"x\"\n".to_string(),
            "give ip_ranges, dkim_domains or spf",
        ),
        (
            "[[sender]]\nname = \"x\"\nip_ranges = [\"192.0.2.1/24\"]\n".to_string(),
            "did you mean 192.0.2.0/24",
        ),
        (
            "[[sender]]\nname = \"x\"\nspf = \"v=spf1 include:a.example\"\n".to_string(),
            "without v=spf1",
        ),
        (
            "[[sender]]\nname = \"x\"\nspf = \"include\"\n".to_string(),
            "spf \"include\"",
        ),
        (
            "[[sender]]\nname = \"x\"\ndkim_domains = [\"not a name\"]\n".to_string(),
            "is not a domain name",
        ),
        (
            "[[sender]]\nname = \"x\"\nspf = \"a\"\n[[sender]]\nname = \"x\"\nspf = \"mx\"\n".to_string(),
            "duplicate [[sender]] name",
        ),
        (
            format!("{STATE}[[reports]]\nname = \"a\"\ndirectory = \"/x\"\nsurprise = 1\n"),
            "surprise",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(
            err.contains(expected),
            "{text}\n→ {err}\n(expected {expected:?})"
        );
    }
}

#[test]
fn junk_folders_default_to_none_and_junk_is_no_failure() {
    let config = parse(&format!(
        "{PROBE_BASE}[[probe.target]]\nkind = \"mailbox\"\nto = \"p@example.net\"\nmailbox = \"m\"\n"
    ))
    .unwrap();
    assert!(config.mailbox["m"].junk_folders.is_empty());
    assert!(!config.probes[0].targets[0].junk_is_failure);
}

#[test]
fn junk_folders_and_junk_is_failure_are_read() {
    let text = PROBE_BASE.replace(
        "password_env = \"P\"\n",
        "password_env = \"P\"\njunk_folders = [\"Junk\", \"[Gmail]/Spam\"]\n",
    );
    let config = parse(&format!(
        "{text}[[probe.target]]\nkind = \"mailbox\"\nto = \"p@example.net\"\nmailbox = \"m\"\njunk_is_failure = true\n"
    ))
    .unwrap();
    assert_eq!(config.mailbox["m"].junk_folders, ["Junk", "[Gmail]/Spam"]);
    assert!(config.probes[0].targets[0].junk_is_failure);
}

#[test]
fn bad_junk_folder_names_are_refused() {
    for (list, why) in [
        ("[\"\"]", "an empty folder name"),
        ("[\"Junk\\r\\nA1 DELETE INBOX\"]", "control character"),
        ("[\"Junk\", \"Junk\"]", "listed twice"),
        ("[\"INBOX\"]", "the mailbox's own folder"),
    ] {
        let text = format!(
            "[mailbox.m]\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword_env = \"P\"\njunk_folders = {list}\n"
        );
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains(why), "{list}: {err}");
        assert!(
            err.to_string().contains("[mailbox.m] junk_folders"),
            "{err}"
        );
    }
}

const OAUTH_MAILBOX: &str = "[mailbox.m]\nhost = \"imap.example.com\"\nusername = \"probe@example.com\"\nauth = \"oauthbearer\"\n\
[mailbox.m.oauth2]\ntoken_url = \"https://login.example.com/oauth2/v2.0/token\"\nclient_id = \"app\"\n";

/// The OAuth2 table's keys reach the config as written, with their defaults.
#[test]
fn oauth2_tables_parse_with_defaults() {
    let config = parse(&format!(
        "{OAUTH_MAILBOX}client_secret_env = \"S\"\nscope = \"https://outlook.office365.com/.default\"\n"
    ))
    .unwrap();
    let m = &config.mailbox["m"];
    assert_eq!(m.auth, AuthMethod::Oauthbearer);
    let o = m.oauth2.as_ref().unwrap();
    assert_eq!(o.grant, Grant::ClientCredentials);
    assert_eq!(o.timeout, Duration::from_secs(10));
    assert_eq!(
        o.scope.as_deref(),
        Some("https://outlook.office365.com/.default")
    );
    assert_eq!(o.client_secret().password_env.as_deref(), Some("S"));
    assert!(!o.refresh_token().is_set());
    // A refresh-token grant may be a public client (no secret at all).
    let config = parse(&format!(
        "{OAUTH_MAILBOX}grant = \"refresh_token\"\nrefresh_token_file = \"/run/r\"\nca_file = \"/etc/ca.pem\"\ntimeout = \"3s\"\n"
    ))
    .unwrap();
    let o = config.mailbox["m"].oauth2.clone().unwrap();
    assert_eq!(o.grant, Grant::RefreshToken);
    assert_eq!(
        o.refresh_token().password_file.as_deref(),
        Some(Path::new("/run/r"))
    );
    assert_eq!(o.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(o.timeout, Duration::from_secs(3));
    // SMTP takes OAUTHBEARER as IMAP does.
    let config = parse(&format!(
        "{}client_secret_env = \"S\"\n",
        OAUTH_MAILBOX.replace("[mailbox.m", "[smtp.m")
    ))
    .unwrap();
    assert_eq!(config.smtp["m"].auth, AuthMethod::Oauthbearer);
    assert!(config.smtp["m"].oauth2.is_some());
    // Password auth stays the default and needs no table.
    let config = parse(PROBE_BASE).unwrap();
    assert_eq!(config.mailbox["m"].auth, AuthMethod::Password);
    assert_eq!(config.smtp["s"].auth, AuthMethod::Password);
}

#[test]
fn oauth2_refusals() {
    let refused = |extra: &str, says: &str| {
        let err = parse(&format!("{OAUTH_MAILBOX}{extra}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!err.contains("hunter2"), "secret leaked: {err}");
    };
    refused("", "needs client_secret_file or client_secret_env");
    refused(
        "client_secret_env = \"S\"\ngrant = \"password\"\n",
        "unknown variant",
    );
    refused(
        "client_secret_env = \"S\"\nrefresh_token = \"hunter2\"\n",
        "use refresh_token_file or refresh_token_env",
    );
    refused(
        "client_secret_env = \"S\"\ntoken_url2 = \"x\"\n",
        "unknown field",
    );
    refused(
        "grant = \"refresh_token\"\nrefresh_token_env = \"R\"\nrefresh_token_file = \"/r\"\n",
        "exactly one of refresh_token_file or refresh_token_env",
    );
    let no_user = "[smtp.s]\nhost = \"smtp.example.com\"\nauth = \"xoauth2\"\n[smtp.s.oauth2]\ntoken_url = \"https://l.example.com/t\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\n";
    let err = parse(no_user).unwrap_err().to_string();
    assert!(
        err.contains("[smtp.s]: auth = \"xoauth2\" needs username"),
        "{err}"
    );
    let with_user = no_user.replace("auth =", "username = \"p@example.com\"\nauth =");
    assert!(parse(&with_user).is_ok());
    // A bearer token is a credential: plain text needs the same allowance as a password.
    let plain = with_user.replace("auth =", "tls = \"none\"\nauth =");
    assert!(parse(&plain)
        .unwrap_err()
        .to_string()
        .contains("allow_plaintext_auth"));
    let empty_id = OAUTH_MAILBOX.replace("client_id = \"app\"", "client_id = \" \"");
    let err = parse(&format!("{empty_id}client_secret_env = \"S\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("client_id must not be empty"), "{err}");
}

/// The whole text a user sees for each refused `[[sender]]` value and nameserver: the
/// typed errors print what the string errors before them printed.
#[test]
fn sender_and_nameserver_messages_are_whole_sentences() {
    for (text, expected) in [
        (
            "[[sender]]\nname = \"x\"\nspf = \"v=spf1 include:a.example\"\n",
            "[[sender]] \"x\": spf: give the terms without v=spf1 (\"include:_spf.example.net\")",
        ),
        (
            "[[sender]]\nname = \"x\"\nspf = \"include\"\n",
            "[[sender]] \"x\": spf \"include\": term \"include\": ",
        ),
        (
            "[[sender]]\nname = \"x\"\nspf = \"a\"\ndomains = [\"a.example\", \"not a name\"]\n",
            "[[sender]] \"x\": domains: \"not a name\" is not a domain name",
        ),
        (
            "[dns]\nnameservers = [\"resolver.example\"]\n",
            "invalid nameserver \"resolver.example\": expected IP or IP:PORT",
        ),
    ] {
        let err = parse(text).expect_err(text).to_string();
        assert!(
            err.contains(expected),
            "{text}\n→ {err}\n(expected {expected:?})"
        );
    }
    assert_eq!(
        super::parse_nameserver("::1:53").map_err(|e| e.to_string()),
        Ok("[::1:53]:53".parse().unwrap()),
    );
}
