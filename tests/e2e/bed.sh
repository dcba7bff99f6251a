#!/usr/bin/env bash
# The end-to-end mail test bed on loopback: knot (DNS), two Postfix instances (submission
# with DKIM signing; receiver verifying SPF/DKIM/DMARC), rspamd (the milter doing both),
# Dovecot (IMAPS, LMTP, SASL) and the echo verifier (tests/e2e/verifier.py).
#
#   tests/e2e/bed.sh start     start everything (idempotent; prints the bed's env file)
#   tests/e2e/bed.sh stop      stop everything by PID (idempotent; leaves no daemon behind)
#   tests/e2e/bed.sh status    which daemons run
#   tests/e2e/bed.sh reload Z  reload zone Z after its file was rewritten
#   tests/e2e/bed.sh install   install the Debian packages the bed needs (root)
#
# Every daemon listens on its own 127.0.5.x address (root is needed for ports 25/53/587/993)
# and runs from the bed's own directory ($MAILAUTH_BED, default target/e2e-bed); nothing
# under /etc is read or written, no system service is started.
# Alertmanager (Debian's prometheus-alertmanager, installed here) is started by
# tests/e2e_mail.rs itself, next to the exporter and Prometheus it tethers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BED=${MAILAUTH_BED:-$repo/target/e2e-bed}
PY=/usr/bin/python3   # Debian's python, which sees python3-dkim/-spf/-dnspython/-aiosmtpd

# Addresses (also written to $BED/env for the tests).
DNS_IP=127.0.5.53
OUT_IP=127.0.5.10      # mail.example.test: submission; source address of outgoing mail
IN_IP=127.0.5.20       # mx.receiver.test: receiving MTA (MX of every test domain)
VERIFIER_IP=127.0.5.30 # verifier.test: the echo verifier
IMAP_IP=127.0.5.40     # imap.receiver.test: Dovecot
RSPAMD_IP=127.0.5.50
PACKAGES=(knot knot-dnsutils postfix dovecot-imapd dovecot-lmtpd dovecot-sieve rspamd openssl
  python3-dkim python3-spf python3-dnspython python3-aiosmtpd prometheus-alertmanager)

