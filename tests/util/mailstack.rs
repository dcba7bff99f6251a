//! Real mail servers on loopback for the probe and OAuth2 tests: Dovecot (Debian's
//! dovecot-imapd and dovecot-lmtpd) with IMAP STARTTLS, IMAPS, LMTP and an auth socket for
//! a submission server's SASL, and by default a submission server
//! (`tests/servers/smtp_relay.py`, aiosmtpd) that delivers into Dovecot over LMTP. Dovecot
//! checks logins against a password ([`Auth::Password`]) or, for the OAuth2 bed
//! (`oauth2_bed.rs`, which brings Postfix instead of the relay), bearer tokens by RFC 7662
//! introspection ([`Auth::OAuth2`]). A test CA signs every server's certificate.
//! Everything lives in a temporary directory and is stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const USER: &str = "probe";
/// Distinctive, so that a leak into logs or errors is easy to detect.
pub const PASSWORD: &str = "Pw-7f3c9a1e-leakcheck";

/// Runs a set-up command; panics with its output when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` distinct free ports on 127.0.0.1: all bound at once, then released (two
/// `free_port()` calls in a row can return the same port, and a server refuses a
/// duplicate listener).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A CA and a server certificate for 127.0.0.1 / localhost.
pub struct TestPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pki(dir: &Path) -> TestPki {
    super::ca_and_leaf(dir, "server", "DNS:localhost,IP:127.0.0.1");
    TestPki {
        ca: dir.join("server-ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// How Dovecot checks a login.
pub enum Auth {
    /// [`USER`] with [`PASSWORD`] from a passwd-file: IMAP LOGIN, SASL PLAIN and LOGIN.
    Password,
    /// Bearer tokens only, SASL XOAUTH2 and OAUTHBEARER (IMAP and, through the auth
    /// socket, a submission server's SASL), checked by Dovecot's `oauth2` passdb with RFC
    /// 7662 introspection at `introspection_url`, an https:// server that presents the
    /// stack's own certificate ([`MailStack::pki`]), which Dovecot checks against its CA.
    OAuth2 { introspection_url: String },
}

/// What a stack is made of.
pub struct StackOptions<'a> {
    pub auth: Auth,
    /// Extra lines for dovecot.conf (e.g. a reduced `imap_capability` to play a server
    /// without IDLE or UIDPLUS).
    pub dovecot_extra: &'a str,
    /// The submission relay's mode and extra arguments; `None` for no relay (a test that
    /// brings its own submission server, which can authenticate through
    /// [`MailStack::auth_socket`] and deliver to [`MailStack::lmtp_socket`]).
    pub relay: Option<(&'a str, &'a [&'a str])>,
}

pub struct MailStack {
    pub dir: tempfile::TempDir,
    pub pki: TestPki,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    pub password_file: PathBuf,
    dovecot: Child,
    relay: Option<(Child, ChildStdin)>,
}

impl Drop for MailStack {
    fn drop(&mut self) {
        if let Some((mut child, _stdin)) = self.relay.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.dovecot.kill();
        let _ = self.dovecot.wait();
    }
}

/// Waits until the server on `port` greets with `prefix`, failing with `log` when `child`
/// exits or 30 s pass.
pub fn wait_for_banner(port: u16, prefix: &str, child: &mut Child, log: &Path) {
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
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no banner on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The dovecot.conf lines that say how logins are checked, for a stack in `d`; writes
/// the files they name.
fn dovecot_auth(auth: &Auth, d: &Path, pki: &TestPki) -> String {
    match auth {
        Auth::Password => {
            std::fs::write(
                d.join("passwd"),
                format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
            )
            .unwrap();
            format!(
                r#"disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%n
}}
"#,
                d = d.display()
            )
        }
        Auth::OAuth2 { introspection_url } => {
            std::fs::write(
                d.join("dovecot-oauth2.conf.ext"),
                format!(
                    "introspection_mode = post\nintrospection_url = {introspection_url}\n\
                     username_attribute = username\nactive_attribute = active\nactive_value = true\n\
                     force_introspection = yes\ntls_ca_cert_file = {ca}\ntimeout_msecs = 5000\n",
                    ca = pki.ca.display()
                ),
            )
            .unwrap();
            format!(
                r#"disable_plaintext_auth = yes
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
"#,
                d = d.display()
            )
        }
    }
}

impl MailStack {
    /// Dovecot and the submission relay (mode: ok | reject-rcpt | tempfail-data | silent-verifier).
    pub fn start(relay_mode: &str) -> MailStack {
        Self::start_with(relay_mode, &[])
    }

    /// As `start`, with extra relay arguments (`--authres`, `--verifier-results`).
    pub fn start_with(relay_mode: &str, relay_args: &[&str]) -> MailStack {
        Self::start_full(relay_mode, relay_args, "")
    }

    /// As `start_with`, with extra lines for dovecot.conf (e.g. a reduced
    /// `imap_capability` to play a server without IDLE or UIDPLUS).
    pub fn start_full(relay_mode: &str, relay_args: &[&str], dovecot_extra: &str) -> MailStack {
        Self::start_options(StackOptions {
            auth: Auth::Password,
            dovecot_extra,
            relay: Some((relay_mode, relay_args)),
        })
    }

    /// Dovecot configured as `options` say (and the relay, if any), each answering
    /// before this returns.
    pub fn start_options(options: StackOptions) -> MailStack {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        // Dovecot's mail user must traverse the directory.
        run(Command::new("chmod").arg("755").arg(&d));
        let pki = make_pki(&d);
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run(Command::new("chown").arg("mail:mail").arg(d.join("mail")));
        let password_file = d.join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let (imap_port, imaps_port) = match free_ports(2)[..] {
            [a, b] => (a, b),
            _ => unreachable!(),
        };
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
instance_name = mailauth-test-{imap_port}
listen = 127.0.0.1
log_path = {d}/dovecot.log
protocols = imap lmtp
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
{auth}mail_location = maildir:~/Maildir
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
  unix_listener {d}/run/auth-sasl {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@imap.test
}}
{dovecot_extra}
"#,
            d = d.display(),
            cert = pki.cert.display(),
            key = pki.key.display(),
            auth = dovecot_auth(&options.auth, &d, &pki),
            dovecot_extra = options.dovecot_extra,
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let mut dovecot = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dovecot.stderr")).unwrap())
            .spawn()
            .expect("dovecot not found: run tests/run.sh, which installs dovecot-imapd and dovecot-lmtpd");
        wait_for_banner(imap_port, "* OK", &mut dovecot, &d.join("dovecot.stderr"));
        let mut stack = MailStack {
            dir,
            pki,
            imap_port,
            imaps_port,
            smtp_port: 0,
            password_file,
            dovecot,
            relay: None,
        };
        if let Some((mode, args)) = options.relay {
            stack.start_relay(mode, args);
        }
        stack
    }

    /// Dovecot's LMTP socket, where a submission server delivers.
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir.path().join("run/lmtp-deliver")
    }

    /// Dovecot's auth socket, for a submission server's SASL (Postfix
    /// `smtpd_sasl_type = dovecot`): it offers what [`Auth`] says.
    pub fn auth_socket(&self) -> PathBuf {
        self.dir.path().join("run/auth-sasl")
    }

    fn start_relay(&mut self, mode: &str, extra: &[&str]) {
        let d = self.dir.path();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/smtp_relay.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--user", USER, "--mode", mode])
            .args(extra)
            .arg("--cert")
            .arg(&self.pki.cert)
            .arg("--key")
            .arg(&self.pki.key)
            .arg("--password-file")
            .arg(&self.password_file)
            .arg("--lmtp-socket")
            .arg(self.lmtp_socket())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(d.join("relay.log")).unwrap())
            .spawn()
            .expect("python3 with aiosmtpd (tests/run.sh installs it)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "relay did not start: {line:?} {}",
            std::fs::read_to_string(d.join("relay.log")).unwrap_or_default()
        );
        self.smtp_port = port;
        self.relay = Some((child, stdin));
    }

