//! The IMAP folder report source (`reports::source::imap::ImapFolder`) against a real
//! Dovecot on loopback (tests/util/mailstack.rs): listing, reading without marking seen,
//! bounded reads, moving exactly the message read to Archive or Invalid by UID MOVE, by
//! COPY + UID EXPUNGE and by COPY + \Deleted (Dovecot told to advertise fewer
//! capabilities), waiting by IDLE and by NOOP, and a connection dropped mid-FETCH.
//!
//! The test's own view of the mailbox is a second, plain IMAP session (the `imap` crate
//! directly), so what the source did is checked by another client, as a person's mail
//! program would see it.

mod util;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailauth_exporter::config::{Config, MailboxConfig};
use mailauth_exporter::reports::source::imap::{ImapFolder, MovePlan};
use mailauth_exporter::reports::source::{ItemKey, ReportSource, SourceError};
use util::attachments::base64_lines;
use util::imap_fault::{ImapFault, Mode};
use util::mailstack::{MailStack, PASSWORD, USER};

/// Dovecot's capability list without MOVE (IDLE and UIDPLUS kept).
const NO_MOVE: &str = "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS SORT\n}\n";
/// Without MOVE, UIDPLUS and IDLE.
const NO_MOVE_NO_UIDPLUS: &str = "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT\n}\n";

