#!/usr/bin/env python3
# Regenerates the seed corpus of tests/fuzz/fuzz-proto.c (docs/protocol.md frame layout, v3).
import os, struct, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto")
os.makedirs(out, exist_ok=True)

def frame(t, payload=b"", sid=1):
    return struct.pack(">IBBHI", len(payload), t, 0, 0, sid) + payload

def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(b)) + b

def exec_(flags, timeout, user, cwd, argv, env, size=None):
    return (struct.pack(">II", flags, timeout) + s(user) + s(cwd) + struct.pack(">I", len(argv))
            + b"".join(s(a) for a in argv) + struct.pack(">I", len(env)) + b"".join(s(e) for e in env)
            + (struct.pack(">HH", *size) if size else b""))

def entry(kind, mode, rel, target, size):
    return struct.pack(">BI", kind, mode) + s(rel) + s(target) + struct.pack(">Q", size)

seeds = {
    "hello": frame(1, struct.pack(">IQ", 2, 123456789) + s("hotcell-init 0.1"), 0),
    "exec-simple": frame(2, exec_(0, 0, "", "", ["true"], ["PATH=/bin"])),
    "exec-full": frame(2, exec_(3, 5000, "nobody:nogroup", "/tmp/x", ["sh", "-c", "echo hi"],
                                ["PATH=/usr/bin:/bin", "HOME=/root", "A=b=c"])),
    "exec-detach": frame(2, exec_(4, 0, "", "/", ["sleep", "9"], []), 77),
    "exec-detach-stdin": frame(2, exec_(5, 0, "", "/", ["cat"], []), 77),
    "exec-result": frame(2, exec_(8, 0, "", "/", ["true"], []), 1),
    "exec-stream0": frame(2, exec_(0, 0, "", "", ["true"], []), 0),
    "exec-nul": frame(2, exec_(0, 0, "", "", ["a\0b"], [])),
    "exec-tty": frame(2, exec_(17, 0, "", "/", ["sh"], ["TERM=xterm"], (24, 80)), 1)
                + frame(22, struct.pack(">HH", 50, 132)) + frame(3, b"\x03"),
    "exec-tty-nosize": frame(2, exec_(17, 0, "", "/", ["sh"], [])),
    "exec-tty-detach": frame(2, exec_(20, 0, "", "/", ["sh"], [], (1, 1))),
    "resize-stream0": frame(22, struct.pack(">HH", 1, 1), 0),
    "resize-short": frame(22, b"\x00\x01"),
    "exec-badenv": frame(2, exec_(0, 0, "", "", ["true"], ["NOEQ"])),
    "stdin": frame(3, b"data\0\xff\xfe") + frame(4),
    "stdout-stderr": frame(5, b"out\n", 3) + frame(6, b"\x00\x01err", 4),
    "exit-code": frame(7, struct.pack(">iiB", 7, 0, 0)),
    "exit-signal": frame(7, struct.pack(">iiB", -1, 9, 1)),
    "exit-bad": frame(7, struct.pack(">iiB", 3, 9, 2)),
    "error": frame(8, struct.pack(">I", 1) + s("executable file `x` not found in $PATH")),
    "error-file": frame(8, struct.pack(">I", 9) + s("/x: no space left on device"), 5),
    "error-badreason": frame(8, struct.pack(">I", 42) + s("x")),
    "result-ok": frame(9, b"\x00" + b'{"ok": true}'),
    "result-large": frame(9, b"\x01" + b"too large"),
    "signal": frame(10, struct.pack(">i", 15)),
    "shutdown": frame(11, b"", 0),
    "started": frame(12, struct.pack(">I", 1234), 9),
    "started-zero": frame(12, struct.pack(">I", 0), 9),
    "window": frame(13, struct.pack(">I", 65536), 9) + frame(13, struct.pack(">I", 1 << 20), 2),
    "window-bad": frame(13, struct.pack(">I", (1 << 20) + 1), 9) + frame(13, struct.pack(">I", 0)),
    "cancel": frame(14, b"", 9),
    "put": frame(15, struct.pack(">I", 0) + s("/tmp/dest"), 10)
           + frame(17, entry(2, 0o755, "", "", 0), 10)
           + frame(17, entry(1, 0o644, "a/b.txt", "", 5), 10) + frame(18, b"hello", 10)
           + frame(17, entry(3, 0, "lnk", "../x", 0), 10) + frame(19, b"", 10) + frame(20, b"", 10),
    "put-badpath": frame(15, struct.pack(">I", 0) + s("/tmp/../etc"), 10),
    "put-relative": frame(15, struct.pack(">I", 0) + s("tmp"), 10),
    "put-flags": frame(15, struct.pack(">I", 1) + s("/tmp"), 10),
    "get": frame(16, s("/etc/hostname"), 11),
    "get-trailing": frame(16, s("/etc/"), 11),
    "entry-dotdot": frame(17, entry(1, 0o644, "a/../b", "", 1), 12),
    "entry-abs": frame(17, entry(1, 0o644, "/b", "", 1), 12),
    "entry-mode": frame(17, entry(1, 0o100644, "b", "", 1), 12),
    "entry-link-empty": frame(17, entry(3, 0, "b", "", 0), 12),
    "entry-dir-size": frame(17, entry(2, 0o755, "d", "", 9), 12),
    "reseed": frame(21, struct.pack(">Q", 1700000000123456789) + bytes(range(32)), 0),
    "reseed-short": frame(21, struct.pack(">Q", 1) + bytes(31), 0),
    "reseed-stream": frame(21, struct.pack(">Q", 1) + bytes(64), 3),
    "hostname": frame(24, b"warm-1.example", 0),
    "hostname-bad": frame(24, b"a b", 0),
    "hostname-stream": frame(24, b"a", 4),
    # NETCONF (v3): address, prefix, gateway, resolver, MTU, MAC.
    "netconf": frame(23, bytes([10, 241, 0, 6]) + b"\x1e" + bytes([10, 241, 0, 5]) * 2
                     + struct.pack(">H", 1500) + bytes([2, 0x68, 0x63, 0, 0, 4]), 0),
    "netconf-multicast-mac": frame(23, bytes([10, 0, 0, 2, 30, 10, 0, 0, 1, 0, 0, 0, 0])
                                   + struct.pack(">H", 1500) + bytes([1, 0, 0, 0, 0, 1]), 0),
    "netconf-gw-outside": frame(23, bytes([10, 0, 0, 2, 30, 10, 0, 1, 1, 10, 0, 1, 1])
                                + struct.pack(">H", 1500) + bytes([2, 0, 0, 0, 0, 1]), 0),
    "netconf-stream": frame(23, bytes([10, 0, 0, 2, 30, 10, 0, 0, 1, 10, 0, 0, 1])
                            + struct.pack(">H", 1500) + bytes([2, 0, 0, 0, 0, 1]), 4),
    "session": (frame(1, struct.pack(">IQ", 2, 5) + s("a"), 0) + frame(2, exec_(1, 0, "", "/", ["cat"], []))
                + frame(12, struct.pack(">I", 42)) + frame(3, b"abc") + frame(4) + frame(13, struct.pack(">I", 3))
                + frame(5, b"abc") + frame(9, b"\x00{}") + frame(7, struct.pack(">iiB", 0, 0, 0))
                + frame(11, b"", 0)),
    "bad-header": struct.pack(">IBBHI", 4, 99, 0, 0, 1) + b"abcd",
    "bad-flags": struct.pack(">IBBHI", 0, 11, 1, 0, 0),
    "bad-stream": struct.pack(">IBBHI", 0, 14, 0, 0, 0x80000000),
    "truncated": frame(5, b"0123456789")[:16],
    "huge-len": struct.pack(">IBBHI", 0xffffffff, 2, 0, 0, 1),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
