#!/usr/bin/env python3
"""WebRTC join benchmark: N aiortc peers join one channel at once through `sdp_offer`.

Starts the release daemon on loopback (as benches/footprint.py does), connects and
IDENTIFYs N gateway connections, one of them creates the channel, and every peer makes its
offer (aiortc, audio only, ICE gathered on 127.0.0.1) before anything is timed. Then, with
the daemon settled:

  1. RSS and CPU time (utime+stime from /proc/PID/stat, and the threads' schedstat) are
     read: N clients identified, none joined, no WebRTC.
  2. All N peers send CHANNEL_JOIN with their offer at once; each records the time from
     sending its JOIN to its RTCPeerConnection being `connected` (ICE and DTLS done, as the
     peer sees it). The daemon's CPU time is read again once the last peer is connected (or
     the wait gave up); its growth over N is the CPU per join (SDP parse and answer, ICE
     checks, DTLS handshake, SRTP key set-up).
  3. After a settle, RSS is read again; (RSS with N connected - RSS at step 1) / N is the
     memory per connected WebRTC peer (channel membership included).
  4. The daemon's stderr (debug records of its WebRTC glue) gives its own view: when each
     handshake completed, from the first JOIN sent.
  5. On a fresh daemon, N identified clients join a channel without WebRTC (an SSRC, no
     keys): the RSS growth over N is what a membership alone costs.

The peers' audio tracks produce no frames, so no RTP reaches the daemon during the
measurement: the CPU figure is the joins' alone (aiortc still sends its RTCP).

    python3 benches/webrtc_join.py [--bin PATH] [--peers 100] [--settle 2] [--json]

Needs python3 with aiortc, websockets and numpy (bash .ci/deps-e2e.sh). Run by hand, not
in CI; see docs/performance.md, "WebRTC".
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "webrtc"))

import footprint  # noqa: E402
import lcpeer  # noqa: E402
from aiortc import MediaStreamTrack, RTCSessionDescription  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


class SilentTrack(MediaStreamTrack):
    """An audio track that never yields a frame: the m-line is sendrecv, no RTP flows."""

    kind = "audio"

    def __init__(self, freq=0):
        super().__init__()

    async def recv(self):
        await asyncio.Event().wait()


lcpeer.ToneTrack = SilentTrack


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the parenthesised name; utime and stime are fields 14 and 15.
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def run_ns(pid):
    """CPU time in nanoseconds (the first field of schedstat) summed over the live threads:
    the same time as utime+stime, without the clock tick's 10 ms grain."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def rss_kib(pid):
    return footprint.status(pid)["VmRSS"]


def pct(sorted_xs, p):
    return sorted_xs[min(len(sorted_xs) - 1, int(round(p / 100 * (len(sorted_xs) - 1))))]


async def join_one(peer, channel, within, sent):
    """(seconds from sending CHANNEL_JOIN to `connected`, or None if it did not connect);
    appends the time the JOIN was sent to `sent`."""
    t0 = time.monotonic()
    sent.append(t0)
    d = await peer.gw.ack(lcpeer.OP_JOIN, {"channel_id": channel, "sdp_offer": peer.offer})
    peer.answer = d["sdp_answer"]
    await peer.pc.setRemoteDescription(RTCSessionDescription(peer.answer, "answer"))
    deadline = t0 + within
    while peer.pc.connectionState != "connected":
        if peer.pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.005)
    return time.monotonic() - t0


class DaemonLog:
    """Reads the daemon's stderr on a thread and keeps the arrival time of each
    `webrtc: DTLS connected` line (its debug record when a peer's handshake completes and
    its SRTP keys are set): the daemon's own view of when each peer connected. The log's
    timestamps have a one-second resolution, so the arrival time stands in for them."""

    def __init__(self, stream):
        self.connected = []
        self.failed = 0
        self._t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._t.start()

    def _read(self, stream):
        for line in stream:
            if "webrtc: DTLS connected" in line:
                self.connected.append(time.monotonic())
            elif "webrtc: peer failed" in line:
                self.failed += 1


