"""A WebRTC peer of livechatd for the end-to-end tests: aiortc (PyPI) as the browser.

`Gateway` is the signaling connection (`websockets`): HELLO, IDENTIFY, requests answered by
`id`, and every other frame kept with its arrival time (floor events are read from there).
`Peer` is one aiortc RTCPeerConnection joined to a channel through `sdp_offer` (PROTOCOL.md
section 4): it sends a sine tone (PCMU or Opus; the tone never stops, so the server's floor
gate is what decides who is heard), optionally VP8 video of a moving synthetic pattern, and
records what it receives: decoded audio frames and video frames with their arrival times, and
every PLI and FIR that reaches its senders.

PLIs are counted by wrapping the bound method `_handle_rtcp_packet` of each of the peer's
`RTCRtpSender`s (aiortc hands every RTCP packet addressed to a sender's SSRC to that method;
its own handling, a key frame on PLI or FIR, still runs after the count). The wrapper keeps
the packet's sender SSRC, so a PLI the server generates (its own SSRC) can be told from one
another member's receiver sent (that receiver's SSRC, which aiortc sets to its sender's).

Everything binds to 127.0.0.1: aioice's host candidates are patched to loopback only, and no
STUN or TURN server is configured.
"""
import asyncio
import fractions
import re
import hashlib
import hmac
import json
import math
import os
import time

import numpy as np

