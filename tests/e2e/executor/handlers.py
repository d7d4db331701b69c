# Python handlers of tests/e2e/executor.sh (the image's /app, its WorkingDir).
import asyncio
import sys
import time


def echo(x):
    print("hello from python")
    print("to stderr", file=sys.stderr)
    return {"got": x, "lang": "python"}


async def add(x):
    await asyncio.sleep(0.05)
    return x["a"] + x["b"]


def boom(x):
    raise ValueError("bad input: %r" % (x,))


def nonjson(x):
    return {1, 2, 3}


def sleepy(x):
    time.sleep(x.get("secs", 120))
    return "woke"
