#!/usr/bin/env python3
# Writes the seed corpus of fuzz-layer (tests/fuzz/corpus/layer/): small layers as plain tar,
# gzip and zstd, covering whiteouts, opaque dirs, links and each escape attempt.
import gzip, io, os, subprocess, tarfile

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer")
os.makedirs(out, exist_ok=True)

def ti(name, kind="f", data=b"", target="", mode=0o644):
    t = tarfile.TarInfo(name)
    t.mtime = 1000000000
    t.mode = mode
    if kind == "d":
        t.type = tarfile.DIRTYPE
        t.mode = 0o755
    elif kind == "l":
        t.type, t.linkname = tarfile.SYMTYPE, target
    elif kind == "h":
        t.type, t.linkname = tarfile.LNKTYPE, target
    elif kind == "c":
        t.type, t.devmajor, t.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "p":
        t.type = tarfile.FIFOTYPE
    else:
        t.size = len(data)
    return t, (io.BytesIO(data) if kind == "f" else None)

def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for e in entries:
            t.addfile(*ti(*e))
    return b.getvalue()

seeds = {
    "basic": [("etc/", "d"), ("etc/hostname", "f", b"cell\n"), ("bin/sh", "l", b"", "busybox"),
              ("bin/busybox", "f", b"#!\n", "", 0o4755), ("bin/ls", "h", b"", "bin/busybox")],
    "whiteouts": [("a/x", "f", b"x"), ("a/.wh.x", "f"), (".wh.b", "f"), ("d/", "d"),
                  ("d/.wh..wh..opq", "f"), ("d/new", "f", b"n"), (".wh..wh.plnk", "d")],
    "dotdot": [("../x", "f", b"bad")],
    "absdotdot": [("/abs/../../x", "f", b"bad")],
    "symlink-parent": [("evil", "l", b"", "/tmp"), ("evil/file", "f", b"bad")],
    "symlink-rel-parent": [("evil", "l", b"", "../outside"), ("evil/keep", "f", b"bad")],
    "symlink-whiteout": [("evil", "l", b"", "../outside"), ("evil/.wh.keep", "f")],
    "hardlink-out": [("h", "h", b"", "../../etc/passwd")],
    "hardlink-through-symlink": [("ev", "l", b"", "/etc"), ("h", "h", b"", "ev/passwd")],
    "special": [("dev/null", "c"), ("run/fifo", "p"), ("ok", "f", b"ok")],
    "replace": [("x/y", "f", b"y"), ("x", "f", b"now a file"), ("z", "f", b"z"), ("z/", "d")],
    "longname": [("a/" * 60 + "leaf", "f", b"deep"), ("n" * 200, "f", b"long")],
}
for name, ents in seeds.items():
    data = tar(ents)
    open(os.path.join(out, name + ".tar"), "wb").write(data)
open(os.path.join(out, "basic-gnu.tar"), "wb").write(tar(seeds["basic"], tarfile.GNU_FORMAT))
open(os.path.join(out, "basic.tar.gz"), "wb").write(gzip.compress(tar(seeds["basic"]), mtime=0))
open(os.path.join(out, "whiteouts.tar.gz"), "wb").write(gzip.compress(tar(seeds["whiteouts"]), mtime=0))
z = subprocess.run(["zstd", "-q", "-c"], input=tar(seeds["symlink-parent"]), stdout=subprocess.PIPE, check=True)
open(os.path.join(out, "symlink-parent.tar.zst"), "wb").write(z.stdout)
z = subprocess.run(["zstd", "-q", "-c"], input=tar(seeds["basic"]), stdout=subprocess.PIPE, check=True)
open(os.path.join(out, "basic.tar.zst"), "wb").write(z.stdout)
gz = gzip.compress(tar(seeds["basic"]), mtime=0)
open(os.path.join(out, "truncated.tar.gz"), "wb").write(gz[: len(gz) // 2])
