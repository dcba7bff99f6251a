#!/usr/bin/env python3
"""Synthetic mail domains as DNS zone files, for the benchmark (bench/run.sh) and its test.

Writes, under OUT:
  zones/<origin>.zone  one zone per customer domain, plus the shared providers' zones, the
                       platform's zone and the reverse zones (127.in-addr.arpa, ip6.arpa)
  zones.txt            the zone origins, one per line (for the DNS server's config)
  domains.txt          the N domains to check, one per line (the exporter's domains file)
  manifest.json        per domain, the problem it was given and the finding codes that
                       problem must produce; plus the check options the zones assume

What the zones look like, and why:
  - A hosting platform (platform.test) sends for all its customers from two IPs,
    127.0.1.1 and 127.0.1.2 (PTR out1/out2.platform.test, forward-confirmed), and every
    customer's SPF includes _spf.platform.test: one record shared by N domains, the case a
    shared DNS cache must turn into one query.
  - Three mail providers with nested includes (pa: three netblock includes; pb: one more
    level; pc: a: and mx: terms). Customers pick none to two of them; some customers add
    their own mx / a terms.
  - About a fifth of the domains have a problem: too many lookups, +all, ?all, no SPF,
    two SPF records, an include of a name with no SPF, a missing or revoked DKIM key,
    no DMARC, p=none, reports to a domain that did not authorise them, an MX host without
    an address.
  - Every tenth domain is a subdomain (news.<customer>) with no DMARC of its own: the
    organisational domain's record applies.
  - Two DKIM selectors (s1, s2) per domain, 2048-bit RSA keys drawn from a small pool
    (generating 20,000 keys would take longer than the benchmark).
  - MX hosts with A and AAAA, and PTR records for every A.
  - Every address is loopback (127.0.0.0/8 or ::1), so that nothing a checker looks up
    can lead it off the machine.
Deterministic for a given --seed.
"""

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile

TTL = 3600
SOA = "@ SOA ns1.platform.test. hostmaster.platform.test. 1 7200 900 1209600 300"
NS = "@ NS ns1.platform.test."
PLATFORM_IPS = ["127.0.1.1", "127.0.1.2"]
SELECTORS = ["s1", "s2"]

# Problem profiles: name, weight (per cent of the non-subdomain domains), finding codes the
# exporter must report for it.
PROBLEMS = [
    ("too_many_lookups", 3, ["spf.too_many_lookups"]),
    ("spf_plus_all", 2, ["spf.all_pass"]),
    ("spf_neutral_all", 2, ["spf.all_neutral"]),
    ("spf_missing", 2, ["spf.missing"]),
    ("spf_multiple", 1, ["spf.multiple_records"]),
    ("spf_include_missing", 1, ["spf.include_missing"]),
    ("dkim_missing", 2, ["dkim.missing"]),
    ("dkim_revoked", 1, ["dkim.revoked"]),
    ("dmarc_missing", 2, ["dmarc.missing"]),
    ("dmarc_none", 3, ["dmarc.policy_none"]),
    ("dmarc_rua_unauthorized", 1, ["dmarc.external_report_unauthorized"]),
    ("mx_unresolvable", 1, ["mx.host_unresolvable"]),
]


def txt(text):
    """A TXT record's text as quoted character-strings of at most 255 bytes."""
    parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def rsa_public_keys(count, cache_dir):
    """`count` 2048-bit RSA public keys (base64 DER), made by openssl and kept in cache_dir."""
    keys = []
    os.makedirs(cache_dir, exist_ok=True)
    for n in range(count):
        path = os.path.join(cache_dir, f"dkim{n}.pub.der")
        if not os.path.exists(path):
            with tempfile.TemporaryDirectory() as tmp:
                private = os.path.join(tmp, "key.pem")
                subprocess.run(["openssl", "genrsa", "-out", private, "2048"],
                               check=True, capture_output=True)
                subprocess.run(["openssl", "rsa", "-in", private, "-pubout", "-outform", "DER",
                                "-out", path], check=True, capture_output=True)
        with open(path, "rb") as f:
            keys.append(base64.b64encode(f.read()).decode())
    return keys


def ip_of(base, i):
    """The i-th address of a /16 inside 127.0.0.0/8: 127.<base>.<hi>.<lo>."""
    return f"127.{base + i // 65536}.{(i // 256) % 256}.{i % 256}"


