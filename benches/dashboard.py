#!/usr/bin/env python3
"""A static rendering of docs/grafana-dashboard.json from a real run (docs/dashboard.png).

Starts the given livechatd, drives a scripted push-to-talk session against it (six radios
in two channels taking turns on the floor with real RTP over UDP, a queue now and then, a
talker out of turn, stray datagrams, an operator's floor revoke), scrapes its /metrics once
a second, and draws the dashboard's panels from the scraped series with matplotlib, with the
same expressions (rates over a 5 s window, sums by label). It is not a Grafana screenshot:
the picture says so.

    python3 benches/dashboard.py $CARGO_TARGET_DIR/release/livechatd docs/dashboard.png

Needs python3 with websockets and matplotlib.
"""

import asyncio
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import websockets

SECONDS = 150
SCRAPE = 1.0
WINDOW = 5  # samples in a rate window


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$", key)
        name, labels = m.group(1), m.group(2) or ""
        lab = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels)))
        out[(name, lab)] = float(value)
    return out


class Radio:
    """One member: a WebSocket session and a UDP socket for plain RTP."""

    def __init__(self, name, http, udp):
        self.name, self.http, self.udp = name, http, udp
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.ws = None
        self.events = asyncio.Queue()

    async def connect(self):
        self.ws = await websockets.connect(f"ws://{self.http}/gateway")
        await self.ws.recv()  # HELLO
        token = f"{int(time.time()) + 3600}.0.{'0' * 40}"
        await self.send(3, {"user_id": self.name, "token": token})
        asyncio.ensure_future(self.reader())

    async def reader(self):
        try:
            async for msg in self.ws:
                await self.events.put(json.loads(msg))
        except websockets.ConnectionClosed:
            pass

    async def send(self, op, d):
        await self.ws.send(json.dumps({"op": op, "d": d}))

    async def heartbeat(self):
        while True:
            await asyncio.sleep(5)
            await self.send(1, None)

    def report(self):
        # RTCP receiver report with no blocks: latches the listener (PROTOCOL.md section 3).
        self.sock.sendto(struct.pack("!BBHI", 0x80, 201, 1, self.ssrc), self.udp)

    def rtp(self):
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        header = struct.pack("!BBHII", 0x80, 0, self.seq, self.ts, self.ssrc)
        self.sock.sendto(header + bytes(160), self.udp)

    def drain(self):
        try:
            while self.sock.recv(2048):
                pass
        except BlockingIOError:
            pass


async def talk(r, channel, seconds):
    await r.send(30, {"channel_id": channel})
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r.rtp()
        await asyncio.sleep(0.02)
    await r.send(31, {"channel_id": channel})


