#!/usr/bin/env python3
"""faultproxy.py — an HTTP proxy for the integration tests that injects faults.

    faultproxy.py --listen 127.0.0.1:PORT --backend http://127.0.0.1:5000

Forwards every request to the backend (loopback registry) unchanged, Host
header included, so the backend's absolute URLs point back at the proxy.
Rules, changeable while it runs, pick requests by method and a regular
expression on the path (query string included) and make them fail:

    500    answer 500 with a registry-style JSON error body
    hang   accept the request and never answer (until the client gives up)
    close  close the connection without answering
    corrupt  forward the request, then answer the backend's status and headers
           with a 2xx body's bytes inverted (same length and headers, so only a
           client that hashes the body notices; other answers pass unchanged)
    delay  wait "seconds" (a rule field, default 1) before forwarding: requests
           that arrive meanwhile overlap this one

Control URL (on the same port; no registry path starts with /_faultproxy):

    PUT  /_faultproxy/rules   body: JSON list of {"method": "GET"|"*",
                              "path": "<regex>", "action": "500"|"hang"|"close"|
                              "corrupt"|"delay", "seconds": S (delay only),
                              "times": N (optional: only the next N matches)}
                              (replaces every rule; [] clears them)
    GET  /_faultproxy/counts  JSON {"METHOD /path": n, ...} (path without query)
    GET  /_faultproxy/log     JSON ["METHOD /path?query STATUS", ...], every request in
                              arrival order (STATUS: what the client was answered, or
                              "-" when it got no answer)
    POST /_faultproxy/reset   zero the counts and empty the log

Python standard library only. The first matching rule wins. Counts include
requests that a rule failed.
"""
import argparse
import http.client
import http.server
import json
import re
import socketserver
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
RULES = []          # list of [method, compiled regex, action, times left or None, seconds]
COUNTS = {}
REQLOG = []         # "METHOD path?query STATUS" lines, in arrival order
STOP = threading.Event()
LOCAL = threading.local()
INVERT = bytes(255 - i for i in range(256))  # bytes.translate table of b ^ 0xFF
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


def set_rules(spec):
    rules = []
    for r in spec:
        action = str(r["action"])
        if action not in ("500", "hang", "close", "corrupt", "delay"):
            raise ValueError("unknown action " + action)
        times = r.get("times")
        rules.append([r.get("method", "*").upper(), re.compile(r["path"]), action,
                      None if times is None else int(times), float(r.get("seconds", 1))])
    with LOCK:
        RULES[:] = rules


def rule_for(method, path):
    with LOCK:
        for rule in RULES:
            m, rx, action, times, seconds = rule
            if (m == "*" or m == method) and rx.search(path) and times != 0:
                if times is not None:
                    rule[3] = times - 1
                return action, seconds
    return None, 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend = None  # (host, port)

    def log_message(self, fmt, *args):  # quiet: the tests read counts, not logs
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return None

    def _reply(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self, method, path):
        if path == "/_faultproxy/rules" and method in ("PUT", "POST"):
            try:
                set_rules(json.loads(self._body() or b"[]"))
            except (ValueError, KeyError, re.error) as e:
                return self._reply(400, json.dumps({"error": str(e)}).encode())
            return self._reply(200, b"{}")
        if path == "/_faultproxy/counts":
            with LOCK:
                body = json.dumps(COUNTS, sort_keys=True).encode()
            return self._reply(200, body)
        if path == "/_faultproxy/log":
            with LOCK:
                body = json.dumps(REQLOG).encode()
            return self._reply(200, body)
        if path == "/_faultproxy/reset":
            with LOCK:
                COUNTS.clear()
                REQLOG.clear()
            return self._reply(200, b"{}")
        return self._reply(404, b'{"error":"unknown control path"}')

    def _handle(self):
        method = self.command
        path_only = urllib.parse.urlsplit(self.path).path
        if path_only.startswith("/_faultproxy/"):
            return self._control(method, path_only)
        with LOCK:
            key = method + " " + path_only
            COUNTS[key] = COUNTS.get(key, 0) + 1
        body = self._body()
        action, seconds = rule_for(method, self.path)
        status = "-"
        try:
            if action == "delay":
                STOP.wait(seconds)
            status = self._act(method, body, action)
        finally:
            with LOCK:
                REQLOG.append("%s %s %s" % (method, self.path, status))

    def _act(self, method, body, action):
        """Answers the request as the matching rule (or none) says; the status
        the client was sent, or "-" when it got no answer."""
        if action == "500":
            self.close_connection = True
            self._reply(500, b'{"errors":[{"code":"UNKNOWN","message":"faultproxy: injected 500"}]}')
            return 500
        if action == "close":
            self.close_connection = True
            return "-"
        if action == "hang":
            # Keep the connection open, answer nothing; wake up when the
            # proxy stops or the client went away.
            while not STOP.wait(0.5):
                try:
                    self.connection.settimeout(0.01)
                    if self.connection.recv(1, 2) == b"":  # MSG_PEEK: peer closed
                        break
                except (BlockingIOError, TimeoutError, OSError) as e:
                    if not isinstance(e, (BlockingIOError, TimeoutError)):
                        break
            self.close_connection = True
            return "-"
        return self._forward(method, body, action == "corrupt")

    def _forward(self, method, body, corrupt=False):
        # One kept-alive backend connection per client connection (thread).
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        for attempt in (0, 1):
            conn = getattr(LOCAL, "conn", None)
            if conn is None:
                conn = LOCAL.conn = http.client.HTTPConnection(*self.backend, timeout=60)
            try:
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                LOCAL.conn = None
                if attempt:  # a fresh connection failed too
                    self._reply(502, json.dumps({"error": "backend: " + str(e)}).encode())
                    return 502
        if corrupt and data and 200 <= resp.status < 300:
            data = data.translate(INVERT)
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if method != "HEAD" or resp.getheader("Content-Length") is None:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", resp.getheader("Content-Length"))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)
        if resp.will_close:
            conn.close()
            LOCAL.conn = None
        return resp.status

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--backend", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--rules", help="initial rules, JSON (as PUT /_faultproxy/rules)")
    a = ap.parse_args()
    b = urllib.parse.urlsplit(a.backend)
    if b.scheme != "http" or b.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("faultproxy: the backend must be http:// on loopback")
    Handler.backend = (b.hostname, b.port or 80)
    if a.rules:
        set_rules(json.loads(a.rules))
    host, port = a.listen.rsplit(":", 1)
    srv = Server((host, int(port)), Handler)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        STOP.set()


if __name__ == "__main__":
    main()