    /// Stops the submission server (to produce "connection refused").
    pub fn stop_relay(&mut self) {
        if let Some((mut child, _)) = self.relay.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Changes how the relay's verifier answers from the next message on: `ok`, `twice`,
    /// `garbage`, `other-token` or `bad-mime` (see `tests/servers/smtp_relay.py`).
    pub fn set_verifier(&mut self, mode: &str) {
        let (_, stdin) = self.relay.as_mut().expect("relay running");
        stdin
            .write_all(format!("verifier {mode}\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
    }

    /// Changes the relay's delivery delay from the next message on (0: deliver at once).
    pub fn set_deliver_delay(&mut self, seconds: f64) {
        let (_, stdin) = self.relay.as_mut().expect("relay running");
        stdin
            .write_all(format!("delay {seconds}\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
    }

    /// The user's Maildir (`cur/` and `new/` hold one file per message).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER).join("Maildir")
    }

    /// Every message file in the Maildir, raw.
    pub fn maildir_messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir().join(sub)) {
                for e in entries.flatten() {
                    if let Ok(raw) = std::fs::read(e.path()) {
                        out.push(raw);
                    }
                }
            }
        }
        out
    }

    /// Delivers raw message bytes into the mailbox over LMTP (another connection than
    /// the exporter's), as a receiving MTA would.
    pub fn deliver(&self, raw: &[u8]) {
        let mut s = std::os::unix::net::UnixStream::connect(self.lmtp_socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let expect = |r: &mut BufReader<std::os::unix::net::UnixStream>, code: &str| loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(
                line.starts_with(code),
                "LMTP: expected {code}, got {line:?}"
            );
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        };
        expect(&mut r, "220");
        for (cmd, code) in [
            ("LHLO test\r\n", "250"),
            ("MAIL FROM:<sender@example.test>\r\n", "250"),
            (&format!("RCPT TO:<{USER}>\r\n") as &str, "250"),
            ("DATA\r\n", "354"),
        ] {
            s.write_all(cmd.as_bytes()).unwrap();
            expect(&mut r, code);
        }
        let mut data = Vec::new();
        for line in raw.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        s.write_all(&data).unwrap();
        expect(&mut r, "250");
        s.write_all(b"QUIT\r\n").unwrap();
    }

    /// `[mailbox]` config for this Dovecot.
    pub fn mailbox_toml(&self, tls: &str) -> String {
        let port = if tls == "tls" {
            self.imaps_port
        } else {
            self.imap_port
        };
        format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nusername = \"{USER}\"\npassword_file = \"{}\"\nca_file = \"{}\"\ntimeout = \"10s\"\ntrusted_authserv_ids = [\"mx.receiver.test\"]\n",
            self.password_file.display(),
            self.pki.ca.display()
        )
    }

    /// `[smtp]` config for the relay.
    pub fn smtp_toml(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"{USER}\"\npassword_file = \"{}\"\nca_file = \"{}\"\ntimeout = \"10s\"\n",
            self.smtp_port,
            self.password_file.display(),
            self.pki.ca.display()
        )
    }
}