async def plain_membership_kib(binary, n, settle):
    """RSS per member for N identified clients joining one channel without WebRTC (an SSRC,
    no keys), on a fresh daemon: what a channel membership costs whatever the media."""
    p, http = footprint.start(binary, "", {})
    try:
        await asyncio.sleep(settle)
        members = await footprint.connect_all(http, n, False, n, join=False)
        await asyncio.sleep(settle)
        before = rss_kib(p.pid)
        # Each member's reader task takes the answers; the settle leaves time for them.
        await members[0].ws.send(json.dumps({"op": 10, "d": {"channel_id": "plain"}, "id": 1}))
        await asyncio.sleep(0.2)
        for i, m in enumerate(members):
            await m.ws.send(json.dumps(
                {"op": 11, "d": {"channel_id": "plain", "ssrc": 1000 + i}, "id": 2}))
        await asyncio.sleep(settle)
        after = rss_kib(p.pid)
        check = await lcpeer.Gateway.connect(f"ws://{http}/gateway", "check", footprint.SECRET)
        info = await check.ack(16, {"channel_id": "plain"})
        await check.close()
        if info.get("member_count") != n:
            raise SystemExit(f"plain joins: expected {n} members, CHANNEL_INFO gave {info}")
        for m in members:
            for t in m.tasks:
                t.cancel()
            await m.ws.close()
        return before, after
    finally:
        p.terminate()
        p.wait(timeout=10)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("LIVECHATD_BIN") or footprint.default_bin())
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before each reading")
    ap.add_argument("--within", type=float, default=30.0, help="seconds a peer may take")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    n = a.peers

    p, http = footprint.start(a.bin, "", {
        "LIVECHAT_ADVERTISE_IP": "127.0.0.1",
        "RUST_LOG": "warn,livechatd::server=info,livechatd::server::webrtc=debug",
    })
    log = DaemonLog(p.stderr)
    url = f"ws://{http}/gateway"
    channel = "bench"
    peers = []
    try:
        gws = []
        for i in range(n):
            gws.append(await lcpeer.Gateway.connect(url, f"w{i:04d}", footprint.SECRET))
        await gws[0].ack(lcpeer.OP_CREATE, {"channel_id": channel})
        peers = [lcpeer.Peer(gw, 440) for gw in gws]
        for peer in peers:
            await peer.make_offer()
        await asyncio.sleep(a.settle)
        rss_identified = rss_kib(p.pid)
        cpu0 = cpu_seconds(p.pid)
        ns0 = run_ns(p.pid)
        client0 = time.process_time()
        t_start = time.monotonic()
        sent = []
        times = await asyncio.gather(
            *(join_one(peer, channel, a.within, sent) for peer in peers))
        wall = time.monotonic() - t_start
        cpu1 = cpu_seconds(p.pid)
        ns1 = run_ns(p.pid)
        client1 = time.process_time()
        await asyncio.sleep(a.settle)
        rss_connected = rss_kib(p.pid)
        assert p.poll() is None, "livechatd exited during the measurement"
    finally:
        for peer in peers:
            try:
                await peer.close()
            except Exception:
                pass
        p.terminate()
        p.wait(timeout=10)

    plain_before, plain_after = await plain_membership_kib(a.bin, n, a.settle)
    plain_per_member = (plain_after - plain_before) / n

    ok = sorted(t for t in times if t is not None)
    # The daemon's view: from the first JOIN sent to each handshake it completed (the N
    # JOINs leave within join_send_spread_s of each other).
    daemon_ok = sorted(t - t_start for t in log.connected)
    result = {
        "peers": n,
        "connected": len(ok),
        "connected_within_3s": sum(1 for t in ok if t <= 3.0),
        "join_to_connected_s": {
            "p50": pct(ok, 50) if ok else None,
            "p99": pct(ok, 99) if ok else None,
            "max": ok[-1] if ok else None,
        },
        "join_send_spread_s": max(sent) - min(sent),
        "daemon_dtls_connected": len(daemon_ok),
        "daemon_dtls_failed": log.failed,
        "daemon_first_join_to_connected_s": {
            "p50": pct(daemon_ok, 50) if daemon_ok else None,
            "p99": pct(daemon_ok, 99) if daemon_ok else None,
            "max": daemon_ok[-1] if daemon_ok else None,
        },
        "daemon_connected_within_3s": sum(1 for t in daemon_ok if t <= 3.0),
        "wall_s": wall,
        "client_cpu_s": client1 - client0,
        "daemon_cpu_s": cpu1 - cpu0,
        "daemon_cpu_ms_per_join": (cpu1 - cpu0) * 1000 / n,
        "clk_tck": CLK_TCK,
        "daemon_schedstat_ms_per_join": (ns1 - ns0) / 1e6 / n,
        "rss_identified_kib": rss_identified,
        "rss_connected_kib": rss_connected,
        "rss_per_peer_kib": (rss_connected - rss_identified) / n,
        "rss_plain_identified_kib": plain_before,
        "rss_plain_joined_kib": plain_after,
        "rss_per_plain_member_kib": plain_per_member,
        "rss_webrtc_beyond_membership_kib": (rss_connected - rss_identified) / n
        - plain_per_member,
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return
    j = result["join_to_connected_s"]
    print(f"peers             {n}, connected {len(ok)}, "
          f"within 3 s {result['connected_within_3s']}")
    if ok:
        print(f"JOIN->connected   p50 {j['p50'] * 1000:.0f} ms, p99 {j['p99'] * 1000:.0f} ms, "
              f"max {j['max'] * 1000:.0f} ms (all joins took {wall:.2f} s, "
              f"{result['client_cpu_s']:.2f} s of the client's CPU)")
    dj = result["daemon_first_join_to_connected_s"]
    if daemon_ok:
        print(f"daemon's view     {len(daemon_ok)} DTLS connected ({log.failed} failed), "
              f"{result['daemon_connected_within_3s']} within 3 s of the first JOIN "
              f"(the JOINs sent within {result['join_send_spread_s'] * 1000:.0f} ms): "
              f"p50 {dj['p50'] * 1000:.0f} ms, p99 {dj['p99'] * 1000:.0f} ms, "
              f"max {dj['max'] * 1000:.0f} ms")
    print(f"daemon CPU        {result['daemon_cpu_s'] * 1000:.0f} ms over the joins, "
          f"{result['daemon_cpu_ms_per_join']:.2f} ms per join (tick {1000 / CLK_TCK:.0f} ms); "
          f"schedstat {result['daemon_schedstat_ms_per_join']:.3f} ms per join")
    print(f"daemon RSS        {rss_identified} kB identified, {rss_connected} kB connected: "
          f"{result['rss_per_peer_kib']:.1f} KiB per WebRTC peer")
    print(f"plain members     {plain_before} kB identified, {plain_after} kB joined (SSRC, no "
          f"keys): {plain_per_member:.1f} KiB per member; WebRTC beyond that "
          f"{result['rss_webrtc_beyond_membership_kib']:.1f} KiB per peer")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
