#!/usr/bin/env python3
"""A submission server for the tests: STARTTLS (or implicit TLS), AUTH PLAIN/LOGIN, and
delivery of every accepted message into Dovecot over LMTP, so that a probe makes a real
round trip. Prints READY <port> on stdout once it listens. Test code, not product code."""
import argparse
import asyncio
import smtplib
from email.utils import formatdate
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay:
    def __init__(self, lmtp_socket, mode, authres, verifier, verifier_results, deliver_delay=0.0, pad_bytes=0):
        self.lmtp_socket = lmtp_socket
        self.mode = mode
        self.authres = authres
        self.verifier = verifier
        self.verifier_results = verifier_results
        # Accept first, deliver later (the exporter then waits in IDLE).
        self.deliver_delay = deliver_delay
        # Bytes of filler appended to the mailbox copy (a huge message).
        self.pad_bytes = pad_bytes
        # How the verifier answers: ok | twice | garbage | other-token | bad-mime |
        # dsn-failed (a DSN instead of a report) | delayed (a delay DSN, then the report)
        # (changed at run time by "verifier MODE" lines on stdin).
        self.verifier_mode = "ok"
        # Also stamp what the sending side's policyd-spf writes (and no Received-SPF of the
        # receiver's own): --sender-received-spf.
        self.sender_stamp = False
        # Fields the receiver's spam filter writes, above its hop (--spam-field), and
        # fields the sending side wrote into its message, under a sender-side Received
        # below the hop (--sender-field): a forged verdict the exporter must not read.
        self.spam_fields = []
        self.sender_fields = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "reject-rcpt":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "tempfail-data":
            return "451 4.3.0 Try again later"
        loop = asyncio.get_running_loop()
        if self.deliver_delay > 0:
            def later():
                try:
                    self.deliver(envelope)
                except Exception as exc:
                    print(f"delayed delivery failed: {exc}", file=sys.stderr, flush=True)
            loop.call_later(self.deliver_delay, lambda: loop.run_in_executor(None, later))
            return "250 2.0.0 Queued"
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
            if self.spam_fields or self.sender_fields:
                stamp += "".join(f"{f}\r\n" for f in self.spam_fields).encode()
                stamp += (
                    f"Received: from submission.test (localhost [127.0.0.1]) by mx.receiver.test "
                    f"with ESMTPS id S{id(envelope) & 0xffff:04X}; {formatdate(localtime=False)}\r\n"
                ).encode() if not self.authres else b""
            if self.authres:
                stamp += f"Authentication-Results: {self.authres.replace('MAILFROM', envelope.mail_from)}\r\n".encode()
                if not self.sender_stamp:
                    stamp += (
                        f"Received-SPF: pass (receiver: test) client-ip=127.0.0.1; "
                        f"envelope-from=\"{envelope.mail_from}\"; helo=submission.test;\r\n"
                    ).encode()
                # The receiver's own trace field, below its verdicts (RFC 7208 §9.1): the
                # exporter trusts only what sits in the receiver's part of the header.
                stamp += (
                    f"Received: from submission.test (localhost [127.0.0.1]) by mx.receiver.test "
                    f"with ESMTPS id T{id(envelope) & 0xffff:04X}; {formatdate(localtime=False)}\r\n"
                ).encode()
                if self.sender_stamp:
                    # What a policyd-spf on the *sending* relay writes: its verdict for the
                    # submission client, directly under the receiver's hop.
                    stamp += (
                        f"Received-SPF: pass (sending relay) client-ip=10.0.0.5; "
                        f"envelope-from=\"{envelope.mail_from}\"; helo=laptop.example.test;\r\n"
                        f"Received: from laptop.example.test (unknown [10.0.0.5]) by submission.test "
                        f"with ESMTPSA; {formatdate(localtime=False)}\r\n"
                    ).encode()
            if self.sender_fields:
                stamp += (
                    f"Received: from laptop.example.test (unknown [10.0.0.5]) by submission.test "
                    f"with ESMTPSA; {formatdate(localtime=False)}\r\n"
                ).encode()
                stamp += "".join(f"{f}\r\n" for f in self.sender_fields).encode()
            content = stamp + envelope.original_content
            if self.pad_bytes:
                line = b"X" * 998 + b"\r\n"
                content = content.rstrip(b"\r\n") + b"\r\n" + line * (self.pad_bytes // len(line) + 1)
            with smtplib.LMTP(self.lmtp_socket) as lmtp:
                lmtp.sendmail(envelope.mail_from, local, content)
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
        head = f"From: auth-results@{self.verifier.split('@')[1]}\r\nTo: {envelope.mail_from}\r\nSubject: Authentication Report\r\n"
        mode = self.verifier_mode
        token = next(
            (l.split(":", 1)[1].strip() for l in headers.split("\r\n") if l.lower().startswith("x-mailauth-probe:")),
            "",
        )
        if mode == "garbage":
            # Mentions the token (so it is found) but is no report at all.
            body = f"\x01 garbage {token} \xff\r\n" + "@#$%^&*" * 200 + "\r\n"
        elif mode == "other-token":
            # A well-formed report, for a token this exporter never issued.
            body = body.replace(token, "f" * 32)
        elif mode == "bad-mime":
            # Declared multipart with the report as its first part, then a base64 part
            # that is not base64, an empty message/rfc822 part, a part with a bogus
            # charset, and the closing boundary never written.
            head += 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=b="\r\n'
            body = (
                "preamble\r\n--=b=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
                + "\r\n--=b=\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                "!!!! not base64 ****\r\n--=b=\r\nContent-Type: message/rfc822\r\n\r\n"
                "--=b=\r\nContent-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n"
            )
        reply = (head + "\r\n" + body).encode("utf-8", "surrogateescape")
        if mode in ("dsn-failed", "delayed"):
            action, status = ("failed", "5.1.1") if mode == "dsn-failed" else ("delayed", "4.4.1")
            with smtplib.LMTP(self.lmtp_socket) as lmtp:
                lmtp.sendmail("", [envelope.mail_from], self.dsn(envelope, headers, action, status))
            if mode == "dsn-failed":
                return
        for _ in range(2 if mode == "twice" else 1):
            with smtplib.LMTP(self.lmtp_socket) as lmtp:
                lmtp.sendmail(self.verifier, [envelope.mail_from], reply)


    def dsn(self, envelope, headers, action, status):
        """An RFC 3464 delivery status notification about the probe, as Postfix writes one."""
        rcpt = self.verifier
        return (
            "From: MAILER-DAEMON@submission.test (Mail Delivery System)\r\n"
            f"To: {envelope.mail_from}\r\n"
            f"Subject: {'Undelivered Mail Returned to Sender' if action == 'failed' else 'Delayed Mail (still being retried)'}\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"DSN.B\"\r\n\r\n"
            "This is a MIME-encapsulated message.\r\n\r\n--DSN.B\r\n"
            "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"This is the mail system at host submission.test.\r\n\r\n<{rcpt}>: host mx.verifier.test said: 550 5.1.1 unknown user\r\n\r\n"
            "--DSN.B\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; submission.test\r\n"
            f"Arrival-Date: {formatdate(localtime=False)}\r\n\r\n"
            f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\n"
            f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.verifier.test\r\n"
            f"Diagnostic-Code: smtp; {'550 5.1.1 unknown user' if action == 'failed' else '451 4.4.1 try later'}\r\n\r\n"
            "--DSN.B\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"{headers}\r\n\r\n--DSN.B--\r\n"
        ).encode("utf-8", "surrogateescape")


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
    ap.add_argument("--deliver-delay", type=float, default=0.0, help="accept, then deliver after this many seconds")
    ap.add_argument("--pad-bytes", type=int, default=0, help="filler appended to the mailbox copy")
    ap.add_argument("--spam-field", action="append", default=[], help="a spam filter's field (\"X-Spam-Status: Yes, score=7.10\") stamped above the receiver's hop")
    ap.add_argument("--sender-field", action="append", default=[], help="a field the sending side wrote, under a sender-side Received below the hop")
    ap.add_argument("--sender-received-spf", action="store_true", help="stamp a sending-side Received-SPF under the receiver's hop")
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
    relay = Relay(
        args.lmtp_socket,
        args.mode,
        args.authres,
        args.verifier.lower(),
        [tuple(p.split("=", 1)) for p in args.verifier_results.split(",") if "=" in p],
        args.deliver_delay,
        args.pad_bytes,
    )
    relay.sender_stamp = args.sender_received_spf
    relay.spam_fields = args.spam_field
    relay.sender_fields = args.sender_field
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticator,
        **tls_kwargs,
        server_hostname="submission.test",
    )
    controller.start()
    print(f"READY {args.port}", flush=True)
    try:
        # Runs until the test closes our stdin or kills us; "verifier MODE" lines change
        # how the verifier answers, "delay SECONDS" the delivery delay.
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "verifier":
                relay.verifier_mode = parts[1]
            elif len(parts) == 2 and parts[0] == "delay":
                relay.deliver_delay = float(parts[1])
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
