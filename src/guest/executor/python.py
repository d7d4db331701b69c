# SPDX-License-Identifier: MIT
# hotcell's Python handler wrapper (docs/executors.md). hotcell-init writes it to
# /hotcell/runtime/python.py in every guest; an executor with "runtime": "python" runs
#   python3 /hotcell/runtime/python.py MODULE:FUNCTION
# in the image's WorkingDir with the call's input (JSON) on stdin. It imports MODULE with that
# directory first on sys.path, calls FUNCTION(input) (awaiting it when it is a coroutine) and
# writes the return value as JSON to /hotcell/result.json. An exception, a handler that cannot
# be found or a return value that is not JSON becomes {"handler_error": {"type", "message",
# "traceback"}} in result.json and exit status 1. The handler's own prints go to stdout and
# stderr as usual. Only what Debian's python3 package has (json, asyncio, traceback).
import json
import os
import sys

RESULT = "/hotcell/result.json"


def write_result(doc):
    tmp = RESULT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc)
    os.replace(tmp, RESULT)


def fail(kind, message, tb=""):
    write_result(json.dumps({"handler_error": {"type": kind, "message": message, "traceback": tb}}))
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(1)


def fail_exc(e, prefix=""):
    import traceback

    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    fail(type(e).__qualname__, prefix + str(e), tb)


def main():
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        fail("UsageError", "usage: python.py MODULE:FUNCTION")
    module, _, name = sys.argv[1].partition(":")
    # The image's WorkingDir comes first; the wrapper's own directory is not on the path.
    sys.path[0] = os.getcwd()
    # Prints appear as they are made, also through a pipe.
    sys.stdout.reconfigure(line_buffering=True)
    raw = sys.stdin.buffer.read()
    # The handler's own stdin is empty: the input was the call's.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        value = json.loads(raw) if raw.strip() else None
    except ValueError as e:
        fail_exc(e, "the input is not JSON: ")
    try:
        import importlib

        fn = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
        if not callable(fn):
            raise TypeError("%s:%s is not callable" % (module, name))
        out = fn(value)
        if hasattr(out, "__await__"):
            import asyncio

            async def wait(aw):
                return await aw

            out = asyncio.run(wait(out))
    except Exception as e:
        fail_exc(e)
    try:
        doc = json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as e:
        fail(type(e).__qualname__, "the handler's return value is not JSON-serialisable: %s" % e)
    write_result(doc)


main()
