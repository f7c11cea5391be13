#!/usr/bin/env python3
"""hostile.py HOST:PORT — the hostile-request table, run against a registry.

Each row is a raw HTTP request (bytes, or a small generator of them) sent on
its own TCP connection, and the set of answers it may get: a status ("416"),
a status with the error code of its JSON body ("404/BLOB_UPLOAD_UNKNOWN"),
"4xx" (any 400-499) and, for bodies the client cuts short, "closed" (the
server closed the connection without an answer once the client half-closed).
Anything else fails the row: a 5xx, "hang" (no answer and no close within
ROW_TIMEOUT seconds), "garbage" (bytes that are not a status line), or a
status outside the set.

While the table runs, a well-behaved client GETs the stored manifest in a
loop on its own connections (each answer must be 200 with the stored
digest), and after every CHECK_EVERY rows GET /v2/ must answer 200.

Environment (written by registry_hostile_table.sh, which stored them first):
  REPO    repository holding the blob BLOB, the config CFG and manifest MAN (tag v1)
  BLOB, CFG, MAN   their digests; MAN_TYPE the manifest's media type
  SESS_A  path of an upload session started in another repository than
  SESS_REPO_B  (whose path must not reach SESS_A's session)
Options: --report (no background client, no checks between rows, exit 0: the
comparison run against another registry, where nothing is asserted).

Output: one line per row, "ok|FAIL|todo<TAB>name<TAB>got<TAB>expected[<TAB>why]",
then (not with --report) "served:" lines for the between-row and background
checks, and a "summary: rows N failed N todo N 5xx N (500: N) no-status N"
line last. Exit status 0 when no row failed and every client was served.
"""
import hashlib
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

ROW_TIMEOUT = float(os.environ.get("HOSTILE_ROW_TIMEOUT", "5"))
CHECK_EVERY = 10

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
report_only = "--report" in sys.argv[2:]
E = os.environ
REPO = E.get("REPO", "hostile/t")
BLOB, CFG, MAN = E.get("BLOB", "sha256:" + "0" * 64), E.get("CFG", ""), E.get("MAN", "")
MAN_TYPE = E.get("MAN_TYPE", "application/vnd.oci.image.manifest.v1+json")
SESS_A = E.get("SESS_A", "/v2/hostile/a/blobs/uploads/none")
REPO_B = E.get("SESS_REPO_B", "hostile/b")
HEX = BLOB.split(":", 1)[1]


