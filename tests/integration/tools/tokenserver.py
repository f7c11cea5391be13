#!/usr/bin/env python3
"""tokenserver.py — a tiny Docker registry token issuer for tests.

Implements the token endpoint of the Docker registry token authentication
spec that docker-registry (distribution 2.8) trusts with

    auth:
      token:
        realm: http://127.0.0.1:PORT/token
        service: SERVICE
        issuer: ISSUER
        rootcertbundle: CERT.pem

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=…] answers
{"token": JWT, "expires_in": TTL, "issued_at": …}. The JWT is RS256, signed
with the openssl CLI (no Python crypto module needed), and carries the
signing certificate in its "x5c" header, which docker-registry verifies
against rootcertbundle.

Policy (enough for tests): with --user U:P every request must carry that
Basic credential (else 401); the caller then gets every action it asked for.
--access-token-only answers with "access_token" instead of "token";
--no-expires omits expires_in (clients must assume 60 s).

Each request is logged to stdout as one line: "token scopes=… user=…".
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(cert_pem: str) -> str:
    der = subprocess.run(["openssl", "x509", "-in", cert_pem, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


class Issuer:
    def __init__(self, args):
        self.args = args
        self.x5c = cert_der_b64(args.cert)

    def sign(self, payload: bytes) -> bytes:
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.args.key],
                              input=payload, check=True, capture_output=True).stdout

    def token(self, service, scopes, subject):
        now = int(time.time())
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            # repository names have no ':'; the last field is the actions
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            access.append({"type": typ, "name": name,
                           "actions": [a for a in actions.split(",") if a]})
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.args.issuer, "sub": subject or "anonymous", "aud": service,
                  "exp": now + self.args.ttl, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(self.sign(signing_input.encode()))


class Handler(BaseHTTPRequestHandler):
    issuer = None

    def log_message(self, fmt, *a):  # keep stdout for our one-line records
        pass

    def reply(self, code, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        if u.path != "/token":
            return self.reply(404, {"error": "not found"})
        q = parse_qs(u.query)
        service = q.get("service", [""])[0]
        scopes = q.get("scope", [])
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                user, pw = None, None
            if self.issuer.args.user and f"{user}:{pw}" != self.issuer.args.user:
                user = None
        print(f"token scopes={' '.join(scopes) or '-'} user={user or '-'}", flush=True)
        if self.issuer.args.user and not user:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "bad or missing credentials"}]},
                              {"WWW-Authenticate": 'Basic realm="tokenserver"'})
        if service != self.issuer.args.service:
            return self.reply(400, {"error": f"unknown service {service!r}"})
        tok = self.issuer.token(service, scopes, user)
        body = {"issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        body["access_token" if self.issuer.args.access_token_only else "token"] = tok
        if not self.issuer.args.no_expires:
            body["expires_in"] = self.issuer.args.ttl
        self.reply(200, body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", default="regfs-test-issuer")
    p.add_argument("--service", default="regfs-test")
    p.add_argument("--user", help="USER:PASS required from clients")
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--access-token-only", action="store_true")
    p.add_argument("--no-expires", action="store_true")
    args = p.parse_args()
    Handler.issuer = Issuer(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening 127.0.0.1:{args.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
