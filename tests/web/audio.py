"""Audio through the web client (issue 16): two headless chromium browsers, each with its own
tone as the fake microphone (--use-file-for-fake-audio-capture), sign in to a running
livechatd with WebRTC and join one channel. Alice holds the talk button: bob's page hears
alice's tone (an AnalyserNode on the received stream peaks at its frequency) and names her;
then bob talks and alice hears bob's tone. Alice then sends her camera too, and bob sees it
in a video tile while she talks. Last, alice talks for 2 s between the lines `ALICE` and
`RADIO` (a radio driven by the Rust test records it), and the script waits for the radio to
talk its own tone, which alice's page must hear. Prints `OK`.

usage: audio.py --url http://127.0.0.1:PORT/ --alice TOKEN --bob TOKEN --channel ID
                --alice-hz F --bob-hz F --radio-hz F --dir DIR"""

import argparse
import asyncio
import math
import os
import struct
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402
from scenario import floor_is  # noqa: E402

# The frequency the analyser reports is within a bin (48000 / 2048 = 23.4 Hz) and a half.
TOLERANCE_HZ = 40


def tone_wav(path, hz, seconds=10, rate=48000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate)))
            for i in range(seconds * rate)))


async def hears(page, hz, what, timeout=15.0):
    """Waits until the page's incoming audio peaks within TOLERANCE_HZ of `hz` in 5
    successive reads 100 ms apart."""
    await page.wait(
        f"""(async () => {{
            for (let i = 0; i < 5; i++) {{
                if (Math.abs(window.livechat.incomingHz() - {hz}) > {TOLERANCE_HZ}) return false;
                await new Promise(r => setTimeout(r, 100));
            }}
            return true;
        }})()""", what, timeout)


async def main():
    ap = argparse.ArgumentParser()
    for name in ("url", "alice", "bob", "channel", "dir"):
        ap.add_argument(f"--{name}", required=True)
    for name in ("alice-hz", "bob-hz", "radio-hz"):
        ap.add_argument(f"--{name}", type=float, required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    wav_a, wav_b = os.path.join(a.dir, "alice.wav"), os.path.join(a.dir, "bob.wav")
    tone_wav(wav_a, a.alice_hz)
    tone_wav(wav_b, a.bob_hz)
    ba = await Browser.launch([f"--use-file-for-fake-audio-capture={wav_a}"])
    bb = await Browser.launch([f"--use-file-for-fake-audio-capture={wav_b}"])
    try:
        await run(ba, bb, a)
    finally:
        await ba.close()
        await bb.close()
    print("OK", flush=True)


async def run(ba, bb, a):
    alice = await ba.new_page("alice", 1280, 800)
    bob = await bb.new_page("bob", 390, 844, mobile=True)
    for page, user, token in ((alice, "alice", a.alice), (bob, "bob", a.bob)):
        await page.goto(f"{a.url}#user={user}&token={token}")
        await page.wait(f"document.querySelector('[data-channel={a.channel}]')", f"{a.channel} listed", 15)
        await page.click(f"[data-channel={a.channel}]")
        await page.wait("!document.getElementById('in-room').hidden", f"{user} in {a.channel}")
    for page in (alice, bob):
        await page.wait("window.livechat.connectionState() === 'connected'", "ICE and DTLS connected", 15)
        await page.wait("document.getElementById('media-status').textContent === 'Audio connected.'",
                        "the page says the audio is connected")

    x, y = await alice.center("#ptt")
    await alice.mouse("mousePressed", x, y)
    await floor_is(alice, "You are talking")
    await floor_is(bob, "alice is talking")
    await hears(bob, a.alice_hz, f"alice's {a.alice_hz} Hz at bob")
    await alice.mouse("mouseReleased", x, y)
    await floor_is(bob, "Channel is quiet")

    x, y = await bob.center("#ptt")
    await bob.mouse("mousePressed", x, y)
    await floor_is(bob, "You are talking")
    await hears(alice, a.bob_hz, f"bob's {a.bob_hz} Hz at alice")
    await bob.mouse("mouseReleased", x, y)
    await floor_is(alice, "Channel is quiet")

    # Alice sends her camera (the page rejoins with video): bob sees it in a tile while she
    # talks, frames and all.
    await alice.click("#camera")
    await alice.wait("window.livechat.connectionState() === 'connected' && "
                     "document.getElementById('media-status').textContent === 'Audio connected.'",
                     "alice rejoined with her camera", 15)
    await bob.wait("document.querySelector('#members [data-user=alice]')", "alice back among bob's members")
    x, y = await alice.center("#ptt")
    await alice.mouse("mousePressed", x, y)
    await floor_is(bob, "alice is talking")
    await bob.wait("[...document.querySelectorAll('#videos video')].some(v => v.videoWidth > 0)",
                   "alice's camera in a tile at bob", 15)
    await alice.mouse("mouseReleased", x, y)
    await floor_is(bob, "Channel is quiet")

    # Alice talks once more for the radio to record, then the radio talks.
    print("ALICE", flush=True)
    x, y = await alice.center("#ptt")
    await alice.mouse("mousePressed", x, y)
    await floor_is(alice, "You are talking")
    await asyncio.sleep(2)
    await alice.mouse("mouseReleased", x, y)
    await floor_is(alice, "Channel is quiet")
    print("RADIO", flush=True)
    await floor_is(alice, "radio1 is talking", 20)
    await hears(alice, a.radio_hz, f"the radio's {a.radio_hz} Hz at alice")
    for page in (alice, bob):
        assert not page.errors, f"{page.name}: console errors: {page.errors}"


if __name__ == "__main__":
    asyncio.run(main())
