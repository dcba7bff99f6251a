//! A loopback OAuth2 mail bed for the OAuth2 tests: the test token server
//! (`tests/servers/oauth2_token.py`, TLS from the stack's test CA), the mail stack's Dovecot
//! checking bearer tokens by RFC 7662 introspection against it ([`Auth::OAuth2`]: IMAP and
//! SASL with XOAUTH2 and OAUTHBEARER), and a Postfix instance whose submission port
//! (STARTTLS) authenticates through Dovecot SASL and delivers into Dovecot over LMTP. Every
//! port is free and picked at start; everything lives in the stack's temporary directory
//! and is stopped on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::mailstack::{run, wait_for_banner, Auth, MailStack, StackOptions};

pub const USER: &str = super::mailstack::USER;
pub const CLIENT_ID: &str = "mailauth-probe-app";
/// Distinctive, so that a leak is easy to find.
pub const CLIENT_SECRET: &str = "Oauth-Client-Secret-5e1f0c72-leakcheck";
pub const REFRESH_TOKEN: &str = "Refresh-Token-0a9d44be-leakcheck";

pub struct OAuthBed {
    /// Dovecot (IMAP, LMTP, SASL for Postfix), without the stack's own relay.
    pub stack: MailStack,
    pub token_port: u16,
    pub submission_port: u16,
    pub client_secret_file: PathBuf,
    pub refresh_token_file: PathBuf,
    token: Child,
    token_in: ChildStdin,
    token_out: BufReader<ChildStdout>,
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
        let _ = self.token.kill();
        let _ = self.token.wait();
        // The stack (Dovecot) stops when the field drops, after this.
    }
}

impl OAuthBed {
    /// Starts Dovecot, the token server (tokens living `expires_in` seconds) and Postfix.
    pub fn start(expires_in: u64) -> OAuthBed {
        // Held while Dovecot picks its ports, so that none of them is the token server's.
        let token_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let token_port = token_listener.local_addr().unwrap().port();
        let stack = MailStack::start_options(StackOptions {
            auth: Auth::OAuth2 {
                introspection_url: format!("https://127.0.0.1:{token_port}/introspect"),
            },
            dovecot_extra: "",
            relay: None,
        });
        drop(token_listener);
        let d = stack.dir.path().to_path_buf();
        // Postfix's smtpd reads the key after dropping privileges; a test key only.
        run(Command::new("chmod").arg("644").arg(&stack.pki.key));
        for sub in ["pf/etc", "pf/queue", "pf/data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run(Command::new("chown").arg("postfix").arg(d.join("pf/data")));
        let client_secret_file = d.join("client-secret");
        std::fs::write(&client_secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        let refresh_token_file = d.join("refresh-token");
        std::fs::write(&refresh_token_file, format!("{REFRESH_TOKEN}\n")).unwrap();

        // The token server reads its own copy of the secret, so that a test can change the
        // exporter's file without changing what the server expects.
        let server_secret = d.join("server-client-secret");
        std::fs::write(&server_secret, CLIENT_SECRET).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/oauth2_token.py");
        let mut token = Command::new("python3")
            .arg(script)
            .args(["--port", &token_port.to_string()])
            .arg("--cert")
            .arg(&stack.pki.cert)
            .arg("--key")
            .arg(&stack.pki.key)
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
        let mut bed = OAuthBed {
            stack,
            token_port,
            // Picked now that Dovecot and the token server hold theirs.
            submission_port: super::free_port(),
            client_secret_file,
            refresh_token_file,
            token,
            token_in,
            token_out,
            postfix: None,
        };
        bed.start_postfix();
        bed
    }

    fn start_postfix(&mut self) {
        let d = self.stack.dir.path();
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
                 virtual_mailbox_domains = imap.test\nvirtual_transport = lmtp:unix:{lmtp}\n\
                 smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\nsmtpd_tls_security_level = encrypt\n\
                 smtpd_tls_auth_only = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {sasl}\n\
                 smtpd_sasl_auth_enable = yes\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
                 smtpd_recipient_restrictions = permit_sasl_authenticated, reject\nqueue_run_delay = 1s\n\
                 minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nbiff = no\n",
                pf = pf.display(),
                lmtp = self.stack.lmtp_socket().display(),
                sasl = self.stack.auth_socket().display(),
                cert = self.stack.pki.cert.display(),
                key = self.stack.pki.key.display(),
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
        let mut master = Command::new("/usr/lib/postfix/sbin/master")
            .arg("-c")
            .arg(&etc)
            .arg("-d")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(pf.join("master.out")).unwrap())
            .spawn()
            .expect("postfix (tests/e2e/bed.sh install brings it)");
        wait_for_banner(
            self.submission_port,
            "220",
            &mut master,
            &pf.join("postfix.log"),
        );
        self.postfix = Some(master);
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
        std::fs::read_to_string(self.stack.dir.path().join("token.log")).unwrap_or_default()
    }

    /// Every access and refresh token the token server issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        std::fs::read_to_string(self.stack.dir.path().join("issued-tokens"))
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
        let d = self.stack.dir.path();
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
            self.stack.pki.ca.display()
        )
    }

    /// `[mailbox.NAME]` keys (without the oauth2 table) for `auth`.
    pub fn mailbox_toml(&self, auth: &str) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"tls\"\nusername = \"{USER}\"\nauth = \"{auth}\"\nca_file = \"{}\"\n\
             timeout = \"10s\"\ntrusted_authserv_ids = [\"submission.example.test\"]\n",
            self.stack.imaps_port,
            self.stack.pki.ca.display()
        )
    }

    /// `[smtp.NAME]` keys (without the oauth2 table) for `auth`, over STARTTLS.
    pub fn smtp_toml(&self, auth: &str) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"{USER}\"\nauth = \"{auth}\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            self.submission_port,
            self.stack.pki.ca.display()
        )
    }
}
