//! OAuth2 against real servers: probe rounds whose submission (Postfix, SASL XOAUTH2 or
//! OAUTHBEARER through Dovecot) and mailboxes (Dovecot IMAP, XOAUTH2 and OAUTHBEARER) authenticate with
//! bearer tokens that Dovecot's oauth2 passdb checks by RFC 7662 introspection against the
//! test token server (tests/util/oauth2_bed.rs). Short token lifetimes make the exporter
//! renew them between rounds; revoking the client secret or the refresh grant at the
//! token server makes the rounds fail at the right stage and count the failure.

mod util;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailauth_exporter::config::Config;
use mailauth_exporter::mail::ledger::TokenLedger;
use mailauth_exporter::mail::probe::{run_probe, Stage, TargetOutcome};
use mailauth_exporter::metrics::Metrics;
use mailauth_exporter::resolver::{HickoryDns, QueryCounters};
use mailauth_exporter::state::StateStore;
use util::oauth2_bed::{OAuthBed, CLIENT_SECRET, REFRESH_TOKEN};

/// One probe with two mailbox targets: `inbox_x` reads with XOAUTH2 and the client
/// credentials the submission server uses too (one shared token), `inbox_o` with
/// OAUTHBEARER and a refresh-token grant.
fn config_text(bed: &OAuthBed, ns: std::net::SocketAddr, state: &Path) -> String {
    format!(
        "[exporter]\nstate_dir = \"{state}\"\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\
         [[domain]]\nname = \"example.test\"\n\
         [smtp.out]\n{smtp}[smtp.out.oauth2]\n{cc}\
         [mailbox.inbox_x]\n{mx}[mailbox.inbox_x.oauth2]\n{cc}\
         [mailbox.inbox_o]\n{mo}[mailbox.inbox_o.oauth2]\n{rt}\
         [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"20s\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox_x\"\n\
         [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox_o\"\n",
        state = state.display(),
        smtp = bed.smtp_toml("xoauth2"),
        cc = bed.oauth2_toml("client_credentials"),
        rt = bed.oauth2_toml("refresh_token"),
        mx = bed.mailbox_toml("xoauth2"),
        mo = bed.mailbox_toml("oauthbearer"),
    )
}

struct Rig {
    config: Config,
    dns: Arc<dyn mailauth_exporter::resolver::Dns>,
    resolver: hickory_resolver::TokioResolver,
    ledger: Arc<TokenLedger>,
    metrics: Arc<Metrics>,
}

impl Rig {
    /// A DNS server for example.test and the config `config_text` writes for it; the
    /// zone server lives as long as the second value.
    async fn start(
        state: &Path,
        config_text: impl FnOnce(std::net::SocketAddr) -> String,
    ) -> (Rig, mailauth_exporter::zone_server::ZoneServer) {
        let zones = util::server().await;
        zones
            .set_zone(
                "example.test",
                &util::zone("example.test", 60, "@ IN TXT \"v=spf1 ip4:127.0.0.1 -all\""),
            )
            .unwrap();
        let config = Config::parse(&config_text(zones.addr()), Path::new("t.toml")).unwrap();
        let (dns, _) = util::client(&zones);
        let resolver = HickoryDns::new(&util::settings(&zones), Arc::new(QueryCounters::default()))
            .unwrap()
            .resolver();
        let store = StateStore::open(state).unwrap();
        let metrics = Metrics::new(Arc::new(QueryCounters::default()));
        // As the probe scheduler does: every probe and OAuth2 counter from 0.
        mailauth_exporter::service::scheduler::start_probe_series(&config, &metrics);
        let rig = Rig {
            config,
            dns,
            resolver,
            ledger: Arc::new(TokenLedger::persistent(store)),
            metrics,
        };
        (rig, zones)
    }

    async fn round(&self) -> Vec<TargetOutcome> {
        let outcomes = run_probe(
            &self.config,
            &self.config.probes[0],
            self.dns.as_ref(),
            self.resolver.clone(),
            &self.ledger,
        )
        .await;
        self.metrics.record_probe("example.test", &outcomes);
        outcomes
    }
}

/// The message went through submission and was found in the mailbox: every stage up to
/// reading it passed (the bed has no receiver stamping Authentication-Results, so the
/// round ends at `parse`, after arrival).
fn arrived(o: &TargetOutcome) -> bool {
    o.sent
        && o.delivery.is_some()
        && !matches!(
            &o.failure,
            Some((Stage::Send | Stage::Mailbox | Stage::ReceiveTimeout, _))
        )
}

