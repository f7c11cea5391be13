#!/usr/bin/env python3
"""limits_clients.py MODE HOST:PORT [ARGS] — clients that push a server's limits, for
registry_hostile.sh. Every mode is bounded in time and prints one line of facts.

  slowloris N SECONDS        N sockets (from 127.0.0.10-17, at most 63 per address) each
                             sending a GET request one byte a second; meanwhile GET /v2/
                             from 127.0.0.1 in a loop. Prints "opened O closed_by_server C
                             served S failed F": C sockets the server closed within
                             SECONDS, S/F the loop's answers (200 / anything else).
  connlimit ADDR N           N keep-alive connections from ADDR each served one GET /v2/,
                             then one more connection's GET. Prints "kept K extra STATUS"
                             (STATUS "none" when the extra one was closed unanswered).
  halfclose PATH TOTAL SENT  PATCH PATH announcing TOTAL bytes, sends SENT, then
                             shutdown(SHUT_WR). Prints "closed" or "open" (server's reaction
                             within 2 s).
  stall PATH TOTAL SENT SECONDS
                             the same without the shutdown: the client just stops sending.
                             Prints "closed" when the server closed it within SECONDS.
  hold PATH N                N PATCH requests to PATH (a list of upload paths, comma
                             separated) that send their headers and 1 byte and then wait;
                             then POST a new upload. Prints the POST's status.
  slowkeep SECONDS           one keep-alive connection served one GET /v2/, then sending its
                             next request a byte a second. Prints "closed" when the server
                             closed it within SECONDS, else "open".
  gets PATH N PAR            N GETs of PATH (manifest, OCI Accept) with PAR in parallel.
                             Prints "ok O busy U bad B" (U: 503 answers).
"""
import concurrent.futures, os, socket, sys, time

host, port = sys.argv[2].rsplit(":", 1)
port = int(port)
MT = "application/vnd.oci.image.manifest.v1+json"


def connect(src="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def read_response(s):
    """One response (headers + Content-Length body) or None when closed first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return int(head.split(b" ")[1]), body


def get(path, src="127.0.0.1", accept=None):
    try:
        s = connect(src)
        h = "Accept: %s\r\n" % accept if accept else ""
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (path, h)).encode())
        r = read_response(s)
        s.close()
        return r
    except OSError:
        return None


def slowloris(n, seconds):
    socks = []
    for i in range(n):
        try:
            socks.append(connect("127.0.0.%d" % (10 + i // 63)))
        except OSError:
            pass
    req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64
    for s in socks:
        s.setblocking(False)
    alive, served, failed = set(range(len(socks))), 0, 0
    end, k, nxt = time.monotonic() + seconds, 0, 0.0
    while time.monotonic() < end and alive:
        if time.monotonic() >= nxt:  # one byte a second on every live socket
            for i in list(alive):
                try:
                    socks[i].send(req[k % len(req):k % len(req) + 1])
                except OSError:
                    alive.discard(i)
            k, nxt = k + 1, time.monotonic() + 1
        for i in list(alive):
            try:
                if socks[i].recv(4096) == b"":
                    alive.discard(i)
            except BlockingIOError:
                pass
            except OSError:
                alive.discard(i)
        r = get("/v2/")
        served += 1 if r and r[0] == 200 else 0
        failed += 0 if r and r[0] == 200 else 1
        time.sleep(0.05)
    print("opened", len(socks), "closed_by_server", len(socks) - len(alive), "served", served,
          "failed", failed)


def connlimit(addr, n):
    kept = []
    for _ in range(n):
        try:
            s = connect(addr)
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            r = read_response(s)
            if r and r[0] == 200:
                kept.append(s)
        except OSError:
            pass
    try:
        s = connect(addr)
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = read_response(s)
        extra = str(r[0]) if r else "none"
    except OSError:
        extra = "none"
    print("kept", len(kept), "extra", extra)


def halfclose(path, total, sent, stall=0):
    s = connect()
    s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
               "Content-Length: %d\r\n\r\n" % (path, total)).encode() + b"h" * sent)
    time.sleep(0.3)
    if not stall:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(stall or 2)
    try:
        while s.recv(65536):
            pass
        print("closed")
    except socket.timeout:
        print("open")
    except OSError:
        print("closed")


def hold(paths, n):
    held = []
    for p in paths.split(",")[:n]:
        s = connect()
        s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nh" % p).encode())
        held.append(s)
    time.sleep(0.5)
    s = connect()
    s.sendall(("POST /v2/t/hold/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               "Connection: close\r\n\r\n").encode())
    r = read_response(s)
    print(r[0] if r else "none")
    for h in held:
        h.close()


def slowkeep(seconds):
    s = connect()
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(s)
    if not r or r[0] != 200:
        print("first-request-failed")
        return
    req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64
    s.settimeout(1)
    end, k = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            s.send(req[k % len(req):k % len(req) + 1])
            k += 1
            if s.recv(4096) == b"":
                print("closed")
                return
        except socket.timeout:
            pass
        except OSError:
            print("closed")
            return
    print("open")


def gets(path, n, par):
    with concurrent.futures.ThreadPoolExecutor(par) as ex:
        rs = list(ex.map(lambda _: get(path, accept=MT), range(n)))
    ok = sum(1 for r in rs if r and r[0] == 200)
    busy = sum(1 for r in rs if r and r[0] == 503)
    print("ok", ok, "busy", busy, "bad", n - ok - busy)


mode, a = sys.argv[1], sys.argv[3:]
if mode == "slowloris":
    slowloris(int(a[0]), float(a[1]))
elif mode == "connlimit":
    connlimit(a[0], int(a[1]))
elif mode == "halfclose":
    halfclose(a[0], int(a[1]), int(a[2]))
elif mode == "stall":
    halfclose(a[0], int(a[1]), int(a[2]), float(a[3]))
elif mode == "hold":
    hold(a[0], int(a[1]))
elif mode == "slowkeep":
    slowkeep(float(a[0]))
elif mode == "gets":
    gets(a[0], int(a[1]), int(a[2]))
