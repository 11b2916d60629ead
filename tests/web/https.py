"""The web client over https:// on a LAN name, as a phone would open it (issue 16, "HTTPS
that a LAN user can actually get"): chromium resolves NAME to 127.0.0.1 and trusts the
server key that `livechatd cert` made (--ignore-certificate-errors-spki-list with its
SPKI hash: the chain itself is checked by the Rust test with webpki), opens a sign-in
link, and the page is a secure context with the microphone, on wss://. Prints `OK`.

usage: https.py --url https://NAME:PORT/ --name NAME --spki BASE64 --alice TOKEN"""

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser  # noqa: E402


async def main():
    ap = argparse.ArgumentParser()
    for name in ("url", "name", "spki", "alice"):
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()
    browser = await Browser.launch([
        f"--host-resolver-rules=MAP {a.name} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={a.spki}",
    ])
    try:
        page = await browser.new_page("alice (https)", 390, 844, mobile=True)
        await page.goto(f"{a.url}#user=alice&token={a.alice}")
        await page.wait("!document.getElementById('app').hidden", "alice signed in over wss://", 15)
        assert await page.eval("window.isSecureContext"), "a secure context"
        assert await page.eval("location.protocol") == "https:"
        assert await page.eval("location.hash") == ""
        await page.eval("document.getElementById('create').open = true")
        await page.type_text("#new-id", "lan")
        await page.click("#create-form button[type=submit]")
        await page.wait("!document.getElementById('in-room').hidden", "alice in lan")
        # The microphone was given: the selector lists it and nothing says it is missing.
        await page.wait("document.getElementById('mic').options.length > 0", "a microphone listed")
        status = await page.eval("document.getElementById('media-status').textContent")
        assert "https" not in status and "blocked" not in status and "No microphone" not in status, status
        assert not page.errors, f"console errors: {page.errors}"
    finally:
        await browser.close()
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
