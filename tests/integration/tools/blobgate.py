#!/usr/bin/env python3
"""blobgate.py — an HTTP forwarder in front of a registry that counts blob GETs
and can spoil blob bodies, for the pull-through cache's tests.

    blobgate.py --listen 127.0.0.1:PORT --backend http://127.0.0.1:5000

Every request is forwarded to the backend unchanged (Host included) and its
answer streamed back. Blob GETs (a path with /blobs/<digest>) are counted and
follow the current mode:

    pass        forward as is (the default)
    slow:N      forward at about N bytes per second
    cut         the headers (Content-Length included) and half the body, then
                the connection is closed
    wrong       the headers, then as many bytes as the body has, all of them
                0x5a instead of the blob's (other bytes under the digest path)

Control URL (same port):
    PUT  /_gate/mode     body: the mode
    GET  /_gate/counts   JSON {"/v2/.../blobs/sha256:…": n, …}
    POST /_gate/reset    zero the counts

Python standard library only.
"""
import argparse
import http.client
import http.server
import json
import re
import socketserver
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
MODE = ["pass"]
COUNTS = {}
BLOB = re.compile(r"/blobs/sha256:[0-9a-f]{64}$")
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend = None

    def log_message(self, fmt, *args):
        pass

    def control(self):
        path = self.path
        body = b""
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            body = self.rfile.read(n)
        with LOCK:
            if path == "/_gate/mode" and self.command == "PUT":
                MODE[0] = body.decode().strip()
                out = b"ok\n"
            elif path == "/_gate/counts":
                out = json.dumps(COUNTS).encode()
            elif path == "/_gate/reset":
                COUNTS.clear()
                out = b"ok\n"
            else:
                out = None
        if out is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def forward(self):
        if self.path.startswith("/_gate/"):
            return self.control()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        path_only = urllib.parse.urlsplit(self.path).path
        blob_get = self.command == "GET" and BLOB.search(path_only)
        with LOCK:
            mode = MODE[0]
            if blob_get:
                COUNTS[path_only] = COUNTS.get(path_only, 0) + 1
        b = urllib.parse.urlsplit(self.backend)
        conn = http.client.HTTPConnection(b.hostname, b.port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=hdrs)
        resp = conn.getresponse()
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if length is None and self.command != "HEAD" and resp.status not in (204, 304):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            conn.close()
            return
        spoil = blob_get and resp.status == 200
        self.stream(resp, mode if spoil else "pass", int(length) if length else None)
        conn.close()

    def stream(self, resp, mode, length):
        sent = 0
        rate = int(mode.split(":", 1)[1]) if mode.startswith("slow:") else 0
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            if mode == "cut" and length is not None and sent + len(chunk) > length // 2:
                self.wfile.write(chunk[: length // 2 - sent])
                self.wfile.flush()
                self.close_connection = True
                return
            if mode == "wrong":
                chunk = b"\x5a" * len(chunk)
            self.wfile.write(chunk)
            sent += len(chunk)
            if rate:
                time.sleep(len(chunk) / rate)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--backend", required=True)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    Handler.backend = a.backend
    srv = Server((host, int(port)), Handler)
    print(f"blobgate on {a.listen} -> {a.backend}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
