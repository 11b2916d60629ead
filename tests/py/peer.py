#!/usr/bin/env python3
"""An independent livechat peer for the e2e suite, written with the `websockets` library.

Usage: peer.py WS_URL USER_ID TOKEN CHANNEL_ID RUST_USER

Connects, checks HELLO, identifies, joins CHANNEL_ID (created by the Rust side), sends an emoji
chat message with json.dumps (ASCII only: surrogate-pair escapes), expects its own MESSAGE_EVENT
with the exact content back, then expects RUST_USER's reply. Prints OK and exits 0, or prints
what went wrong and exits non-zero.
"""
import asyncio
import json
import sys

try:
    import websockets
except ImportError:
    print("python package `websockets` is missing: run .ci/deps-e2e.sh", file=sys.stderr)
    sys.exit(3)

TIMEOUT = 5.0
CONTENT = "hello from python \U0001F600 \u65e5\u672c \u00e9"
REPLY = "reply from rust \u2713 \U0001F389"


class Fail(Exception):
    pass


async def recv_until(ws, what, pred):
    async def loop():
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                raise Fail(f"server sent a binary frame while waiting for {what}")
            frame = json.loads(raw)
            if pred(frame):
                return frame
    try:
        return await asyncio.wait_for(loop(), TIMEOUT)
    except asyncio.TimeoutError:
        raise Fail(f"timed out after {TIMEOUT}s waiting for {what}")


async def main(url, user, token, channel, rust_user):
    async with websockets.connect(url, open_timeout=TIMEOUT) as ws:
        hello = await recv_until(ws, "HELLO", lambda f: True)
        if hello.get("op") != 0 or not str(hello["d"].get("server", "")).startswith("livechatd/"):
            raise Fail(f"first frame is not HELLO: {hello}")

        await ws.send(json.dumps({"op": 3, "d": {"user_id": user, "token": token}, "id": 1}))
        ready = await recv_until(ws, "READY", lambda f: f.get("id") == 1)
        if ready.get("op") != 4 or ready["d"].get("user_id") != user:
            raise Fail(f"IDENTIFY did not get READY: {ready}")

        await ws.send(json.dumps(
            {"op": 11, "d": {"channel_id": channel, "ssrc": 0x7E57}, "id": 2}))
        ack = await recv_until(ws, "JOIN ACK", lambda f: f.get("id") == 2)
        if ack.get("op") != 200 or ack["d"].get("req_op") != 11:
            raise Fail(f"CHANNEL_JOIN did not get ACK: {ack}")
        if user not in ack["d"].get("active_members", []):
            raise Fail(f"JOIN ACK active_members lacks {user}: {ack}")

        text = json.dumps({"op": 20, "d": {"channel_id": channel, "content": CONTENT}})
        if "\\ud83d\\ude00" not in text:
            raise Fail(f"json.dumps did not use surrogate escapes: {text}")
        await ws.send(text)
        ev = await recv_until(
            ws, "own MESSAGE_EVENT",
            lambda f: f.get("op") == 101 and f["d"].get("user_id") == user)
        if ev["d"].get("content") != CONTENT or ev["d"].get("channel_id") != channel:
            raise Fail(f"own message came back changed: sent {CONTENT!r}, got {ev}")
        if not isinstance(ev["d"].get("timestamp"), int):
            raise Fail(f"MESSAGE_EVENT timestamp is not an integer: {ev}")

        ev = await recv_until(
            ws, "the Rust peer's reply",
            lambda f: f.get("op") == 101 and f["d"].get("user_id") == rust_user)
        if ev["d"].get("content") != REPLY:
            raise Fail(f"reply came back changed: expected {REPLY!r}, got {ev}")
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(*sys.argv[1:]))
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