class Zones:
    def __init__(self):
        self.zones = {}  # origin -> list of lines
        self.ptr = {}  # ipv4 -> name

    def zone(self, origin):
        if origin not in self.zones:
            self.zones[origin] = [f"$ORIGIN {origin}.", f"$TTL {TTL}", SOA, NS]
        return self.zones[origin]

    def add(self, origin, line):
        self.zone(origin).append(line)

    def host(self, origin, label, ip4, ip6=True):
        """A host with A (and AAAA ::1) and the PTR of its IPv4 address."""
        self.add(origin, f"{label} A {ip4}")
        if ip6:
            self.add(origin, f"{label} AAAA ::1")
        fqdn = origin if label == "@" else f"{label}.{origin}"
        self.ptr[ip4] = fqdn

    def write(self, out):
        for ip, name in sorted(self.ptr.items()):
            o = ip.split(".")
            self.add("127.in-addr.arpa", f"{o[3]}.{o[2]}.{o[1]} PTR {name}.")
        self.add("ip6.arpa", "1" + ".0" * 31 + " PTR localhost6.platform.test.")
        zdir = os.path.join(out, "zones")
        os.makedirs(zdir, exist_ok=True)
        for origin, lines in self.zones.items():
            with open(os.path.join(zdir, f"{origin}.zone"), "w") as f:
                f.write("\n".join(lines) + "\n")
        with open(os.path.join(out, "zones.txt"), "w") as f:
            f.write("\n".join(self.zones) + "\n")


def shared_zones(z):
    """The platform, the three providers, and a report receiver that authorises nobody."""
    p = "platform.test"
    z.host(p, "ns1", "127.0.0.53", ip6=False)
    for n, ip in enumerate(PLATFORM_IPS, 1):
        z.host(p, f"out{n}", ip, ip6=False)
    z.add(p, "localhost6 AAAA ::1")
    z.add(p, f"_spf TXT {txt('v=spf1 ip4:127.0.1.0/28 ip6:::1 -all')}")
    z.add(p, "@ MX 10 mx1")
    z.add(p, "@ MX 20 mx2")
    z.host(p, "mx1", "127.0.1.25")
    z.host(p, "mx2", "127.0.1.26")
    z.add(p, f"@ TXT {txt('v=spf1 include:_spf.platform.test -all')}")
    z.add(p, f"_dmarc TXT {txt('v=DMARC1; p=reject; rua=mailto:reports@platform.test')}")
    # Every customer may send its reports here (RFC 7489 §7.1).
    z.add(p, f"*._report._dmarc TXT {txt('v=DMARC1')}")

    a = "pa.test"  # three netblock includes under one
    z.add(a, f"_spf TXT {txt('v=spf1 include:_netblocks.pa.test include:_netblocks2.pa.test include:_netblocks3.pa.test ~all')}")
    z.add(a, f"_netblocks TXT {txt('v=spf1 ip4:127.0.2.0/25 ip4:127.0.2.128/25 ~all')}")
    z.add(a, f"_netblocks2 TXT {txt('v=spf1 ip6:::1/128 ~all')}")
    z.add(a, f"_netblocks3 TXT {txt('v=spf1 ip4:127.0.3.0/24 ~all')}")

    b = "pb.test"  # one include deeper
    z.add(b, f"spf TXT {txt('v=spf1 include:spfd.pb.test -all')}")
    z.add(b, f"spfd TXT {txt('v=spf1 ip4:127.0.4.0/24 ip4:127.0.5.0/24 -all')}")

    c = "pc.test"  # a: and mx: terms in an include
    z.add(c, f"spf TXT {txt('v=spf1 a:smtp.pc.test mx:pc.test ip4:127.0.6.0/24 ~all')}")
    z.host(c, "smtp", "127.0.6.10")
    z.add(c, "@ MX 10 mx")
    z.host(c, "mx", "127.0.6.25")

    o = "other.test"
    z.add(o, "reports A 127.0.7.1")


PROVIDERS = ["include:_spf.pa.test", "include:spf.pb.test", "include:spf.pc.test"]