fn corpus(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/reports")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A report mail as reporters send it: the XML as a base64 attachment.
fn report_mail(subject: &str, attachment: &[u8], name: &str, mime: &str) -> Vec<u8> {
    format!(
        "From: noreply-dmarc-support@google.com\r\nTo: rua@imap.test\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@google.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n--b1\r\n\
         Content-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        base64_lines(attachment)
    )
    .into_bytes()
}

fn plain_mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: alice@example.org\r\nTo: rua@imap.test\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn mailbox_config(stack: &MailStack, folder: &str) -> MailboxConfig {
    let text = format!(
        "[mailbox.rua]\n{}folder = \"{folder}\"\n",
        stack.mailbox_toml("starttls")
    );
    Config::parse(&text, Path::new("t.toml")).unwrap().mailbox["rua"].clone()
}

/// The mailbox through the fault proxy: plain IMAP (the proxy reads the commands).
fn proxied_config(stack: &MailStack, proxy_port: u16) -> MailboxConfig {
    let text = stack
        .mailbox_toml("none")
        .replace(
            &format!("port = {}", stack.imap_port),
            &format!("port = {proxy_port}"),
        )
        .replace("timeout = \"10s\"", "timeout = \"3s\"");
    let text = format!("[mailbox.rua]\n{text}allow_plaintext_auth = true\n");
    Config::parse(&text, Path::new("t.toml")).unwrap().mailbox["rua"].clone()
}

/// A second client: plain IMAP straight to Dovecot, as another mail program.
struct Other(imap::Session<TcpStream>);

impl Other {
    fn login(stack: &MailStack) -> Other {
        let tcp = TcpStream::connect(("127.0.0.1", stack.imap_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut client = imap::Client::new(tcp);
        client.read_greeting().unwrap();
        Other(client.login(USER, PASSWORD).map_err(|e| e.0).unwrap())
    }

    fn append(&mut self, folder: &str, raw: &[u8]) {
        self.0.append(folder, raw).finish().unwrap();
    }

    fn create(&mut self, folder: &str) {
        self.0.create(folder).unwrap();
    }

    /// (Subject, flagged \Deleted) of every message in `folder`, by UID; empty when the
    /// folder does not exist.
    fn subjects(&mut self, folder: &str) -> Vec<(String, bool)> {
        if self.0.examine(folder).is_err() {
            return Vec::new();
        }
        let mut uids: Vec<u32> = self.0.uid_search("ALL").unwrap().into_iter().collect();
        uids.sort_unstable();
        let mut out = Vec::new();
        for uid in uids {
            let fetches = self
                .0
                .uid_fetch(
                    uid.to_string(),
                    "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
                )
                .unwrap();
            for f in fetches.iter().filter(|f| f.uid == Some(uid)) {
                let header = String::from_utf8_lossy(f.header().or(f.body()).unwrap_or_default())
                    .trim()
                    .trim_start_matches("Subject:")
                    .trim()
                    .to_string();
                let deleted = f.flags().contains(&imap::types::Flag::Deleted);
                out.push((header, deleted));
            }
        }
        out
    }

    fn names(&mut self, folder: &str) -> Vec<String> {
        self.subjects(folder).into_iter().map(|(s, _)| s).collect()
    }

    /// Flags the message with this subject \Deleted (another client's deletion, not yet
    /// expunged), leaving it in the folder.
    fn flag_deleted(&mut self, folder: &str, subject: &str) {
        self.0.select(folder).unwrap();
        let uids = self.0.uid_search(format!("SUBJECT {subject}")).unwrap();
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        assert_eq!(set.len(), 1, "{subject}");
        self.0
            .uid_store(set.join(","), "+FLAGS.SILENT (\\Deleted)")
            .unwrap();
    }

    /// Deletes and expunges the message with this subject (another client removing it).
    fn remove(&mut self, folder: &str, subject: &str) {
        self.flag_deleted(folder, subject);
        self.0.expunge().unwrap();
    }

    fn seen(&mut self, folder: &str, subject: &str) -> bool {
        self.0.examine(folder).unwrap();
        let uids = self
            .0
            .uid_search(format!("SEEN SUBJECT {subject}"))
            .unwrap();
        !uids.is_empty()
    }
}

fn uid(key: &ItemKey) -> u32 {
    match key {
        ItemKey::Uid(u) => *u,
        ItemKey::File(p) => panic!("a file key from IMAP: {}", p.display()),
    }
}

/// A report, a non-report, another client's \Deleted message in the report folder and a
/// message in another folder; then pending → read → archive / reject.
fn moves_exactly_what_it_read(dovecot_extra: &str, expected_plan: MovePlan) {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_full("ok", &[], dovecot_extra);
    let mut other = Other::login(&stack);
    let google = corpus("cry-inc/dmarc-reports/google.xml");
    other.append(
        "INBOX",
        &report_mail(
            "report-google",
            &google,
            "google.com!example.com.xml",
            "text/xml",
        ),
    );
    other.append("INBOX", &plain_mail("not-a-report", "hello"));
    other.append("INBOX", &plain_mail("someone-elses-deleted", "bye"));
    other.flag_deleted("INBOX", "someone-elses-deleted");
    other.create("Elsewhere");
    other.append("Elsewhere", &plain_mail("foreign-elsewhere", "keep me"));

    let mut source = ImapFolder::new(
        &mailbox_config(&stack, "INBOX"),
        "Archive",
        "Invalid",
        1024 * 1024,
    );
    assert_eq!(source.move_plan().unwrap(), expected_plan);
    let keys = source.pending(10).unwrap();
    assert_eq!(
        keys.len(),
        2,
        "the \\Deleted message is not listed: {keys:?}"
    );
    assert!(uid(&keys[0]) < uid(&keys[1]), "oldest first: {keys:?}");

    let report = source.read(&keys[0]).unwrap().expect("the report is there");
    assert!(!report.truncated);
    let parsed = mailauth_exporter::reports::read(
        &report.bytes,
        &mailauth_exporter::reports::Limits::default(),
    )
    .expect("the fetched message carries the corpus report");
    assert_eq!(parsed.reports.len(), 1);
    assert!(
        !other.seen("INBOX", "report-google"),
        "reading does not mark the message seen"
    );
    let junk = source.read(&keys[1]).unwrap().expect("the second message");
    assert!(String::from_utf8_lossy(&junk.bytes).contains("not-a-report"));

    source.archive(&keys[0]).unwrap();
    source.reject(&keys[1]).unwrap();

    assert_eq!(other.names("Archive"), vec!["report-google"]);
    assert_eq!(other.names("Invalid"), vec!["not-a-report"]);
    assert_eq!(other.names("Elsewhere"), vec!["foreign-elsewhere"]);
    let inbox = other.subjects("INBOX");
    let expected_inbox: Vec<(String, bool)> = match expected_plan {
        // Moved or expunged by UID: only the other client's \Deleted message is left,
        // still there (no plain EXPUNGE) and still flagged.
        MovePlan::Move | MovePlan::CopyExpunge => vec![("someone-elses-deleted".into(), true)],
        // Without UIDPLUS the moved messages stay, flagged \Deleted.
        MovePlan::CopyFlag => vec![
            ("report-google".into(), true),
            ("not-a-report".into(), true),
            ("someone-elses-deleted".into(), true),
        ],
    };
    assert_eq!(inbox, expected_inbox);
    assert!(
        source.pending(10).unwrap().is_empty(),
        "nothing left to read"
    );

    // A second archive of the same key touches nothing (it is no longer handed out).
    source.archive(&keys[0]).unwrap();
    assert_eq!(other.names("Archive"), vec!["report-google"]);
}

#[test]
fn uid_move_moves_exactly_the_read_message() {
    moves_exactly_what_it_read("", MovePlan::Move);
}

#[test]
fn without_move_copy_and_uid_expunge_of_that_uid() {
    moves_exactly_what_it_read(NO_MOVE, MovePlan::CopyExpunge);
}

#[test]
fn without_move_or_uidplus_copy_and_flag_only() {
    moves_exactly_what_it_read(NO_MOVE_NO_UIDPLUS, MovePlan::CopyFlag);
}

#[test]
fn an_oversize_message_comes_back_truncated() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let mut other = Other::login(&stack);
    let big = plain_mail("big", &vec!["x".repeat(70); 100].join("\r\n"));
    assert!(big.len() > 5000);
    other.append("INBOX", &big);
    let mut source = ImapFolder::new(&mailbox_config(&stack, "INBOX"), "Archive", "Invalid", 2000);
    let keys = source.pending(10).unwrap();
    assert_eq!(keys.len(), 1);
    let item = source.read(&keys[0]).unwrap().unwrap();
    assert!(
        item.truncated,
        "a message past max_bytes is marked truncated"
    );
    assert_eq!(item.bytes.len(), 2000);
    assert!(big.starts_with(&item.bytes), "its beginning is returned");
}

#[test]
fn a_message_removed_after_pending_reads_as_none() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let mut other = Other::login(&stack);
    other.append("INBOX", &plain_mail("gone-soon", "x"));
    other.append("INBOX", &plain_mail("stays", "y"));
    let mut source = ImapFolder::new(
        &mailbox_config(&stack, "INBOX"),
        "Archive",
        "Invalid",
        1 << 20,
    );
    let keys = source.pending(10).unwrap();
    assert_eq!(keys.len(), 2);
    other.remove("INBOX", "gone-soon");
    assert_eq!(source.read(&keys[0]), Ok(None));
    // Moving it is a no-op, not an error, and the other message is still readable.
    source.archive(&keys[0]).unwrap();
    assert!(other.names("Archive").is_empty());
    let stays = source.read(&keys[1]).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&stays.bytes).contains("stays"));
}

