#!/usr/bin/env python3
"""WebRTC scenarios against a running livechatd, aiortc as the browser (tests/tests/webrtc.rs
starts the daemon and runs each one as a process).

Usage: scenarios.py NAME [WS_URL [ARGS...]]

Each scenario prints what it measured, one line a step, then OK and exits 0; on a failed
expectation it prints FAIL: <what was expected, what happened> and exits 1. Every wait is
bounded (lcpeer.TIMEOUT); everything is on 127.0.0.1.

  selftest             no daemon: two aiortc peers connected directly; each hears the other's
                       tone at its frequency, video frames arrive and a PLI sent by the
                       receiver is counted by the sender's hook (proves the harness itself)
  floor URL            two peers, PCMU: nobody heard while nobody holds the floor; A (440 Hz)
                       holds it: B hears 440 Hz, A nothing; then B (660 Hz): A hears 660 Hz
                       (A offers aiortc's SRTP profiles, AEAD first; B only AES128_CM_SHA1_80)
  opus URL             the same exchange in an `opus` channel
  video URL            audio and VP8 video: no video before the grant; the holder's frames
                       reach the other peer and the holder receives the server's PLI on grant
  rejoin URL           B leaves (A sees it) and joins again with a new offer: hears A again
  bad_offers URL       every bad offer of PROTOCOL.md section 4 gets its code, a good one ACK
  radio URL CHANNEL RADIO_USER
                       with an SDES radio driven by the Rust test: prints {"ready": true}
                       once connected, hears the radio's 440 Hz while it holds the floor,
                       then talks 660 Hz for 2 s itself
"""
import asyncio
import json
import re
import sys
import time

from lcpeer import (
    OP_CHANNEL_EVENT, OP_CREATE, OP_ERROR, OP_IDLE, OP_JOIN, OP_LEAVE, OP_TAKEN, Fail, Gateway,
    Peer, RTCSessionDescription, expect_silence, expect_tone, hold, release_floor, take_floor,
)

TALK = 2.5  # seconds a talker holds the floor
QUIET = 1.0  # seconds with nobody holding the floor, to show nothing is relayed
SETTLE = 0.4  # seconds after a grant or a release before a window opens (jitter buffers)


def say(line):
    print(line, flush=True)


async def selftest():
    a = Peer(None, 440, video=True, user="A")
    b = Peer(None, 660, video=True, user="B")
    offer = await a.make_offer()
    b._new_pc()
    await b.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    await a.pc.setRemoteDescription(b.pc.localDescription)
    await a.wait_connected()
    await b.wait_connected()
    t0 = time.monotonic()
    await asyncio.sleep(TALK)
    video_ssrc = next(t.sender._ssrc for t in a.pc.getTransceivers() if t.kind == "video")
    receiver = next(t.receiver for t in b.pc.getTransceivers() if t.kind == "video")
    await receiver._send_rtcp_pli(video_ssrc)
    await asyncio.sleep(0.5)
    t1 = time.monotonic()
    say(expect_tone(b.audio, "B hears A", 440, t0 + SETTLE, t1, 1.5))
    say(expect_tone(a.audio, "A hears B", 660, t0 + SETTLE, t1, 1.5))
    # A tone the detector must not mistake: A's recording is not 440 Hz.
    f, _, _, _ = a.audio.tone(t0 + SETTLE, t1)
    if abs(f - 440) < 50:
        raise Fail(f"the detector finds {f:.1f} Hz in a 660 Hz recording")
    frames = [t for t in b.video_frames if t >= t0]
    if len(frames) < 10:
        raise Fail(f"B decoded {len(frames)} video frames in {t1 - t0:.1f} s")
    say(f"B decoded {len(frames)} video frames in {t1 - t0:.1f} s")
    plis = [f for f in a.feedback if f[1] == "PLI" and f[3] == video_ssrc]
    if not plis:
        raise Fail(f"A's video sender counted no PLI; feedback seen: {a.feedback}")
    say(f"A's video sender counted {len(plis)} PLI, sender ssrcs "
        f"{sorted({p[2] for p in plis})} (B's: {sorted(b.own_ssrcs())})")
    await a.close()
    await b.close()


