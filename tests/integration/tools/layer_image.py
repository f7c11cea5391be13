#!/usr/bin/env python3
"""layer_image.py — OCI image layouts whose layers exercise the mount's layer views.

Layers are written with python's tarfile (an implementation independent of regfs's
tar reader) and compressed with zlib/gzip; the layout (oci-layout, index.json,
blobs/sha256/) is what umoci and skopeo read.

  layer_image.py rich DIR TAG [--big-mb N]
      the 4-layer image: GNU long names, pax headers (path, uid, mtime with
      nanoseconds, xattrs), a name over 100 bytes, UTF-8 names, hard links,
      symlinks, a char device, a fifo, a big file (N MiB, default 50), whiteouts,
      an opaque directory, a file replaced by a directory and back, a directory
      whose metadata an upper layer changes.
  layer_image.py big DIR TAG --mb N
      one gzip layer of about N MB (uncompressed) of 1 MiB files of random hex text
      (gzip halves them, about as it does binaries) with small text files between
      them (deep/a/.../small-K.txt), plus a small second layer.
      Prints "small PATH SHA256" lines: the small files and their digests.
  layer_image.py bad DIR
      one image per bad layer (tags: the case names below), each with a good first
      layer holding good/ok.txt; prints the case names, one a line.
  layer_image.py wrap DIR TAG LAYER.tar.gz…
      an image of the given gzip layers, blobs kept byte for byte.
  layer_image.py push DIR TAG URL REPO
      pushes DIR's TAG to a registry with the distribution API (monolithic
      uploads), blobs as they are — for layers that skopeo would refuse to copy.

Prints the manifest digest for rich/big ("manifest sha256:…"), layer digests as
"layer N sha256:… SIZE".
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
import zlib

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MTIME = 1700000000


# --- layout ---------------------------------------------------------------------

def put_blob(root, data):
    h = hashlib.sha256(data).hexdigest()
    d = os.path.join(root, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, h)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    return "sha256:" + h


def add_image(root, tag, layers):
    """layers: list of (blob bytes, media type, uncompressed tar bytes digest)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    cfg = {"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
           "author": "regfs-tests " + tag,
           "config": {"Cmd": ["/bin/true"]},
           "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
    cb = json.dumps(cfg, sort_keys=True).encode()
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
           "config": {"mediaType": MT_CONFIG, "digest": put_blob(root, cb), "size": len(cb)},
           "layers": [{"mediaType": mt, "digest": put_blob(root, b), "size": len(b)}
                      for b, mt, _ in layers]}
    mb = json.dumps(man, sort_keys=True).encode()
    md = put_blob(root, mb)
    ip = os.path.join(root, "index.json")
    idx = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(ip):
        with open(ip) as f:
            idx = json.load(f)
    idx["manifests"] = [m for m in idx["manifests"]
                        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    idx["manifests"].append({"mediaType": MT_MANIFEST, "digest": md, "size": len(mb),
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(ip, "w") as f:
        json.dump(idx, f)
    print("manifest", md)
    for i, l in enumerate(man["layers"]):
        print("layer", i, l["digest"], l["size"])
    return md


def gz(data, level=6):
    return gzip.compress(data, compresslevel=level, mtime=0)


def layer(tar_bytes, compress=True, level=6):
    diff = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    if compress:
        return gz(tar_bytes, level), MT_GZIP, diff
    return tar_bytes, MT_TAR, diff


# --- tar building -----------------------------------------------------------------

class Tar:
    def __init__(self, fmt):
        self.buf = io.BytesIO()
        self.t = tarfile.open(fileobj=self.buf, mode="w", format=fmt, encoding="utf-8")

    def _info(self, name, typ, mode, uid=0, gid=0, mtime=MTIME, pax=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = typ, mode, uid, gid, mtime
        ti.uname = ti.gname = ""
        if pax:
            ti.pax_headers = dict(pax)
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.t.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))

    def file(self, name, data, mode=0o644, **kw):
        ti = self._info(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        self.t.addfile(ti, io.BytesIO(data))

    def file_stream(self, name, size, chunks, mode=0o644, **kw):
        ti = self._info(name, tarfile.REGTYPE, mode, **kw)
        ti.size = size
        self.t.addfile(ti, chunks)

    def link(self, name, target, hard=False, **kw):
        ti = self._info(name, tarfile.LNKTYPE if hard else tarfile.SYMTYPE, 0o777, **kw)
        ti.linkname = target
        self.t.addfile(ti)

    def dev(self, name, typ, major=0, minor=0, mode=0o644, **kw):
        ti = self._info(name, typ, mode, **kw)
        ti.devmajor, ti.devminor = major, minor
        self.t.addfile(ti)

    def bytes(self):
        self.t.close()
        return self.buf.getvalue()


class CounterStream(io.RawIOBase):
    """size bytes of numbered lines ("<tag> 0000000042\\n"): every offset distinct, so a
    read from the wrong place shows up, and it compresses quickly."""
    def __init__(self, tag, size):
        self.left, self.n, self.tag, self.pending = size, 0, tag.encode(), b""

    def readable(self):
        return True

    def readinto(self, b):
        while len(self.pending) < len(b) and self.left > len(self.pending):
            self.pending += b"".join(b"%s %010d\n" % (self.tag, self.n + i) for i in range(4096))
            self.n += 4096
        k = min(len(b), self.left, len(self.pending))
        b[:k] = self.pending[:k]
        self.pending, self.left = self.pending[k:], self.left - k
        return k


LONG = "deep/" + "d" * 70 + "/" + "n" * 90 + "-long-name.txt"   # > 100 bytes


def rich_layers(big_mib):
    # layer 0: GNU format (long names as 'L' entries, UTF-8 names raw in the header)
    t = Tar(tarfile.GNU_FORMAT)
    for d in ("etc", "usr", "usr/bin", "usr/lib", "var", "opaque", "gone", "dev", "run", "deep",
              "deep/" + "d" * 70, "utf8"):
        t.dir(d)
    t.file("etc/os-release", b'NAME="regfs test"\nVERSION_ID=1\n')
    t.file("etc/hostname", b"layer0\n", mode=0o600)
    t.file("etc/owned", b"owned by 1000:1001\n", mode=0o640, uid=1000, gid=1001)
    t.file("usr/bin/tool", b"#!/bin/sh\necho tool\n", mode=0o4755)
    t.link("usr/bin/tool-hard", "usr/bin/tool", hard=True)
    t.link("usr/bin/tool-rel", "tool")
    t.link("etc/tool-abs", "/usr/bin/tool")
    t.link("etc/dangling", "../no/such/file")
    t.file("usr/lib/libx.so.1", os.urandom(3000) * 3, mode=0o755)
    t.link("usr/lib/libx.so", "libx.so.1")
    t.file(LONG, b"a name over 100 bytes\n")
    t.link("deep/long-hard", LONG, hard=True)
    t.file("utf8/naïve-日本語.txt", b"utf-8 name, gnu header\n")
    t.file("var/to-delete.txt", b"deleted by layer 1\n")
    t.file("opaque/old-a", b"hidden by layer 2's opaque marker\n")
    t.dir("opaque/old-dir")
    t.file("opaque/old-dir/x", b"also hidden\n")
    t.file("gone/inner", b"the directory is deleted by layer 2\n")
    t.file("swap", b"a file, then a directory (layer 2), then a file (layer 3)\n")
    t.dev("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666)
    t.dev("run/fifo", tarfile.FIFOTYPE, mode=0o600)
    t.file("empty", b"")
    l0 = t.bytes()

    # layer 1: pax format — pax path (UTF-8), big uid, mtime with nanoseconds, xattrs
    t = Tar(tarfile.PAX_FORMAT)
    t.dir("etc")
    t.file("etc/os-release", b'NAME="regfs test"\nVERSION_ID=2\n')
    t.file("etc/xattr-file", b"has an xattr\n",
           pax={"SCHILY.xattr.user.regfs-test": "hello xattr",
                # over the 512 bytes a small xattr reply takes
                "SCHILY.xattr.user.regfs-long": "x" * 3000})
    t.file("etc/big-ids", b"uid and gid over ustar's 7 octal digits\n", uid=3000000, gid=3000001)
    t.file("etc/nanotime", b"pax mtime with a fraction\n", pax={"mtime": "1600000000.123456789"})
    t.file("utf8/ünïcödé-" + "ß" * 60 + ".txt", b"utf-8 name over 100 bytes in a pax header\n")
    t.dir("var")
    t.file("var/.wh.to-delete.txt", b"")
    t.dir("big")
    size = big_mib << 20
    t.file_stream("big/file.bin", size, CounterStream("big", size))
    t.file("big/after", b"the entry after the big file\n")
    l1 = t.bytes()

    # layer 2: ustar/pax — opaque dir, a deleted directory, a file replaced by a directory
    t = Tar(tarfile.PAX_FORMAT)
    t.dir("opaque")
    t.file("opaque/.wh..wh..opq", b"")
    t.file("opaque/new", b"only this survives in opaque/\n")
    t.file(".wh.gone", b"")
    t.dir("swap", mode=0o700)
    t.file("swap/inside", b"swap is a directory in layer 2\n")
    t.link("usr/bin/tool2", "tool")
    l2 = t.bytes()

    # layer 3: a directory replaced by a file, a directory's mode and owner changed,
    # a file's mode changed, a symlink to a directory
    t = Tar(tarfile.PAX_FORMAT)
    t.file("swap", b"a file again\n", mode=0o640)
    t.dir("etc", mode=0o750, uid=0, gid=4)
    t.file("etc/hostname", b"layer3\n", mode=0o644)
    t.link("usr/lib64", "lib")
    l3 = t.bytes()
    return [l0, l1, l2, l3]


def cmd_rich(root, tag, big_mib):
    layers = [layer(b, level=1 if i == 1 else 6) for i, b in enumerate(rich_layers(big_mib))]
    add_image(root, tag, layers)


def cmd_big(root, tag, mb):
    """~mb MB of random hex text in 1 MiB files, a small text file every 16 MiB at a
    depth of 6, the last small file near the end of the layer."""
    t = Tar(tarfile.PAX_FORMAT)
    smalls = []
    path = "deep/a/b/c/d/e"
    acc = ""
    for p in path.split("/"):
        acc = acc + "/" + p if acc else p
        t.dir(acc)
    for i in range(mb):
        t.file("blobs/%04d.hex" % i, os.urandom(1 << 19).hex().encode()) if i else t.dir("blobs")
        if i % 16 == 15 or i == mb - 1:
            data = (("small file %d\n" % i) * 400).encode()[:4096]
            name = "%s/small-%04d.txt" % (path, i)
            t.file(name, data)
            smalls.append((name, hashlib.sha256(data).hexdigest()))
    b = t.bytes()
    t2 = Tar(tarfile.PAX_FORMAT)
    t2.file("etc/second", b"a second layer\n")
    add_image(root, tag, [layer(b, level=1), layer(t2.bytes())])
    for n, h in smalls:
        print("small", n, h)


# --- bad layers ----------------------------------------------------------------------

def raw_header(name, size=0, typ=b"0", link=b"", mode=0o644, size_field=None):
    """A ustar header written by hand (tarfile refuses most of what we want here)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"%011o\0" % MTIME
    h[156:157] = typ
    h[157:157 + len(link)] = link
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def raw_entry(name, data=b"", **kw):
    pad = (-len(data)) % 512
    return raw_header(name, len(data), **kw) + data + b"\0" * pad


def raw_tar(*entries):
    return b"".join(entries) + b"\0" * 1024


COUNT = 200000
OK = raw_entry(b"ok.txt", b"an entry that is fine\n")


def bad_cases():
    big = raw_entry(b"file.txt", os.urandom(200000))
    corrupt = bytearray(gz(raw_tar(OK, big)))
    for i in range(len(corrupt) // 2, len(corrupt) // 2 + 64):
        corrupt[i] ^= 0x5A
    truncated = raw_tar(OK, big)[:512 * 3 + 100]
    many = b"".join(raw_header(b"m/%07d" % i) for i in range(COUNT))
    return {
        # gzip stream damaged in the middle (its CRC cannot match)
        "corrupt-gzip": (bytes(corrupt), MT_GZIP),
        # the tar ends inside an entry's data
        "truncated-tar": (gz(truncated), MT_GZIP),
        # names that climb out of the layer
        "climb-dotdot": (gz(raw_tar(OK, raw_entry(b"../../etc/passwd", b"root::0:0\n"),
                                    raw_entry(b"a/../../../escape", b"x\n"))), MT_GZIP),
        "climb-absolute": (gz(raw_tar(OK, raw_entry(b"/etc/passwd", b"root::0:0\n"))), MT_GZIP),
        # links whose targets are outside the layer, and a hard link to a missing name
        "link-outside": (gz(raw_tar(OK, raw_entry(b"hard-out", typ=b"1", link=b"../../etc/passwd"),
                                    raw_entry(b"hard-abs", typ=b"1", link=b"/etc/passwd"),
                                    raw_entry(b"sym-out", typ=b"2", link=b"../../../../etc/passwd")
                                    )), MT_GZIP),
        "hardlink-missing": (gz(raw_tar(OK, raw_entry(b"hard-missing", typ=b"1", link=b"no/such/name"))),
                             MT_GZIP),
        # an entry claiming 8 EiB-ish (base-256 size) and one of 77777777777 octal bytes
        "absurd-size": (gz(raw_tar(OK, raw_header(b"huge", size_field=b"\x80" + b"\0" * 3 + b"\x7f" + b"\xff" * 7),
                                   b"x" * 512)), MT_GZIP),
        # a GNU long name claiming 8 GiB, then the stream ends
        "absurd-longname": (gz(raw_tar(OK, raw_header(b"././@LongLink", typ=b"L",
                                                      size_field=b"%011o\0" % 0o77777777777),
                                       b"n" * 4096)), MT_GZIP),
        "absurd-count": (gz(raw_tar(OK, many), 1), MT_GZIP),
        # random bytes, gzip-compressed; and bytes that are neither gzip, zstd nor tar
        "not-a-tar": (gz(os.urandom(64 << 10)), MT_GZIP),
        "not-compressed": (b"PK\x03\x04" + os.urandom(8192), MT_GZIP),
        # a whiteout with an empty name (".wh.") and one whose target is ".." 
        "whiteout-empty": (gz(raw_tar(OK, raw_entry(b".wh."), raw_entry(b"d/.wh."),
                                      raw_entry(b".wh..."))), MT_GZIP),
    }


def cmd_bad(root):
    base = Tar(tarfile.PAX_FORMAT)
    base.dir("good")
    base.file("good/ok.txt", b"the good layer under a bad one\n")
    good = layer(base.bytes())
    for name, (blob, mt) in bad_cases().items():
        # the diff_id cannot be right for a blob that does not decompress: not needed,
        # nothing here unpacks these images except the mount
        add_image(root, name, [good, (blob, mt, "sha256:" + hashlib.sha256(blob).hexdigest())])


def cmd_wrap(root, tag, files):
    layers = []
    for fn in files:
        d, u = zlib.decompressobj(31), hashlib.sha256()
        with open(fn, "rb") as f:
            blob = f.read()
        for i in range(0, len(blob), 1 << 20):
            u.update(d.decompress(blob[i:i + (1 << 20)]))
        u.update(d.flush())
        layers.append((blob, MT_GZIP, "sha256:" + u.hexdigest()))
    add_image(root, tag, layers)


# --- push ----------------------------------------------------------------------------

def http(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, r.headers


def cmd_push(root, tag, url, repo):
    with open(os.path.join(root, "index.json")) as f:
        idx = json.load(f)
    md = [m for m in idx["manifests"]
          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]["digest"]
    blob = lambda d: open(os.path.join(root, "blobs", "sha256", d.split(":", 1)[1]), "rb").read()
    man = blob(md)
    m = json.loads(man)
    for d in [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]:
        _, h = http("POST", "%s/v2/%s/blobs/uploads/" % (url, repo), b"")
        loc = h["Location"]
        if loc.startswith("/"):
            loc = url + loc
        http("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, blob(d),
             {"Content-Type": "application/octet-stream"})
    http("PUT", "%s/v2/%s/manifests/%s" % (url, repo, tag), man, {"Content-Type": MT_MANIFEST})
    print("pushed", repo + ":" + tag, md)


def main(a):
    if len(a) >= 3 and a[0] == "rich":
        big = int(a[a.index("--big-mb") + 1]) if "--big-mb" in a else 50
        cmd_rich(a[1], a[2], big)
    elif len(a) >= 5 and a[0] == "big" and a[3] == "--mb":
        cmd_big(a[1], a[2], int(a[4]))
    elif len(a) == 2 and a[0] == "bad":
        cmd_bad(a[1])
    elif len(a) >= 4 and a[0] == "wrap":
        cmd_wrap(a[1], a[2], a[3:])
    elif len(a) == 5 and a[0] == "push":
        cmd_push(*a[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