fn failures_metric(metrics: &Metrics, server: &str) -> f64 {
    util::http::value(
        &metrics.render(),
        &format!("mailauth_oauth2_token_refresh_failures_total{{server=\"{server}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_rounds_refresh_tokens_count_refused_grants_and_recover() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut bed = tokio::task::block_in_place(|| OAuthBed::start(10));
    let state = tempfile::tempdir().unwrap();
    let (rig, _zones) = Rig::start(state.path(), |ns| config_text(&bed, ns, state.path())).await;

    // 1. Round trips over OAuth2 on SMTP (XOAUTH2) and IMAP (XOAUTH2, OAUTHBEARER); the
    // submission server and inbox_x share one client-credentials token.
    let first = rig.round().await;
    assert_eq!(first.len(), 2);
    for o in &first {
        assert!(arrived(o), "{o:?}\n{}", bed.logs());
        assert!(o.token_refresh_failures.is_empty(), "{o:?}");
    }
    assert_eq!(
        bed.grants("client_credentials", "ok"),
        1,
        "{}",
        bed.token_log()
    );
    assert_eq!(bed.grants("refresh_token", "ok"), 1, "{}", bed.token_log());

    // 2. Tokens live 10 s (renewed after 5): rounds go on until each grant was renewed at
    // least twice, and not one round fails meanwhile. The server voids each refresh token
    // it replaces, so a second refresh succeeds only with the rotated token the exporter
    // kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    while bed.grants("client_credentials", "ok") < 3 || bed.grants("refresh_token", "ok") < 3 {
        assert!(Instant::now() < deadline, "no renewal\n{}", bed.logs());
        for o in rig.round().await {
            assert!(
                arrived(&o),
                "a round failed while renewing: {o:?}\n{}",
                bed.logs()
            );
        }
    }
    assert_eq!(
        bed.grants("refresh_token", "refused"),
        0,
        "{}",
        bed.token_log()
    );
    assert_eq!(
        std::fs::read_to_string(&bed.refresh_token_file)
            .unwrap()
            .trim(),
        REFRESH_TOKEN,
        "the secret file is never rewritten"
    );
    assert_eq!(failures_metric(&rig.metrics, "smtp.out"), 0.0);

    // 3. The client secret revoked: once the token is due, the submission stage fails
    // with the endpoint's error code, counted for smtp.out, and no secret in the text.
    bed.control("revoke");
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        assert!(
            Instant::now() < deadline,
            "no failure after revoke\n{}",
            bed.logs()
        );
        let round = rig.round().await;
        if let Some(o) = round
            .iter()
            .find(|o| o.failure.as_ref().is_some_and(|f| f.0 == Stage::Send))
        {
            break o.clone();
        }
    };
    let text = &failed.failure.as_ref().unwrap().1;
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("[smtp.out] OAuth2"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert_eq!(failed.token_refresh_failures, ["smtp.out"]);
    assert!(!failed.sent);
    assert!(failures_metric(&rig.metrics, "smtp.out") >= 1.0);
    assert!(bed.grants("client_credentials", "refused") >= 1);

    // 4. Restored: rounds arrive again.
    bed.control("restore");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no recovery\n{}", bed.logs());
        if rig.round().await.iter().all(arrived) {
            break;
        }
    }

    // 5. The refresh grant refused: inbox_o fails at stage mailbox with invalid_grant,
    // counted for mailbox.inbox_o, while inbox_x (client credentials) still arrives.
    bed.control("revoke-refresh");
    let deadline = Instant::now() + Duration::from_secs(30);
    let round = loop {
        assert!(
            Instant::now() < deadline,
            "no mailbox failure\n{}",
            bed.logs()
        );
        let round = rig.round().await;
        if round[1]
            .failure
            .as_ref()
            .is_some_and(|f| f.0 == Stage::Mailbox)
        {
            break round;
        }
        assert!(
            round[1].failure.is_none() || arrived(&round[1]),
            "{:?}",
            round[1]
        );
    };
    let text = &round[1].failure.as_ref().unwrap().1;
    assert!(
        text.contains("[mailbox.inbox_o] OAuth2") && text.contains("invalid_grant"),
        "{text}"
    );
    assert!(!text.contains(REFRESH_TOKEN), "{text}");
    assert_eq!(round[1].token_refresh_failures, ["mailbox.inbox_o"]);
    assert!(round[1].sent, "submission still works: {:?}", round[1]);
    assert!(arrived(&round[0]), "{:?}", round[0]);
    assert!(failures_metric(&rig.metrics, "mailbox.inbox_o") >= 1.0);
    bed.control("restore");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no recovery of the refresh grant\n{}",
            bed.logs()
        );
        if rig.round().await.iter().all(arrived) {
            break;
        }
    }

    // 6. Every issued token revoked before its expiry (Dovecot's introspection now says
    // inactive): Postfix and Dovecot refuse the cached tokens once, the exporter drops
    // them, and the very next round arrives with new ones.
    // Rounds go on until both grants were renewed since: before that, a round may still
    // use a 3-second token, which the round after the revocation would renew unrevoked.
    bed.control("expires-in 3600");
    let renewed = (
        bed.grants("client_credentials", "ok"),
        bed.grants("refresh_token", "ok"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all_arrived = rig.round().await.iter().all(arrived);
        if all_arrived
            && bed.grants("client_credentials", "ok") > renewed.0
            && bed.grants("refresh_token", "ok") > renewed.1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no long-lived tokens\n{}",
            bed.logs()
        );
    }
    bed.control("revoke-tokens");
    let refused = rig.round().await;
    assert!(
        // Dovecot's XOAUTH2 error challenge carries Google's form, status "401"; the
        // exporter answers it with an empty line, and Postfix refuses the login.
        matches!(&refused[0].failure, Some((Stage::Send, t)) if t.contains("refused the OAuth2 token (XOAUTH2 error challenge: 401)")),
        "{:?}",
        refused[0]
    );
    assert!(
        matches!(&refused[1].failure, Some((Stage::Mailbox, t)) if t.starts_with("login refused")),
        "{:?}",
        refused[1]
    );
    let next = rig.round().await;
    assert!(next.iter().all(arrived), "{next:?}\n{}", bed.logs());
}

