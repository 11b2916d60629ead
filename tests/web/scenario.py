"""The web client in a real browser (issue 16): two pages of headless chromium sign in to a
running livechatd, join one channel, chat, and go through the floor states (talking,
queued, handed over, idle, revoked) with the mouse and the keyboard. Screenshots of the
desktop and the phone layouts go to --shots. Then alice's connection drops and the page
reconnects and rejoins. Prints `FIGURES {...}` (page weight, time until
usable) and `OK`; any failed expectation or console error exits non-zero.

usage: scenario.py --url http://127.0.0.1:PORT/ --alice TOKEN --bob TOKEN --shots DIR"""

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402

FLOOR = "document.getElementById('floor-text').textContent"


def js(s):
    return json.dumps(s)


async def floor_is(page, text, timeout=10.0):
    await page.wait(f"{FLOOR} === {js(text)}", f"floor text {text!r}", timeout)


async def floor_has(page, text, timeout=10.0):
    await page.wait(f"{FLOOR}.includes({js(text)})", f"floor text containing {text!r}", timeout)


async def chat_has(page, text):
    await page.wait(
        f"[...document.querySelectorAll('#chat .text')].some(e => e.textContent === {js(text)})",
        f"chat line {text!r}")


async def usable_after(page, url):
    """Navigates and returns ms from navigation start until the sign-in form is ready
    (the modules ran), and the page's bytes."""
    await page.goto(url)
    await page.wait("document.readyState === 'complete'", "load")
    return await page.eval("""(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        const bytes = res.reduce((n, r) => n + r.decodedBodySize, nav.decodedBodySize);
        const mark = (n) => { const m = performance.getEntriesByName(n)[0]; return m ? Math.round(m.startTime) : null; };
        return {load_ms: Math.round(nav.loadEventEnd || performance.now()),
                interactive_ms: mark('livechat-interactive'),
                bytes, files: res.length + 1};
    })()""")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--alice", required=True)
    ap.add_argument("--bob", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--max-ms", type=int, required=True)
    ap.add_argument("--heartbeat-ms", type=int, required=True)
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    browser = await Browser.launch()
    try:
        figures = await run(browser, a)
    finally:
        await browser.close()
    print("FIGURES " + json.dumps(figures))
    print("OK")


async def run(browser, a):
    alice = await browser.new_page("alice (desktop)", 1280, 800)
    bob = await browser.new_page("bob (phone)", 390, 844, mobile=True)

    # Alice comes in through a sign-in link: user and token in the fragment, which the
    # page reads, clears from the address bar, and signs in with.
    first = await usable_after(alice, f"{a.url}#user=alice&token={a.alice}")
    await alice.wait("!document.getElementById('app').hidden", "alice signed in")
    await alice.wait("performance.getEntriesByName('livechat-signed-in').length", "signed-in mark")
    first["signed_in_ms"] = await alice.eval(
        "Math.round(performance.getEntriesByName('livechat-signed-in')[0].startTime)")
    assert await alice.eval("location.hash") == "", "the fragment is cleared"
    assert "alice" in await alice.eval("document.getElementById('conn').textContent")

    # Alice creates a channel from the form; creating joins it.
    await alice.eval("document.getElementById('create').open = true")
    await alice.type_text("#new-id", "ops")
    await alice.type_text("#new-name", "Operations")
    await alice.click("#create-form button[type=submit]")
    await alice.wait("document.getElementById('room-title').textContent === 'Operations'", "alice in ops")
    await floor_is(alice, "Channel is quiet")

    # Bob signs in with the form on a phone, and joins ops from the list.
    again = await usable_after(bob, a.url)
    await bob.type_text("#user", "bob")
    await bob.type_text("#token", a.bob)
    await bob.click("#signin-form button[type=submit]")
    await bob.wait("document.querySelector('[data-channel=ops]')", "ops in bob's channel list")
    await bob.click("[data-channel=ops]")
    await bob.wait("!document.getElementById('in-room').hidden", "bob in ops")
    await alice.wait("document.querySelector('#members [data-user=bob]')", "bob among alice's members")
    await bob.wait("document.querySelector('#members [data-user=alice]')", "alice among bob's members")
    media = await bob.eval("document.getElementById('media-status').textContent")

    # Chat both ways; Enter sends.
    await alice.type_text("#say", "hello from alice ✓ 😀")
    await alice.key("keyDown", "Enter", "Enter", 13, "\r")
    await alice.key("keyUp", "Enter", "Enter", 13)
    await chat_has(bob, "hello from alice ✓ 😀")
    await chat_has(alice, "hello from alice ✓ 😀")
    await bob.type_text("#say", "bob here")
    await bob.click("#say-form button[type=submit]")
    await chat_has(alice, "bob here")

    # Alice holds the talk button: she talks, and bob's indicator names her.
    x, y = await alice.center("#ptt")
    await alice.mouse("mousePressed", x, y)
    await floor_is(alice, "You are talking")
    await alice.wait("/^\\d+ s left$/.test(document.getElementById('floor-time').textContent)", "time left")
    await floor_is(bob, "alice is talking")
    await bob.wait("document.querySelector('#members [data-user=alice]').classList.contains('talking')",
                   "alice marked talking among bob's members")
    for page in (alice, bob):
        await page.eval("window.scrollTo(0, 0)")
    await alice.screenshot(os.path.join(a.shots, "web-desktop.png"))
    await bob.screenshot(os.path.join(a.shots, "web-phone.png"))

    # Bob asks with the space bar (focus off the chat box): queued behind alice.
    await bob.eval("document.activeElement.blur()")
    await bob.key("keyDown", " ", "Space", 32, " ")
    await floor_is(bob, "Waiting to talk: position 1 of 1. alice is talking")

    # Alice lets go: the floor passes to bob.
    await alice.mouse("mouseReleased", x, y)
    await floor_is(bob, "You are talking")
    await floor_is(alice, "bob is talking")
    await bob.key("keyUp", " ", "Space", 32)
    await floor_is(bob, "Channel is quiet")
    await floor_is(alice, "Channel is quiet")

    # Latched: one tap starts, the next stops.
    await alice.click("#latch")
    await alice.click("#ptt")
    await floor_is(alice, "You are talking")
    await floor_is(bob, "alice is talking")
    await alice.click("#ptt")
    await floor_is(alice, "Channel is quiet")
    await alice.click("#latch")

    # Touch on the phone: press and hold the button, lift to stop.
    tx, ty = await bob.center("#ptt")
    await bob.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": tx, "y": ty}]})
    await floor_is(bob, "You are talking")
    await floor_is(alice, "bob is talking")
    await bob.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await floor_is(bob, "Channel is quiet")
    await floor_is(alice, "Channel is quiet")

    # The keyboard alone: the talk button focused, Enter held.
    await alice.eval("document.getElementById('ptt').focus()")
    await alice.key("keyDown", "Enter", "Enter", 13, "\r")
    await floor_is(alice, "You are talking")
    await alice.key("keyUp", "Enter", "Enter", 13)
    await floor_is(alice, "Channel is quiet")

    # Holding past LIVECHAT_FLOOR_MAX_MS: alice is revoked and told why.
    x, y = await alice.center("#ptt")
    await alice.mouse("mousePressed", x, y)
    await floor_is(alice, "You are talking")
    await floor_has(alice, "Your turn was ended: you reached the longest time one may talk.",
                    timeout=a.max_ms / 1000 + 5)
    await floor_has(bob, "Channel is quiet")
    await alice.mouse("mouseReleased", x, y)
    await asyncio.sleep(0.3)
    assert await alice.eval("document.getElementById('alert').hidden"), \
        await alice.eval("document.getElementById('alert').textContent")

    # Leaving shows on the other side.
    await bob.click("#leave")
    await alice.wait("!document.querySelector('#members [data-user=bob]')", "bob gone from alice's members")
    for page in (alice, bob):
        assert not page.errors, f"{page.name}: console errors: {page.errors}"

    # A dropped connection: alice's page stops running (the debugger pauses it), sends no
    # heartbeat, and the server closes it as a zombie (4009). Resumed, the page says so,
    # reconnects, signs in again and rejoins ops: bob's messages reach it again.
    await alice.eval("""(() => { window.connTexts = [];
        new MutationObserver(() => connTexts.push(document.getElementById('conn').textContent))
            .observe(document.getElementById('conn'), {childList: true, characterData: true, subtree: true}); })()""")
    await alice.send("Debugger.enable")
    await alice.send("Debugger.pause")
    await asyncio.sleep(a.heartbeat_ms * 3 / 1000)
    await alice.send("Debugger.resume")
    await alice.send("Debugger.disable")
    await alice.wait("connTexts.some(t => t.startsWith('Disconnected: the connection went quiet. Reconnecting in'))",
                     "the drop, in words")
    await alice.wait("document.getElementById('conn').textContent === 'Connected as alice'", "reconnected", 15)
    await alice.wait("document.getElementById('room-title').textContent === 'Operations' && "
                     "!document.getElementById('in-room').hidden", "back in ops")
    await bob.click("[data-channel=ops]")
    await alice.wait("document.querySelector('#members [data-user=bob]')", "bob among alice's members again")
    await bob.type_text("#say", "welcome back")
    await bob.click("#say-form button[type=submit]")
    await chat_has(alice, "welcome back")
    assert await alice.eval("document.getElementById('alert').hidden"), \
        await alice.eval("document.getElementById('alert').textContent")
    for page in (alice, bob):
        assert not page.errors, f"{page.name}: console errors: {page.errors}"
    return {"first_load": first, "second_load": again, "media_status": media}


if __name__ == "__main__":
    asyncio.run(main())
