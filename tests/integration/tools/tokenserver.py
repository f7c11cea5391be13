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
{"token": JWT, "expires_in": TTL, "issued_at": …}. The JWT is signed with
the openssl CLI (no Python crypto module needed): --alg RS256 (default) or
ES256 (`openssl dgst -sha256 -sign`; the DER ECDSA signature converted to the
JWS r||s form here) or EdDSA (`openssl pkeyutl -sign -rawin`, an Ed25519
key). The header carries the signing certificate in "x5c", which
docker-registry verifies against rootcertbundle; --kid-libtrust names the
key by its libtrust key ID ("kid") instead, --kid KID by KID (a jwks entry).

Policy (enough for tests): with --user U:P (repeatable) every request must
carry one of those Basic credentials (else 401). Without --grant the caller
gets every action it asked for; with --grant USER:GLOB:ACTIONS (repeatable;
USER "*" is anyone, anonymous included; GLOB an fnmatch pattern matched
against a repository name, or against "registry:catalog" for that scope;
ACTIONS comma-separated or "*") it gets only what the grants allow.
--access-token-only answers with "access_token" instead of "token";
--no-expires omits expires_in (clients must assume 60 s).

Mint mode, for tests that need a bad token on purpose: --mint prints one
token and exits, with --sub, --aud (default --service), --iss (default
--issuer), --scope (repeatable), --exp-offset and --nbf-offset (seconds from
now; a negative exp-offset makes an expired token).

Each request is logged to stdout as one line: "token scopes=… user=…".
"""
import argparse
import base64
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
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


def der_ecdsa_to_raw(der: bytes) -> bytes:
    """DER SEQUENCE{INTEGER r, INTEGER s} -> r||s, 32 bytes each (P-256)."""
    if der[0] != 0x30:
        raise ValueError("not a DER ECDSA signature")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER INTEGER")
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(32, b"\0")
        i += 2 + n
    return out


def libtrust_kid(cert_pem: str) -> str:
    """libtrust's key ID: base32 of the first 240 bits of SHA-256(DER SPKI)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_pem, "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def parse_grant(g: str):
    user, rest = g.split(":", 1)
    glob, actions = rest.rsplit(":", 1)
    return user, glob, set(a for a in actions.split(",") if a)


class Issuer:
    def __init__(self, args):
        self.args = args
        self.x5c = cert_der_b64(args.cert)
        self.kid = args.kid or (libtrust_kid(args.cert) if args.kid_libtrust else None)
        self.grants = [parse_grant(g) for g in args.grant or []]

    def sign(self, payload: bytes) -> bytes:
        alg = self.args.alg
        if alg == "EdDSA":
            with tempfile.NamedTemporaryFile() as f:
                f.write(payload)
                f.flush()
                return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", self.args.key,
                                       "-rawin", "-in", f.name],
                                      check=True, capture_output=True).stdout
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.args.key],
                             input=payload, check=True, capture_output=True).stdout
        return der_ecdsa_to_raw(sig) if alg == "ES256" else sig

    def allowed(self, user, typ, name, actions):
        """The subset of actions the grants give user on typ:name."""
        if not self.grants:
            return actions
        target = name if typ == "repository" else f"{typ}:{name}"
        got = set()
        for gu, glob, acts in self.grants:
            if (gu == "*" or gu == user) and fnmatch.fnmatchcase(target, glob):
                got |= set(actions) if "*" in acts else acts & set(actions)
        return [a for a in actions if a in got]

    def token(self, service, scopes, subject, iss=None, exp_offset=None, nbf_offset=-10):
        now = int(time.time())
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            # repository names have no ':'; the last field is the actions
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            acts = self.allowed(subject, typ, name, [a for a in actions.split(",") if a])
            if acts:
                access.append({"type": typ, "name": name, "actions": acts})
        header = {"typ": "JWT", "alg": self.args.alg}
        if self.kid:
            header["kid"] = self.kid
        else:
            header["x5c"] = [self.x5c]
        ttl = self.args.ttl if exp_offset is None else exp_offset
        claims = {"iss": iss or self.args.issuer, "sub": subject or "anonymous", "aud": service,
                  "exp": now + ttl, "nbf": now + nbf_offset, "iat": now,
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
            if self.issuer.args.user and f"{user}:{pw}" not in self.issuer.args.user:
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
    p.add_argument("--port", type=int)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", default="regfs-test-issuer")
    p.add_argument("--service", default="regfs-test")
    p.add_argument("--user", action="append", help="USER:PASS accepted from clients (repeatable)")
    p.add_argument("--alg", choices=["RS256", "ES256", "EdDSA"], default="RS256")
    p.add_argument("--kid-libtrust", action="store_true",
                   help="name the key by its libtrust key ID instead of an x5c chain")
    p.add_argument("--kid", help="name the key by this kid (a jwks entry) instead of x5c")
    p.add_argument("--grant", action="append", help="USER:GLOB:ACTIONS (repeatable)")
    p.add_argument("--mint", action="store_true", help="print one token and exit")
    p.add_argument("--sub", default="")
    p.add_argument("--aud")
    p.add_argument("--iss")
    p.add_argument("--scope", action="append", default=[])
    p.add_argument("--exp-offset", type=int)
    p.add_argument("--nbf-offset", type=int, default=-10)
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--access-token-only", action="store_true")
    p.add_argument("--no-expires", action="store_true")
    args = p.parse_args()
    issuer = Issuer(args)
    if args.mint:
        print(issuer.token(args.aud or args.service, args.scope, args.sub, args.iss,
                           args.exp_offset, args.nbf_offset))
        return 0
    if not args.port:
        p.error("--port is required (or --mint)")
    Handler.issuer = issuer
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening 127.0.0.1:{args.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
