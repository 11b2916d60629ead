#!/usr/bin/env python3
"""Headless Chromium as a second, independent WebRTC implementation, driven over the DevTools
protocol (a `websockets` client on `--remote-debugging-port`; no Playwright).

Usage: chromium.py selftest
       chromium.py exchange WS_URL

  selftest   no daemon: loads tests/webrtc/page.html from 127.0.0.1 (a secure context), and
             inside it one peer connection sends an 880 Hz tone to another whose analyser
             must find it (proves the driver, the page's sender and its receiver)
  exchange   Chromium (880 Hz) and an aiortc peer (440 Hz) in one PCMU channel through
             `sdp_offer`: nobody heard while nobody holds the floor; aiortc holds it:
             Chromium hears 440 Hz, then nothing once released; Chromium holds it: aiortc
             hears 880 Hz, then nothing

Prints what it measured, then OK (exit 0) or FAIL: ... (exit 1), like scenarios.py.
"""
import asyncio
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from lcpeer import (
    OP_CREATE, Fail, Gateway, Peer, check_answer, dump, expect_silence, expect_tone, hold,
    release_floor, take_floor, token, websockets,
)

HERE = os.path.dirname(os.path.abspath(__file__))
TONE_WEB = 880
TALK = 2.5
QUIET = 1.0
SETTLE = 0.4


def say(line):
    print(line, flush=True)


class PageServer:
    """tests/webrtc/page.html over HTTP on 127.0.0.1 (loopback is a secure context, so the
    page may use getUserMedia)."""

    def __init__(self):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=HERE, **kw)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/page.html"

    def close(self):
        self.httpd.shutdown()


class Browser:
    """A headless Chromium with one page, and a DevTools session to that page."""

    def __init__(self):
        self.proc = None
        self.profile = None
        self.ws = None
        self.next_id = 1
        self.console = []

    async def start(self, url):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            raise Fail("chromium is not installed: run .ci/deps-webrtc.sh")
        self.profile = tempfile.mkdtemp(prefix="livechat-chromium-")
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--mute-audio",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", url]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.profile, "stderr"), "wb"))
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 20
        page = None
        while page is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Fail(f"chromium did not open its page with DevTools within 20 s "
                           f"(exit {self.proc.poll()}): {self.stderr()[-2000:]}")
            await asyncio.sleep(0.1)
            try:
                port = int(open(port_file).read().split()[0])
                targets = json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/json/list", timeout=2))
            except (OSError, ValueError, IndexError):
                continue
            page = next((t for t in targets if t.get("type") == "page"
                         and t.get("url") == url), None)
        self.ws = await websockets.connect(page["webSocketDebuggerUrl"], max_size=1 << 24)
        await self.call("Runtime.enable")
        # Wait for the page's script.
        deadline = time.monotonic() + 10
        while await self.evaluate("typeof lcJoin") != "function":
            if time.monotonic() > deadline:
                raise Fail("the test page's script did not load")
            await asyncio.sleep(0.1)

    def stderr(self):
        try:
            return open(os.path.join(self.profile, "stderr"), errors="replace").read()
        except OSError:
            return ""

    async def call(self, method, params=None, within=30):
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"id": rid, "method": method, "params": params or {}}))

        async def answer():
            while True:
                msg = json.loads(await self.ws.recv())
                if msg.get("id") == rid:
                    return msg
                if msg.get("method") == "Runtime.consoleAPICalled":
                    self.console.append(" ".join(str(a.get("value", a.get("description")))
                                                 for a in msg["params"]["args"]))
                elif msg.get("method") == "Runtime.exceptionThrown":
                    self.console.append(json.dumps(msg["params"]["exceptionDetails"])[:500])
        try:
            msg = await asyncio.wait_for(answer(), within)
        except asyncio.TimeoutError:
            raise Fail(f"DevTools: no answer to {method} within {within} s") from None
        if "error" in msg:
            raise Fail(f"DevTools {method}: {msg['error']}")
        return msg["result"]

    async def evaluate(self, expression, within=30):
        """The JSON value of `expression` in the page (promises awaited); a thrown exception
        is a Fail carrying its message."""
        r = await self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                 "returnByValue": True}, within)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise Fail(f"in the page, {expression[:80]}: {text}")
        return r["result"].get("value")

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)