# --- building requests -------------------------------------------------------------
def req(method, path, headers=(), body=b"", length=True, close=True):
    """A request: Host, the given headers, Content-Length of body when length
    is True (an int: that value instead; False: none), Connection: close."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += list(headers)
    if length is True and (body or method in ("PUT", "POST", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    elif length is not True and length is not False:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
    return head + (body if isinstance(body, bytes) else body.encode("latin-1"))


def manifest(config=None, layers=None, media_type=MAN_TYPE, **extra):
    m = {"schemaVersion": 2, "mediaType": media_type,
         "config": config or {"mediaType": "application/vnd.oci.image.config.v1+json",
                              "digest": CFG, "size": 2},
         "layers": layers if layers is not None else
         [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": BLOB, "size": 4096}]}
    m.update(extra)
    return json.dumps(m).encode()


def put_man(ref, body, ctype=MAN_TYPE, repo=None, **kw):
    return req("PUT", f"/v2/{repo or REPO}/manifests/{ref}", [f"Content-Type: {ctype}"], body, **kw)


def layer(digest, size=1):
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}


def new_session(repo):
    """Starts an upload session in repo (well-behaved); its path."""
    c = http.client.HTTPConnection(host, port, timeout=ROW_TIMEOUT)
    c.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"", headers={"Content-Length": "0"})
    r = c.getresponse()
    r.read()
    loc = r.getheader("Location") or f"/v2/{repo}/blobs/uploads/none"
    c.close()
    return loc.split(f"{host}:{port}", 1)[-1]


def addq(loc, q):
    """loc with the query parameter q added."""
    return loc + ("&" if "?" in loc else "?") + q


def patch(loc, body, extra=(), length=True):
    return req("PATCH", loc, ["Content-Type: application/octet-stream"] + list(extra), body,
               length=length)


def chunked(method, path, raw_body, extra=()):
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked",
            "Connection: close"] + list(extra)
    return "\r\n".join(head).encode() + b"\r\n\r\n" + raw_body


U = "application/octet-stream"
Z64 = "0" * 64
ROWS = []  # (name, request bytes or callable -> bytes, expected set, half_close, todo)

# A row may carry todo="why": a known gap, run and printed as "todo" while it
# fails, "ok" once it passes, never counted as a failure. None today.


# what a row of the current section may get unless it says otherwise
DEFAULT = ["4xx"]


def row(name, request, expect=None, half_close=False, todo=None):
    ROWS.append((name, request, set((expect or DEFAULT[0]).split()), half_close, todo))


# --- the table ---------------------------------------------------------------------
def names():
    DEFAULT[0] = "400/NAME_INVALID 404/NAME_UNKNOWN"
    R = REPO
    row("name climbs: /v2/../../etc/passwd/manifests/v1", req("GET", "/v2/../../etc/passwd/manifests/v1"))
    row("name climbs: hostile/../t", req("GET", "/v2/hostile/../t/manifests/v1"))
    row("name climbs: %2e%2e component", req("GET", "/v2/hostile/%2e%2e/t/manifests/v1"))
    row("name climbs: %2e%2e/%2e%2e tags", req("GET", "/v2/%2e%2e/%2e%2e/%2e%2e/tags/list"))
    row("name climbs on PUT manifest", put_man("v1", manifest(), repo="hostile/../../x"))
    row("name climbs on upload start (%2e%2e%2f)", req("POST", "/v2/hostile/%2e%2e%2f%2e%2e/blobs/uploads/"))
    row("name starts with ./", req("GET", f"/v2/./{R}/tags/list"))
    row("name with an empty component", req("GET", "/v2/hostile//t/tags/list"))
    row("name in uppercase", req("GET", "/v2/Hostile/T/tags/list"))
    row("name of 256 characters", req("GET", "/v2/" + "a" * 256 + "/tags/list"))
    row("name of 150 components (299 characters)", req("GET", "/v2/" + "a/" * 149 + "a/tags/list"))
    row("name of 8000 characters", req("GET", "/v2/" + "ab/" * 2666 + "c/tags/list"))
    row("encoded slash in the name (%2f)", req("GET", f"/v2/{R.replace('/', '%2f')}/tags/list"))
    row("encoded slash in the name (%2F), manifest", req("GET", f"/v2/{R.replace('/', '%2F')}/manifests/v1"))
    row("encoded slashes around the endpoint", req("GET", f"/v2/{R}%2fmanifests%2fv1"))
    row("backslash in the name", req("GET", "/v2/hostile%5ct/tags/list"))
    row("space in the name", req("GET", "/v2/hostile/t%20x/tags/list"))
    row("name starting with _", put_man("v1", manifest(), repo="_x"))


def digests():
    DEFAULT[0] = "400/DIGEST_INVALID 404/BLOB_UNKNOWN 404/MANIFEST_UNKNOWN"
    R = REPO
    b = f"/v2/{R}/blobs/"
    row("digest too short", req("GET", b + "sha256:abc"))
    row("digest in uppercase hex", req("GET", b + "sha256:" + HEX.upper()))
    row("digest of an unknown algorithm (md5)", req("GET", b + "md5:" + "0" * 32))
    row("digest 'sha256:' alone", req("GET", b + "sha256:"))
    row("digest of 65 hex digits", req("GET", b + "sha256:" + HEX + "0"))
    row("digest of 63 hex digits", req("GET", b + "sha256:" + HEX[:63]))
    row("digest without algorithm", req("GET", b + ":" + HEX))
    row("digest algorithm in uppercase", req("GET", b + "SHA256:" + HEX))
    row("digest with non-hex digits", req("GET", b + "sha256:" + "g" * 64))
    row("sha512 with 64 digits", req("GET", b + "sha512:" + HEX))
    row("DELETE blob by uppercase digest", req("DELETE", b + "sha256:" + HEX.upper()))
    row("HEAD manifest by a 63-digit digest", req("HEAD", f"/v2/{R}/manifests/sha256:{HEX[:63]}"), "400 404")
    row("referrers of an invalid digest", req("GET", f"/v2/{R}/referrers/sha256:abc"))
    row("monolithic upload, ?digest= invalid",
        req("POST", f"/v2/{R}/blobs/uploads/?digest=sha256:zz", [f"Content-Type: {U}"], b"hello"), "400/DIGEST_INVALID")
    row("monolithic upload, wrong digest",
        req("POST", f"/v2/{R}/blobs/uploads/?digest=sha256:{Z64}", [f"Content-Type: {U}"], b"hello"),
        "400/DIGEST_INVALID")
    row("finish upload with an invalid digest",
        lambda: req("PUT", addq(new_session(R), "digest=sha256:ZZ"), [f"Content-Type: {U}"], b"x"), "400/DIGEST_INVALID")


def references():
    DEFAULT[0] = "4xx"
    m = f"/v2/{REPO}/manifests/"
    row("tag starting with '-'", req("GET", m + "-v1"))
    row("tag starting with '.'", req("GET", m + ".hidden"))
    row("tag of 129 characters", req("GET", m + "t" * 129))
    row("PUT tag of 200 characters", put_man("t" * 200, manifest()), "400/TAG_INVALID")
    row("PUT reference with a colon, not a digest", put_man("a:b", manifest()), "400/DIGEST_INVALID 400/TAG_INVALID")
    row("PUT tag with a space (%20)", put_man("v1%20x", manifest()), "400/TAG_INVALID")
    row("PUT tag of non-ASCII bytes (%c3%a9)", put_man("%c3%a9", manifest()), "400/TAG_INVALID")
    row("CR/LF in the tag (header injection)", req("GET", m + "v1%0d%0aX-Injected:%201"))
    row("PUT LF in the tag", put_man("a%0ab", manifest()))
    row("DELETE tag with '*'", req("DELETE", m + "v*"))


def headers():
    DEFAULT[0] = "4xx"
    g = f"GET /v2/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
    # obs-fold, a bare CR and a NUL in a value: RFC 9112 (5.2, 2.2) and RFC 9110 (5.5) let
    # a server refuse them (400) or replace them with SP; libmicrohttpd 0.9.75 passes the
    # request on (200), which a proxy in front may read differently: refused is expected.
    # A HTTP/1.1 request without Host MUST be answered 400 (RFC 9112 3.2).
    row("header line without a colon", (g + "Garbage\r\nConnection: close\r\n\r\n").encode())
    row("obs-fold continuation line", (g + "X-A: 1\r\n  folded\r\nConnection: close\r\n\r\n").encode())
    row("header name with a space before the colon", (g + "X-A : 1\r\nConnection: close\r\n\r\n").encode())
    row("bare CR inside a header value", (g + "X-A: a\rb\r\nConnection: close\r\n\r\n").encode())
    row("NUL inside a header value", (g + "X-A: a\x00b\r\nConnection: close\r\n\r\n").encode("latin-1"))
    row("one header of 100 KB", (g + "X-Big: " + "a" * 100000 + "\r\nConnection: close\r\n\r\n").encode())
    row("1000 headers", (g + "".join(f"X-H{i}: {i}\r\n" for i in range(1000)) + "Connection: close\r\n\r\n").encode())
    row("request line of 100 KB", req("GET", "/v2/" + "a" * 100000))
    row("HTTP/1.1 without Host", b"GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n")
    row("HTTP version 2.0 on a request line", b"GET /v2/ HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
        "4xx 505")


def methods():
    DEFAULT[0] = "4xx 501"
    row("TRACE", req("TRACE", "/v2/"), "4xx 501")
    row("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
        "4xx 501")
    row("PROPFIND", req("PROPFIND", f"/v2/{REPO}/tags/list"), "4xx 501")
    row("lowercase method", req("get", "/v2/"), "4xx 501")
    row("method of 1000 letters", req("X" * 1000, "/v2/"), "4xx 501")
    row("PATCH a manifest", req("PATCH", f"/v2/{REPO}/manifests/v1", [f"Content-Type: {U}"], b"x"))
    row("POST a manifest", put_man("v1", manifest()).replace(b"PUT ", b"POST ", 1))
    row("DELETE the catalog", req("DELETE", "/v2/_catalog"))
    row("PUT /v2/", req("PUT", "/v2/", body=b"x"))


def manifests():
    DEFAULT[0] = "400/MANIFEST_INVALID"
    row("manifest: truncated JSON", put_man("bad", b'{"schemaVersion":2,'))
    row("manifest: a JSON array", put_man("bad", b"[]"))
    row("manifest: 100000 nested arrays", put_man("bad", b"[" * 100000 + b"]" * 100000))
    row("manifest: 20000 nested objects in annotations",
        put_man("bad", manifest()[:-1] + b', "x":' + b'{"a":' * 20000 + b"1" + b"}" * 20000 + b"}"))
    row("manifest: 20000 layers none of which exists",
        put_man("bad", manifest(layers=[layer("sha256:%064x" % i) for i in range(20000)])),
        "400/MANIFEST_BLOB_UNKNOWN 400/MANIFEST_INVALID")
    # under 4 MiB but costly to parse; the unknown layer refuses them after the parse
    nowhere = [layer("sha256:" + Z64)]
    row("manifest: 250000 annotation keys (JSON bomb)",
        put_man("bad", manifest(layers=nowhere, annotations={f"k{i}": "" for i in range(250000)})),
        "400/MANIFEST_BLOB_UNKNOWN 400/MANIFEST_INVALID 413")
    row("manifest: 3.5 MB of \\uXXXX escapes",
        put_man("bad", manifest(layers=nowhere)[:-1] + b', "x": "' + b"\\u00e9" * 600000 + b'"}'),
        "400/MANIFEST_BLOB_UNKNOWN 400/MANIFEST_INVALID 413")
    row("manifest of 5 MiB", put_man("big", manifest(annotations={"x": "a" * (5 << 20)})), "413 400/MANIFEST_INVALID")
    row("manifest: schemaVersion 1", put_man("bad", json.dumps({"schemaVersion": 1, "name": "x"}).encode()))
    row("manifest: layer with an invalid digest", put_man("bad", manifest(layers=[layer("sha256:xyz")])))
    row("manifest: layer with a negative size", put_man("bad", manifest(layers=[layer(BLOB, -1)])))
    row("manifest: size 1e400", put_man("bad", manifest().replace(b'"size": 4096', b'"size": 1e400')))
    row("manifest: media type differs from Content-Type",
        put_man("bad", manifest(), ctype="application/vnd.oci.image.index.v1+json"))
    row("manifest: a layer that is not stored", put_man("bad", manifest(layers=[layer("sha256:" + Z64)])),
        "400/MANIFEST_BLOB_UNKNOWN")
    row("manifest PUT by a digest it does not hash to", put_man("sha256:" + Z64, manifest()), "400/DIGEST_INVALID")
    row("manifest: invalid UTF-8", put_man("bad", manifest()[:-1] + b', "x": "\xff\xfe"}'))
    row("manifest: \\u0000 in a string", put_man("bad", manifest(annotations={"a": "b\u0000c"})))


def bodies():
    DEFAULT[0] = "4xx"
    R = REPO
    row("body shorter than Content-Length (client half-closes)",
        put_man("trunc", manifest(), length=1000), "4xx closed", half_close=True)
    row("body longer than Content-Length (the rest is not a request)",
        req("POST", f"/v2/{R}/blobs/uploads/?digest=sha256:{Z64}", [f"Content-Type: {U}"],
            b"AAAAA" + b"GARBAGE / HTTP/1.1\r\n\r\n" * 3, length=5))
    row("Content-Length: -1", req("PUT", f"/v2/{R}/manifests/cl", [f"Content-Type: {MAN_TYPE}"], b"{}", length=-1))
    row("Content-Length: abc", req("PUT", f"/v2/{R}/manifests/cl", [f"Content-Type: {MAN_TYPE}"], b"{}", length="abc"))
    row("Content-Length of 23 digits",
        req("PUT", f"/v2/{R}/manifests/cl", [f"Content-Type: {MAN_TYPE}"], b"{}", length="9" * 23), "4xx closed",
        half_close=True)
    row("Content-Length: 1e3", req("PUT", f"/v2/{R}/manifests/cl", [f"Content-Type: {MAN_TYPE}"], b"{}", length="1e3"))
    row("two different Content-Length",
        req("POST", f"/v2/{R}/blobs/uploads/", ["Content-Length: 5", "Content-Length: 10"], b"AAAAA", length=False))


def chunks():
    DEFAULT[0] = "4xx"
    R = REPO
    row("chunked: size 'zz'", lambda: chunked("PATCH", new_session(R), b"zz\r\nAAAA\r\n0\r\n\r\n"))
    row("chunked: size larger than sent (client half-closes)",
        lambda: chunked("PATCH", new_session(R), b"100\r\nAAAA"), "4xx closed", half_close=True)
    row("chunked: negative size", lambda: chunked("PATCH", new_session(R), b"-5\r\nAAAAA\r\n0\r\n\r\n"))
    row("chunked: size of 20 hex digits",
        lambda: chunked("PATCH", new_session(R), b"ffffffffffffffffffff\r\nAAAA\r\n0\r\n\r\n"))
    row("chunked: data longer than its size", lambda: chunked("PATCH", new_session(R), b"2\r\nAAAAA\r\n0\r\n\r\n"))
    row("chunked monolithic upload, wrong digest",
        chunked("POST", f"/v2/{R}/blobs/uploads/?digest=sha256:{Z64}", b"5\r\nAAAAA\r\n0\r\n\r\n",
                [f"Content-Type: {U}"]))


def ranges():
    DEFAULT[0] = "4xx"
    R = REPO
    cr = lambda v, body=b"0123456789": lambda: patch(new_session(R), body, [f"Content-Range: {v}"])
    row("Content-Range 0-99 for 10 bytes", cr("0-99"), "416")
    row("Content-Range overflowing 64 bits", cr("0-99999999999999999999999"), "416")
    row("Content-Range starting after the stored size", cr("5-14"), "416")
    row("Content-Range end before start", cr("bytes=9-0"), "400 416")
    row("Content-Range 'abc'", cr("abc"), "400 416")
    row("Content-Range '-5'", cr("-5"), "400 416")
    row("PUT finishing an upload with a Content-Range lie",
        lambda: req("PUT", addq(new_session(R), f"digest={BLOB}"),
                    [f"Content-Type: {U}", "Content-Range: 100-109"], b"0123456789"), "400 416")


def sessions():
    DEFAULT[0] = "4xx"
    sid = SESS_A.rsplit("/", 1)[-1]
    other = f"/v2/{REPO_B}/blobs/uploads/{sid}"
    row("PATCH another repository's session", patch(other, b"evil"), "404/BLOB_UPLOAD_UNKNOWN")
    row("GET another repository's session", req("GET", other), "404/BLOB_UPLOAD_UNKNOWN")
    row("PUT another repository's session",
        req("PUT", addq(other, f"digest={BLOB}"), [f"Content-Type: {U}"], b"x"), "404/BLOB_UPLOAD_UNKNOWN")
    row("DELETE another repository's session", req("DELETE", other), "404/BLOB_UPLOAD_UNKNOWN")
    row("PATCH a session id that climbs", patch(f"/v2/{REPO}/blobs/uploads/..%2f..%2f_layers", b"x"))
    row("PATCH an unknown session id", patch(f"/v2/{REPO}/blobs/uploads/00000000-0000-0000-0000-000000000000", b"x"),
        "404/BLOB_UPLOAD_UNKNOWN")
    row("PATCH a session id of 500 characters", patch(f"/v2/{REPO}/blobs/uploads/{'a' * 500}", b"x"))


def mounts():
    DEFAULT[0] = "202 4xx"
    # the spec lets a registry answer a mount it cannot do with a new session (202);
    # 201 (mounted) would hand out a blob the source repository does not hold
    m = "/v2/hostile/c/blobs/uploads/?mount="
    row("mount from a repository that does not exist", req("POST", f"{m}{BLOB}&from=no/such/repo"), "202 4xx")
    row("mount of a blob that is not stored", req("POST", f"{m}sha256:{Z64}&from={REPO}"), "202 4xx")
    row("mount from a repository that does not hold the blob",
        req("POST", f"{m}{BLOB}&from={REPO_B}"), "202 4xx")
    row("mount from a name that climbs", req("POST", f"{m}{BLOB}&from=hostile/../t"), "202 4xx")
    row("mount of an invalid digest", req("POST", f"{m}sha256:zz&from={REPO}"), "202 4xx")


def garbage():
    DEFAULT[0] = "4xx"
    rnd = random.Random(12)
    row("2 KB of random bytes", bytes(rnd.getrandbits(8) for _ in range(2048)))
    hello = bytes.fromhex("16030100a5010000a10303") + bytes(32) + bytes.fromhex("000020c02bc02f") + bytes(120)
    row("a TLS ClientHello on the plain port", hello)
    row("catalog with n=-1", req("GET", "/v2/_catalog?n=-1"))
    row("tags list with n=abc", req("GET", f"/v2/{REPO}/tags/list?n=abc"))


for part in (names, digests, references, headers, methods, manifests, bodies, chunks, ranges, sessions, mounts,
             garbage):
    part()


# --- running it -------------------------------------------------------------------
def send(data, half_close):
    """Sends data on a new connection and reads one response. (status, code):
    status is the status code, or "closed", "reset", "hang" when none came;
    code the first error code of a JSON error body ("" if none)."""
    try:
        s = socket.create_connection((host, port), timeout=ROW_TIMEOUT)
    except OSError as e:
        return f"connect-failed({e.errno})", ""
    buf, closed, end = b"", False, time.monotonic() + ROW_TIMEOUT
    head_req = data.startswith(b"HEAD ")
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: read what it said
        while time.monotonic() < end and not complete(buf, head_req):
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not d:
                closed = True
                break
            buf += d
    finally:
        s.close()
    if buf.startswith(b"HTTP/1.") and len(buf) >= 12 and buf[9:12].isdigit():
        return buf[9:12].decode(), error_code(buf)
    return ("closed" if closed else "hang" if not buf else "garbage"), ""


def complete(buf, head_req):
    """true once buf holds a status line, headers and the Content-Length body."""
    if b"\r\n\r\n" not in buf:
        return False
    head, body = buf.split(b"\r\n\r\n", 1)
    if head_req:
        return True
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length" and v.strip().isdigit():
            return len(body) >= int(v.strip())
    return False  # no length: until the server closes


def error_code(buf):
    try:
        return json.loads(buf.split(b"\r\n\r\n", 1)[1])["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def allowed(status, code, expect):
    """expect: tokens "404" (status), "404/CODE" (status and error code), "4xx" (any 4xx)."""
    for tok in expect:
        st, _, want = tok.partition("/")
        if st == "4xx" and len(status) == 3 and status.startswith("4"):
            return True
        if st == status and (not want or want == code):
            return True
    return False


class Background(threading.Thread):
    """A well-behaved client: GETs the stored manifest in a loop until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.ok, self.bad, self.last_bad = threading.Event(), 0, 0, ""

    def run(self):
        while not self.stop.is_set():
            try:
                c = http.client.HTTPConnection(host, port, timeout=ROW_TIMEOUT)
                c.request("GET", f"/v2/{REPO}/manifests/v1", headers={"Accept": MAN_TYPE})
                r = c.getresponse()
                body = r.read()
                c.close()
                good = r.status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == MAN
            except OSError as e:
                good, r = False, None
                self.last_bad = f"error {e}"
            if good:
                self.ok += 1
            else:
                self.bad += 1
                if r is not None:
                    self.last_bad = f"status {r.status}"
            self.stop.wait(0.05)