async def two_peers(url, channel, codec="PCMU", video=False, create=None, bob_profiles=None):
    ga = await Gateway.connect(url, "alice")
    gb = await Gateway.connect(url, "bob")
    await ga.ack(OP_CREATE, create or {"channel_id": channel})
    a = Peer(ga, 440, codec=codec, video=video)
    b = Peer(gb, 660, codec=codec, video=video, profiles=bob_profiles)
    await a.join(channel)
    await b.join(channel)
    if a.ufrag == b.ufrag:
        raise Fail(f"both answers have the ICE ufrag {a.ufrag!r}: not fresh per peer")
    say(f"alice and bob joined {channel!r} through sdp_offer (answers as section 4 says, "
        f"ufrags {a.ufrag!r} and {b.ufrag!r}); DTLS connected with {a.srtp_profile()} and "
        f"{b.srtp_profile()}")
    return a, b


async def exchange(a, b, channel, min_seconds=1.5):
    """A talks at its frequency, then B at its own; each hears the other only while the
    other holds the floor, and nobody is heard while nobody holds it."""
    t = time.monotonic()
    await asyncio.sleep(QUIET)
    for p in (a, b):
        say(expect_silence(p.audio, p.user, t, time.monotonic(), "before anyone holds the floor"))

    for talker, hearer in ((a, b), (b, a)):
        granted = await take_floor(talker.gw, channel)
        await hold(talker.gw, channel, TALK)
        released_at = time.monotonic()
        idle = await release_floor(talker.gw, channel)
        say(expect_tone(hearer.audio, f"{hearer.user} hears {talker.user}", talker.freq,
                        granted + SETTLE, released_at, min_seconds))
        say(expect_silence(talker.audio, talker.user, granted, released_at,
                           "while it holds the floor itself"))
        await asyncio.sleep(SETTLE + QUIET)
        say(expect_silence(hearer.audio, hearer.user, idle + SETTLE, time.monotonic(),
                           f"after {talker.user} released the floor"))


async def floor(url):
    # alice offers aiortc's profiles (AEAD GCM first), bob only AES128_CM_HMAC_SHA1_80: both
    # keyings meet in one channel.
    a, b = await two_peers(url, "ptt", bob_profiles=["SRTP_AES128_CM_SHA1_80"])
    if b.srtp_profile() != "SRTP_AES128_CM_SHA1_80":
        raise Fail(f"bob offered only SRTP_AES128_CM_SHA1_80 and got {b.srtp_profile()}")
    await exchange(a, b, "ptt")
    await a.close()
    await b.close()


async def opus(url):
    a, b = await two_peers(url, "opus-ch", codec="opus",
                           create={"channel_id": "opus-ch", "codec": "opus"})
    if "opus/48000" not in b.answer.lower():
        raise Fail(f"the answer of an opus channel has no opus/48000:\n{b.answer}")
    await exchange(a, b, "opus-ch")
    rate = b.audio.frames[-1][2] if b.audio.frames else None
    say(f"decoded Opus at {rate} Hz")
    await a.close()
    await b.close()