try:
    import aioice.ice
    import av
    import websockets
    from aiortc import (
        MediaStreamTrack,
        RTCConfiguration,
        RTCPeerConnection,
        RTCRtpSender,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamError
    from aiortc.rtcconfiguration import RTCBundlePolicy
    from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket
except ImportError as e:  # the Rust test reports this line as the cause
    raise SystemExit(f"missing python package ({e}): run .ci/deps-e2e.sh") from e

# Loopback only: aioice leaves 127.0.0.1 out of its host candidates, and the tests must not
# depend on (or leak to) any other interface.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

TIMEOUT = 10.0
NO_SECRET = "no-secret-configured"

OP_HELLO, OP_IDENTIFY, OP_READY = 0, 3, 4
OP_CREATE, OP_JOIN, OP_LEAVE = 10, 11, 12
OP_FLOOR_REQUEST, OP_FLOOR_RELEASE, OP_FLOOR_PING = 30, 31, 32
OP_GRANTED, OP_DENY, OP_REVOKE, OP_TAKEN, OP_IDLE = 50, 51, 52, 53, 54
OP_CHANNEL_EVENT, OP_ACK, OP_ERROR = 100, 200, 201

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
TONE_LEVEL = 0.3


class Fail(Exception):
    """A scenario's assertion failed; the message says what was expected and what happened."""


def token(user_id, secret=NO_SECRET, ttl_s=3600, cap=255):
    """PROTOCOL.md section 1: `<expiry>.<cap>.<hex HMAC-SHA1 of "user.expiry.cap">`."""
    expiry = int(time.time()) + ttl_s
    mac = hmac.new(secret.encode(), f"{user_id}.{expiry}.{cap}".encode(), hashlib.sha1)
    return f"{expiry}.{cap}.{mac.hexdigest()}"


class Gateway:
    """One signaling connection. Frames that answer no pending request are kept in
    `events` as (monotonic time, frame)."""

    def __init__(self, ws, user):
        self.ws = ws
        self.user = user
        self.next_id = 1
        self.events = []
        self.answers = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._changed = asyncio.Event()

    @classmethod
    async def connect(cls, url, user, secret=NO_SECRET):
        ws = await websockets.connect(url, open_timeout=TIMEOUT, max_size=1 << 20)
        gw = cls(ws, user)
        hello = await gw.wait_event("HELLO", lambda f: f.get("op") == OP_HELLO)
        if not str(hello["d"].get("server", "")).startswith("livechatd/"):
            raise Fail(f"HELLO names no livechatd server: {hello}")
        ready = await gw.request(OP_IDENTIFY, {"user_id": user, "token": token(user, secret)})
        if ready.get("op") != OP_READY:
            raise Fail(f"{user}: IDENTIFY did not get READY: {ready}")
        return gw

    async def _read(self):
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.events.append((time.monotonic(), {"binary": len(raw)}))
                    continue
                frame = json.loads(raw)
                if "id" in frame and frame["id"] in self.answers:
                    self.answers[frame["id"]].set_result(frame)
                else:
                    self.events.append((time.monotonic(), frame))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._changed.set()

    async def request(self, op, d):
        rid = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.answers[rid] = fut
        await self.ws.send(json.dumps({"op": op, "d": d, "id": rid}))
        try:
            return await asyncio.wait_for(fut, TIMEOUT)
        except asyncio.TimeoutError:
            raise Fail(f"{self.user}: no answer to op {op} within {TIMEOUT}s; "
                       f"events: {self.recent()}") from None
        finally:
            del self.answers[rid]

    async def ack(self, op, d):
        f = await self.request(op, d)
        if f.get("op") != OP_ACK or f["d"].get("req_op") != op:
            raise Fail(f"{self.user}: op {op} did not get ACK: {f}")
        return f["d"]

    async def send(self, op, d):
        await self.ws.send(json.dumps({"op": op, "d": d}))

    def find(self, pred, since=0.0):
        return next(((t, f) for t, f in self.events if t >= since and pred(f)), None)

    async def wait_event(self, what, pred, since=0.0, within=TIMEOUT):
        """The first kept frame at or after `since` matching `pred` (waits up to `within`);
        returns the frame."""
        deadline = time.monotonic() + within
        while True:
            hit = self.find(pred, since)
            if hit:
                return hit[1]
            left = deadline - time.monotonic()
            if left <= 0 or self._reader.done():
                raise Fail(f"{self.user}: no {what} within {within}s; events: {self.recent()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def recent(self, n=12):
        return [f for _, f in self.events[-n:]]

    async def close(self):
        await self.ws.close()
        self._reader.cancel()


class ToneTrack(MediaStreamTrack):
    """A sine tone at `freq` Hz, 48 kHz mono s16 in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, freq):
        super().__init__()
        self.freq = freq
        self._n = 0
        self._start = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (self._n + np.arange(samples)) / AUDIO_RATE
        pcm = (TONE_LEVEL * 32767 * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._n
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._n += samples
        return frame


class PatternTrack(MediaStreamTrack):
    """Video: a bar that moves across a gradient, 160x120 at 15 frames a second."""

    kind = "video"
    FPS = 15

    def __init__(self):
        super().__init__()
        self._n = 0
        self._start = None
        y, x = np.mgrid[0:120, 0:160]
        self._base = np.stack([(x * 1.5) % 256, (y * 2) % 256, ((x + y) % 256)], axis=-1)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n / self.FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        img = self._base.copy()
        col = (self._n * 4) % 160
        img[:, col:col + 8, :] = 255
        frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
        frame.pts = self._n * (90000 // self.FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


def mono(frame):
    """The first channel of a decoded audio frame as float samples."""
    a = frame.to_ndarray()
    if frame.format.is_planar:
        return a[0].astype(np.float64)
    return a.reshape(-1, len(frame.layout.channels))[:, 0].astype(np.float64)


def dominant(samples, rate):
    """(frequency of the strongest FFT bin above 50 Hz, share of the signal's power within
    +-20 Hz of it), over a Hann-windowed block."""
    if len(samples) < rate // 10:
        return (0.0, 0.0)
    x = samples - np.mean(samples)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    spec[freqs < 50] = 0
    total = spec.sum()
    if total <= 0:
        return (0.0, 0.0)
    k = int(np.argmax(spec))
    near = spec[(freqs > freqs[k] - 20) & (freqs < freqs[k] + 20)].sum()
    # Parabolic interpolation of the peak (the log-magnitude of its neighbours) for a
    # frequency finer than one bin.
    f = freqs[k]
    if 0 < k < len(spec) - 1 and min(spec[k - 1:k + 2]) > 0:
        a, b, c = np.log(spec[k - 1:k + 2])
        denom = a - 2 * b + c
        if denom != 0:
            f = freqs[k] + 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    return (float(f), float(near / total))


class Recording:
    """Decoded audio frames with their arrival times."""

    def __init__(self):
        self.frames = []  # (monotonic time, samples, rate)

    def between(self, t0, t1):
        return [(t, s, r) for t, s, r in self.frames if t0 <= t < t1]

    def seconds(self, t0, t1):
        return sum(len(s) / r for _, s, r in self.between(t0, t1))

    def tone(self, t0, t1):
        """(dominant frequency, purity, seconds of audio, frames) received in [t0, t1)."""
        got = self.between(t0, t1)
        if not got:
            return (0.0, 0.0, 0.0, 0)
        rate = got[0][2]
        samples = np.concatenate([s for _, s, r in got if r == rate])
        f, purity = dominant(samples, rate)
        return (f, purity, len(samples) / rate, len(got))


class Peer:
    """One aiortc peer joined (or about to be) to a channel through `sdp_offer`."""

    def __init__(self, gw, freq, codec="PCMU", video=False, user=None, profiles=None):
        self.gw = gw
        self.user = gw.user if gw else user
        # DTLS-SRTP protection profiles to offer (names as aiortc spells them, say
        # "SRTP_AES128_CM_SHA1_80"); aiortc's own list (AEAD GCM first) when None.
        self.profiles = profiles
        self.freq = freq
        self.codec = codec
        self.video = video
        self.audio = Recording()
        self.video_frames = []  # arrival times
        self.feedback = []  # (time, kind "PLI"/"FIR", sender ssrc, media ssrc, our kind)
        self.answer = None
        self.ufrag = None
        self.offer = None
        self._tasks = []
        self.pc = None

    def _new_pc(self):
        self.pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        at = self.pc.addTransceiver(ToneTrack(self.freq), direction="sendrecv")
        prefs = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                 if c.mimeType.lower() == f"audio/{self.codec.lower()}"]
        if not prefs:
            raise Fail(f"aiortc has no {self.codec} codec")
        at.setCodecPreferences(prefs)
        self._watch_feedback(at.sender, "audio")
        if self.video:
            vt = self.pc.addTransceiver(PatternTrack(), direction="sendrecv")
            vprefs = [c for c in RTCRtpSender.getCapabilities("video").codecs
                      if c.mimeType.lower() in ("video/vp8", "video/rtx")]
            vt.setCodecPreferences(vprefs)
            self._watch_feedback(vt.sender, "video")

        if self.profiles is not None:
            transport = at.receiver.transport
            transport._srtp_profiles = [p for p in transport._srtp_profiles
                                        if p.openssl_profile.decode() in self.profiles]
            if not transport._srtp_profiles:
                raise Fail(f"aiortc has none of the SRTP profiles {self.profiles}")

        @self.pc.on("track")
        def on_track(track):
            self._tasks.append(asyncio.ensure_future(self._consume(track)))

    def _watch_feedback(self, sender, kind):
        inner = sender._handle_rtcp_packet

        async def counted(packet):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI,
                                                                     RTCP_PSFB_FIR):
                name = "PLI" if packet.fmt == RTCP_PSFB_PLI else "FIR"
                self.feedback.append(
                    (time.monotonic(), name, packet.ssrc, packet.media_ssrc, kind))
            await inner(packet)

        sender._handle_rtcp_packet = counted

    async def _consume(self, track):
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "audio":
                    self.audio.frames.append((now, mono(frame), frame.sample_rate))
                else:
                    self.video_frames.append(now)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def make_offer(self):
        """A fresh RTCPeerConnection and its offer (ICE gathered, loopback only)."""
        self._new_pc()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer = self.pc.localDescription.sdp
        return self.offer

    async def join(self, channel):
        """CHANNEL_JOIN with this peer's offer; checks the answer's shape (`check_answer`),
        applies it and waits for DTLS. Returns the ACK's `d`."""
        offer = await self.make_offer()
        d = await self.gw.ack(OP_JOIN, {"channel_id": channel, "sdp_offer": offer})
        self.answer = d.get("sdp_answer")
        if not isinstance(self.answer, str):
            raise Fail(f"{self.user}: the JOIN ACK has no sdp_answer string: {d}")
        dump(f"{self.user}-{channel}", offer, self.answer)
        self.ufrag = check_answer(offer, self.answer, d.get("media", {}).get("port"),
                                  self.codec)
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer, "answer"))
        await self.wait_connected()
        return d

    async def wait_connected(self, within=TIMEOUT):
        deadline = time.monotonic() + within
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise Fail(f"{self.user}: the peer connection is {self.pc.connectionState} "
                           f"(ICE {self.pc.iceConnectionState}) {within}s after the answer;\n"
                           f"answer:\n{self.answer}")
            await asyncio.sleep(0.05)

    def srtp_profile(self):
        """The DTLS-SRTP protection profile the handshake selected."""
        transport = self.pc.getTransceivers()[0].receiver.transport
        return transport._ssl.get_selected_srtp_profile().decode()

    def own_ssrcs(self):
        return {t.sender._ssrc for t in self.pc.getTransceivers()}

    async def close(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self.pc is not None:
            await self.pc.close()


def dump(name, offer, answer):
    """With LIVECHAT_WEBRTC_DUMP set to a directory, keeps a join's offer and answer there
    (`<name>.offer.sdp`, `<name>.answer.sdp`), for docs and the SDP unit tests."""
    where = os.environ.get("LIVECHAT_WEBRTC_DUMP")
    if not where:
        return
    os.makedirs(where, exist_ok=True)
    for kind, text in (("offer", offer), ("answer", answer)):
        with open(os.path.join(where, f"{name}.{kind}.sdp"), "w", newline="") as f:
            f.write(text)


def sdp_sections(sdp):
    """(session lines, [lines of each m-section])."""
    parts = re.split(r"\r?\n(?=m=)", sdp.strip())
    return parts[0].splitlines(), [p.splitlines() for p in parts[1:]]


def check_answer(offer, answer, port, codec):
    """The answer has the shape PROTOCOL.md section 4 gives it, for this offer: ice-lite;
    BUNDLE of the accepted m-lines in offer order with their mids; on each accepted m-line
    ICE credentials, a sha-256 fingerprint, setup:passive, rtcp-mux and one UDP host
    candidate at 127.0.0.1 and the media `port`; the audio m-line carries the channel's
    `codec` with the offer's payload type for it. Returns the answer's ICE ufrag."""
    problems = []
    session, medias = sdp_sections(answer)
    _, offered = sdp_sections(offer)
    if len(medias) != len(offered):
        problems.append(f"{len(medias)} m-lines for {len(offered)} offered")
    if not any(x == "a=ice-lite" for x in session + sum(medias, [])):
        problems.append("no a=ice-lite")
    accepted = [m for m in medias if not re.match(r"m=\S+ 0 ", m[0])]
    mids = [next((x[6:] for x in m if x.startswith("a=mid:")), None) for m in accepted]
    offered_mids = [next((x[6:] for x in m if x.startswith("a=mid:")), None) for m in offered]
    bundle = next((x.split()[1:] for x in session if x.startswith("a=group:BUNDLE")), None)
    if bundle != mids or [m for m in offered_mids if m in mids] != mids:
        problems.append(f"BUNDLE {bundle} is not the accepted mids {mids} in offer order")
    ufrags = set()
    for m in accepted:
        kind = m[0].split()[0][2:]
        attr = lambda name: [x[len(name) + 3:] for x in m if x.startswith(f"a={name}:")]
        ufrags.update(attr("ice-ufrag"))
        for need, ok in (("ice-ufrag", attr("ice-ufrag")), ("ice-pwd", attr("ice-pwd")),
                         ("fingerprint:sha-256", [f for f in attr("fingerprint")
                                                  if f.lower().startswith("sha-256 ")]),
                         ("setup:passive", "a=setup:passive" in m),
                         ("rtcp-mux", "a=rtcp-mux" in m)):
            if not ok:
                problems.append(f"{kind}: no a={need}")
        cands = [c.split() for c in attr("candidate")]
        if not any(len(c) >= 8 and c[2].lower() == "udp" and c[4] == "127.0.0.1"
                   and c[5] == str(port) and c[7] == "host" for c in cands):
            problems.append(f"{kind}: no UDP host candidate at 127.0.0.1:{port} ({cands})")
        if kind == "audio":
            pts = m[0].split()[3:]
            want = next((x.split()[0][9:] for o in offered if o[0].startswith("m=audio")
                         for x in o if re.match(rf"a=rtpmap:\d+ {codec}/", x, re.I)), None)
            if pts != [want] or not any(re.match(rf"a=rtpmap:{want} {codec}/", x, re.I)
                                        for x in m):
                problems.append(f"audio: payload types {pts}, expected the offer's {codec} "
                                f"({want}) alone")
    if len(ufrags) != 1:
        problems.append(f"ICE ufrags {ufrags}: expected one for the bundle")
    if problems:
        raise Fail("the answer does not follow PROTOCOL.md section 4: " + "; ".join(problems)
                   + f"\nanswer:\n{answer}")
    return ufrags.pop()


async def take_floor(gw, channel, within=TIMEOUT):
    """FLOOR_REQUEST, then FLOOR_GRANTED to `gw`'s user; returns the grant's time."""
    since = time.monotonic()
    await gw.send(OP_FLOOR_REQUEST, {"channel_id": channel})
    await gw.wait_event("FLOOR_GRANTED", lambda f: f.get("op") == OP_GRANTED
                        and f["d"].get("user_id") == gw.user, since, within)
    return gw.find(lambda f: f.get("op") == OP_GRANTED and f["d"].get("user_id") == gw.user,
                   since)[0]


async def hold(gw, channel, seconds):
    """Holds the floor `seconds`, with a FLOOR_PING every second (activity, PROTOCOL.md
    section 1, beside the RTP that already is)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, end - time.monotonic()))
        await gw.send(OP_FLOOR_PING, {"channel_id": channel})


async def release_floor(gw, channel):
    """FLOOR_RELEASE, then FLOOR_IDLE; returns the time FLOOR_IDLE arrived."""
    since = time.monotonic()
    await gw.send(OP_FLOOR_RELEASE, {"channel_id": channel})
    await gw.wait_event("FLOOR_IDLE", lambda f: f.get("op") == OP_IDLE, since)
    return gw.find(lambda f: f.get("op") == OP_IDLE, since)[0]


def expect_tone(rec, who, freq, t0, t1, min_seconds):
    """`rec` holds a tone of `freq` (+-3 Hz, at least 80 % of the power) for at least
    `min_seconds` of audio received in [t0, t1)."""
    f, purity, secs, n = rec.tone(t0, t1)
    summary = (f"{who}: {n} frames, {secs:.2f} s of audio in a {t1 - t0:.2f} s window, "
               f"dominant {f:.1f} Hz, purity {purity:.2f}")
    if secs < min_seconds:
        raise Fail(f"{summary}: expected at least {min_seconds} s of the {freq} Hz tone")
    if abs(f - freq) > 3 or purity < 0.8:
        raise Fail(f"{summary}: expected the {freq} Hz tone")
    return summary


def expect_silence(rec, who, t0, t1, why):
    got = rec.between(t0, t1)
    if got:
        f, purity, secs, n = rec.tone(t0, t1)
        raise Fail(f"{who} must receive no audio {why}, got {n} frames ({secs:.2f} s, "
                   f"dominant {f:.1f} Hz)")
    return f"{who}: no audio {why} ({t1 - t0:.2f} s)"
