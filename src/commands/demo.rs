//! `demo`: the exporter against an embedded authoritative DNS server on loopback holding
//! sample domains, some healthy and some broken the way real domains break, so that a
//! newcomer sees real findings on `/` and `/metrics` within seconds, without internet or
//! a config file. The same zones serve the end-to-end tests of the HTTP side.

use std::net::SocketAddr;

use crate::config::Config;
use crate::zone_server::{Fault, ZoneError, ZoneServer};

/// The sample zone `demo.test`. Sending IPs are documentation addresses (record data
/// only: nothing connects to them); every host the exporter could connect to is loopback.
pub const DEMO_ZONE: &str = r#"$ORIGIN demo.test.
$TTL 60
@                      IN SOA ns.demo.test. hostmaster.demo.test. ( 1 3600 600 86400 60 )
@                      IN NS  ns.demo.test.
ns                     IN A   127.0.0.1
_dmarc                 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@demo.test"

; A shared provider include, as many customer domains use.
_spf.provider          IN TXT "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:100::/48 -all"

; healthy: SPF with a provider include, 2048-bit DKIM, DMARC reject, MX, FCrDNS.
healthy                IN TXT "v=spf1 ip4:192.0.2.10 include:_spf.provider.demo.test -all"
s1._domainkey.healthy  IN TXT "v=DKIM1; k=rsa; p=" "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu4W9YD3OQLlAptxUBleKcsOAVZVvswUofYbbEnlk4uX1PHMkCuWuC2Jq8PpS/oIM8uu2L4MwbNpO7oBCA7FkYlcj8MF4FD2JJd0Juz12mg61KM9mW2G7i9Nc/H946urB73dYQZzsSf0lOZ+J585sa9h09YR/" "meA6Yw/TBcopey5dc5Z4rXchF5fIu9mG+jq+DTuckKFlmvZiQ+sXohGXN1MLfXDy7kOF0V38EUaZ1D9wz/iVGe9M2GN16gpCCC5LwjDvXmx+bZeSd6VuX6dhDQIOxCsIebU3wK8nKLxDFmnivL5X41a0sFww7J10O8aYXiRngnVihwYzMZR1K6baiQIDAQAB"
_dmarc.healthy         IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@healthy.demo.test; adkim=s"
healthy                IN MX  10 mx1.healthy.demo.test.
mx1.healthy            IN A   127.0.0.1
mail.healthy           IN A   192.0.2.10
mail.healthy           IN TXT "v=spf1 a -all"
_smtp._tls.healthy     IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@healthy.demo.test"
default._bimi.healthy  IN TXT "v=BIMI1; l=https://healthy.demo.test/logo.svg; a=https://healthy.demo.test/vmc.pem"

; lookups: an SPF tree of 12 DNS-querying terms (2 of them void), and ~all.
lookups                IN TXT "v=spf1 include:a.lookups.demo.test include:b.lookups.demo.test include:g.lookups.demo.test ~all"
a.lookups              IN TXT "v=spf1 include:c.lookups.demo.test include:d.lookups.demo.test a mx -all"
b.lookups              IN TXT "v=spf1 include:e.lookups.demo.test include:f.lookups.demo.test exists:x.lookups.demo.test -all"
c.lookups              IN TXT "v=spf1 ip4:192.0.2.20 -all"
d.lookups              IN TXT "v=spf1 ip4:192.0.2.21 -all"
e.lookups              IN TXT "v=spf1 ip4:192.0.2.22 -all"
f.lookups              IN TXT "v=spf1 include:_spf.provider.demo.test -all"
g.lookups              IN TXT "v=spf1 a:x.lookups.demo.test -all"
x.lookups              IN A   127.0.0.2
lookups                IN MX  10 mx1.healthy.demo.test.
_dmarc.lookups         IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@lookups.demo.test"

; weak: a 1024-bit key in test mode, DMARC p=none without reports, SPF that does not list
; the sender, a sending IP on the demo blocklist, and a BIMI record that DMARC cannot carry.
default._bimi.weak     IN TXT "v=BIMI1; l=https://weak.demo.test/logo.svg"
weak                   IN TXT "v=spf1 ip4:192.0.2.30 ?all"
s1._domainkey.weak     IN TXT "v=DKIM1; k=rsa; t=y; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDoK35svDpaaUUzrBLCwLJY+XalAUBg0Mpv4sMXeSJ14a21J5l1eSYriza37eZKG/2bHEki5zSLxNo5lZEP2EJi65nUx8R9yvPFMYYKOEjwvakcUSC64H76dE5AhsOvcPoSGx4AAwQJ7ZjHjoCkiiud2mgLJwshqsItKT8/c2jPlQIDAQAB"
_dmarc.weak            IN TXT "v=DMARC1; p=none"
weak                   IN MX  10 mx1.weak.demo.test.
mx1.weak               IN A   127.0.0.1