log() { echo "bed: $*" >&2; }
die() { log "$*"; exit 1; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
  # Debian's packages must not start their stock services on this machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pidfile() { echo "$BED/pids/$1.pid"; }
alive() { # alive NAME: the recorded PID exists and is not a zombie
  local f; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f")
  [ -d "/proc/$pid" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_until() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "timed out waiting for $what"; return 1; }
    sleep 0.05
  done
}

banner() { # banner IP PORT PREFIX
  $PY - "$@" <<'PYEOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
sys.exit(0 if s.recv(64).decode(errors="replace").startswith(sys.argv[3]) else 1)
PYEOF
}

http_ok() { $PY -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }

write_pki() {
  local d=$BED/pki
  [ -f "$d/bed.pem" ] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mailauth e2e test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=mx.receiver.test" \
    -keyout "$d/bed.key" -out "$d/bed.csr" 2>/dev/null
  printf 'subjectAltName=DNS:mail.example.test,DNS:mx.receiver.test,DNS:imap.receiver.test,IP:%s,IP:%s,IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    "$OUT_IP" "$IN_IP" "$IMAP_IP" >"$d/ext.cnf"
  openssl x509 -req -in "$d/bed.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/ext.cnf" -out "$d/bed.pem" 2>/dev/null
  # DKIM: the signing key, and another key for the "key replaced in DNS" scenario.
  for k in dkim dkim-other; do
    openssl genrsa -out "$d/$k.key" 2048 2>/dev/null
    openssl rsa -in "$d/$k.key" -pubout -outform DER 2>/dev/null | base64 -w0 >"$d/$k.pub.b64"
  done
  chgrp _rspamd "$d/dkim.key" && chmod 0640 "$d/dkim.key"
  chmod 0644 "$d"/*.pem
}

# Zone files: $BED/zones/<zone>.zone.healthy holds the healthy zone with the literal
# serial SERIAL; the tests rewrite <zone>.zone from it and call `bed.sh reload`.
write_zones() {
  local z=$BED/zones pub
  mkdir -p "$z"
  pub=$(cat "$BED/pki/dkim.pub.b64")
  local soa='@ IN SOA ns.test. hostmaster.test. SERIAL 60 60 3600 1
@ IN NS ns.test.'
  cat >"$z/test.zone.healthy" <<ZONE
\$TTL 1
$soa
ns IN A $DNS_IP
ZONE
  cat >"$z/example.test.zone.healthy" <<ZONE
\$TTL 1
$soa
@ IN MX 10 mx.example.test.
@ IN TXT "v=spf1 ip4:$OUT_IP -all"
mx IN A $IN_IP
mail IN A $OUT_IP
mail IN TXT "v=spf1 ip4:$OUT_IP -all"
_dmarc IN TXT "v=DMARC1; p=reject; aspf=s; rua=mailto:dmarc-reports@example.test"
e2e._domainkey IN TXT "v=DKIM1; k=rsa; p=${pub:0:200}" "${pub:200}"
; The return-path domain of the probes (Postfix rewrites the envelope sender to it): its
; SPF is the one receivers evaluate; with aspf=s it does not align with From, so DMARC
; rests on DKIM alone.
bounce IN MX 10 mx.example.test.
bounce IN TXT "v=spf1 ip4:$OUT_IP -all"
; Provider-style includes, used by the "too many lookups" scenario.
_spf1 IN TXT "v=spf1 include:_spf2.example.test include:_spf3.example.test ~all"
_spf2 IN TXT "v=spf1 a:h1.example.test a:h2.example.test a:h3.example.test include:_spf4.example.test ~all"
_spf3 IN TXT "v=spf1 a:h4.example.test a:h5.example.test mx:example.test ~all"
_spf4 IN TXT "v=spf1 a:h6.example.test a:h7.example.test ~all"
h1 IN A 127.0.9.1
h2 IN A 127.0.9.2
h3 IN A 127.0.9.3
h4 IN A 127.0.9.4
h5 IN A 127.0.9.5
h6 IN A 127.0.9.6
h7 IN A 127.0.9.7
ZONE
  cat >"$z/receiver.test.zone.healthy" <<ZONE
\$TTL 1
$soa
@ IN MX 10 mx.receiver.test.
@ IN TXT "v=spf1 ip4:$IN_IP -all"
mx IN A $IN_IP
imap IN A $IMAP_IP
_dmarc IN TXT "v=DMARC1; p=none"
ZONE
  cat >"$z/verifier.test.zone.healthy" <<ZONE
\$TTL 1
$soa
@ IN MX 10 @
@ IN A $VERIFIER_IP
@ IN TXT "v=spf1 ip4:$VERIFIER_IP -all"
ZONE
  cat >"$z/5.0.127.in-addr.arpa.zone.healthy" <<ZONE
\$TTL 1
$soa
10 IN PTR mail.example.test.
20 IN PTR mx.receiver.test.
30 IN PTR verifier.test.
40 IN PTR imap.receiver.test.
ZONE
  local f
  for f in "$z"/*.zone.healthy; do
    sed "s/SERIAL/$(date +%s)/" "$f" >"${f%.healthy}"
  done
}

write_knot() {
  mkdir -p "$BED/knot/db" "$BED/run"
  {
    cat <<CONF
server:
    rundir: "$BED/run"
    listen: [ $DNS_IP@53 ]
log:
  - target: "$BED/knot/knot.log"
    any: info
database:
    storage: "$BED/knot/db"
template:
  - id: default
    storage: "$BED/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
CONF
    for zone in test example.test receiver.test verifier.test 5.0.127.in-addr.arpa; do
      echo "  - domain: $zone"
    done
    # A zone knot is told to serve but is never given a file: it answers SERVFAIL for every
    # name in it, as an authoritative server does for a zone it failed to load. A CNAME
    # into it makes one lookup of a domain fail (the Alertmanager scenario's DNS errors).
    echo "  - domain: servfail.test"
  } >"$BED/knot/knot.conf"
}

write_dovecot() {
  local d=$BED/dovecot pw
  # A fresh start begins with empty mailboxes.
  alive dovecot || rm -rf "$BED/mail"
  mkdir -p "$d" "$BED/mail" "$BED/run/dovecot"
  chown mail:mail "$BED/mail"
  pw=$(cat "$BED/secrets/password")
  {
    for u in probe@receiver.test reports@receiver.test archive@receiver.test monitor@example.test \
      dmarc-reports@receiver.test; do
      echo "$u:{PLAIN}$pw::::::"
    done
  } >"$d/passwd"
  cat >"$d/dovecot.conf" <<CONF
base_dir = $BED/run/dovecot
state_dir = $d/state
instance_name = mailauth-e2e
listen = $IMAP_IP
log_path = $d/dovecot.log
protocols = imap lmtp
ssl = yes
ssl_cert = <$BED/pki/bed.pem
ssl_key = <$BED/pki/bed.key
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$BED/mail/%d/%n
}
mail_location = maildir:~/Maildir
first_valid_uid = 8
hostname = imap.receiver.test
service imap-login {
  inet_listener imap {
    address = $IMAP_IP
    port = 143
  }
  inet_listener imaps {
    address = $IMAP_IP
    port = 993
    ssl = yes
  }
}
service lmtp {
  unix_listener $BED/run/dovecot-lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener $BED/run/dovecot-auth {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@receiver.test
  mail_plugins = \$mail_plugins sieve
}
# Junk exists from the start (the exporter checks its junk_folders at login); the Sieve
# script run before any user's files mail that rspamd marked as spam into it.
namespace inbox {
  inbox = yes
  mailbox Junk {
    auto = create
    special_use = \\Junk
  }
}
plugin {
  sieve_before = $d/spam.sieve
}
CONF
  cat >"$d/spam.sieve" <<'SIEVE'
require ["fileinto"];
# rspamd's own verdict (X-Spam-Status, written by its milter just under Postfix's Received).
if header :matches "X-Spam-Status" "Yes,*" {
  fileinto "Junk";
  stop;
}
SIEVE
  sievec "$d/spam.sieve"
}

write_rspamd() {
  local l=$BED/rspamd/local.d
  mkdir -p "$l" "$BED/rspamd/run" "$BED/rspamd/log"
  # The hyperscan cache lives in target/ so that a second start is fast (9 s cold, 1 s warm).
  mkdir -p "$repo/target/e2e-rspamd-db"
  chown -R _rspamd:_rspamd "$BED/rspamd/run" "$BED/rspamd/log" "$repo/target/e2e-rspamd-db"
  cat >"$l/options.inc" <<CONF
dns { nameserver = ["$DNS_IP:53"]; timeout = 1s; retransmits = 1; }
# Loopback clients are "local" to rspamd, which would skip every check for them.
check_local = true;
# The spam scenario's map file is re-read this often.
map_watch_interval = 1s;
CONF
  local o=$BED/rspamd/override.d
  mkdir -p "$o"
  cat >"$o/worker-proxy.inc" <<CONF
bind_socket = "$RSPAMD_IP:11332";
milter = yes;
timeout = 120s;
count = 1;
upstream "local" { default = yes; hosts = "$RSPAMD_IP:11333"; }
CONF
  printf 'bind_socket = "%s:11333";\ncount = 1;\n' "$RSPAMD_IP" >"$o/worker-normal.inc"
  printf 'bind_socket = "%s:11334";\n' "$RSPAMD_IP" >"$o/worker-controller.inc"
  cat >"$l/spf.conf" <<'CONF'
min_cache_ttl = 0;
# RFC 7208 §4.6.4: at most 10 DNS-querying terms (rspamd allows 30 by default).
max_dns_requests = 10;
check_local = true;
CONF
  cat >"$l/dkim.conf" <<'CONF'
dkim_cache_expire = 1s;
check_local = true;
CONF
  echo "check_local = true;" >"$l/dmarc.conf"
  cat >"$l/dkim_signing.conf" <<CONF
enabled = true;
sign_authenticated = true;
sign_local = false;
sign_inbound = false;
use_domain = "header";
allow_hdrfrom_mismatch = false;
use_esld = false;
domain { example.test { selector = "e2e"; path = "$BED/pki/dkim.key"; } }
CONF
  cat >"$l/milter_headers.conf" <<'CONF'
use = ["authentication-results", "receiver-spam-verdict"];
# The verdict as X-Spam-Status and X-Rspamd-Action, inserted at position 1 (just under
# Postfix's own Received, in the receiver's part of the header where the exporter reads
# them), as the authentication-results routine does. The stock x-spam-status routine
# appends at the end of the header, below the sender's own fields (rspamd 3.4 reads no
# default_headers_order from the config).
custom {
  receiver-spam-verdict = <<EOD
return function(task, common)
  local score = task:get_metric_score()[1]
  local action = task:get_metric_action()
  local spam = (action ~= 'no action' and action ~= 'greylist') and 'Yes' or 'No'
  return nil, {
    ['X-Spam-Status'] = {{order = 1, value = string.format('%s, score=%.2f', spam, score)}},
    ['X-Rspamd-Action'] = {{order = 1, value = action}},
  }, {}, {}
end
EOD;
}
skip_local = false;
skip_authenticated = true;
authenticated_headers = [];
# rspamd strips every incoming Authentication-Results by default; keep other hosts' fields
# (RFC 8601 §5 allows either) so that the exporter's own authserv-id filtering is tested.
routines { authentication-results { remove = false; } }
CONF
  cat >"$l/actions.conf" <<'CONF'
reject = 1000;
add_header = 100;
greylist = null;
rewrite_subject = null;
CONF
  # The spam scenario's switch: a recipient listed in this map gets E2E_SPAM_SWITCH (score
  # 150, over add_header) and so X-Spam-Status: Yes and the Junk folder. Empty: off.
  # rspamd re-reads the file within map_watch_interval.
  [ -f "$BED/rspamd/spam-rcpt.map" ] || : >"$BED/rspamd/spam-rcpt.map"
  chmod 0644 "$BED/rspamd/spam-rcpt.map"
  cat >"$l/multimap.conf" <<CONF
E2E_SPAM_SWITCH {
  type = "rcpt";
  map = "file://$BED/rspamd/spam-rcpt.map";
  score = 150.0;
  description = "the e2e spam scenario's switch";
}
CONF
  for m in fuzzy_check rbl surbl phishing asn url_redirector neural once_received greylist ratelimit replies; do
    echo "enabled = false;" >"$l/$m.conf"
  done
}

# postfix_instance NAME MYHOSTNAME: the shared main.cf/master.cf of one instance.
write_postfix() {
  local name=$1 host=$2 dir=$BED/postfix/$1
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  chown postfix "$dir/data"
  cat >"$dir/etc/main.cf" <<CONF
compatibility_level = 3.6
myhostname = $host
mydomain = ${host#*.}
myorigin = \$myhostname
mydestination =
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = $dir/postfix.log
maillog_file_prefixes = $BED
alias_maps =
alias_database =
local_transport = error:no local delivery in the test bed
smtpd_peername_lookup = no
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtp_tls_security_level = may
smtpd_tls_security_level = may
smtpd_tls_cert_file = $BED/pki/bed.pem
smtpd_tls_key_file = $BED/pki/bed.key
smtpd_milters = inet:$RSPAMD_IP:11332
milter_default_action = tempfail
milter_protocol = 6
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
maximal_queue_lifetime = 2m
bounce_queue_lifetime = 2m
transport_maps = texthash:$dir/etc/transport
biff = no
CONF
  cat >"$dir/etc/master.cf" <<CONF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
}

write_postfix_out() {
  local dir=$BED/postfix/out
  write_postfix out mail.example.test
  cat >>"$dir/etc/main.cf" <<CONF
smtp_bind_address = $OUT_IP
smtp_helo_name = mail.example.test
smtpd_sasl_type = dovecot
smtpd_sasl_path = $BED/run/dovecot-auth
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
# Probes leave with a return-path in their own subdomain, as with most sending platforms.
sender_canonical_classes = envelope_sender
sender_canonical_maps = regexp:$dir/etc/sender_canonical
# Scenario "forged Authentication-Results": the tests write a PREPEND rule here.
header_checks = regexp:$dir/etc/header_checks
CONF
  echo '/^(.+)@example\.test$/ ${1}@bounce.example.test' >"$dir/etc/sender_canonical"
  : >"$dir/etc/header_checks"
  cat >"$dir/etc/transport" <<CONF
verifier.test smtp:[$VERIFIER_IP]:25
receiver.test smtp:[$IN_IP]:25
example.test smtp:[$IN_IP]:25
bounce.example.test smtp:[$IN_IP]:25
* error:5.1.2 no such domain in the test bed
CONF
  cat >>"$dir/etc/master.cf" <<CONF
$OUT_IP:587 inet n - n - - smtpd
  -o syslog_name=postfix-out/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
CONF
}

write_postfix_in() {
  local dir=$BED/postfix/in
  write_postfix in mx.receiver.test
  cat >>"$dir/etc/main.cf" <<CONF
smtp_bind_address = $IN_IP
virtual_mailbox_domains = receiver.test example.test bounce.example.test
virtual_mailbox_maps = texthash:$dir/etc/mailboxes
virtual_alias_maps = texthash:$dir/etc/aliases
virtual_transport = lmtp:unix:$BED/run/dovecot-lmtp
smtpd_relay_restrictions = reject_unauth_destination
# A copy of what the receiver delivered to the probe mailbox, which the exporter never
# reads: the tests look there for what the receiver really wrote.
recipient_bcc_maps = texthash:$dir/etc/archive
CONF
  echo "probe@receiver.test archive@receiver.test" >"$dir/etc/archive"
  cat >"$dir/etc/mailboxes" <<'CONF'
probe@receiver.test ok
reports@receiver.test ok
archive@receiver.test ok
dmarc-reports@receiver.test ok
CONF
  # Verifier reports and bounces for the probes' return path land in the reports mailbox;
  # the DMARC record's rua address has a mailbox of its own, read by a [[reports]] source.
  cat >"$dir/etc/aliases" <<'CONF'
monitor@bounce.example.test reports@receiver.test
monitor@example.test reports@receiver.test
dmarc-reports@example.test dmarc-reports@receiver.test
postmaster@receiver.test reports@receiver.test
CONF
  local lmtp="lmtp:unix:$BED/run/dovecot-lmtp"
  cat >"$dir/etc/transport" <<CONF
receiver.test $lmtp
example.test $lmtp
bounce.example.test $lmtp
verifier.test smtp:[$VERIFIER_IP]:25
* error:5.1.2 no such domain in the test bed
CONF
  cat >>"$dir/etc/master.cf" <<CONF
$IN_IP:25 inet n - n - - smtpd
  -o syslog_name=postfix-in/smtpd
CONF
}

start_daemon() { # start_daemon NAME LOGFILE COMMAND...: background COMMAND, record its PID
  local name=$1 logf=$2; shift 2
  alive "$name" && return 0
  "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

postfix_check() { # postfix_check DIR: creates queue dirs; fatals go to stderr only on a TTY
  script -qec "postfix -c $1 check" /dev/null >"$1/../check.log" 2>&1 ||
    { cat "$1/../check.log" >&2; die "postfix -c $1 check failed"; }
}

start() {
  install_packages
  mkdir -p "$BED/pids" "$BED/secrets" "$BED/run"
  [ -f "$BED/secrets/password" ] || head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$BED/secrets/password"
  chmod 0600 "$BED/secrets/password"
  write_pki
  write_zones
  write_knot
  write_dovecot
  write_rspamd
  write_postfix_out
  write_postfix_in
  echo reply >"$BED/verifier.mode"

  start_daemon knot "$BED/knot/knotd.out" knotd -c "$BED/knot/knot.conf" -s "$BED/run/knot.sock"
  start_daemon dovecot "$BED/dovecot/dovecot.out" dovecot -F -c "$BED/dovecot/dovecot.conf"
  start_daemon rspamd "$BED/rspamd/rspamd.out" rspamd -f -u _rspamd -g _rspamd \
    --var=LOCAL_CONFDIR="$BED/rspamd" --var=DBDIR="$repo/target/e2e-rspamd-db" \
    --var=RUNDIR="$BED/rspamd/run" --var=LOGDIR="$BED/rspamd/log" -c /etc/rspamd/rspamd.conf
  start_verifier
  for pf in out in; do
    alive "postfix-$pf" && continue
    # A fresh start begins with empty queues too: mail deferred by an earlier run (whose
    # mailboxes are gone) must not turn up in this one.
    rm -rf "$BED/postfix/$pf/queue"
    mkdir -p "$BED/postfix/$pf/queue"
    postfix_check "$BED/postfix/$pf/etc"
    start_daemon "postfix-$pf" "$BED/postfix/$pf/master.out" \
      /usr/lib/postfix/sbin/master -c "$BED/postfix/$pf/etc" -d
  done

  wait_until "knot" 10 kdig +tcp +time=1 @"$DNS_IP" example.test SOA
  wait_until "dovecot" 10 banner "$IMAP_IP" 143 "* OK"
  wait_until "verifier" 10 banner "$VERIFIER_IP" 25 "220"
  # rspamd compiles its rules at start: slow on a loaded machine.
  wait_until "rspamd" 180 http_ok "http://$RSPAMD_IP:11334/ping" || {
    tail -n 20 "$BED/rspamd/log/rspamd.log" "$BED/rspamd/rspamd.out" >&2; exit 1; }
  wait_until "postfix-out" 15 banner "$OUT_IP" 587 "220"
  wait_until "postfix-in" 15 banner "$IN_IP" 25 "220"
  status >&2
  write_env
}

start_verifier() {
  start_daemon verifier "$BED/verifier.log" "$PY" "$here/verifier.py" \
    --listen "$VERIFIER_IP" --port 25 --nameserver "$DNS_IP" --relay "$IN_IP" \
    --mode-file "$BED/verifier.mode" --hostname verifier.test
}

write_env() {
  cat >"$BED/env" <<ENV
BED=$BED
DNS=$DNS_IP:53
SUBMISSION=$OUT_IP:587
RECEIVER=$IN_IP:25
VERIFIER=$VERIFIER_IP:25
IMAP=$IMAP_IP:993
CA=$BED/pki/ca.pem
PASSWORD_FILE=$BED/secrets/password
DKIM_OTHER_PUB=$BED/pki/dkim-other.pub.b64
ENV
  echo "$BED/env"
}

stop_one() {
  local name=$1 f pid
  f=$(pidfile "$name")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + 15))
    while alive "$name" && [ $SECONDS -lt $end ]; do sleep 0.05; done
    if alive "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

stop() {
  [ -d "$BED/pids" ] || return 0
  for name in postfix-out postfix-in verifier rspamd dovecot knot; do
    stop_one "$name"
  done
  # The masters' and dovecot's children exit with them; make sure nothing of ours remains.
  local left
  left=$(pgrep -f -- "$BED" || true)
  if [ -n "$left" ]; then
    sleep 0.5
    left=$(pgrep -f -- "$BED" || true)
    [ -z "$left" ] || { log "killing leftovers: $left"; kill -KILL $left 2>/dev/null || true; }
  fi
}

status() {
  local name rc=0
  for name in knot dovecot rspamd verifier postfix-out postfix-in; do
    if alive "$name"; then echo "$name running (pid $(cat "$(pidfile "$name")"))"
    else echo "$name stopped"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  reload) knotc -s "$BED/run/knot.sock" zone-reload "${2:?zone}" >/dev/null ;;
  start-one)
    case "${2:?name}" in
      verifier) start_verifier ;;
      postfix-out|postfix-in)
        start_daemon "$2" "$BED/postfix/${2#postfix-}/master.out" \
          /usr/lib/postfix/sbin/master -c "$BED/postfix/${2#postfix-}/etc" -d ;;
      *) die "start-one: $2?" ;;
    esac ;;
  stop-one) stop_one "${2:?name}" ;;
  status-one) if alive "${2:?name}"; then echo running; else echo stopped; fi ;;
  postfix-reload) script -qec "postfix -c $BED/postfix/${2:?out|in}/etc reload" /dev/null >/dev/null ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
