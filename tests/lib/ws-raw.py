#!/usr/bin/python3
# A WebSocket client that writes frames by hand, to send what a well-behaved library never
# would (tests/integration/serve-api.sh). Usage: ws-raw.py PORT TOKEN CASE
# Prints one line: "status=<HTTP status>" then "close=<code>" (or "closed" / "timeout") and,
# for case "ok", the reply text.
import base64
import os
import socket
import struct
import sys

port, token, case = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(
    (
        "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
)
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk:
        break
    head += chunk
status = head.split(b" ", 2)[1].decode() if head else "none"
print(f"status={status}")
rest = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""


def frame(opcode, payload, mask=True, fin=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    m = os.urandom(4)
    return hdr + m + bytes(c ^ m[i % 4] for i, c in enumerate(payload))


msg = b'{"jsonrpc":"2.0","method":"health","id":1}'
cases = {
    "ok": frame(1, msg),
    "unmasked": frame(1, msg, mask=False),
    "badopcode": frame(3, b"x"),
    "rsv": frame(1, msg, rsv=4),
    "badutf8": frame(1, b'"\xff\xfe"'),
    "binary": frame(2, b"\x00\x01"),
    "badjson": frame(1, b"{nope"),
    "ping": frame(9, b"hello"),
    "fragmented-control": frame(9, b"x", fin=False),
    "huge-length": struct.pack("!BBQ", 0x81, 0xFF, 1 << 62) + os.urandom(4) + b"x" * 1000,
}
s.sendall(cases[case])
buf = rest
try:
    while True:
        while len(buf) < 2:
            chunk = s.recv(4096)
            if not chunk:
                print("closed")
                sys.exit(0)
            buf += chunk
        op, ln = buf[0] & 0x0F, buf[1] & 0x7F
        off = 2
        if ln == 126:
            ln, off = struct.unpack("!H", buf[2:4])[0], 4
        elif ln == 127:
            ln, off = struct.unpack("!Q", buf[2:10])[0], 10
        while len(buf) < off + ln:
            chunk = s.recv(65536)
            if not chunk:
                print("closed")
                sys.exit(0)
            buf += chunk
        payload, buf = buf[off : off + ln], buf[off + ln :]
        if op == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            print(f"close={code}")
            sys.exit(0)
        if op == 10:
            print(f"pong={payload.decode(errors='replace')}")
            sys.exit(0)
        print(payload.decode(errors="replace"))
        if case in ("ok", "badjson"):
            sys.exit(0)
except socket.timeout:
    print("timeout")