/// The report folder deleted and created again (a new UIDVALIDITY): keys from before
/// name nothing, even where the new folder has a message under the same UID.
#[test]
fn keys_from_before_a_uidvalidity_change_read_as_none() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let mut other = Other::login(&stack);
    other.create("Reports");
    other.append("Reports", &plain_mail("first-life", "x"));
    let mut source = ImapFolder::new(
        &mailbox_config(&stack, "Reports"),
        "Archive",
        "Invalid",
        1 << 20,
    );
    let keys = source.pending(10).unwrap();
    assert_eq!(keys.len(), 1);
    let validity = source.uid_validity();
    assert!(validity.is_some());
    source.disconnect();
    other.0.delete("Reports").unwrap();
    other.create("Reports");
    other.append("Reports", &plain_mail("second-life", "y"));
    // The next call connects again and sees the new UIDVALIDITY.
    let again = source.pending(10).unwrap();
    assert_ne!(source.uid_validity(), validity);
    assert_eq!(again.len(), 1);
    if again[0] == keys[0] {
        // Same UID number, new message: the key handed out again is valid for it.
        let item = source.read(&again[0]).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&item.bytes).contains("second-life"));
    }
    // A fresh source that listed under the old validity: its key is invalid now.
    let mut stale = ImapFolder::new(
        &mailbox_config(&stack, "Reports"),
        "Archive",
        "Invalid",
        1 << 20,
    );
    other.append("Reports", &plain_mail("third", "z"));
    let listed = stale.pending(10).unwrap();
    assert_eq!(listed.len(), 2);
    stale.disconnect();
    other.0.delete("Reports").unwrap();
    other.create("Reports");
    other.append("Reports", &plain_mail("fourth", "w"));
    // Not listed since: the reconnect clears the old keys, so reading the old ones
    // (whatever their numbers) gives None, and archiving them moves nothing.
    for key in &listed {
        assert_eq!(stale.read(key), Ok(None), "{key}");
        stale.archive(key).unwrap();
    }
    assert_eq!(other.names("Reports"), vec!["fourth"]);
    assert!(other.names("Archive").is_empty());
}