def check_heard(w, who, freq, min_packets):
    """A page window holds `freq` (within one analyser bin plus one Hz) in most loud samples,
    from at least `min_packets` inbound packets."""
    summary = (f"{who}: {w['packets']} packets, {w['samples']} analyser samples in "
               f"{w['seconds']:.2f} s, {w['loud']} loud, dominant {w['dominant']:.1f} Hz in "
               f"{w['at_dominant']} (bin {w['bin_hz']} Hz)")
    if w["packets"] < min_packets or w["loud"] < 0.5 * w["samples"]:
        raise Fail(f"{summary}: expected at least {min_packets} packets of a {freq} Hz tone")
    if abs(w["dominant"] - freq) > (w["bin_hz"] or 0) + 1 or w["at_dominant"] < 0.5 * w["loud"]:
        raise Fail(f"{summary}: expected the {freq} Hz tone")
    return summary


def check_quiet(w, who, why):
    if w["packets"] != 0:
        raise Fail(f"{who} must receive no audio {why}, got {w['packets']} packets "
                   f"(dominant {w['dominant']:.1f} Hz)")
    return f"{who}: no audio packets {why} ({w['seconds']:.2f} s)"


async def with_browser(fn):
    server = PageServer()
    browser = Browser()
    try:
        await browser.start(server.url)
        say(f"chromium loaded {server.url}: secure context "
            f"{await browser.evaluate('window.isSecureContext')}")
        await fn(browser)
    except Fail as e:
        log = ""
        if browser.ws is not None:
            try:
                log = json.dumps(await browser.evaluate("lcLog()", within=5))
            except Fail:
                pass
        raise Fail(f"{e}\n[page log] {log}\n[console] {browser.console[-20:]}") from None
    finally:
        await browser.close()
        server.close()


async def selftest(browser):
    if await browser.evaluate("window.isSecureContext") is not True:
        raise Fail("the page on 127.0.0.1 is not a secure context")
    w = await browser.evaluate(f"lcLoopback({TONE_WEB})")
    if w["state"] != "connected":
        raise Fail(f"the in-page peer connections did not connect: {w}")
    say(check_heard(w, "the in-page receiver", TONE_WEB, 50))


async def exchange(browser, url):
    g = await Gateway.connect(url, "aio")
    await g.ack(OP_CREATE, {"channel_id": "web"})
    a = Peer(g, 440)
    await a.join("web")
    joined = await browser.evaluate(
        f"lcJoin({json.dumps(url)}, 'chrome', {json.dumps(token('chrome'))}, 'web', "
        f"{TONE_WEB})", within=40)
    dump("chromium-web", joined["offer"], joined["ack"]["sdp_answer"])
    check_answer(joined["offer"], joined["ack"]["sdp_answer"], joined["ack"]["media"]["port"],
                 "PCMU")
    say(f"chromium joined through sdp_offer ({len(joined['offer'])} bytes; the answer as "
        f"section 4 says) and is connected")

    t = time.monotonic()
    await browser.evaluate("lcWindowStart()")
    await asyncio.sleep(QUIET)
    say(check_quiet(await browser.evaluate("lcWindowEnd()"), "chromium",
                    "before anyone holds the floor"))
    say(expect_silence(a.audio, "aio", t, time.monotonic(), "before anyone holds the floor"))

    granted = await take_floor(g, "web")
    await asyncio.sleep(SETTLE)
    await browser.evaluate("lcWindowStart()")
    await hold(g, "web", TALK)
    w = await browser.evaluate("lcWindowEnd()")
    released = time.monotonic()
    idle = await release_floor(g, "web")
    say(check_heard(w, "chromium hears aio", 440, int(TALK / 0.02 * 0.6)))
    say(expect_silence(a.audio, "aio", granted, released, "while it holds the floor itself"))
    await asyncio.sleep(SETTLE)
    await browser.evaluate("lcWindowStart()")
    await asyncio.sleep(QUIET)
    say(check_quiet(await browser.evaluate("lcWindowEnd()"), "chromium",
                    "after aio released the floor"))

    await browser.evaluate("lcRequest()")
    granted = time.monotonic()
    await asyncio.sleep(TALK)
    released = time.monotonic()
    await browser.evaluate("lcRelease()")
    idle = time.monotonic()
    say(expect_tone(a.audio, "aio hears chromium", TONE_WEB, granted + SETTLE, released, 1.5))
    await asyncio.sleep(SETTLE + QUIET)
    say(expect_silence(a.audio, "aio", idle + SETTLE, time.monotonic(),
                       "after chromium released the floor"))
    await a.close()
    await g.close()


def main():
    if sys.argv[1:2] == ["selftest"] and len(sys.argv) == 2:
        job = with_browser(selftest)
    elif sys.argv[1:2] == ["exchange"] and len(sys.argv) == 3:
        job = with_browser(lambda b: exchange(b, sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(asyncio.wait_for(job, 100))
    except Fail as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print("FAIL: the chromium scenario did not finish within 100 s", flush=True)
        sys.exit(1)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
