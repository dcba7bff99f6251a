//! A loopback OAuth2 mail bed for the OAuth2 tests: the test token server
//! (`tests/servers/oauth2_token.py`, TLS from a test CA), Dovecot with its `oauth2` passdb
//! validating bearer tokens by RFC 7662 introspection against it (IMAP with XOAUTH2 and
//! OAUTHBEARER, LMTP, and its auth socket for Postfix), and a Postfix instance whose
//! submission port (STARTTLS) authenticates through Dovecot SASL and delivers into Dovecot
//! over LMTP. Every port is free and picked at start; everything lives in a temporary
//! directory and is stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::mailstack::{make_pki, TestPki};

pub const USER: &str = "probe";
pub const CLIENT_ID: &str = "mailauth-probe-app";
/// Distinctive, so that a leak is easy to find.
pub const CLIENT_SECRET: &str = "Oauth-Client-Secret-5e1f0c72-leakcheck";
pub const REFRESH_TOKEN: &str = "Refresh-Token-0a9d44be-leakcheck";

pub struct OAuthBed {
    pub dir: tempfile::TempDir,
    pub pki: TestPki,
    pub token_port: u16,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub submission_port: u16,
    pub client_secret_file: PathBuf,
    pub refresh_token_file: PathBuf,
    token: Child,
    token_in: ChildStdin,
    token_out: BufReader<ChildStdout>,
    dovecot: Child,
    postfix: Option<Child>,
}