/// Appends from another connection while the source waits; `wait` must return well
/// before `max_wait`, and the new message must then be pending.
fn wait_returns_on_new_mail(dovecot_extra: &str, within: Duration) {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_full("ok", &[], dovecot_extra);
    let mut source = ImapFolder::new(
        &mailbox_config(&stack, "INBOX"),
        "Archive",
        "Invalid",
        1 << 20,
    );
    assert!(source.pending(10).unwrap().is_empty());

    // Nothing arrives: wait returns after max_wait, not before.
    let started = Instant::now();
    source.wait(Duration::from_millis(1500)).unwrap();
    let idle_for = started.elapsed();
    assert!(
        idle_for >= Duration::from_millis(1400) && idle_for < Duration::from_secs(15),
        "{idle_for:?}"
    );

    let max_wait = Duration::from_secs(60);
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = source.wait(max_wait);
        (r, started.elapsed(), source)
    });
    let mut other = Other::login(&stack);
    other.append("INBOX", &plain_mail("new-arrival", "hi"));
    // Poll for the waiter with a deadline.
    let deadline = Instant::now() + max_wait + Duration::from_secs(10);
    while !waiter.is_finished() {
        assert!(Instant::now() < deadline, "wait did not return");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (r, took, mut source) = waiter.join().unwrap();
    r.unwrap();
    assert!(took < within, "wait returned after {took:?}");
    let keys = source.pending(10).unwrap();
    assert_eq!(keys.len(), 1);
}

#[test]
fn idle_wait_returns_soon_after_new_mail() {
    wait_returns_on_new_mail("", Duration::from_secs(5));
}

#[test]
fn noop_wait_returns_after_new_mail_without_idle() {
    wait_returns_on_new_mail(NO_MOVE_NO_UIDPLUS, Duration::from_secs(25));
}

/// The connection dropped in the middle of the message literal: the read fails as an
/// operation error, and the next call logs in again and reads the message whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_fetch_fails_that_read_and_heals() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let mut other = Other::login(&stack);
    let google = corpus("cry-inc/dmarc-reports/google.xml");
    let mail = report_mail("report-google", &google, "google.xml", "text/xml");
    other.append("INBOX", &mail);
    let proxy = ImapFault::start(format!("127.0.0.1:{}", stack.imap_port).parse().unwrap()).await;
    proxy.set(Mode::DropInFetch);
    let config = proxied_config(&stack, proxy.port);
    let (source, key, first) = tokio::task::spawn_blocking(move || {
        let mut source = ImapFolder::new(&config, "Archive", "Invalid", 1 << 20);
        let keys = source.pending(10).unwrap();
        assert_eq!(keys.len(), 1);
        let first = source.read(&keys[0]);
        (source, keys[0].clone(), first)
    })
    .await
    .unwrap();
    assert!(
        matches!(
            &first,
            Err(SourceError::Operation {
                operation: "UID FETCH",
                ..
            })
        ),
        "{first:?}"
    );
    assert!(proxy.dropped.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(
        !format!("{first:?}").contains(PASSWORD),
        "no password in errors"
    );

    // The same source, the server behaving again: it connects anew and reads it whole.
    proxy.set(Mode::Pass);
    let (item, pending_again) = tokio::task::spawn_blocking(move || {
        let mut source = source;
        let item = source.read(&key);
        (item, source.pending(10))
    })
    .await
    .unwrap();
    let item = item.unwrap().expect("the message is still there");
    assert!(!item.truncated);
    assert_eq!(
        pending_again.unwrap().len(),
        1,
        "still waiting until archived"
    );
    assert_eq!(item.bytes.len(), mail.len());
}

