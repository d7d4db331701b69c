#!/usr/bin/python3
# WebSocket scenarios against `hotcell serve` with Debian's python3-websockets
# (tests/e2e/serve-run.sh). Usage: ws-client.py PORT TOKEN IMAGE. Prints PASS/FAIL lines.
import asyncio
import json
import sys
import time

import websockets

port, token, image = sys.argv[1], sys.argv[2], sys.argv[3]
URL = f"ws://127.0.0.1:{port}/api/v1/ws"
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL: {name}: {why}", flush=True)


def run_req(id_, cmd, stream=True, **kw):
    p = {"image": image, "memory_mib": 128, "command": cmd, "stream": stream}
    p.update(kw)
    return json.dumps({"jsonrpc": "2.0", "method": "sandbox.run", "id": id_, "params": p})


async def collect(ws, until_ids, timeout=240):
    """Messages until responses for every id in until_ids arrived: (outputs, responses, order)."""
    outputs, responses, order = {}, {}, []
    deadline = time.time() + timeout
    while set(until_ids) - set(responses):
        m = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.time()))
        if m.get("method") == "output":
            p = m["params"]
            outputs.setdefault(p["call"], []).append((p["stream"], p["data"], p["encoding"], time.time()))
        elif "id" in m:
            responses[m["id"]] = m
            order.append(m["id"])
    return outputs, responses, order


async def main():
    hdr = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(URL, extra_headers=hdr, max_size=16 << 20) as ws:
        # stdin stays open until eof; output notifications as the command writes
        await ws.send(run_req("s1", ["sh", "-c", "read a; echo got $a; cat; echo err >&2"]))
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "stdin", "params": {"call": "s1", "data": "one\n"}}))
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "stdin", "params": {"call": "s1", "data": "dHdvCg==", "encoding": "base64", "eof": True}}))
        outs, resp, _ = await collect(ws, ["s1"])
        r = resp["s1"].get("result", {})
        out = "".join(d for s, d, e, _ in outs.get("s1", []) if s == "stdout")
        check("ws-stdin-eof", r.get("exit_code") == 0 and r.get("stdout") == "got one\ntwo\n", resp["s1"])
        check("ws-output-notifications", out == "got one\ntwo\n" and any(s == "stderr" for s, *_ in outs.get("s1", [])), outs)
        check("ws-console-output", r.get("console_output") == "got one\ntwo\nerr\n", r.get("console_output"))

        # several calls in flight on one socket: the quick one answers first
        await ws.send(run_req(1, ["sh", "-c", "sleep 4; echo slow"], stream=False))
        await ws.send(run_req(2, ["echo", "quick"], stream=False))
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "health", "id": 3}))
        _, resp, order = await collect(ws, [1, 2, 3])
        check("ws-concurrent-calls", order.index(2) < order.index(1) and order.index(3) < order.index(1), order)
        check("ws-concurrent-results", resp[1]["result"]["stdout"] == "slow\n" and resp[2]["result"]["stdout"] == "quick\n", resp)

        # signal: SIGTERM ends the call
        await ws.send(run_req("sig", ["sh", "-c", "echo started; sleep 120"]))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 240))
            if m.get("method") == "output":
                break
        t0 = time.time()
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "signal", "id": "sg", "params": {"call": "sig", "signal": "SIGTERM"}}))
        _, resp, _ = await collect(ws, ["sig", "sg"])
        e = resp["sig"].get("error", {})
        check("ws-signal", resp["sg"].get("result") == {} and e.get("data", {}).get("kind") == "cancelled", resp)
        check("ws-signal-prompt", time.time() - t0 < 60, f"{time.time() - t0:.1f} s")

        # "tty": true: the command has a terminal in the guest, output is one stream (stdout),
        # and `resize` sets its window size (docs/server.md)
        await ws.send(run_req("tty", ["sh", "-c", "tty; read x; stty size; echo err >&2"], tty=True))
        outs = ""
        while "/dev/pts/" not in outs:
            m = json.loads(await asyncio.wait_for(ws.recv(), 240))
            if m.get("method") == "output":
                outs += m["params"]["data"]
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "resize", "id": "rz", "params": {"call": "tty", "rows": 40, "cols": 123}}))
        await asyncio.sleep(1)
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "stdin", "params": {"call": "tty", "data": "go\n"}}))
        o2, resp, _ = await collect(ws, ["tty", "rz"])
        r = resp["tty"].get("result", {})
        text = outs + "".join(d for s_, d, e, _ in o2.get("tty", []))
        check("ws-tty-pty", r.get("exit_code") == 0 and "/dev/pts/" in text, resp["tty"])
        check("ws-tty-resize", resp["rz"].get("result") == {} and "40 123" in text, (resp["rz"], text))
        check("ws-tty-one-stream", all(s_ == "stdout" for s_, *_ in o2.get("tty", [])) and "err" in text, o2)
        await ws.send(run_req("notty", ["sh", "-c", "sleep 1"]))
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "resize", "id": "rz2", "params": {"call": "notty", "rows": 1, "cols": 1}}))
        _, resp, _ = await collect(ws, ["notty", "rz2"])
        check("ws-resize-needs-tty", "no terminal" in resp["rz2"].get("error", {}).get("message", ""), resp["rz2"])

        # control messages for a call that is not there are answered with an error
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "stdin", "id": "x", "params": {"call": "nope", "data": "a"}}))
        _, resp, _ = await collect(ws, ["x"])
        check("ws-stdin-unknown-call", resp["x"].get("error", {}).get("code") == -32602, resp)

        # batch over the socket
        await ws.send(json.dumps([{"jsonrpc": "2.0", "method": "health", "id": "b1"}, {"jsonrpc": "2.0", "method": "health"}]))
        m = json.loads(await asyncio.wait_for(ws.recv(), 30))
        check("ws-batch", isinstance(m, list) and len(m) == 1 and m[0]["id"] == "b1", m)

        # ping answered
        pong = await ws.ping(b"abc")
        await asyncio.wait_for(pong, 10)
        check("ws-ping", True)
    check("ws-clean-close", ws.close_code == 1000, ws.close_code)

    # a socket that goes away mid-run cancels its run (the caller checks for leftovers)
    ws = await websockets.connect(URL, extra_headers=hdr)
    await ws.send(run_req("gone", ["sh", "-c", "echo x; sleep 120"]))
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 240))
        if m.get("method") == "output":
            break
    ws.transport.abort()
    print("INFO: aborted a socket mid-run", flush=True)


asyncio.run(main())
sys.exit(1 if failures else 0)
