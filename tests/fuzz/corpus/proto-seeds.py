#!/usr/bin/env python3
# Regenerates the seed corpus of tests/fuzz/fuzz-proto.c (docs/protocol.md frame layout).
import os, struct, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto")
os.makedirs(out, exist_ok=True)

def frame(t, payload=b""):
    return struct.pack(">IBBH", len(payload), t, 0, 0) + payload

def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b

def exec_(flags, timeout, user, cwd, argv, env):
    return (struct.pack(">II", flags, timeout) + s(user) + s(cwd) + struct.pack(">I", len(argv))
            + b"".join(s(a) for a in argv) + struct.pack(">I", len(env)) + b"".join(s(e) for e in env))

seeds = {
    "hello": frame(1, struct.pack(">IQ", 1, 123456789) + s("hotcell-init 0.1")),
    "exec-simple": frame(2, exec_(0, 0, "", "", ["true"], ["PATH=/bin"])),
    "exec-full": frame(2, exec_(3, 5000, "nobody:nogroup", "/tmp/x", ["sh", "-c", "echo hi"],
                                ["PATH=/usr/bin:/bin", "HOME=/root", "A=b=c"])),
    "exec-nul": frame(2, exec_(0, 0, "", "", ["a\0b"], [])),
    "exec-badenv": frame(2, exec_(0, 0, "", "", ["true"], ["NOEQ"])),
    "stdin": frame(3, b"data\0\xff\xfe") + frame(4),
    "stdout-stderr": frame(5, b"out\n") + frame(6, b"\x00\x01err"),
    "exit-code": frame(7, struct.pack(">iiB", 7, 0, 0)),
    "exit-signal": frame(7, struct.pack(">iiB", -1, 9, 1)),
    "exit-bad": frame(7, struct.pack(">iiB", 3, 9, 2)),
    "error": frame(8, struct.pack(">I", 1) + s("executable file `x` not found in $PATH")),
    "error-badreason": frame(8, struct.pack(">I", 42) + s("x")),
    "result-ok": frame(9, b"\x00" + b'{"ok": true}'),
    "result-large": frame(9, b"\x01" + b"too large"),
    "signal": frame(10, struct.pack(">i", 15)),
    "shutdown": frame(11),
    "session": (frame(1, struct.pack(">IQ", 1, 5) + s("a")) + frame(2, exec_(1, 0, "", "/", ["cat"], []))
                + frame(3, b"abc") + frame(4) + frame(5, b"abc") + frame(9, b"\x00{}")
                + frame(7, struct.pack(">iiB", 0, 0, 0)) + frame(11)),
    "bad-header": struct.pack(">IBBH", 4, 99, 0, 0) + b"abcd",
    "bad-flags": struct.pack(">IBBH", 0, 11, 1, 0),
    "truncated": frame(5, b"0123456789")[:12],
    "huge-len": struct.pack(">IBBH", 0xffffffff, 2, 0, 0),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
