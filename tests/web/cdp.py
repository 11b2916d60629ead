"""A small Chrome DevTools Protocol client over `websockets`: launches Debian's headless
`chromium` with fake media devices and drives pages of it (targets attached in flat mode).

Used by tests/web/scenario.py; only what the browser tests need."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import websockets

CHROMIUM = os.environ.get("CHROMIUM", "chromium")


class CdpError(Exception):
    pass


def _reaper(profile, pid):
    """A detached shell that kills chromium once this script is gone, however it ended (a
    test that fails kills the script before its `finally` runs). Chromium resets
    PR_SET_PDEATHSIG, so a watcher it is; a zombie script counts as gone (its parent may
    not have reaped it yet), and the pid must still be that chromium."""
    me = os.getpid()
    script = (f"while kill -0 {me} 2>/dev/null && ! grep -q ') Z ' /proc/{me}/stat; do sleep 1; done; "
              f"grep -q -- '{profile}' /proc/{pid}/cmdline 2>/dev/null && kill -9 {pid}")
    return subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


class Browser:
    """One headless chromium process and its browser-level DevTools connection."""

    def __init__(self, proc, ws, profile, reaper):
        self.proc = proc
        self.reaper = reaper
        self.ws = ws
        self.profile = profile
        self.next_id = 0
        self.waiting = {}
        self.listeners = []
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def launch(cls, extra_args=()):
        profile = tempfile.mkdtemp(prefix="livechat-chromium-")
        args = [
            CHROMIUM,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Containers run tests as root, where chromium's sandbox cannot start.
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            *extra_args,
            "about:blank",
        ]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        reaper = _reaper(profile, proc.pid)
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if proc.poll() is not None:
                raise CdpError(f"chromium exited: {proc.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                proc.kill()
                raise CdpError("chromium did not open its DevTools port within 30 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        port, path = open(port_file).read().split("\n")[:2]
        ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 1024 * 1024)
        return cls(proc, ws, profile, reaper)

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.waiting.pop(msg["id"], None)
                if fut and not fut.done():
                    if "error" in msg:
                        fut.set_exception(CdpError(json.dumps(msg["error"])))
                    else:
                        fut.set_result(msg.get("result", {}))
            else:
                for listener in list(self.listeners):
                    listener(msg)

    async def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = fut
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)

    async def new_page(self, name, width, height, mobile=False):
        target = await self.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"], name)
        page.target_id = target["targetId"]
        self.listeners.append(page._event)
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
        })
        # Each page acts as the focused one, as two people's browsers would.
        await page.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
        if mobile:
            await page.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        return page

    async def close(self):
        self.reader.cancel()
        try:
            await self.ws.close()
        except Exception:
            pass
        self.proc.kill()
        self.proc.wait()
        self.reaper.kill()
        self.reaper.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: navigate, evaluate, wait for a condition, input, screenshots; console errors
    and uncaught exceptions are collected in `errors`."""

    def __init__(self, browser, session, name):
        self.browser = browser
        self.session = session
        self.name = name
        self.errors = []
        self.loaded = asyncio.Event()

    def _event(self, msg):
        if msg.get("sessionId") != self.session:
            return
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.errors.append(f"console.{p['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log: {e.get('text')} {e.get('url', '')}")
        elif method == "Page.loadEventFired":
            self.loaded.set()

    async def send(self, method, params=None):
        return await self.browser.send(method, params, session=self.session)

    async def goto(self, url):
        self.loaded.clear()
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def eval(self, expr):
        r = await self.send("Runtime.evaluate", {
            "expression": expr, "awaitPromise": True, "returnByValue": True,
        })
        if "exceptionDetails" in r:
            raise CdpError(f"{self.name}: {expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait(self, expr, what, timeout=10.0):
        """Polls `expr` until it is truthy; fails naming `what` and the last value of
        `describe` otherwise."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            # Awaited, so that an async expression is judged by what it resolves to.
            last = await self.eval(f"(async () => !!(await ({expr})))()")
            if last:
                return last
            await asyncio.sleep(0.05)
        floor = await self.eval("document.getElementById('floor-text')?.textContent")
        raise AssertionError(f"{self.name}: waited {timeout} s for {what}; last {last!r}; floor text {floor!r}")

    async def center(self, selector):
        box = await self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        return box

    async def mouse(self, kind, x, y):
        await self.send("Input.dispatchMouseEvent", {
            "type": kind, "x": x, "y": y, "button": "left", "buttons": 1 if kind == "mousePressed" else 0,
            "clickCount": 1,
        })

    async def click(self, selector):
        x, y = await self.center(selector)
        await self.mouse("mousePressed", x, y)
        await self.mouse("mouseReleased", x, y)

    async def key(self, kind, key, code, vk, text=None):
        p = {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text is not None:
            p["text"] = text
        await self.send("Input.dispatchKeyEvent", p)

    async def type_text(self, selector, text):
        await self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, path):
        r = await self.send("Page.captureScreenshot", {"format": "png"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
