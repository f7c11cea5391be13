#!/usr/bin/env python3
"""hostile_upstream.py --port P --basic U:P — an upstream registry that misbehaves on
demand, for the pull-through cache's tests (proxy_hostile.sh).

Every /v2/ path wants the Basic credential U:P (401 + Basic challenge otherwise).
The first component of the repository name picks the behaviour:

  good/manifests/R       a valid OCI image manifest (one config, one layer: the blobs
                         below), its Docker-Content-Digest
  spool/manifests/R      the same with three other layers of 64 KiB
  dcdlie/manifests/R     a valid manifest whose Docker-Content-Digest names other bytes
  bydigest/manifests/D   (by digest) a valid manifest that does not hash to D
  big/manifests/R        a valid manifest of --big bytes, correct digest
  endless/manifests/R    a chunked body that goes on for --endless bytes (or until the
                         client hangs up); logs "endless sent=N" with the bytes sent
  badjson/manifests/R    bytes that are not JSON, correct digest
  badtype/manifests/R    a manifest body of mediaType (and Content-Type) application/vnd.evil.v1+json
  manykids/manifests/R   an image index of --kids children, correct digest
  moving/manifests/R     another valid manifest at every GET (the tag moves all the time)
  sha512/manifests/D     the good manifest, Docker-Content-Digest its sha512
  redir/manifests/R      307 to http://localhost:PORT/elsewhere (another host name)
  redirfile/manifests/R  307 to file:///etc/passwd
  /elsewhere             the good manifest; logs whether Authorization came along
  evil/tags/list         tags that are not tag names among good ones
  */blobs/D              D of the good manifest's blobs; else 404
  shortblob/blobs/D      Content-Length of the layer, half of it, then the close
  wrongblob/blobs/D      other bytes of the layer's length
  chunkblob/blobs/D      the layer chunked, with no Content-Length
  endlessblob/blobs/D    chunked, no Content-Length, bytes for --endless bytes (or until
                         the client hangs up); logs "endlessblob sent=N"
  trickleblob/blobs/D    D's Content-Length, then one byte every --trickle seconds
                         (until the file --release/trickleblob exists: then a plain answer)
  stallblob/blobs/D      a layer's Content-Length and half its bytes, then nothing until
                         the file --release/stallblob exists (at most 60 s), then the rest
  stallhead/blobs/D      (a layer) nothing, not even the headers, until the file --release/stallhead
                         exists (at most 60 s), then a plain answer
  evilpage/tags/list     ["p1"] and a next-page Link to http://localhost:PORT/… (another
                         host name); that page (?last=p1) is ["p2"]
  endlesstags/tags/list  pages of 1000 new tags, each linking to a next one, forever
One line per request on stdout: "METHOD PATH status auth=yes|no host=HOST".
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER = bytes(range(256)) * 64


def sha(b, alg="sha256"):
    return alg + ":" + hashlib.new(alg, b).hexdigest()


def desc(mt, b):
    return {"mediaType": mt, "digest": sha(b), "size": len(b)}


def manifest(pad=0, note="good"):
    m = {"schemaVersion": 2, "mediaType": OCI_M,
         "config": desc("application/vnd.oci.image.config.v1+json", CONFIG),
         "layers": [desc("application/vnd.oci.image.layer.v1.tar", LAYER)],
         "annotations": {"note": note}}
    if pad:
        m["annotations"]["pad"] = "x" * pad
    return json.dumps(m, separators=(",", ":")).encode()


GOOD = manifest()
# spool/manifests/R: three more layers (64 KiB each) for the tests of the cache's spool
EXTRA = [b"".join(hashlib.sha256(b"%d-%d" % (i, j)).digest() for j in range(2048))
         for i in range(3)]
SPOOL = json.loads(GOOD)
SPOOL["layers"] = [desc("application/vnd.oci.image.layer.v1.tar", x) for x in EXTRA]
SPOOL = json.dumps(SPOOL, separators=(",", ":")).encode()
BLOBS = {sha(CONFIG): CONFIG, sha(LAYER): LAYER, **{sha(x): x for x in EXTRA}}


class H(BaseHTTPRequestHandler):
    args = None
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    moves = 0

    def log_message(self, fmt, *a):
        pass

    def note(self, code):
        auth = "yes" if self.headers.get("Authorization") else "no"
        host = self.headers.get("Host", "")
        print(f"{self.command} {self.path} {code} auth={auth} host={host}", flush=True)

    def send(self, code, body=b"", headers=None, length=None):
        self.note(code)
        self.send_response(code)
        hdrs = {"Docker-Distribution-API-Version": "registry/2.0", **(headers or {})}
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def man(self, body, ctype=OCI_M, dcd=None):
        return self.send(200, body, {"Content-Type": ctype,
                                     "Docker-Content-Digest": dcd or sha(body)})

    def endless(self):
        self.note(200)
        self.send_response(200)
        self.send_header("Content-Type", OCI_M)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent, chunk = 0, b'{"a":"' + b"x" * 65530
        try:
            while sent < self.args.endless:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                chunk = b"x" * 65536
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        print(f"endless sent={sent}", flush=True)
        self.close_connection = True

    def endless_blob(self, h):
        self.note(200)
        self.send_response(200)
        for k, v in h.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent, chunk = 0, b"y" * 65536
        try:
            while sent < self.args.endless:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        print(f"endlessblob sent={sent}", flush=True)
        self.close_connection = True

    def chunked(self, b, h):
        self.note(200)
        self.send_response(200)
        for k, v in h.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(b), 1000):
            c = b[i:i + 1000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
        self.wfile.write(b"0\r\n\r\n")

    def trickle(self, b, h):
        self.note(200)
        self.send_response(200)
        for k, v in h.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        sent = 0
        try:
            for i in range(len(b)):
                self.wfile.write(b[i:i + 1])
                self.wfile.flush()
                sent += 1
                time.sleep(self.args.trickle)
        except OSError:
            pass
        print(f"trickle sent={sent}", flush=True)
        self.close_connection = True

    def released(self, case):
        return self.args.release and os.path.exists(os.path.join(self.args.release, case))

    def hold(self, case):
        """Waits (bounded) until the test releases `case`."""
        print(f"{self.command} {self.path} held", flush=True)
        for _ in range(600):
            if self.released(case):
                return
            time.sleep(0.1)

    def stall(self, b, h):
        self.note(200)
        self.send_response(200)
        for k, v in h.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        try:
            self.wfile.write(b[: len(b) // 2])
            self.wfile.flush()
            self.hold("stallblob")
            self.wfile.write(b[len(b) // 2:])
            self.wfile.flush()
        except OSError:
            pass
        print("stallblob released", flush=True)

    def manifests(self, case, ref):
        port = self.server.server_address[1]
        if case == "good":
            return self.man(GOOD)
        if case == "spool":
            return self.man(SPOOL)
        if case == "dcdlie":
            return self.man(manifest(note="lie"), dcd=sha(GOOD))
        if case == "bydigest":
            return self.man(manifest(note="other"), dcd=ref if ref.startswith("sha") else None)
        if case == "big":
            return self.man(manifest(pad=self.args.big))
        if case == "endless":
            return self.endless()
        if case == "badjson":
            return self.man(b'{"schemaVersion":2, not json')
        if case == "badtype":
            m = json.loads(GOOD)
            m["mediaType"] = "application/vnd.evil.v1+json"
            return self.man(json.dumps(m).encode(), ctype=m["mediaType"])
        if case == "manykids":
            kids = [{"mediaType": OCI_M, "digest": sha(b"%d" % i), "size": 100}
                    for i in range(self.args.kids)]
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_I,
                               "manifests": kids}).encode()
            return self.man(body, ctype=OCI_I)
        if case == "moving":
            with H.lock:
                H.moves += 1
                n = H.moves
            return self.man(manifest(note="move %d" % n))
        if case == "sha512":
            return self.man(GOOD, dcd=sha(GOOD, "sha512"))
        if case == "redir":
            return self.send(307, b"", {"Location": f"http://localhost:{port}/elsewhere"})
        if case == "redirfile":
            return self.send(307, b"", {"Location": "file:///etc/passwd"})
        return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}')

    def blobs(self, case, d):
        b = BLOBS.get(d)
        if b is None:
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')
        h = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": d}
        if case == "shortblob" and b is LAYER:
            self.send(200, b[: len(b) // 2], h, length=len(b))
            self.close_connection = True
            return None
        if case == "chunkblob" and b is LAYER:
            return self.chunked(b, h)
        if case == "endlessblob":
            return self.endless_blob(h)
        if case == "trickleblob" and not self.released("trickleblob"):
            return self.trickle(b, h)
        if case == "stallblob" and b is not CONFIG and self.command == "GET":
            return self.stall(b, h)
        if case == "stallhead" and b is not CONFIG and self.command == "GET":
            self.hold("stallhead")
        if case == "wrongblob" and b is LAYER:
            return self.send(200, bytes(len(b)), h)
        return self.send(200, b, h)

    def do_GET(self):
        if self.path == "/elsewhere":
            return self.man(GOOD)
        want = "Basic " + base64.b64encode(self.args.basic.encode()).decode()
        if self.headers.get("Authorization") != want:
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                             {"WWW-Authenticate": 'Basic realm="hostile"'})
        parts = self.path.split("?")[0].split("/")
        if self.path == "/v2/":
            return self.send(200, b"{}", {"Content-Type": "application/json"})
        if len(parts) >= 5 and parts[-2] == "manifests":
            return self.manifests(parts[2], parts[-1])
        if len(parts) >= 5 and parts[-2] == "blobs":
            return self.blobs(parts[2], parts[-1])
        if parts[2:] == ["evilpage", "tags", "list"]:
            port = self.server.server_address[1]
            last = "?last=p1" in self.path
            link = {} if last else {
                "Link": f'<http://localhost:{port}/v2/evilpage/tags/list?last=p1>; rel="next"'}
            return self.send(200, json.dumps({"name": "evilpage",
                                              "tags": ["p2" if last else "p1"]}).encode(),
                             {"Content-Type": "application/json", **link})
        if parts[2:] == ["endlesstags", "tags", "list"]:
            page = int(self.path.split("last=p")[1].split("-")[0]) + 1 if "last=" in self.path else 0
            tags = ["p%d-%d" % (page, i) for i in range(1000)]
            link = f'</v2/endlesstags/tags/list?n=1000&last={tags[-1]}>; rel="next"'
            return self.send(200, json.dumps({"name": "endlesstags", "tags": tags}).encode(),
                             {"Content-Type": "application/json", "Link": link})
        if parts[2:] == ["evil", "tags", "list"]:
            tags = ["v1", "..", "../../etc", "a/b", "v2", ".hidden", "x" * 200]
            return self.send(200, json.dumps({"name": "evil", "tags": tags}).encode(),
                             {"Content-Type": "application/json"})
        return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}')

    do_HEAD = do_GET


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--basic", required=True)
    p.add_argument("--big", type=int, default=2 << 20)
    p.add_argument("--endless", type=int, default=64 << 20)
    p.add_argument("--kids", type=int, default=5000)
    p.add_argument("--trickle", type=float, default=3.0)
    p.add_argument("--release", default="", help="directory of the release files")
    H.args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", H.args.port), H)
    srv.daemon_threads = True
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
