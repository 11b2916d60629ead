#!/usr/bin/env python3
"""Viewers of an RTSP camera's channel (PROTOCOL.md section 7), aiortc as the browser.

Usage: camera_viewer.py WS_URL CHANNEL VIEWERS SECONDS [JOINS]

Each of VIEWERS peers identifies, joins CHANNEL with an offer that receives PCMU audio and
H.264 video, and records when its DTLS came up and when each decoded video frame arrived
(with its size). Prints one JSON line per viewer:
  {"viewer": i, "first_frame_s": seconds from connected to the first decoded frame,
   "frames": decoded frames in SECONDS, "size": [w, h], "gaps": [longest gap in s]}
then OK. With JOINS > 1 (one viewer), joins and leaves that many times and prints each join's
time to the first frame (the late-viewer figure of docs/performance.md).
Everything is bounded: a viewer without a frame within 10 s fails the run.
"""
import asyncio
import json
import sys
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole  # noqa: F401 (aiortc installed check)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy

from lcpeer import OP_JOIN, OP_LEAVE, Fail, Gateway

FIRST_FRAME_LIMIT = 10.0


class Viewer:
    def __init__(self, gw, channel):
        self.gw = gw
        self.channel = channel
        self.pc = None
        self.connected_at = None
        self.frames = []  # (time, width, height)
        self.tasks = []

    async def join(self):
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        at = self.pc.addTransceiver("audio", direction="recvonly")
        at.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                if c.mimeType.lower() == "audio/pcmu"])
        vt = self.pc.addTransceiver("video", direction="recvonly")
        vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                if c.mimeType.lower() == "video/h264"
                                and c.parameters.get("packetization-mode") == "1"])

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "video":
                self.tasks.append(asyncio.ensure_future(self.consume(track)))

        @self.pc.on("connectionstatechange")
        def on_state():
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        d = await self.gw.ack(OP_JOIN, {"channel_id": self.channel,
                                        "sdp_offer": self.pc.localDescription.sdp})
        answer = d.get("sdp_answer")
        if "H264" not in answer:
            raise Fail(f"the answer does not accept H.264:\n{answer}")
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        deadline = time.monotonic() + 10
        while self.connected_at is None:
            if time.monotonic() > deadline or self.pc.connectionState in ("failed", "closed"):
                raise Fail(f"{self.gw.user}: not connected 10 s after the answer "
                           f"({self.pc.connectionState})")
            await asyncio.sleep(0.005)
        return d

    async def consume(self, track):
        try:
            while True:
                f = await track.recv()
                self.frames.append((time.monotonic(), f.width, f.height))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def first_frame(self):
        deadline = self.connected_at + FIRST_FRAME_LIMIT
        while not self.frames:
            if time.monotonic() > deadline:
                raise Fail(f"{self.gw.user}: no decoded frame {FIRST_FRAME_LIMIT} s after "
                           "connecting")
            await asyncio.sleep(0.005)
        return self.frames[0][0] - self.connected_at

    async def leave(self):
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        await self.gw.ack(OP_LEAVE, {"channel_id": self.channel})
        await self.pc.close()


async def run(url, channel, viewers, seconds, joins):
    if joins > 1:
        gw = await Gateway.connect(url, "late")
        times = []
        for _ in range(joins):
            v = Viewer(gw, channel)
            await v.join()
            times.append(await v.first_frame())
            await v.leave()
            await asyncio.sleep(0.3)
        times.sort()
        p50 = times[len(times) // 2]
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(json.dumps({"joins": joins, "first_frame_s": [round(t, 3) for t in times],
                          "p50_s": round(p50, 3), "p95_s": round(p95, 3)}), flush=True)
        return
    vs = []
    for i in range(viewers):
        gw = await Gateway.connect(url, f"viewer{i}")
        v = Viewer(gw, channel)
        await v.join()
        vs.append(v)
    for v in vs:
        await v.first_frame()
    start = time.monotonic()
    await asyncio.sleep(seconds)
    for i, v in enumerate(vs):
        times = [t for t, _, _ in v.frames]
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(json.dumps({
            "viewer": i,
            "first_frame_s": round(v.frames[0][0] - v.connected_at, 3),
            "frames": len([t for t in times if t >= start]),
            "size": [v.frames[-1][1], v.frames[-1][2]],
            "sizes": sorted({(w, h) for _, w, h in v.frames}),
            "longest_gap_s": round(max(gaps, default=0.0), 3),
            "last_frame_age_s": round(time.monotonic() - times[-1], 3),
        }), flush=True)
    for v in vs:
        await v.leave()


def main():
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, channel = sys.argv[1], sys.argv[2]
    viewers, seconds = int(sys.argv[3]), float(sys.argv[4])
    joins = int(sys.argv[5]) if len(sys.argv) == 6 else 1
    try:
        asyncio.run(asyncio.wait_for(run(url, channel, viewers, seconds, joins), 150))
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print("FAIL: did not finish within 150 s", flush=True)
        sys.exit(1)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
