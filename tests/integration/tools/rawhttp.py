#!/usr/bin/env python3
"""rawhttp.py HOST:PORT REQUEST — sends REQUEST (Python escapes allowed: \\r\\n, \\x00)
as raw bytes on one TCP connection, reads until the server closes or WAIT seconds pass
(env RAWHTTP_WAIT, default 3), and prints "STATUS RESPONSES CLOSED":
STATUS is the first response's status code ("none" if no answer), RESPONSES how many
status lines came back, CLOSED "closed" if the server closed the connection, else "open"."""
import os, re, socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
req = sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1")
wait = float(os.environ.get("RAWHTTP_WAIT", "3"))
s = socket.create_connection((host, int(port)), timeout=wait)
s.sendall(req)
buf, closed, end = b"", False, time.monotonic() + wait
while time.monotonic() < end:
    s.settimeout(max(0.05, end - time.monotonic()))
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    except ConnectionResetError:
        closed = True
        break
    if not d:
        closed = True
        break
    buf += d
st = re.findall(rb"HTTP/1\.[01] (\d{3})", buf)
print(st[0].decode() if st else "none", len(st), "closed" if closed else "open")