async def scenario(http, udp, stop):
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    radios = []
    for n in names:
        r = Radio(n, http, udp)
        await r.connect()
        radios.append(r)
        asyncio.ensure_future(r.heartbeat())
        await asyncio.sleep(1.5)
    await radios[0].send(10, {"channel_id": "ops"})
    await radios[3].send(10, {"channel_id": "yard"})
    await asyncio.sleep(0.3)
    for i, r in enumerate(radios):
        await r.send(11, {"channel_id": "ops" if i < 4 else "yard", "ssrc": r.ssrc})
        if i == 3:
            await r.send(11, {"channel_id": "yard", "ssrc": (r.ssrc + 1) & 0xFFFFFFFF})
        await asyncio.sleep(0.5)
    for r in radios:
        r.report()
    ops, yard = radios[:4], radios[4:]
    start = time.monotonic()
    turn = 0
    revoked = False
    while not stop.is_set():
        t = time.monotonic() - start
        for r in radios:
            r.drain()
            if turn % 5 == 0:
                r.report()
        talker = ops[turn % len(ops)]
        tasks = [talk(talker, "ops", random.uniform(2.0, 5.0))]
        if turn % 3 == 1:
            # Two at once: the second waits in the queue.
            other = ops[(turn + 1) % len(ops)]
            tasks.append(talk(other, "ops", 1.5))
        if turn % 2 == 0:
            tasks.append(talk(yard[turn // 2 % 2], "yard", random.uniform(1.0, 3.0)))
        if 40 < t < 60:
            # Someone keys up out of turn: not the holder, dropped.
            bystander = ops[(turn + 2) % len(ops)]
            for _ in range(30):
                bystander.rtp()
        if 70 < t < 80:
            # Stray datagrams on the media port: malformed, unknown SSRC.
            s = radios[5].sock
            for _ in range(40):
                s.sendto(b"\x05garbage", udp)
                s.sendto(struct.pack("!BBHII", 0x80, 0, 1, 1, 0xDEADBEEF) + bytes(20), udp)
        gathered = asyncio.gather(*tasks, return_exceptions=True)
        if t > 95 and not revoked:
            # The operator revokes the talker in the middle of a turn.
            await asyncio.sleep(1.0)
            url = f"http://{http}/admin/v1/channels/ops/floor/revoke"
            try:
                urllib.request.urlopen(urllib.request.Request(url, method="POST")).read()
                revoked = True
            except OSError:
                pass
        await gathered
        await asyncio.sleep(random.uniform(0.5, 2.0))
        turn += 1


async def scrape(http, samples, stop):
    t0 = time.monotonic()
    while time.monotonic() - t0 < SECONDS:
        try:
            text = urllib.request.urlopen(f"http://{http}/metrics").read().decode()
            samples.append((time.monotonic() - t0, parse_metrics(text)))
        except OSError:
            pass
        await asyncio.sleep(SCRAPE)
    stop.set()


def series(samples, name, **want):
    """{labels: [values]} of every series of `name` matching `want`, NaN where absent."""
    labs = set()
    for _, m in samples:
        for n, lab in m:
            if n == name and all(dict(lab).get(k) == x for k, x in want.items()):
                labs.add(lab)
    return {lab: [m.get((name, lab), float("nan")) for _, m in samples] for lab in labs}


def rate(values, times):
    """Per-second increase over the last WINDOW samples; 0 where the series is absent."""
    out = []
    for i in range(len(values)):
        j = max(0, i - WINDOW)
        a, b = values[j], values[i]
        dt = times[i] - times[j]
        ok = dt > 0 and a == a and b == b
        out.append((b - a) / dt if ok else 0.0)
    return out


def render(samples, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.style.use("dark_background")
    times = [t for t, _ in samples]
    fig, axes = plt.subplots(3, 2, figsize=(14, 10.5))
    bg = "#181b1f"
    fig.patch.set_facecolor("#111217")
    colours = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a"]

    def panel(ax, title, unit=""):
        ax.set_facecolor(bg)
        ax.set_title(title, loc="left", fontsize=11, color="#ccccdc")
        ax.grid(color="#2c3235", linewidth=0.6)
        ax.tick_params(colors="#8e8e8e", labelsize=8)
        for s in ax.spines.values():
            s.set_color("#2c3235")
        ax.set_xlabel("seconds into the run", fontsize=8, color="#8e8e8e")
        if unit:
            ax.set_ylabel(unit, fontsize=8, color="#8e8e8e")

    def one(name):
        return next(iter(series(samples, name).values()), [0.0] * len(samples))

    ax = axes[0][0]
    panel(ax, "Sessions and connections")
    for i, (name, label) in enumerate(
        [("livechat_connections", "connections"), ("livechat_sessions", "sessions"), ("livechat_peers", "media peers")]
    ):
        ax.plot(times, one(name), label=label, color=colours[i], linestyle="--" if i == 1 else "-", linewidth=1.5)
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][1]
    panel(ax, "Talkers (floors held)")
    ax.step(times, one("livechat_talkers"), where="post", color=colours[0], label="talkers")
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[1][0]
    panel(ax, "Relay rate", "packets/s")
    for i, (name, label) in enumerate(
        [
            ("livechat_media_relayed_total", "relayed from talkers"),
            ("livechat_media_packets_out_total", "sent to listeners"),
            ("livechat_media_packets_in_total", "received"),
        ]
    ):
        ax.plot(times, rate(one(name), times), label=label, color=colours[i])
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[1][1]
    panel(ax, "Media drops by reason", "packets/s")
    drops = series(samples, "livechat_media_dropped_total")
    stack, labels = [], []
    for lab, vals in sorted(drops.items()):
        r = rate(vals, times)
        if max(r) > 0:
            stack.append(r)
            labels.append(dict(lab)["reason"])
    if stack:
        ax.stackplot(times, *stack, labels=labels, colors=colours[: len(stack)], alpha=0.8)
        ax.legend(fontsize=8, loc="upper left")

    ax = axes[2][0]
    panel(ax, "Floor waits")
    ax.step(times, one("livechat_floor_waiting"), where="post", color=colours[0], label="requests queued")
    for i, (lab, vals) in enumerate(sorted(series(samples, "livechat_floor_revokes_total").items())):
        r = rate(vals, times)
        if max(r) > 0:
            ax.plot(times, r, color=colours[3 + i], label=f"revoked/s: {dict(lab)['cause']}")
    for i, (lab, vals) in enumerate(sorted(series(samples, "livechat_floor_denials_total").items())):
        r = rate(vals, times)
        if max(r) > 0:
            ax.plot(times, r, color=colours[5 + i], label=f"denied/s: {dict(lab)['reason']}")
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[2][1]
    panel(ax, "Talk time per channel (seconds per second)")
    talk = series(samples, "livechat_channel_talk_seconds_total")
    stack, labels = [], []
    for lab, vals in sorted(talk.items()):
        stack.append([0.0 if v != v else v for v in rate(vals, times)])
        labels.append(dict(lab)["channel"])
    if stack:
        ax.stackplot(times, *stack, labels=labels, colors=colours[: len(stack)], alpha=0.8)
        ax.legend(fontsize=8, loc="upper left")

    fig.suptitle(
        "livechat dashboard (docs/grafana-dashboard.json), drawn with matplotlib from /metrics scraped\n"
        "every second off a real livechatd during a scripted PTT run (benches/dashboard.py); not a Grafana screenshot",
        fontsize=11,
        color="#ccccdc",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=80, facecolor=fig.get_facecolor())


async def main(daemon, out):
    http = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    udp = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECHAT_")}
    env.update(
        LIVECHAT_CONFIG="/nonexistent/livechatd.toml",
        LIVECHAT_HTTP_ADDR=http,
        LIVECHAT_UDP_ADDR=f"{udp[0]}:{udp[1]}",
        LIVECHAT_FLOOR_PING_MS="8000",
        RUST_LOG="warn",
    )
    proc = subprocess.Popen([daemon], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{http}/healthz").read()
                break
            except OSError:
                await asyncio.sleep(0.1)
        samples, stop = [], asyncio.Event()
        load = asyncio.ensure_future(scenario(http, udp, stop))
        await scrape(http, samples, stop)
        load.cancel()
        with open("/tmp/livechat-dashboard-samples.json", "w") as f:
            json.dump([[t, [[n, list(lab), v] for (n, lab), v in m.items()]] for t, m in samples], f)
        render(samples, out)
        print(f"{out}: {len(samples)} scrapes")
    finally:
        proc.terminate()
        proc.wait()


def load_samples(path):
    with open(path) as f:
        raw = json.load(f)
    return [(t, {(n, tuple(tuple(p) for p in lab)): v for n, lab, v in m}) for t, m in raw]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--render":
        # Draws again from the samples a run saved (/tmp/livechat-dashboard-samples.json).
        render(load_samples(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    random.seed(7)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
