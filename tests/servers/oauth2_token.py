#!/usr/bin/env python3
"""A small OAuth 2.0 authorization server for the tests, on loopback with TLS.

- POST /token: RFC 6749 §4.4 client credentials and §6 refresh token grants, client
  authentication by client_id/client_secret in the body. Tokens live --expires-in
  seconds. A refresh grant rotates the refresh token (the old one stops working), as
  Microsoft's and Google's endpoints may.
- POST /introspect: RFC 7662 token introspection (what Dovecot's oauth2 passdb asks with
  introspection_mode = post): {"active": true, "username": ...} for a live token.
- Control on standard input, one command a line: `revoke` (the client secret is refused
  with invalid_client), `revoke-refresh` (refresh grants are refused with invalid_grant),
  `restore` (both accepted again), `expires-in N`, `revoke-tokens` (every issued access
  token stops being active).
- --issued FILE: every access and refresh token issued is appended there, for the leak
  test.

Each grant is logged to stderr as `grant <type> ok|refused <error>`, never with a secret
or a token. Prints READY once listening.
"""

import argparse
import http.server
import json
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

STATE = {
    "revoked": False,
    "refresh_revoked": False,
    "expires_in": 3600,
    "tokens": {},  # access token -> expiry (unix time)
    "refresh": set(),  # live refresh tokens
}
LOCK = threading.Lock()


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the default would print the request line only
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 65536)).decode("utf-8", "replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}

    def do_POST(self):
        if self.path == "/token":
            return self.token(self.form())
        if self.path == "/introspect":
            return self.introspect(self.form())
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:1/token")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self.reply(404, {"error": "not_found"})

    def refuse(self, grant, status, error, description):
        log(f"grant {grant} refused {error}")
        return self.reply(status, {"error": error, "error_description": description})

    def token(self, form):
        grant = form.get("grant_type", "")
        with LOCK:
            ok_client = (
                form.get("client_id") == ARGS.client_id
                and form.get("client_secret") == read_secret()
                and not STATE["revoked"]
            )
            if not ok_client:
                return self.refuse(grant, 401, "invalid_client", "client authentication failed")
            issued = {}
            if grant == "client_credentials":
                pass
            elif grant == "refresh_token":
                old = form.get("refresh_token", "")
                if old not in STATE["refresh"] or STATE["refresh_revoked"]:
                    return self.refuse(grant, 400, "invalid_grant", "refresh token unknown or used")
                STATE["refresh"].discard(old)
                new = "rt-" + secrets.token_urlsafe(24)
                STATE["refresh"].add(new)
                issued["refresh_token"] = new
            else:
                return self.refuse(grant, 400, "unsupported_grant_type", "no such grant")
            token = "at-" + secrets.token_urlsafe(32)
            STATE["tokens"][token] = time.time() + STATE["expires_in"]
            if ARGS.issued:
                with open(ARGS.issued, "a", encoding="utf-8") as f:
                    f.write(token + "\n")
                    if "refresh_token" in issued:
                        f.write(issued["refresh_token"] + "\n")
            issued.update(
                {"access_token": token, "token_type": "Bearer", "expires_in": STATE["expires_in"]}
            )
        log(f"grant {grant} ok")
        return self.reply(200, issued)

    def introspect(self, form):
        token = form.get("token", "")
        with LOCK:
            expiry = STATE["tokens"].get(token)
        if expiry is None or expiry < time.time():
            log("introspect inactive")
            return self.reply(200, {"active": False})
        log("introspect active")
        return self.reply(
            200, {"active": True, "username": ARGS.user, "exp": int(expiry), "scope": "mail"}
        )


def read_secret():
    with open(ARGS.client_secret_file, encoding="utf-8") as f:
        return f.read().strip()


def control():
    for line in sys.stdin:
        words = line.split()
        with LOCK:
            if words == ["revoke"]:
                STATE["revoked"] = True
            elif words == ["revoke-refresh"]:
                STATE["refresh_revoked"] = True
            elif words == ["restore"]:
                STATE["revoked"] = False
                STATE["refresh_revoked"] = False
            elif words[:1] == ["expires-in"] and len(words) == 2:
                STATE["expires_in"] = int(words[1])
            elif words == ["revoke-tokens"]:
                STATE["tokens"].clear()
        log(f"control {words[0] if words else ''}")
        print("OK", flush=True)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret-file", required=True)
    p.add_argument("--refresh-token", required=True, help="the first live refresh token")
    p.add_argument("--user", required=True, help="the username introspection reports")
    p.add_argument("--expires-in", type=int, default=3600)
    p.add_argument("--issued", help="append every issued access token to this file")
    ARGS = p.parse_args()
    STATE["expires_in"] = ARGS.expires_in
    STATE["refresh"].add(ARGS.refresh_token)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=control, daemon=True).start()
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
