#!/usr/bin/python3
"""The test bed's echo verifier, a port25 look-alike (test code, not product code).

It accepts every message, evaluates SPF, iprev, DKIM and DMARC on its own against the
bed's DNS server, and mails back an "Authentication Report" in port25's layout (summary,
details, the original message echoed) to the envelope sender through the bed's receiving
MTA. The file named by --mode-file says "reply" or "silent" (accept, never answer); it is
read for every message so that a test can silence the verifier without restarting it.
"""
import argparse
import asyncio
import email.utils
import smtplib
import sys
import time
from email import message_from_bytes
from email.policy import compat32

import dkim
import dns.resolver
import dns.reversename
import spf
from aiosmtpd.controller import Controller

RULE = "=" * 58
DASH = "-" * 58


def make_resolver(nameserver):
    host, _, port = nameserver.partition(":")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port or 53)
    r.cache = None
    r.lifetime = 3
    return r


class Verifier:
    def __init__(self, args):
        self.args = args
        self.resolver = make_resolver(args.nameserver)
        # pyspf asks dnspython's module-level resolver.
        dns.resolver.default_resolver = self.resolver
        self.pending = set()

    # --- DNS helpers -------------------------------------------------------------
    def txt(self, name):
        try:
            answer = self.resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    def dkim_dns(self, name, timeout=5):
        records = self.txt(name.decode() if isinstance(name, bytes) else name)
        return records[0].encode() if records else None

    # --- checks -------------------------------------------------------------------
    def check_spf(self, ip, mailfrom, helo):
        sender = mailfrom or f"postmaster@{helo}"
        result, explanation = spf.check2(i=ip, s=sender, h=helo)
        domain = sender.rsplit("@", 1)[-1]
        return result, explanation, domain, [f'{domain}. TXT "{t}"' for t in self.txt(domain) if t.startswith("v=spf1")]

    def check_iprev(self, ip):
        try:
            names = [str(r).rstrip(".") for r in self.resolver.resolve(dns.reversename.from_address(ip), "PTR")]
        except Exception:
            return "fail", "no PTR", []
        for name in names:
            try:
                if ip in [str(a) for a in self.resolver.resolve(name, "A")]:
                    return "pass", name, names
            except Exception:
                continue
        return "fail", "PTR not forward-confirmed", names

    def check_dkim(self, raw):
        if b"dkim-signature:" not in raw.lower():
            return "none", "no signature", None, None
        d = dkim.DKIM(raw)
        try:
            ok = d.verify(dnsfunc=self.dkim_dns)
        except dkim.DKIMException as exc:
            return "permerror", str(exc), None, None
        domain = d.domain.decode() if d.domain else None
        selector = d.selector.decode() if d.selector else None
        if ok:
            return "pass", "matches", domain, selector
        return "fail", "signature does not verify", domain, selector

    @staticmethod
    def org(domain):
        # The bed's domains sit under one-label TLDs (.test), which are public suffixes.
        return ".".join(domain.lower().split(".")[-2:])

    def check_dmarc(self, from_domain, spf_result, spf_domain, dkim_result, dkim_domain):
        record, at = None, None
        for name in (from_domain, self.org(from_domain)):
            recs = [t for t in self.txt(f"_dmarc.{name}") if t.startswith("v=DMARC1")]
            if recs:
                record, at = recs[0], name
                break
        if record is None:
            return "none", "no DMARC record", None
        tags = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (p.partition("=") for p in record.split(";") if "=" in p)
        )

        def aligned(d, mode):
            if not d:
                return False
            if mode == "s":
                return d.lower() == from_domain.lower()
            return self.org(d) == self.org(from_domain)

        spf_ok = spf_result == "pass" and aligned(spf_domain, tags.get("aspf", "r"))
        dkim_ok = dkim_result == "pass" and aligned(dkim_domain, tags.get("adkim", "r"))
        result = "pass" if (spf_ok or dkim_ok) else "fail"
        return result, f"policy={tags.get('p', '?')} at _dmarc.{at}", f'_dmarc.{at}. TXT "{record}"'

    # --- SMTP ---------------------------------------------------------------------
    async def handle_DATA(self, server, session, envelope):
        try:
            with open(self.args.mode_file) as f:
                mode = f.read().strip()
        except OSError:
            mode = "reply"
        mailfrom = (envelope.mail_from or "").strip("<>")
        if mode == "reply" and mailfrom and not mailfrom.lower().startswith("auth-results@"):
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(
                None, self.answer, session.peer[0], session.host_name or "", mailfrom, envelope.original_content
            )
            self.pending.add(fut)
            fut.add_done_callback(self.pending.discard)
        return "250 2.0.0 Accepted for verification"

    def answer(self, ip, helo, mailfrom, raw):
        try:
            self.reply(ip, helo, mailfrom, raw)
        except Exception as exc:  # a failed reply is logged, never a crash
            print(f"verifier: reply to {mailfrom} failed: {exc!r}", file=sys.stderr, flush=True)

    def reply(self, ip, helo, mailfrom, raw):
        msg = message_from_bytes(raw, policy=compat32)
        from_domain = email.utils.parseaddr(msg.get("From", ""))[1].rpartition("@")[2]
        spf_result, spf_expl, spf_domain, spf_records = self.check_spf(ip, mailfrom, helo)
        iprev_result, iprev_note, ptr_names = self.check_iprev(ip)
        dkim_result, dkim_note, dkim_domain, dkim_selector = self.check_dkim(raw)
        dmarc_result, dmarc_note, dmarc_record = self.check_dmarc(
            from_domain, spf_result, spf_domain, dkim_result, dkim_domain
        )
        summary = [
            ("SPF check:", spf_result),
            ('"iprev" check:', iprev_result),
            ("DKIM check:", dkim_result),
            ("DMARC check:", dmarc_result),
        ]
        lines = [
            "This message is an automatic response from the mailauth e2e verifier.",
            "",
            "The results of the authentication checks of your message follow.",
            "",
            RULE, "Summary of Results", RULE,
            *[f"{name:<20}{result}" for name, result in summary],
            "",
            RULE, "Details:", RULE,
            "",
            f"HELO hostname:  {helo}",
            f"Source IP:      {ip}",
            f"mail-from:      {mailfrom}",
            "",
            DASH, "SPF check details:", DASH,
            f"Result:         {spf_result} ({spf_expl})",
            f"ID(s) verified: smtp.mailfrom={mailfrom}",
            "DNS record(s):",
            *[f"    {r}" for r in spf_records],
            "",
            DASH, '"iprev" check details:', DASH,
            f"Result:         {iprev_result} ({iprev_note})",
            f"ID(s) verified: policy.iprev={ip}",
            "DNS record(s):",
            *[f"    {ip} PTR {n}" for n in ptr_names],
            "",
            DASH, "DKIM check details:", DASH,
            f"Result:         {dkim_result} ({dkim_note})",
            f"ID(s) verified: header.d={dkim_domain or ''}",
            f"Canonicalized Headers: selector={dkim_selector or ''}",
            "",
            DASH, "DMARC check details:", DASH,
            f"Result:         {dmarc_result} ({dmarc_note})",
            f"ID(s) verified: header.From={from_domain}",
            "DNS record(s):",
            *([f"    {dmarc_record}"] if dmarc_record else []),
            "",
            RULE, "Original Email", RULE,
            "",
        ]
        original = raw.decode("utf-8", "replace").replace("\r\n", "\n")
        body = "\r\n".join(lines) + "\r\n" + original.replace("\n", "\r\n")
        reply = (
            f"From: Authentication Report <auth-results@{self.args.hostname}>\r\n"
            f"To: {mailfrom}\r\n"
            f"Subject: Authentication Report\r\n"
            f"Date: {email.utils.formatdate(time.time())}\r\n"
            f"Message-ID: {email.utils.make_msgid(domain=self.args.hostname)}\r\n"
            f"Auto-Submitted: auto-replied\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"\r\n{body}"
        ).encode("utf-8")
        with smtplib.SMTP(self.args.relay, 25, local_hostname=self.args.hostname,
                          source_address=(self.args.listen, 0), timeout=10) as s:
            s.sendmail(f"auth-results@{self.args.hostname}", [mailfrom], reply)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--nameserver", required=True, help="IP[:PORT] of the bed's DNS server")
    ap.add_argument("--relay", required=True, help="the receiving MTA that replies go through (port 25)")
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--hostname", default="verifier.test")
    args = ap.parse_args()
    controller = Controller(Verifier(args), hostname=args.listen, port=args.port,
                            server_hostname=args.hostname)
    controller.start()
    print(f"verifier listening on {args.listen}:{args.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    # SIGTERM ends the process like Ctrl-C, so the controller's thread stops cleanly.
    import signal
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    main()