async def video(url):
    a, b = await two_peers(url, "cams", video=True)
    if not re.search(r"^m=video [1-9]", b.answer, re.M):
        raise Fail(f"the answer does not accept video:\n{b.answer}")
    t = time.monotonic()
    await asyncio.sleep(QUIET)
    early = [x for x in b.video_frames if x >= t]
    if early:
        raise Fail(f"bob got {len(early)} video frames before anyone held the floor")
    a_video = next(x.sender._ssrc for x in a.pc.getTransceivers() if x.kind == "video")
    bob_ssrcs = b.own_ssrcs()
    plis_before = [f for f in a.feedback if f[1] in ("PLI", "FIR") and f[0] >= t]
    granted = await take_floor(a.gw, "cams")
    await hold(a.gw, "cams", TALK)
    released_at = time.monotonic()
    await release_floor(a.gw, "cams")
    frames = [x for x in b.video_frames if granted <= x < released_at + SETTLE]
    if len(frames) < 10:
        raise Fail(f"bob decoded {len(frames)} of alice's video frames in {TALK} s of holding")
    say(f"bob decoded {len(frames)} video frames while alice held the floor ({TALK} s)")
    say(expect_tone(b.audio, "bob hears alice", 440, granted + SETTLE, released_at, 1.5))
    server_plis = [f for f in a.feedback if f[1] == "PLI" and granted - 0.05 <= f[0]
                   <= granted + 2.0 and f[3] == a_video and f[2] not in bob_ssrcs]
    seen = [(round(f[0] - granted, 3), f[1], f[2], f[3], f[4]) for f in a.feedback]
    say(f"alice's senders saw feedback {seen} (seconds after the grant, kind, sender ssrc, "
        f"media ssrc, sender kind; bob's ssrcs {sorted(bob_ssrcs)})")
    if plis_before:
        raise Fail(f"alice got PLI/FIR before the grant: {plis_before}")
    if not server_plis:
        raise Fail("alice (the new holder) received no PLI from the server's own SSRC "
                   f"for its video SSRC {a_video} within 2 s of FLOOR_GRANTED")
    say(f"alice received the server's PLI {server_plis[0][0] - granted:.3f} s after the grant")
    # Feedback routing: bob's PLI naming alice's video SSRC reaches alice, from bob's SSRC.
    granted = await take_floor(a.gw, "cams")
    await asyncio.sleep(SETTLE)
    bob_video = next(x.receiver for x in b.pc.getTransceivers() if x.kind == "video")
    sent_at = time.monotonic()
    await bob_video._send_rtcp_pli(a_video)
    await asyncio.sleep(1.0)
    await release_floor(a.gw, "cams")
    routed = [f for f in a.feedback if f[1] == "PLI" and f[0] >= sent_at and f[2] in bob_ssrcs
              and f[3] == a_video]
    if not routed:
        seen = [(round(f[0] - sent_at, 3), f[1], f[2], f[3]) for f in a.feedback
                if f[0] >= granted]
        raise Fail(f"bob's PLI for alice's video SSRC {a_video} did not reach alice within "
                   f"1 s (feedback alice saw since the grant: {seen})")
    say(f"bob's PLI for alice's video reached alice {routed[0][0] - sent_at:.3f} s after bob "
        f"sent it")
    await a.close()
    await b.close()


async def rejoin(url):
    a, b = await two_peers(url, "again")
    since = time.monotonic()
    await b.gw.ack(OP_LEAVE, {"channel_id": "again"})
    await b.close()
    await a.gw.wait_event("CHANNEL_EVENT leave of bob", lambda f: f.get("op") == OP_CHANNEL_EVENT
                          and f["d"].get("event") == "leave" and f["d"].get("user_id") == "bob",
                          since)
    say("bob left; alice saw it")
    # alice talks while bob is away: nothing to hear, nothing breaks.
    await take_floor(a.gw, "again")
    await hold(a.gw, "again", 0.5)
    await release_floor(a.gw, "again")
    b2 = Peer(b.gw, 660)
    since = time.monotonic()
    await b2.join("again")
    await a.gw.wait_event("CHANNEL_EVENT join of bob", lambda f: f.get("op") == OP_CHANNEL_EVENT
                          and f["d"].get("event") == "join" and f["d"].get("user_id") == "bob",
                          since)
    say("bob joined again with a new offer; DTLS connected")
    await exchange(a, b2, "again")
    await a.close()
    await b2.close()


def strip(sdp, pattern):
    return "".join(line for line in sdp.splitlines(keepends=True)
                   if not re.match(pattern, line))


