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
    def __init__(self, lmtp_socket, mode):
        self.lmtp_socket = lmtp_socket
        self.mode = mode

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
        with smtplib.LMTP(self.lmtp_socket) as lmtp:
            lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--lmtp-socket", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "reject-rcpt", "tempfail-data"])
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
    controller = Controller(
        Relay(args.lmtp_socket, args.mode),
        hostname="127.0.0.1",
        port=args.port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
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