; open: +all, two SPF records, no DMARC of its own, an MX host that does not resolve.
open                   IN TXT "v=spf1 +all"
open                   IN TXT "v=spf1 ip4:192.0.2.40 -all"
open                   IN MX  10 mx1.open.demo.test.
open                   IN MX  20 gone.open.demo.test.
mx1.open               IN A   127.0.0.1

; parked: the parked-domain profile done right.
parked                 IN TXT "v=spf1 -all"
_dmarc.parked          IN TXT "v=DMARC1; p=reject"
parked                 IN MX  0 .

; sloppy-parked: marked parked, but still soft SPF, no DMARC, real MX.
sloppy-parked          IN TXT "v=spf1 ~all"
sloppy-parked          IN MX  10 mx1.healthy.demo.test.

; dnsfail: its server fails (SERVFAIL), so its checks are unknown, not "missing".
dnsfail                IN MX  10 mx1.healthy.demo.test.
"#;

/// A DNS blocklist listing weak.demo.test's sending IP.
pub const DEMO_BLOCKLIST_ZONE: &str = r#"$ORIGIN bl.demo.test.
$TTL 60
@             IN SOA ns.demo.test. hostmaster.demo.test. ( 1 3600 600 86400 60 )
@             IN NS  ns.demo.test.
31.2.0.192    IN A   127.0.0.2
31.2.0.192    IN TXT "demo listing: mail from a compromised account"
"#;

pub const DEMO_REVERSE_ZONE: &str = r#"$ORIGIN 2.0.192.in-addr.arpa.
$TTL 60
@   IN SOA ns.demo.test. hostmaster.demo.test. ( 1 3600 600 86400 60 )
@   IN NS  ns.demo.test.
10  IN PTR mail.healthy.demo.test.
30  IN PTR mail.weak.demo.test.
"#;

/// The demo's domains, as config text (`nameserver` is the embedded server).
pub fn demo_config_text(nameserver: SocketAddr, listen: &str) -> String {
    format!(
        r#"[exporter]
listen_address = "{listen}"
dns_interval = "30s"

[dns]
nameservers = ["{nameserver}"]
timeout = "1s"
attempts = 1
cache_max_ttl = "10s"
blocklists = ["bl.demo.test"]

[[domain]]
name = "healthy.demo.test"
dkim_selectors = ["s1"]
sending_ips = ["192.0.2.10"]
helo = "mail.healthy.demo.test"
expect_dmarc_policy = "reject"

[[domain]]
name = "lookups.demo.test"

[[domain]]
name = "weak.demo.test"
dkim_selectors = ["s1"]
sending_ips = ["192.0.2.31"]
expect_dmarc_policy = "quarantine"

[[domain]]
name = "open.demo.test"

[[domain]]
name = "parked.demo.test"
parked = true

[[domain]]
name = "sloppy-parked.demo.test"
parked = true

[[domain]]
name = "dnsfail.demo.test"
"#
    )
}

/// Why the demo's DNS server did not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoDnsError {
    #[error("cannot start the demo DNS server on {addr}: {source}")]
    Start {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// Starts the embedded DNS server with the demo zones.
pub async fn start_zone_server() -> Result<ZoneServer, DemoDnsError> {
    let server = ZoneServer::start("127.0.0.1".parse().expect("loopback"))
        .await
        .map_err(|source| DemoDnsError::Start {
            addr: "127.0.0.1".into(),
            source,
        })?;
    load_zones(&server)?;
    Ok(server)
}

/// Starts the embedded DNS server with the demo zones on exactly `addr` (a test that
/// starts the exporter before its DNS server).
pub async fn start_zone_server_on(addr: SocketAddr) -> Result<ZoneServer, DemoDnsError> {
    let server = ZoneServer::start_on(addr)
        .await
        .map_err(|source| DemoDnsError::Start {
            addr: addr.to_string(),
            source,
        })?;
    load_zones(&server)?;
    Ok(server)
}

fn load_zones(server: &ZoneServer) -> Result<(), ZoneError> {
    server.set_zone("demo.test", DEMO_ZONE)?;
    server.set_zone("2.0.192.in-addr.arpa", DEMO_REVERSE_ZONE)?;
    server.set_zone("bl.demo.test", DEMO_BLOCKLIST_ZONE)?;
    server.set_fault("dnsfail.demo.test", Some(Fault::ServFail))?;
    Ok(())
}

/// The demo's config, pointing at `server`.
pub fn demo_config(server: &ZoneServer, listen: &str) -> Config {
    Config::parse(&demo_config_text(server.addr(), listen), "demo".as_ref())
        .expect("the demo config is valid")
}
