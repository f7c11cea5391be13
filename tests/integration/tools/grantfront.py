#!/usr/bin/env python3
"""grantfront.py — a token realm in front of tokenserver.py, for client tests.

tokenserver.py grants whatever is asked to the one user it knows. This front
adds what the client tests need from a real token service:

  POST /token  grant_type=refresh_token&refresh_token=T&service=S&scope="a b"
               (docker's OAuth2 form, used with identity tokens): when T is
               --identity-token, the token tokenserver.py issues for the scopes;
               else 401.
  GET /token   the token spec's GET. Basic credentials of --as go straight
               through; those of a --user U:P:ACTIONS get a token for their
               scopes with repository actions cut down to ACTIONS (e.g. "pull":
               a user that may read but not push or delete); others 401.

Every request is logged on stdout as one line:
  "post refresh_token_ok=True|False scope=…" or "get user=U scope=…".
"""
import argparse
import base64
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlencode


def basic(creds):
    return "Basic " + base64.b64encode(creds.encode()).decode()


class H(BaseHTTPRequestHandler):
    args = None
    users = {}  # "Basic …" -> (name, set of actions)

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def relay(self, params):
        url = f"http://127.0.0.1:{self.args.upstream}/token?{urlencode(params)}"
        req = urllib.request.Request(url, headers={"Authorization": basic(self.args.as_)})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read()
        self.reply(code, body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        f = parse_qs(self.rfile.read(n).decode())
        ok = (f.get("grant_type") == ["refresh_token"] and self.args.identity_token is not None
              and f.get("refresh_token") == [self.args.identity_token])
        scopes = f.get("scope", [""])[0].split()
        print(f"post refresh_token_ok={ok} scope={' '.join(scopes)}", flush=True)
        if not ok:
            return self.reply(401, b'{"error":"invalid_grant"}')
        self.relay([("service", f.get("service", [""])[0])] + [("scope", s) for s in scopes])

    def do_GET(self):
        params = parse_qsl(self.path.partition("?")[2])
        auth = self.headers.get("Authorization", "")
        if auth == basic(self.args.as_):
            who, allowed = self.args.as_.split(":")[0], None
        elif auth in self.users:
            who, allowed = self.users[auth]
        else:
            print("get user=- refused", flush=True)
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
        out = []
        for k, v in params:
            if k == "scope" and allowed is not None and v.startswith("repository:"):
                typ, _, rest = v.partition(":")
                name, _, actions = rest.rpartition(":")
                keep = [a for a in actions.split(",") if a in allowed]
                v = f"{typ}:{name}:{','.join(keep)}"
            out.append((k, v))
        print(f"get user={who} scope={' '.join(v for k, v in out if k == 'scope')}", flush=True)
        self.relay(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True, help="tokenserver.py's port")
    p.add_argument("--as", dest="as_", required=True, help="USER:PASS tokenserver.py knows")
    p.add_argument("--identity-token")
    p.add_argument("--user", action="append", default=[], help="USER:PASS:ACTIONS")
    H.args = p.parse_args()
    for u in H.args.user:
        name, pw, actions = u.split(":", 2)
        H.users[basic(f"{name}:{pw}")] = (name, set(actions.split(",")))
    ThreadingHTTPServer(("127.0.0.1", H.args.port), H).serve_forever()


if __name__ == "__main__":
    sys.exit(main())
