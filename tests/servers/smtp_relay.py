#!/usr/bin/env python3
"""A submission server for the tests: STARTTLS (or implicit TLS), AUTH PLAIN/LOGIN, and
delivery of every accepted message into Dovecot over LMTP, so that a probe makes a real
round trip. Prints READY <port> on stdout once it listens. Test code, not product code."""
import argparse
import asyncio
import smtplib
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay:
    def __init__(self, lmtp_socket, mode, authres, verifier, verifier_results):
        self.lmtp_socket = lmtp_socket
        self.mode = mode
        self.authres = authres
        self.verifier = verifier
        self.verifier_results = verifier_results

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "reject-rcpt":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "tempfail-data":
            return "451 4.3.0 Try again later"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.deliver, envelope)
        except Exception as exc:  # delivery failure is the client's 451, not a crash
            print(f"delivery failed: {exc}", file=sys.stderr, flush=True)
            return "451 4.3.0 Local delivery failed"
        return "250 2.0.0 Delivered"

    def deliver(self, envelope):
        local = [r for r in envelope.rcpt_tos if r.lower() != self.verifier]
        if local:
            # Stamp what a receiving MTA would: its verdicts, as the test configured them.
            stamp = b""
            if self.authres:
                stamp += f"Authentication-Results: {self.authres.replace('MAILFROM', envelope.mail_from)}\r\n".encode()
                stamp += (
                    f"Received-SPF: pass (receiver: test) client-ip=127.0.0.1; "
                    f"envelope-from=\"{envelope.mail_from}\"; helo=submission.test;\r\n"
                ).encode()
            with smtplib.LMTP(self.lmtp_socket) as lmtp:
                lmtp.sendmail(envelope.mail_from, local, stamp + envelope.original_content)
        if self.verifier and self.verifier in [r.lower() for r in envelope.rcpt_tos]:
            if self.mode == "silent-verifier" or not envelope.mail_from:
                return
            self.reply_as_verifier(envelope)

    def reply_as_verifier(self, envelope):
        """A port25-style report: summary, details, the original headers echoed."""
        headers = envelope.original_content.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        summary = "".join(f"{name + ' check:':<20}{result}\r\n" for name, result in self.verifier_results)
        rule = "=" * 58
        dash = "-" * 58
        body = (
            f"This is an automatic response from the test verifier.\r\n\r\n{rule}\r\nSummary of Results\r\n{rule}\r\n"
            f"{summary}\r\n{rule}\r\nDetails:\r\n{rule}\r\n\r\nSource IP:      127.0.0.1\r\n"
            f"mail-from:      {envelope.mail_from}\r\n\r\n{dash}\r\nSPF check details:\r\n{dash}\r\n"
            f"Result:         {self.verifier_results[0][1]}\r\n\r\n{rule}\r\nOriginal Email\r\n{rule}\r\n\r\n{headers}\r\n"
        )
        reply = (
            f"From: auth-results@{self.verifier.split('@')[1]}\r\nTo: {envelope.mail_from}\r\n"
            f"Subject: Authentication Report\r\n\r\n{body}"
        ).encode()
        with smtplib.LMTP(self.lmtp_socket) as lmtp:
            lmtp.sendmail(self.verifier, [envelope.mail_from], reply)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--lmtp-socket", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "reject-rcpt", "tempfail-data", "silent-verifier"])
    ap.add_argument("--authres", default="", help="Authentication-Results value stamped on delivered mail")
    ap.add_argument("--verifier", default="check-auth@verifier.test", help="address that answers with a report")
    ap.add_argument("--verifier-results", default="SPF=pass,DKIM=pass,DMARC=pass")
    ap.add_argument("--tls-mode", default="starttls", choices=["starttls", "implicit", "none"])
    args = ap.parse_args()
    with open(args.password_file) as f:
        password = f.read().strip()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then answers 535 itself on failure.
        return AuthResult(success=ok, handled=False)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    if args.tls_mode == "implicit":
        tls_kwargs = dict(ssl_context=context, auth_required=True, auth_require_tls=False)
    elif args.tls_mode == "none":
        tls_kwargs = dict(auth_required=False, auth_require_tls=False)
    else:
        tls_kwargs = dict(tls_context=context, require_starttls=True, auth_required=True, auth_require_tls=True)
    controller = Controller(
        Relay(
            args.lmtp_socket,
            args.mode,
            args.authres,
            args.verifier.lower(),
            [tuple(p.split("=", 1)) for p in args.verifier_results.split(",") if "=" in p],
        ),
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticator,
        **tls_kwargs,
        server_hostname="submission.test",
    )
    controller.start()
    print(f"READY {args.port}", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