impl Drop for OAuthBed {
    fn drop(&mut self) {
        if let Some(mut master) = self.postfix.take() {
            // SIGTERM lets the master stop its children (smtpd, qmgr, lmtp) too.
            let _ = Command::new("kill")
                .args(["-TERM", &master.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(master.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = master.kill();
            let _ = master.wait();
        }
        let _ = self.dovecot.kill();
        let _ = self.dovecot.wait();
        let _ = self.token.kill();
        let _ = self.token.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` distinct free ports on 127.0.0.1 (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn wait_for_banner(port: u16, prefix: &str, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).starts_with(prefix) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no banner on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl OAuthBed {
    /// Starts the token server (tokens living `expires_in` seconds), Dovecot and Postfix.
    pub fn start(expires_in: u64) -> OAuthBed {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        run(Command::new("chmod").arg("755").arg(&d));
        let pki = make_pki(&d);
        // Postfix's smtpd reads the key after dropping privileges; a test key only.
        run(Command::new("chmod").arg("644").arg(&pki.key));
        for sub in ["run", "state", "mail", "pf/etc", "pf/queue", "pf/data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run(Command::new("chown").arg("mail:mail").arg(d.join("mail")));
        run(Command::new("chown").arg("postfix").arg(d.join("pf/data")));
        let client_secret_file = d.join("client-secret");
        std::fs::write(&client_secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        let refresh_token_file = d.join("refresh-token");
        std::fs::write(&refresh_token_file, format!("{REFRESH_TOKEN}\n")).unwrap();
        let ports = free_ports(4);
        let (token_port, imap_port, imaps_port, submission_port) =
            (ports[0], ports[1], ports[2], ports[3]);

        // The token server reads its own copy of the secret, so that a test can change the
        // exporter's file without changing what the server expects.
        let server_secret = d.join("server-client-secret");
        std::fs::write(&server_secret, CLIENT_SECRET).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/oauth2_token.py");
        let mut token = Command::new("python3")
            .arg(script)
            .args(["--port", &token_port.to_string()])
            .arg("--cert")
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(["--client-id", CLIENT_ID, "--refresh-token", REFRESH_TOKEN])
            .args(["--user", USER, "--expires-in", &expires_in.to_string()])
            .arg("--client-secret-file")
            .arg(&server_secret)
            .arg("--issued")
            .arg(d.join("issued-tokens"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(d.join("token.log")).unwrap())
            .spawn()
            .expect("python3");
        let token_in = token.stdin.take().unwrap();
        let mut token_out = BufReader::new(token.stdout.take().unwrap());
        let mut line = String::new();
        token_out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("READY"),
            "token server did not start: {line:?} {}",
            std::fs::read_to_string(d.join("token.log")).unwrap_or_default()
        );

        std::fs::write(
            d.join("dovecot-oauth2.conf.ext"),
            format!(
                "introspection_mode = post\nintrospection_url = https://127.0.0.1:{token_port}/introspect\n\
                 username_attribute = username\nactive_attribute = active\nactive_value = true\n\
                 force_introspection = yes\ntls_ca_cert_file = {ca}\ntimeout_msecs = 5000\n",
                ca = pki.ca.display()
            ),
        )
        .unwrap();
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
instance_name = mailauth-oauth2-{imap_port}
listen = 127.0.0.1
log_path = {d}/dovecot.log
protocols = imap lmtp
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/dovecot-oauth2.conf.ext
}}
# No passdb can look a user up without a token, so LMTP delivery trusts the static userdb.
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%n allow_all_users=yes
}}
mail_location = maildir:~/Maildir
first_valid_uid = 8
hostname = imap.test
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener {d}/run/lmtp-deliver {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener {d}/run/auth-postfix {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@imap.test
}}
"#,
            d = d.display(),
            cert = pki.cert.display(),
            key = pki.key.display(),
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let dovecot = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dovecot.stderr")).unwrap())
            .spawn()
            .expect("dovecot (tests/run.sh installs dovecot-imapd and dovecot-lmtpd)");
        let mut bed = OAuthBed {
            dir,
            pki,
            token_port,
            imap_port,
            imaps_port,
            submission_port,
            client_secret_file,
            refresh_token_file,
            token,
            token_in,
            token_out,
            dovecot,
            postfix: None,
        };
        wait_for_banner(imap_port, "* OK", "dovecot", &d.join("dovecot.log"));
        bed.start_postfix();
        bed
    }

    fn start_postfix(&mut self) {
        let d = self.dir.path();
        let pf = d.join("pf");
        std::fs::write(
            pf.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\nmyhostname = submission.example.test\nmydomain = example.test\n\
                 myorigin = $myhostname\nmydestination =\nqueue_directory = {pf}/queue\ndata_directory = {pf}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
                 maillog_file = {pf}/postfix.log\nmaillog_file_prefixes = {pf}\nalias_maps =\nalias_database =\n\
                 local_transport = error:no local delivery\nsmtpd_peername_lookup = no\nlmtp_host_lookup = native\n\
                 smtp_dns_support_level = disabled\ndisable_dns_lookups = yes\n\
                 virtual_mailbox_domains = imap.test\nvirtual_transport = lmtp:unix:{d}/run/lmtp-deliver\n\
                 smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\nsmtpd_tls_security_level = encrypt\n\
                 smtpd_tls_auth_only = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {d}/run/auth-postfix\n\
                 smtpd_sasl_auth_enable = yes\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
                 smtpd_recipient_restrictions = permit_sasl_authenticated, reject\nqueue_run_delay = 1s\n\
                 minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nbiff = no\n",
                pf = pf.display(),
                d = d.display(),
                cert = self.pki.cert.display(),
                key = self.pki.key.display(),
            ),
        )
        .unwrap();
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        let master_cf = format!(
            "{}\n127.0.0.1:{} inet n - n - - smtpd\n",
            services.join("\n"),
            self.submission_port
        );
        std::fs::write(pf.join("etc/master.cf"), master_cf).unwrap();
        let etc = pf.join("etc");
        // Fatal errors reach stderr only on a terminal: run the check under script(1).
        run(Command::new("script").args([
            "-qec",
            &format!("postfix -c {} check", etc.display()),
            "/dev/null",
        ]));
        let master = Command::new("/usr/lib/postfix/sbin/master")
            .arg("-c")
            .arg(&etc)
            .arg("-d")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(pf.join("master.out")).unwrap())
            .spawn()
            .expect("postfix (tests/e2e/bed.sh install brings it)");
        self.postfix = Some(master);
        wait_for_banner(
            self.submission_port,
            "220",
            "postfix",
            &pf.join("postfix.log"),
        );
    }

    /// Sends a control command to the token server and waits for its acknowledgement.
    pub fn control(&mut self, command: &str) {
        writeln!(self.token_in, "{command}").unwrap();
        self.token_in.flush().unwrap();
        let mut line = String::new();
        self.token_out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "OK", "token server: {command}");
    }

    /// The token server's log: one line per grant and introspection, without secrets.
    pub fn token_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("token.log")).unwrap_or_default()
    }

    /// Every access and refresh token the token server issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("issued-tokens"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many grants of `grant` the token server answered with `ok` or `refused`.
    pub fn grants(&self, grant: &str, outcome: &str) -> usize {
        let prefix = format!("grant {grant} {outcome}");
        self.token_log()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// Every log of the bed's servers, for failure messages.
    pub fn logs(&self) -> String {
        let d = self.dir.path();
        [
            "token.log",
            "dovecot.log",
            "dovecot.stderr",
            "pf/postfix.log",
            "pf/master.out",
        ]
        .iter()
        .map(|f| {
            format!(
                "== {f}\n{}",
                std::fs::read_to_string(d.join(f)).unwrap_or_default()
            )
        })
        .collect()
    }

    /// The `[NAME.oauth2]` table body for `grant`.
    pub fn oauth2_toml(&self, grant: &str) -> String {
        let refresh = if grant == "refresh_token" {
            format!(
                "refresh_token_file = \"{}\"\n",
                self.refresh_token_file.display()
            )
        } else {
            String::new()
        };
        format!(
            "token_url = \"https://127.0.0.1:{}/token\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\n\
             scope = \"mail\"\ngrant = \"{grant}\"\n{refresh}ca_file = \"{}\"\ntimeout = \"5s\"\n",
            self.token_port,
            self.client_secret_file.display(),
            self.pki.ca.display()
        )
    }

    /// `[mailbox.NAME]` keys (without the oauth2 table) for `auth`.
    pub fn mailbox_toml(&self, auth: &str) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"tls\"\nusername = \"{USER}\"\nauth = \"{auth}\"\nca_file = \"{}\"\n\
             timeout = \"10s\"\ntrusted_authserv_ids = [\"submission.example.test\"]\n",
            self.imaps_port,
            self.pki.ca.display()
        )
    }

    /// `[smtp.NAME]` keys (without the oauth2 table), XOAUTH2 over STARTTLS.
    pub fn smtp_toml(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"{USER}\"\nauth = \"xoauth2\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            self.submission_port,
            self.pki.ca.display()
        )
    }
}