def base_ok():
    try:
        c = http.client.HTTPConnection(host, port, timeout=ROW_TIMEOUT)
        c.request("GET", "/v2/")
        st = c.getresponse().status
        c.close()
        return st == 200
    except OSError:
        return False


def main():
    bg = Background()
    if not report_only:
        bg.start()
    failed = todo_n = n5xx = n500 = nnone = 0
    served_fail = []
    for i, (name, request, expect, half, todo) in enumerate(ROWS, 1):
        data = request() if callable(request) else request
        status, code = send(data, half)
        got = f"{status} {code}".strip()
        n5xx += status.startswith("5")
        n500 += status == "500"
        nnone += not status.isdigit()
        ok = allowed(status, code, expect)
        verdict = "ok" if ok else "todo" if todo else "FAIL"
        failed += verdict == "FAIL"
        todo_n += verdict == "todo"
        print(f"{verdict}\t{name}\t{got}\t{' '.join(sorted(expect))}" + (f"\t{todo}" if verdict == "todo" else ""),
              flush=True)
        if i % CHECK_EVERY == 0 and not report_only and not base_ok():
            served_fail.append(i)
    if report_only:
        print(f"summary: rows {len(ROWS)} 5xx {n5xx} (500: {n500}) no-status {nnone}")
        return 0
    bg.stop.set()
    bg.join()
    print(f"served: GET /v2/ after every {CHECK_EVERY} rows: "
          f"{'200 each time' if not served_fail else 'not 200 after rows ' + str(served_fail)}")
    print(f"served: background manifest GETs: {bg.ok} ok, {bg.bad} not ({bg.last_bad})")
    print(f"summary: rows {len(ROWS)} failed {failed} todo {todo_n} 5xx {n5xx} (500: {n500}) no-status {nnone}")
    return 0 if failed == 0 and not served_fail and bg.bad == 0 and bg.ok > 0 else 1


sys.exit(main())
