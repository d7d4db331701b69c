#!/usr/bin/env python3
# Regenerates the seed corpus of tests/fuzz/fuzz-vmctl.c (docs/vm.md, "Control socket").
import os, struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vmctl")
os.makedirs(out, exist_ok=True)

def frame(t, payload=b""):
    payload = payload.encode() if isinstance(payload, str) else payload
    return struct.pack(">IB", len(payload), t) + payload

seeds = {
    "ping": frame(1, '{"op":"ping"}'),
    "stop": frame(1, '{"op":"stop","grace":2.5}'),
    "exec": frame(1, '{"op":"exec","cmd":["sh","-c","cat"],"env":["A=1"],"stdin":true}')
            + frame(4, b"data\0\xff") + frame(5) + frame(8, struct.pack(">I", 15)) + frame(9),
    "unknown-op": frame(1, '{"op":"format-disk"}'),
    "no-op": frame(1, '{"cmd":["x"]}'),
    "not-object": frame(1, '["op","ping"]'),
    "dup-keys": frame(1, '{"op":"ping","op":"stop"}'),
    "nul-in-string": frame(1, '{"op":"pi\\u0000ng"}'),
    "bad-signal": frame(8, struct.pack(">I", 0)),
    "signal-short": struct.pack(">IB", 2, 8) + b"\0\1",
    "huge-len": struct.pack(">IB", 0xFFFFFFFF, 1),
    "bad-type": frame(42, b"x"),
    "close-with-payload": struct.pack(">IB", 1, 5) + b"x",
    "truncated": frame(1, '{"op":"ping"}')[:-3],
    "invalid-json": frame(1, '{"op":'),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