/// Submission with `auth = "oauthbearer"` (RFC 7628) through Postfix and Dovecot SASL: a
/// round trip, then a token revoked before its expiry refused by the server with an error
/// challenge, counted as the send stage's failure and dropped, so that the next round
/// arrives with a new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_submission_round_trip_and_refused_token() {
    mailauth_exporter::tls::install_crypto_provider();
    let mut bed = tokio::task::block_in_place(|| OAuthBed::start(3600));
    let state = tempfile::tempdir().unwrap();
    let (rig, _zones) = Rig::start(state.path(), |ns| {
        format!(
            "[exporter]\nstate_dir = \"{state}\"\n[dns]\nnameservers = [\"{ns}\"]\ntimeout = \"1s\"\n\
             [[domain]]\nname = \"example.test\"\n\
             [smtp.out]\n{smtp}[smtp.out.oauth2]\n{cc}\
             [mailbox.inbox]\n{mb}[mailbox.inbox.oauth2]\n{cc}\
             [[probe]]\ndomain = \"example.test\"\nfrom = \"probe@example.test\"\nsmtp = \"out\"\ntimeout = \"20s\"\n\
             [[probe.target]]\nkind = \"mailbox\"\nto = \"probe@imap.test\"\nmailbox = \"inbox\"\n",
            state = state.path().display(),
            smtp = bed.smtp_toml("oauthbearer"),
            cc = bed.oauth2_toml("client_credentials"),
            mb = bed.mailbox_toml("xoauth2"),
        )
    })
    .await;
    let send_failures = |rig: &Rig| {
        util::http::value(
            &rig.metrics.render(),
            r#"mailauth_probe_failures_total{domain="example.test",stage="send",target="mailbox"}"#,
        )
    };

    let first = rig.round().await;
    assert!(arrived(&first[0]), "{:?}\n{}", first[0], bed.logs());
    // Postfix logs the mechanism of the submission it accepted (through its log daemon,
    // so perhaps a moment after the message arrived).
    tokio::task::block_in_place(|| {
        util::wait_for(
            "Postfix to log sasl_method=OAUTHBEARER",
            Duration::from_secs(10),
            || bed.logs().contains("sasl_method=OAUTHBEARER").then_some(()),
            || bed.logs(),
        )
    });
    assert_eq!(send_failures(&rig), 0.0);
    assert_eq!(bed.grants("client_credentials", "ok"), 1);

    // Revoked at the token server: Dovecot's introspection says inactive, Dovecot sends
    // the error challenge, the exporter answers it, Postfix refuses the login.
    bed.control("revoke-tokens");
    let refused = rig.round().await;
    match &refused[0].failure {
        Some((Stage::Send, text)) => {
            assert!(
                text.contains(
                    "refused the OAuth2 token (OAUTHBEARER error challenge: invalid_token)"
                ),
                "{text}"
            );
            for secret in bed.issued_tokens() {
                assert!(!text.contains(&secret), "a token in the error: {text}");
            }
        }
        other => panic!("{other:?}\n{}", bed.logs()),
    }
    assert!(!refused[0].sent);
    assert_eq!(send_failures(&rig), 1.0);
    // Not a failed token request: the endpoint was never asked.
    assert_eq!(failures_metric(&rig.metrics, "smtp.out"), 0.0);

    // The refused token was dropped: the next round asks for a new one and arrives.
    let next = rig.round().await;
    assert!(arrived(&next[0]), "{:?}\n{}", next[0], bed.logs());
    assert_eq!(
        bed.grants("client_credentials", "ok"),
        2,
        "{}",
        bed.token_log()
    );
    assert_eq!(send_failures(&rig), 1.0);
}