async def bad_offers(url):
    g = await Gateway.connect(url, "critic")
    await g.ack(OP_CREATE, {"channel_id": "bad"})
    good = await Peer(g, 440).make_offer()
    only_opus = await Peer(g, 440, codec="opus").make_offer()
    if re.search(r"^a=rtpmap:\d+ PCMU/", only_opus, re.M | re.I):
        raise Fail(f"the opus-only offer still has PCMU:\n{only_opus}")
    for must in ("a=setup:actpass", "a=fingerprint:", "a=ice-ufrag:", "a=ice-pwd:",
                 "a=rtcp-mux"):
        if must not in good:
            raise Fail(f"aiortc's offer lacks {must!r}; the cases below would prove nothing:\n"
                       f"{good}")
    cases = [
        ("unparseable", "this is not SDP\r\n", 1004, None),
        ("not a string", 42, 1004, None),
        ("setup:passive alone", good.replace("a=setup:actpass", "a=setup:passive"), 2008,
         ("setup", "passive", "dtls")),
        ("no fingerprint", strip(good, r"a=fingerprint:"), 2008, ("fingerprint",)),
        ("no ICE credentials", strip(good, r"a=ice-(ufrag|pwd):"), 2008, ("ice",)),
        ("no rtcp-mux", strip(good, r"a=rtcp-mux"), 2008, ("rtcp-mux", "rtcp mux")),
        ("without the channel's audio codec (PCMU)", only_opus, 2008, ("pcmu", "codec")),
    ]
    failures = []
    for name, sdp, code, words in cases:
        f = await g.request(OP_JOIN, {"channel_id": "bad", "sdp_offer": sdp})
        d = f.get("d") or {}
        got = d.get("code") if f.get("op") == OP_ERROR else f"op {f.get('op')}"
        reason = str(d.get("reason", ""))
        ok = got == code and (words is None or any(w in reason.lower() for w in words))
        say(f"{'ok  ' if ok else 'BAD '} {name}: expected {code}"
            f"{' naming ' + '/'.join(words) if words else ''}, got {got} {reason!r}")
        if not ok:
            failures.append(name)
    f = await g.request(OP_JOIN, {"channel_id": "bad", "sdp_offer": good})
    if f.get("op") != 200 or not isinstance(f["d"].get("sdp_answer"), str):
        failures.append("the good offer")
        say(f"BAD  the unchanged offer: expected ACK with sdp_answer, got {f}")
    else:
        say("ok   the unchanged offer: ACK with sdp_answer")
    if failures:
        raise Fail(f"wrong answers to: {', '.join(failures)}")
    await g.close()


async def radio(url, channel, radio_user):
    g = await Gateway.connect(url, "webby")
    p = Peer(g, 660)
    await p.join(channel)
    since = time.monotonic()
    say(json.dumps({"ready": True}))
    await g.wait_event(f"FLOOR_TAKEN by {radio_user}", lambda f: f.get("op") == OP_TAKEN
                       and f["d"].get("user_id") == radio_user, since, within=20)
    taken = g.find(lambda f: f.get("op") == OP_TAKEN, since)[0]
    await g.wait_event("FLOOR_IDLE", lambda f: f.get("op") == OP_IDLE, taken, within=20)
    idle = g.find(lambda f: f.get("op") == OP_IDLE, taken)[0]
    say(expect_tone(p.audio, f"webby hears the radio {radio_user}", 440, taken + SETTLE, idle,
                    1.0))
    await asyncio.sleep(SETTLE)
    granted = await take_floor(g, channel)
    await hold(g, channel, TALK)
    await release_floor(g, channel)
    say(expect_silence(p.audio, "webby", granted, time.monotonic(),
                       "while it holds the floor itself"))
    await p.close()


SCENARIOS = {"selftest": (selftest, 0), "floor": (floor, 1), "opus": (opus, 1),
             "video": (video, 1), "rejoin": (rejoin, 1), "bad_offers": (bad_offers, 1),
             "radio": (radio, 3)}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS \
            or len(sys.argv) - 2 != SCENARIOS[sys.argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    fn, _ = SCENARIOS[sys.argv[1]]
    try:
        asyncio.run(asyncio.wait_for(fn(*sys.argv[2:]), 90))
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print(f"FAIL: scenario {sys.argv[1]} did not finish within 90 s", flush=True)
        sys.exit(1)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
