"""Measures the web client in headless chromium against a running livechatd (figures for
docs/performance.md; nothing is asserted): page weight and time until usable over N cold
loads, and press-to-talk over N presses: from the talk button's pointerdown at alice's page
to "You are talking" there (FLOOR_GRANTED rendered), and to "alice is talking" at bob's page
(FLOOR_TAKEN rendered). With WebRTC audio (--tone-hz: alice's microphone plays that tone),
also from the press to the tone at bob's AnalyserNode (checked every 5 ms; the analyser's
window is 2048 samples, 43 ms at 48 kHz).

usage: measure.py --url http://127.0.0.1:PORT/ --alice TOKEN --bob TOKEN [--presses 50] [--loads 20]
                  [--tone-hz 1000]"""

import argparse
import asyncio
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402
from scenario import usable_after  # noqa: E402

# Installed in both pages: epoch-ms times (performance.timeOrigin + now: one clock for the
# two pages) of the press, and of each floor text first appearing.
WATCH = """((hz) => {
  window.seen = {};
  clearInterval(window.heardTimer);
  if (hz) window.heardTimer = setInterval(() => {
    if (!('heard' in seen) && Math.abs(window.livechat.incomingHz() - hz) < 40) seen.heard = t();
  }, 5);
  const t = () => performance.timeOrigin + performance.now();
  document.getElementById('ptt').addEventListener('pointerdown', () => { seen.press = t(); }, true);
  new MutationObserver(() => {
    const text = document.getElementById('floor-text').textContent;
    if (!(text in seen)) seen[text] = t();
  }).observe(document.getElementById('floor-text'), {childList: true, characterData: true, subtree: true});
})"""


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 1)


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "max": round(max(xs), 1)}


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--alice", required=True)
    ap.add_argument("--bob", required=True)
    ap.add_argument("--presses", type=int, default=50)
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--tone-hz", type=float, default=0,
                    help="with WebRTC: alice's microphone plays this tone, bob's page listens for it")
    ap.add_argument("--dir", default="/tmp/livechat-measure")
    a = ap.parse_args()
    extra = []
    if a.tone_hz:
        from audio import tone_wav
        os.makedirs(a.dir, exist_ok=True)
        wav = os.path.join(a.dir, "tone.wav")
        tone_wav(wav, a.tone_hz)
        extra.append(f"--use-file-for-fake-audio-capture={wav}")
    browser = await Browser.launch(extra)
    try:
        out = await run(browser, a)
    finally:
        await browser.close()
    print(json.dumps(out, indent=1))


async def run(browser, a):
    loads = []
    for i in range(a.loads):
        page = await browser.new_page(f"load{i}", 1280, 800)
        f = await usable_after(page, f"{a.url}#user=loader{i}&token={a.alice}")
        await page.wait("!document.getElementById('app').hidden", "signed in")
        await page.wait("performance.getEntriesByName('livechat-signed-in').length", "signed-in mark")
        f["signed_in_ms"] = await page.eval(
            "Math.round(performance.getEntriesByName('livechat-signed-in')[0].startTime)")
        loads.append(f)
        await browser.send("Target.closeTarget", {"targetId": page.target_id})
    alice = await browser.new_page("alice", 1280, 800)
    bob = await browser.new_page("bob", 390, 844, mobile=True)
    await alice.goto(f"{a.url}#user=alice&token={a.alice}")
    await alice.wait("!document.getElementById('app').hidden", "alice signed in")
    await alice.eval("document.getElementById('create').open = true")
    await alice.type_text("#new-id", "bench")
    await alice.click("#create-form button[type=submit]")
    await alice.wait("!document.getElementById('in-room').hidden", "alice in bench")
    await bob.goto(f"{a.url}#user=bob&token={a.bob}")
    await bob.wait("document.querySelector('[data-channel=bench]')", "bench listed")
    await bob.click("[data-channel=bench]")
    await bob.wait("!document.getElementById('in-room').hidden", "bob in bench")
    x, y = await alice.center("#ptt")
    if a.tone_hz:
        for page in (alice, bob):
            await page.wait("window.livechat.connectionState() === 'connected'", "audio connected", 15)
    grant, taken, heard = [], [], []
    for _ in range(a.presses):
        if a.tone_hz:
            # Silence at bob before each press, so the tone heard is this press's.
            await bob.wait(f"Math.abs(window.livechat.incomingHz() - {a.tone_hz}) > 40", "silence", 10)
        await alice.eval(f"{WATCH}(0)")
        await bob.eval(f"{WATCH}({a.tone_hz})")
        await alice.mouse("mousePressed", x, y)
        await alice.wait("'You are talking' in seen", "granted")
        await bob.wait("'alice is talking' in seen", "taken")
        if a.tone_hz:
            await bob.wait("'heard' in seen", "the tone at bob", 10)
        await alice.mouse("mouseReleased", x, y)
        await alice.wait("document.getElementById('floor-text').textContent === 'Channel is quiet'", "idle")
        await bob.wait("document.getElementById('floor-text').textContent === 'Channel is quiet'", "idle at bob")
        sa = await alice.eval("seen")
        sb = await bob.eval("seen")
        grant.append(sa["You are talking"] - sa["press"])
        taken.append(sb["alice is talking"] - sa["press"])
        if a.tone_hz:
            heard.append(sb["heard"] - sa["press"])
    return {
        "page_bytes": loads[0]["bytes"],
        "page_files": loads[0]["files"],
        "interactive_ms": summary([f["interactive_ms"] for f in loads]),
        "load_ms": summary([f["load_ms"] for f in loads]),
        "signed_in_ms": summary([f["signed_in_ms"] for f in loads]),
        "press_to_granted_ms": summary(grant),
        "press_to_taken_at_listener_ms": summary(taken),
        "press_to_tone_at_listener_ms": summary(heard) if heard else None,
        "media_status": await bob.eval("document.getElementById('media-status').textContent"),
    }


if __name__ == "__main__":
    asyncio.run(main())
