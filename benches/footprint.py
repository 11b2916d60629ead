#!/usr/bin/env python3
"""Footprint of a livechatd binary: stripped size, idle RSS, RSS with N clients.

Starts the daemon on loopback (ports chosen by the kernel, no config file), waits for its
`ready` line, lets it settle, and reads /proc/PID/status (VmRSS, VmHWM) and /proc/PID/smaps
(resident memory by mapping: the binary, libc and the loader, [heap], [stack], anonymous
mappings). Then N clients connect over plain ws://, IDENTIFY, and all JOIN one channel (with
SDES keys when --crypto, as SRTP clients do; none with --no-join); the figures are read again while they stay
connected (each client keeps reading, and heartbeats).

    python3 benches/footprint.py [--bin PATH] [--runner "qemu-aarch64-static -L ..."]
                                 [--clients 100] [--per-channel N] [--crypto] [--no-join] [--json]
                                 [--set LIVECHAT_KEY=VALUE ...]

--per-channel spreads the joins over channels of N members (default: one channel for all);
--set passes a setting to the daemon (for 1000 clients from one IP:
--set LIVECHAT_MAX_CONN_PER_IP=2000 --per-channel 100).

Needs python3 and the `websockets` package (bash .ci/deps-e2e.sh installs it). With --runner
the process measured is the emulator running the daemon: its RSS includes qemu's own code
and translation cache, so it is not the daemon's footprint on real hardware (see
docs/performance.md, "Footprint").
"""

import argparse
import asyncio
import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time

import websockets

SECRET = "footprint-secret"


def default_bin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target"
    )
    return os.path.join(target, "release", "livechatd")


def token(user_id, ttl=3600, cap=255):
    import hashlib
    import hmac

    expiry = int(time.time()) + ttl
    mac = hmac.new(SECRET.encode(), f"{user_id}.{expiry}.{cap}".encode(), hashlib.sha1)
    return f"{expiry}.{cap}.{mac.hexdigest()}"


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize", "Threads"):
                out[k] = int(v.split()[0]) if k != "Threads" else int(v)
    # Proportional set size: file pages shared with other processes (libc) count in part.
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Private_Clean", "Private_Dirty"):
                out[k] = int(v.split()[0])
    return out


def smaps(pid, binary):
    """Resident kB by kind of mapping."""
    kinds = {}
    current = None
    binary_name = os.path.basename(binary)
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if header.match(line):
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) > 5 else ""
                name = os.path.basename(path)
                if path.startswith("["):
                    current = path
                elif not path:
                    current = "anonymous (thread stacks, mmap'd heap)"
                elif name == binary_name:
                    current = f"{binary_name} (binary)"
                elif name.startswith(("libc.so", "libc-", "ld-linux", "ld-")):
                    current = "libc + loader"
                elif "qemu" in name:
                    current = f"{name} (emulator)"
                else:
                    current = "other libraries: " + name
            elif line.startswith("Rss:") and current is not None:
                kinds[current] = kinds.get(current, 0) + int(line.split()[1])
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def start(binary, runner, settings):
    cmd = (shlex.split(runner) if runner else []) + [binary]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECHAT_")}
    env.update(
        LIVECHAT_HTTP_ADDR="127.0.0.1:0",
        LIVECHAT_UDP_ADDR="127.0.0.1:0",
        LIVECHAT_CONFIG="/nonexistent/livechatd.toml",
        LIVECHAT_SECRET=SECRET,
        RUST_LOG="warn,livechatd::server=info",
    )
    env.update(settings)
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        m = re.search(r"ready http=(\S+)", line)
        if m:
            return p, m.group(1)
    p.kill()
    raise SystemExit(f"livechatd did not get ready: {cmd}")


class Member:
    def __init__(self, ws):
        self.ws = ws
        self.tasks = []

    async def recv_op(self, op):
        while True:
            f = json.loads(await self.ws.recv())
            if f.get("op") == op:
                return f
            if f.get("op") == 201:
                raise SystemExit(f"error from the daemon: {f}")

    async def keep_reading(self):
        try:
            async for _ in self.ws:
                pass
        except websockets.ConnectionClosed:
            pass

    async def heartbeat(self):
        while True:
            await asyncio.sleep(5)
            await self.ws.send(json.dumps({"op": 1, "d": None}))


