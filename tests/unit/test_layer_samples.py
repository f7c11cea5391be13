#!/usr/bin/env python3
"""Sample layers for test_layer*.c and the fuzz corpus (tests/fuzz/run.sh).

usage: test_layer_samples.py OUTDIR [--small]
(--small: files of a few KiB, for the fuzz corpus of tests/fuzz/run.sh)

Writes OUTDIR/<name>.tar and, for each, OUTDIR/<name>.tsv: what Python's
tarfile (an implementation independent of ours) reads from that archive,
one line per path after tar semantics (the last entry of a path wins):
  path_hex type mode uid gid mtime size link_hex datafile xattrs
type is one of r d l h c b p; datafile is OUTDIR/<name>.d/<n> holding the
file's bytes (or "-"); xattrs is "name=hexvalue,..." or "-". The sparse
samples are written with GNU tar (--sparse), which Python reads back."""
import hashlib, io, os, random, subprocess, sys, tarfile

out = sys.argv[1]
small = len(sys.argv) > 2 and sys.argv[2] == "--small"
MB = 16 * 1024 if small else 1 << 20
os.makedirs(out, exist_ok=True)
rnd = random.Random(1234)


def text(n):
    words = [b"lib", b"usr", b"share", b"doc", b"elf", b"\x00\x01", b"config",
             b"release", b"0123456789", b"abcdef"]
    b = bytearray()
    while len(b) < n:
        b += rnd.choice(words) + bytes([rnd.randrange(256)])
    return bytes(b[:n])


def add(tf, name, typ=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0,
        gid=0, mtime=1700000000, pax=None, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.mode = mode
    ti.uid, ti.gid, ti.mtime = uid, gid, mtime
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = pax
    if typ == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def formats(fmt, name):
    path = os.path.join(out, name + ".tar")
    with tarfile.open(path, "w", format=fmt) as tf:
        add(tf, "./", tarfile.DIRTYPE, mode=0o755)
        add(tf, "etc/", tarfile.DIRTYPE, mode=0o755)
        add(tf, "etc/os-release", data=b"ID=test\nVERSION=1\n")
        add(tf, "etc/hosts", data=b"old\n")
        add(tf, "etc/hosts", data=b"127.0.0.1 localhost\n")   # last wins
        add(tf, "usr/lib/implied/deep.so", data=text(300000 * MB >> 20), mode=0o755, uid=1000,
            gid=1000)
        add(tf, "usr/lib/big.bin", data=text(3 * MB))
        add(tf, "usr/lib/empty", data=b"")
        add(tf, "d" * 60 + "/" + "e" * 90 + "/long-name-over-100-bytes.txt",
            data=b"long\n")
        add(tf, "usr/share/caf\u00e9/na\u00efve.txt", data="utf-8 ok\n".encode())
        add(tf, "usr/bin/sh", tarfile.SYMTYPE, link="/bin/dash", mode=0o777)
        add(tf, "usr/bin/ln-" + "x" * 120, tarfile.SYMTYPE,
            link="../" + "t" * 150, mode=0o777)
        add(tf, "usr/bin/hard", tarfile.LNKTYPE, link="usr/lib/implied/deep.so")
        add(tf, "dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))
        add(tf, "dev/sda", tarfile.BLKTYPE, mode=0o660, dev=(8, 0))
        add(tf, "run/fifo", tarfile.FIFOTYPE, mode=0o600)
        add(tf, "opt/.wh.gone", data=b"")
        add(tf, "opt/app/.wh..wh..opq", data=b"")
        add(tf, "opt/app/setuid", data=b"x", mode=0o4755, uid=70000, gid=5)
        if fmt == tarfile.PAX_FORMAT:
            add(tf, "usr/bin/cap", data=b"\x7fELF",
                pax={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
                     "SCHILY.xattr.user.note": "hello"})
            add(tf, "usr/bin/nsec", data=b"t", pax={"mtime": "1700000000.123456789"})
    return path


def sparse(name, args):
    src = os.path.join(out, name + ".src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "holes"), "wb") as f:
        f.truncate(3 * MB)
        for off in (4096, MB, 3 * MB - 5000):
            f.seek(off)
            f.write(text(3000))
    with open(os.path.join(src, "plain"), "wb") as f:
        f.write(b"not sparse\n")
    path = os.path.join(out, name + ".tar")
    subprocess.run(["tar", "-C", src, "--sparse", "--owner=0", "--group=0",
                    "--mtime=@1700000000"] + args + ["-cf", path, "holes", "plain"],
                   check=True)
    return path


TYPES = {tarfile.REGTYPE: "r", tarfile.AREGTYPE: "r", tarfile.CONTTYPE: "r",
         tarfile.GNUTYPE_SPARSE: "r", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l",
         tarfile.LNKTYPE: "h", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b",
         tarfile.FIFOTYPE: "p"}


def norm(p):
    return "/".join(c for c in p.split("/") if c not in ("", "."))


def manifest(path):
    name = os.path.basename(path)[:-4]
    ddir = os.path.join(out, name + ".d")
    os.makedirs(ddir, exist_ok=True)
    rows = {}
    with tarfile.open(path) as tf:
        for n, m in enumerate(tf.getmembers()):
            data = "-"
            if m.isreg():
                data = os.path.join(ddir, str(n))
                with open(data, "wb") as f:
                    f.write(tf.extractfile(m).read())
            xa = ",".join(k[13:] + "=" + v.encode("utf-8", "surrogateescape").hex()
                          for k, v in sorted(m.pax_headers.items())
                          if k.startswith("SCHILY.xattr.")) or "-"
            link = norm(m.linkname) if m.islnk() else m.linkname
            rows[norm(m.name)] = [norm(m.name).encode().hex() or "-", TYPES[m.type],
                                  "%o" % (m.mode & 0o7777), str(m.uid), str(m.gid),
                                  str(int(m.mtime)), str(m.size if m.isreg() else 0),
                                  link.encode().hex() or "-", data, xa]
    with open(os.path.join(out, name + ".tsv"), "w") as f:
        for r in rows.values():
            f.write("\t".join(r) + "\n")


for p in (formats(tarfile.PAX_FORMAT, "pax"), formats(tarfile.GNU_FORMAT, "gnu"),
          sparse("sparse_gnu", ["--format=gnu"]),
          sparse("sparse_pax00", ["--format=posix", "--sparse-version=0.0"]),
          sparse("sparse_pax01", ["--format=posix", "--sparse-version=0.1"]),
          sparse("sparse_pax10", ["--format=posix", "--sparse-version=1.0"])):
    manifest(p)