def customer(z, rng, i, name, keys, problem, subdomain_of=None):
    """One domain's records (a subdomain lives in its parent's zone, without DMARC)."""
    origin = subdomain_of or name
    label = "@" if subdomain_of is None else name[: -len(origin) - 1]
    rel = (lambda s: s) if label == "@" else (lambda s: f"{s}.{label}" if s != "@" else label)

    # MX: a third use the platform's shared MX hosts, the rest their own two.
    own_mx = rng.random() >= 0.33 or problem == "mx_unresolvable"
    if own_mx:
        z.add(origin, f"{rel('@')} MX 10 {rel('mx1')}")
        z.add(origin, f"{rel('@')} MX 20 {rel('mx2')}")
        z.host(origin, rel("mx1"), ip_of(16, i))
        if problem == "mx_unresolvable":
            pass  # mx2 has no address at all
        else:
            z.host(origin, rel("mx2"), ip_of(32, i))
    else:
        z.add(origin, f"{rel('@')} MX 10 mx1.platform.test.")
        z.add(origin, f"{rel('@')} MX 20 mx2.platform.test.")
    z.host(origin, rel("@"), ip_of(48, i), ip6=False)

    # SPF
    terms = ["v=spf1"]
    if own_mx and rng.random() < 0.4:
        terms.append("mx")
    if rng.random() < 0.2:
        terms.append("a")
    terms.append("include:_spf.platform.test")
    if problem == "too_many_lookups":
        terms += ["mx", "a"] + PROVIDERS
    else:
        terms += rng.sample(PROVIDERS, rng.choice([0, 0, 1, 1, 2]))
    if problem == "spf_include_missing":
        terms.append("include:_spf.gone.platform.test")
    if rng.random() < 0.3:
        terms.append(f"ip4:{ip_of(48, i)}")
    terms.append({"spf_plus_all": "+all", "spf_neutral_all": "?all"}.get(
        problem, rng.choice(["-all", "~all"])))
    if problem != "spf_missing":
        z.add(origin, f"{rel('@')} TXT {txt(' '.join(terms))}")
    if problem == "spf_multiple":
        z.add(origin, f"{rel('@')} TXT {txt('v=spf1 include:_spf.platform.test -all')}")
    z.add(origin, f"{rel('@')} TXT {txt(f'google-site-verification=bench{i}')}")

    # DKIM: two selectors, keys from the pool.
    for sel in SELECTORS:
        if problem == "dkim_missing" and sel == "s2":
            continue
        key = "" if problem == "dkim_revoked" and sel == "s2" else rng.choice(keys)
        z.add(origin, f"{rel(sel + '._domainkey')} TXT {txt(f'v=DKIM1; k=rsa; p={key}')}")

    # DMARC (none for subdomains: the organisational domain's record applies).
    if subdomain_of is None and problem != "dmarc_missing":
        policy = "none" if problem == "dmarc_none" else rng.choice(["reject", "quarantine"])
        if problem == "dmarc_rua_unauthorized":
            rua = "mailto:agg@reports.other.test"
        else:
            rua = rng.choice([f"mailto:dmarc@{name}", "mailto:reports@platform.test"])
        record = f"v=DMARC1; p={policy}; rua={rua}"
        if rng.random() < 0.3:
            record += "; adkim=s; aspf=r"
        z.add(origin, f"{rel('_dmarc')} TXT {txt(record)}")
        if policy == "reject" and rng.random() < 0.1:
            z.add(origin, f"{rel('default._bimi')} TXT {txt(f'v=BIMI1; l=https://{name}/logo.svg')}")
    if rng.random() < 0.2:
        z.add(origin, f"{rel('_smtp._tls')} TXT {txt(f'v=TLSRPTv1; rua=mailto:tlsrpt@{name}')}")


def generate(n, out, seed, key_count, key_dir):
    rng = random.Random(seed)
    keys = rsa_public_keys(key_count, key_dir)
    z = Zones()
    shared_zones(z)
    names, manifest = [], {}
    weights = [w for _, w, _ in PROBLEMS]
    healthy_weight = 100 - sum(weights)
    for i in range(n):
        parent = None
        if i % 10 == 9:  # a subdomain of the previous customer
            parent = names[-1] if names[-1].count(".") == 1 else None
        if parent:
            name = f"news.{parent}"
            problem = None
        else:
            name = f"c{i:05d}.test"
            if i < len(PROBLEMS) * 2 and i % 2 == 1:
                # The first domains cover every problem once, so that a small run has them all.
                problem = PROBLEMS[i // 2][0]
            else:
                problem = rng.choices([None] + [p for p, _, _ in PROBLEMS],
                                      [healthy_weight] + weights)[0]
        customer(z, rng, i, name, keys, problem, subdomain_of=parent)
        codes = next((c for p, _, c in PROBLEMS if p == problem), [])
        if parent:
            parent_problem = manifest[parent]["problem"]
            codes = {"dmarc_missing": ["dmarc.missing"],
                     "dmarc_none": ["dmarc.org_domain_fallback", "dmarc.policy_none"]}.get(
                         parent_problem, ["dmarc.org_domain_fallback"])
        names.append(name)
        manifest[name] = {"problem": problem or ("subdomain" if parent else None),
                          "codes": codes}
    z.write(out)
    with open(os.path.join(out, "domains.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        # No sending IPs, as in the first recorded runs: some resolver libraries answer
        # reverse lookups in 127/8 and ::1 themselves, so a PTR check of a loopback sending
        # IP may never reach the server. The PTR records are there for checkers that do
        # ask (MX addresses).
        json.dump({"options": {"dkim_selectors": SELECTORS},
                   "domains": manifest}, f, indent=1)
    return names, z


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, default=1000, help="how many domains (default 1000)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--keys", type=int, default=4, help="DKIM keys in the pool (default 4)")
    ap.add_argument("--key-dir", help="where the keys are kept (default OUT/keys)")
    args = ap.parse_args()
    names, z = generate(args.domains, args.out, args.seed, args.keys,
                        args.key_dir or os.path.join(args.out, "keys"))
    print(f"gen_zones: {len(names)} domains, {len(z.zones)} zones, "
          f"{sum(len(l) for l in z.zones.values())} lines in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