async def connect_all(http, n, crypto, per_channel, join=True):
    members = []
    for i in range(n):
        ws = await websockets.connect(f"ws://{http}/gateway", max_size=None, compression=None)
        m = Member(ws)
        await m.recv_op(0)  # HELLO
        uid = f"u{i:04d}"
        await ws.send(json.dumps({"op": 3, "d": {"user_id": uid, "token": token(uid)}}))
        await m.recv_op(4)  # READY
        if not join:
            m.tasks = [asyncio.ensure_future(m.keep_reading()), asyncio.ensure_future(m.heartbeat())]
            members.append(m)
            continue
        channel = f"footprint{i // per_channel}"
        if i % per_channel == 0:
            await ws.send(json.dumps({"op": 10, "d": {"channel_id": channel}, "id": 1}))
            await m.recv_op(200)
        d = {"channel_id": channel, "ssrc": 1000 + i}
        if crypto:
            key = base64.b64encode(os.urandom(30)).decode()
            d["crypto"] = {"suite": "AES_CM_128_HMAC_SHA1_80", "key": key}
        await ws.send(json.dumps({"op": 11, "d": d, "id": 2}))
        ack = await m.recv_op(200)
        assert ack["d"]["req_op"] == 11, ack
        m.tasks = [asyncio.ensure_future(m.keep_reading()), asyncio.ensure_future(m.heartbeat())]
        members.append(m)
    return members


def measure(pid, binary):
    return {"status": status(pid), "smaps": smaps(pid, binary)}


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("LIVECHATD_BIN") or default_bin())
    ap.add_argument("--runner", default=os.environ.get("LIVECHATD_RUNNER", ""))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--per-channel", type=int, default=0, help="members per channel (0: all in one)")
    ap.add_argument("--set", action="append", default=[], metavar="LIVECHAT_KEY=VALUE",
                    help="a setting for the daemon")
    ap.add_argument("--crypto", action="store_true", help="JOIN with SDES keys (SRTP)")
    ap.add_argument("--no-join", action="store_true", help="clients identify and join no channel")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before each reading")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    settings = dict(kv.split("=", 1) for kv in a.set)
    p, http = start(a.bin, a.runner, settings)
    try:
        await asyncio.sleep(a.settle)
        idle = measure(p.pid, a.bin)
        members = await connect_all(http, a.clients, a.crypto, a.per_channel or a.clients,
                                    join=not a.no_join)
        await asyncio.sleep(a.settle)
        loaded = measure(p.pid, a.bin)
        assert p.poll() is None, "livechatd exited during the measurement"
        for m in members:
            for t in m.tasks:
                t.cancel()
            await m.ws.close()
    finally:
        p.terminate()
        p.wait(timeout=10)

    result = {
        "binary": os.path.abspath(a.bin),
        "binary_bytes": os.path.getsize(a.bin),
        "runner": a.runner or None,
        "clients": a.clients,
        "crypto": a.crypto,
        "idle": idle,
        "loaded": loaded,
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    kib = 1024
    print(f"binary      {result['binary']}")
    print(f"size        {result['binary_bytes']} bytes ({result['binary_bytes'] / kib / kib:.2f} MiB)")
    if a.runner:
        print(f"runner      {a.runner} (RSS below is the emulator's process)")
    what = "identified" if a.no_join else "joined" + (" (SRTP)" if a.crypto else "")
    for label, m in (("idle", idle), (f"{a.clients} clients {what}", loaded)):
        s = m["status"]
        print(f"\n{label}: VmRSS {s['VmRSS']} kB ({s['VmRSS'] / kib:.2f} MiB), VmHWM {s['VmHWM']} kB, "
              f"RssAnon {s['RssAnon']} kB, RssFile {s['RssFile']} kB, Pss {s['Pss']} kB, "
              f"Private {s['Private_Clean'] + s['Private_Dirty']} kB, threads {s['Threads']}")
        for kind, rss in m["smaps"].items():
            if rss:
                print(f"    {rss:7d} kB  {kind}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
