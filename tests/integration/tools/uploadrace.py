#!/usr/bin/env python3
"""uploadrace.py — raw-HTTP upload clients for the upload_*.sh tests.

  uploadrace.py held-patch HOST REPO FILE DIGEST [PUT_HOST]
      The "held PATCH" sequence on one upload session of REPO (the PUT goes
      to PUT_HOST when given: another instance on the same storage):
        1. POST a session, PATCH the bytes of FILE (whose digest is DIGEST);
        2. open a second connection and send only the headers of a PATCH
           declaring Content-Length: 1000 (the body is held back);
        3. PUT ?digest=DIGEST on the same session, while that PATCH waits;
        4. send the 1000 bytes of the held PATCH and read its answer.
      Prints "put=<status> patch=<status>".

  uploadrace.py race HOST[,HOST…] SECONDS CLIENTS OUTFILE
      CLIENTS threads for SECONDS seconds, each looping over random actions on
      a few shared contents (so many sessions upload the same digests):
      whole uploads (POST, PATCH, PUT), two PATCHes racing on one session,
      a PATCH racing the PUT that finishes its session, and a DELETE of a
      session while a PATCH of it is in flight. Every 201 answer is written
      to OUTFILE as "REPO DIGEST" (one line each) for the caller to verify
      through GET; prints counts of the status codes seen. With several
      HOSTs (instances sharing one storage) each request picks one at random.

Only the standard library: http.client for ordinary requests, sockets for the
held PATCH (http.client sends headers and body together)."""
import hashlib
import http.client
import os
import random
import socket
import sys
import threading
import time


def conn(host):
    h, p = host.rsplit(":", 1)
    return http.client.HTTPConnection(h, int(p), timeout=30)


def req(host, method, path, body=None, headers=None):
    c = conn(host)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def new_session(host, repo):
    st, h = req(host, "POST", f"/v2/{repo}/blobs/uploads/", b"")
    if st != 202:
        raise RuntimeError(f"POST {repo}: {st}")
    return h["location"]


def patch(host, loc, data, start=None):
    hdr = {"Content-Type": "application/octet-stream"}
    if start is not None:
        hdr["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return req(host, "PATCH", loc, data, hdr)


def put(host, loc, digest, data=b""):
    sep = "&" if "?" in loc else "?"
    return req(host, "PUT", f"{loc}{sep}digest={digest}", data,
               {"Content-Type": "application/octet-stream"})[0]


class HeldPatch:
    """A PATCH whose headers are sent now and whose body is sent later."""

    def __init__(self, host, loc, n):
        h, p = host.rsplit(":", 1)
        self.s = socket.create_connection((h, int(p)), timeout=30)
        self.n = n
        self.s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: {host}\r\n"
                        "Content-Type: application/octet-stream\r\n"
                        f"Content-Length: {n}\r\nConnection: close\r\n\r\n").encode())

    def finish(self, body):
        """Sends the body; returns the answer's status (0 when none came)."""
        try:
            self.s.sendall(body)
        except OSError:
            pass  # the server may have answered and closed already
        data = b""
        try:
            while b"\r\n" not in data:
                k = self.s.recv(4096)
                if not k:
                    break
                data += k
        except OSError:
            pass
        self.s.close()
        try:
            return int(data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 0


def held_patch(host, repo, path, digest, put_host=None):
    data = open(path, "rb").read()
    loc = new_session(host, repo)
    st, h = patch(host, loc, data)
    if st != 202:
        raise RuntimeError(f"PATCH of the content: {st}")
    loc = h.get("location", loc)
    hp = HeldPatch(host, loc, 1000)
    time.sleep(0.5)  # let the server see the headers (bounded, not asserted on)
    put_st = put(put_host or host, loc, digest)
    patch_st = hp.finish(os.urandom(1000))
    print(f"put={put_st} patch={patch_st}")


# ---- race ----

CONTENTS = [os.urandom(n) for n in (70000, 150000, 150000 + 7, 300000)]
DIGESTS = ["sha256:" + hashlib.sha256(c).hexdigest() for c in CONTENTS]
REPOS = ["race/a", "race/b", "race/c"]


class Race:
    def __init__(self, host, seconds, out):
        self.hosts, self.end, self.out = host.split(","), time.time() + seconds, out
        self.lock = threading.Lock()
        self.counts = {}
        self.created = []

    @property
    def host(self):
        return random.choice(self.hosts)

    def note(self, what, st, repo=None, digest=None):
        with self.lock:
            k = f"{what}:{st}"
            self.counts[k] = self.counts.get(k, 0) + 1
            if st == 201:
                self.created.append(f"{repo} {digest}")

    def whole(self, repo, i):
        loc = new_session(self.host, repo)
        st, h = patch(self.host, loc, CONTENTS[i])
        self.note("patch", st)
        self.note("put", put(self.host, h.get("location", loc), DIGESTS[i]), repo, DIGESTS[i])

    def double_patch(self, repo, i):
        """Two PATCHes of the same chunk on one session at once, then a PUT."""
        loc = new_session(self.host, repo)
        res = []
        ts = [threading.Thread(target=lambda: res.append(patch(self.host, loc, CONTENTS[i], 0)[0]))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for st in res:
            self.note("patch2", st)
        self.note("put", put(self.host, loc, DIGESTS[i]), repo, DIGESTS[i])

    def patch_vs_put(self, repo, i):
        """A PUT finishing the session while a PATCH of extra bytes is held."""
        loc = new_session(self.host, repo)
        st, h = patch(self.host, loc, CONTENTS[i])
        loc = h.get("location", loc)
        hp = HeldPatch(self.host, loc, 1000)
        time.sleep(random.random() * 0.05)
        self.note("put-held", put(self.host, loc, DIGESTS[i]), repo, DIGESTS[i])
        self.note("held", hp.finish(os.urandom(1000)))

    def delete_mid_patch(self, repo, i):
        loc = new_session(self.host, repo)
        hp = HeldPatch(self.host, loc, len(CONTENTS[i]))
        time.sleep(random.random() * 0.05)
        self.note("delete", req(self.host, "DELETE", loc)[0])
        self.note("deleted-patch", hp.finish(CONTENTS[i]))
        self.note("put-deleted", put(self.host, loc, DIGESTS[i]), repo, DIGESTS[i])

    def worker(self, seed):
        rnd = random.Random(seed)
        acts = [self.whole, self.double_patch, self.patch_vs_put, self.delete_mid_patch]
        while time.time() < self.end:
            try:
                rnd.choice(acts)(rnd.choice(REPOS), rnd.randrange(len(CONTENTS)))
            except (OSError, RuntimeError, http.client.HTTPException) as e:
                self.note("error", type(e).__name__)

    def run(self, clients):
        ts = [threading.Thread(target=self.worker, args=(k,)) for k in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with open(self.out, "w") as f:
            f.write("".join(line + "\n" for line in self.created))
        print(" ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))


def main():
    if len(sys.argv) in (6, 7) and sys.argv[1] == "held-patch":
        held_patch(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "race":
        Race(sys.argv[2], float(sys.argv[3]), sys.argv[5]).run(int(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
