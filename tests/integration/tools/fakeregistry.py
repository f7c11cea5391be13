#!/usr/bin/env python3
"""fakeregistry.py — a deliberately misbehaving registry front for client tests.

Things a real registry will not do on demand, so client_api.sh can check
how the client copes:

  GET /v2/                 503 for the first --fail-first requests, then 200
                           (with Docker-Distribution-API-Version unless --not-registry)
  GET /v2/slow/tags/list   answers after 30 s (timeouts)
  GET /v2/redir/blobs/D    307 to http://localhost:PORT/blob (another host name:
                           the client must not send its Authorization there)
  GET /v2/par/manifests/R  a small manifest after 0.3 s; logs "inflight=N max=M"
                           (how many such requests run at once)
  GET /blob                200 with BLOB bytes, ignoring Range (registries that
                           ignore Range); logs whether Authorization came along
With --basic U:P every /v2/ path wants that Basic credential (401 + Basic challenge).
One line per request on stdout: "METHOD PATH status auth=yes|no".
"""
import argparse
import base64
import hashlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOB = b"0123456789abcdefghijklmnopqrstuvwxyz" * 100


class H(BaseHTTPRequestHandler):
    args = None
    lock = threading.Lock()
    v2_count = 0
    inflight = 0
    max_inflight = 0
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def send(self, code, body=b"", headers=None):
        auth = "yes" if self.headers.get("Authorization") else "no"
        print(f"{self.command} {self.path} {code} auth={auth}", flush=True)
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        a = self.args
        api = {} if a.not_registry else {"Docker-Distribution-API-Version": "registry/2.0"}
        if self.path == "/blob":
            return self.send(200, BLOB, {"Content-Type": "application/octet-stream"})
        if a.basic and self.path.startswith("/v2/"):
            want = "Basic " + base64.b64encode(a.basic.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                                 {**api, "WWW-Authenticate": 'Basic realm="fake"'})
        if self.path == "/v2/":
            with H.lock:
                H.v2_count += 1
                n = H.v2_count
            if n <= a.fail_first:
                return self.send(503, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}', api)
            return self.send(200, b"{}", {**api, "Content-Type": "application/json"})
        if self.path == "/v2/slow/tags/list":
            time.sleep(30)
            return self.send(200, b'{"name":"slow","tags":[]}', api)
        if self.path.startswith("/v2/par/manifests/"):
            # Slow manifests that count how many requests are in flight at once.
            with H.lock:
                H.inflight += 1
                H.max_inflight = max(H.max_inflight, H.inflight)
                now = H.inflight
            print(f"inflight={now} max={H.max_inflight}", flush=True)
            time.sleep(0.3)
            with H.lock:
                H.inflight -= 1
            ref = self.path.rsplit("/", 1)[1]
            body = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                    '"ref":"%s"}' % ref).encode()
            dg = "sha256:" + hashlib.sha256(body).hexdigest()
            return self.send(200, body, {**api, "Docker-Content-Digest": dg,
                                         "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        if self.path.startswith("/v2/redir/blobs/"):
            port = self.server.server_address[1]
            return self.send(307, b"", {**api, "Location": f"http://localhost:{port}/blob"})
        return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}', api)

    do_HEAD = do_GET


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--not-registry", action="store_true")
    p.add_argument("--basic")
    H.args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", H.args.port), H)
    srv.daemon_threads = True
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
