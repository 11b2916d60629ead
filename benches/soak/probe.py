"""Outside latency probe for `livechat-soak churn`: HEARTBEAT round trips over connections of
its own, from a second process, so that the load generator's own queueing is not counted.

    python3 benches/soak/probe.py ws://127.0.0.1:PORT/gateway [CONNECTIONS] [HEARTBEATS]

(`livechat-soak churn` prints the daemon's URL at the start.) Needs the `websockets` package.
Bounded: CONNECTIONS (default 4) one after another, HEARTBEATS (default 20) each, 200 ms apart.
"""

import asyncio
import json
import sys
import time

import websockets


async def one(url, k, beats):
    t0 = time.monotonic()
    hello = None
    try:
        async with websockets.connect(url, ping_interval=None, open_timeout=10) as ws:
            hello = await asyncio.wait_for(ws.recv(), 10)
            t1 = time.monotonic()
            rtts = []
            for i in range(beats):
                t = time.monotonic()
                await ws.send(json.dumps({"op": 1, "d": None, "id": i + 1}))
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if m.get("id") == i + 1:
                        break
                rtts.append((time.monotonic() - t) * 1000)
                await asyncio.sleep(0.2)
            rtts.sort()
            return (
                f"conn {k}: connect+HELLO {1000 * (t1 - t0):.0f} ms, HEARTBEAT round trip "
                f"p50 {rtts[len(rtts) // 2]:.1f} ms max {rtts[-1]:.1f} ms"
            )
    except Exception as e:  # report, do not hide, what went wrong
        return f"conn {k}: {type(e).__name__}: {e} (HELLO received: {hello is not None})"


async def main():
    url = sys.argv[1]
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    beats = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    for k in range(min(conns, 1000)):
        print(await one(url, k, max(1, min(beats, 1000))), flush=True)


asyncio.run(main())