/// A refused login is `Unavailable`, names the user, and carries no password.
#[test]
fn a_refused_login_is_unavailable_without_the_password() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start("ok");
    let wrong = "Wrong-9d1e-leakcheck";
    let file = stack.dir.path().join("wrong-password");
    std::fs::write(&file, format!("{wrong}\n")).unwrap();
    let mut config = mailbox_config(&stack, "INBOX");
    config.password_file = Some(file);
    let mut source = ImapFolder::new(&config, "Archive", "Invalid", 1 << 20);
    let err = source.pending(10).unwrap_err();
    assert!(
        matches!(&err, SourceError::Unavailable(m) if m.contains(USER)),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
}

/// Dovecot sending its IDLE keepalive (`* OK Still here`) every second, more often than
/// the wait's span: `wait` still returns when `max_wait` is over, not never.
#[test]
fn idle_keepalives_do_not_stretch_a_wait() {
    mailauth_exporter::tls::install_crypto_provider();
    let stack = MailStack::start_full("ok", &[], "imap_idle_notify_interval = 1 secs\n");
    let mut source = ImapFolder::new(
        &mailbox_config(&stack, "INBOX"),
        "Archive",
        "Invalid",
        1 << 20,
    );
    assert!(source.pending(10).unwrap().is_empty());
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = source.wait(Duration::from_secs(4));
        (r, started.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiter.is_finished() {
        assert!(Instant::now() < deadline, "wait did not return");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (r, took) = waiter.join().unwrap();
    r.unwrap();
    assert!(
        took >= Duration::from_millis(3900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

/// The whole reader on an IMAP folder: the running exporter with `[[reports]] mailbox`
/// counts a mailed report, moves it to Archive only then, moves a non-report to Invalid,
/// ignores a resent copy and leaves a foreign message in another folder alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_reads_an_imap_report_folder() {
    use util::http::{at_least, metrics_until};
    let stack = MailStack::start("ok");
    let (server, _) = util::serve_zone("example.test", "").await;
    let state = tempfile::tempdir().unwrap();
    let google = corpus("cry-inc/dmarc-reports/google.xml");
    let mut other = Other::login(&stack);
    other.create("Elsewhere");
    other.append("Elsewhere", &plain_mail("foreign", "not for the reader"));
    other.append(
        "INBOX",
        &report_mail("report-1", &google, "google.xml", "text/xml"),
    );
    other.append("INBOX", &plain_mail("hello", "not a report"));
    let text = format!(
        "[exporter]\nstate_dir = \"{}\"\ndns_interval = \"1h\"\n\n[dns]\nnameservers = [\"{}\"]\n\n\
         [[domain]]\nname = \"foo-bar.io\"\n\n[mailbox.rua]\n{}\n\
         [[reports]]\nname = \"rua\"\nmailbox = \"rua\"\npoll_interval = \"2s\"\n",
        state.path().display(),
        server.addr(),
        stack.mailbox_toml("starttls"),
    );
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();
    let app = mailauth_exporter::service::app::App::start(config, None, false).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailauth_exporter::server::serve_on(app.clone(), listener));
    let read = |outcome: &str| {
        format!(r#"mailauth_reports_read_total{{outcome="{outcome}",source="rua"}}"#)
    };
    let body = metrics_until(&base, "the folder read", |b| {
        at_least(b, &read("counted"), 1.0) && at_least(b, &read("invalid"), 1.0)
    })
    .await;
    assert!(
        body.contains(
            r#"mailauth_dmarc_reports_total{domain="foo-bar.io",reporter="google.com"} 1"#
        ),
        "{body}"
    );
    // The same report mailed again: a duplicate, moved to Archive all the same.
    other.append(
        "INBOX",
        &report_mail("report-1-again", &google, "google.xml", "text/xml"),
    );
    metrics_until(&base, "the resent report read", |b| {
        at_least(b, &read("duplicate"), 1.0)
    })
    .await;
    let subjects = |o: &mut Other, f: &str| -> Vec<String> {
        o.subjects(f).into_iter().map(|(s, _)| s).collect()
    };
    assert_eq!(subjects(&mut other, "INBOX"), Vec::<String>::new());
    assert_eq!(
        subjects(&mut other, "Archive"),
        ["report-1", "report-1-again"]
    );
    assert_eq!(subjects(&mut other, "Invalid"), ["hello"]);
    assert_eq!(subjects(&mut other, "Elsewhere"), ["foreign"]);
    app.stop();
}
