#!/usr/bin/env python3
"""An independent SRTP radio for the media e2e tests: `websockets` for signaling, libsrtp
(through `pylibsrtp`) for every SRTP and SRTCP transform. Nothing here comes from the Rust
code under test.

Usage: srtp_peer.py MODE WS_URL USER_ID TOKEN CHANNEL_ID SUITE SSRC COUNT START_SEQ

MODE talk:   identify, join CHANNEL_ID with a fresh client key (SUITE is 80 or 32), latch with
             an SRTCP receiver report, take the floor, send COUNT PCMU packets (PT 0, 160-byte
             payloads) from sequence number START_SEQ, protected by libsrtp, 2 ms apart, then
             resend the first protected packet once (a replay the server must drop), release the
             floor. Prints one JSON line: {"sent": [hex of each plain RTP packet]}.
MODE listen: identify, join, latch, print {"ready": true}, then receive until COUNT packets
             were unprotected by libsrtp with the server's key from the JOIN ACK, or 10 s of
             silence. Prints {"received": [hex of each RTP packet], "errors": {...}}.

Exit status 0 on success; on failure a JSON line {"error": "..."} and exit status 1. A
missing `websockets` or `pylibsrtp` is exit status 3.
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

try:
    import websockets
    import pylibsrtp
    from pylibsrtp import Policy, Session
except ImportError as e:
    print(f"missing python package ({e}): run .ci/deps-e2e.sh and .ci/deps-srtp.sh",
          file=sys.stderr)
    sys.exit(3)

TIMEOUT = 5.0
LISTEN_IDLE = 10.0
PROFILES = {
    "80": ("AES_CM_128_HMAC_SHA1_80", Policy.SRTP_PROFILE_AES128_CM_SHA1_80),
    "32": ("AES_CM_128_HMAC_SHA1_32", Policy.SRTP_PROFILE_AES128_CM_SHA1_32),
}


class Fail(Exception):
    pass


class Gateway:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.events = []

    async def recv_until(self, what, pred):
        for i, f in enumerate(self.events):
            if pred(f):
                return self.events.pop(i)

        async def loop():
            while True:
                raw = await self.ws.recv()
                if isinstance(raw, bytes):
                    raise Fail(f"server sent a binary frame while waiting for {what}")
                frame = json.loads(raw)
                if pred(frame):
                    return frame
                self.events.append(frame)
        try:
            return await asyncio.wait_for(loop(), TIMEOUT)
        except asyncio.TimeoutError:
            raise Fail(f"timed out after {TIMEOUT}s waiting for {what}; other frames: "
                       f"{self.events[-10:]}")

    async def request(self, op, d):
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"op": op, "d": d, "id": rid}))
        return await self.recv_until(f"the answer to op {op}", lambda f: f.get("id") == rid)

    async def ack(self, op, d):
        f = await self.request(op, d)
        if f.get("op") != 200 or f["d"].get("req_op") != op:
            raise Fail(f"op {op} {d} did not get ACK: {f}")
        return f["d"]


def receiver_report(ssrc, cname):
    """RTCP RR without report blocks, then SDES with one CNAME chunk (RFC 3550 6.4.2, 6.5)."""
    rr = struct.pack("!BBHI", 0x80, 201, 1, ssrc)
    item = bytes([1, len(cname)]) + cname
    chunk = struct.pack("!I", ssrc) + item
    chunk += b"\0" * (4 - len(chunk) % 4)  # at least one null octet, to a 32-bit boundary
    sdes = struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
    return rr + sdes


def rtp_packet(seq, ts, ssrc, payload, marker):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 0, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def payload_for(i):
    # Deterministic, distinct per packet.
    return bytes((i * 7 + k) & 0xFF for k in range(160))


async def main(mode, url, user, token, channel, suite, ssrc, count, start_seq):
    suite_name, profile = PROFILES[suite]
    client_key = os.urandom(30)
    async with websockets.connect(url, open_timeout=TIMEOUT) as ws:
        gw = Gateway(ws)
        hello = await gw.recv_until("HELLO", lambda f: True)
        if hello.get("op") != 0:
            raise Fail(f"first frame is not HELLO: {hello}")
        ready = await gw.request(3, {"user_id": user, "token": token})
        if ready.get("op") != 4:
            raise Fail(f"IDENTIFY did not get READY: {ready}")
        ack = await gw.ack(11, {
            "channel_id": channel, "ssrc": ssrc,
            "crypto": {"suite": suite_name, "key": base64.b64encode(client_key).decode()}})
        crypto = ack.get("crypto") or {}
        if crypto.get("suite") != suite_name:
            raise Fail(f"JOIN ACK crypto suite is not {suite_name}: {ack}")
        server_key = base64.b64decode(crypto["key"])
        if len(server_key) != 30 or server_key == client_key:
            raise Fail(f"JOIN ACK key is not a fresh 30-byte key: {ack}")
        media = (ack["media"]["host"], ack["media"]["port"])

        tx = Session(policy=Policy(key=client_key, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                   srtp_profile=profile))
        rx = Session(policy=Policy(key=server_key, ssrc_type=Policy.SSRC_ANY_INBOUND,
                                   srtp_profile=profile))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        # Latch: an SRTCP-protected receiver report (libsrtp protect_rtcp).
        sock.sendto(tx.protect_rtcp(receiver_report(ssrc, f"{user}@py".encode())), media)

        if mode == "talk":
            await gw.ack(30, {"channel_id": channel})
            await gw.recv_until("FLOOR_GRANTED", lambda f: f.get("op") == 50
                                and f["d"].get("user_id") == user)
            sent = []
            first_wire = None
            ts = 1234567
            last_ping = time.monotonic()
            for i in range(count):
                plain = rtp_packet(start_seq + i, ts + 160 * i, ssrc, payload_for(i), i == 0)
                wire = tx.protect(plain)
                if first_wire is None:
                    first_wire = wire
                sock.sendto(wire, media)
                sent.append(plain.hex())
                if time.monotonic() - last_ping > 1.0:
                    await ws.send(json.dumps({"op": 32, "d": {"channel_id": channel}}))
                    last_ping = time.monotonic()
                await asyncio.sleep(0.002)
            sock.sendto(first_wire, media)  # a replay: the server must drop it
            await asyncio.sleep(0.05)
            await gw.ack(31, {"channel_id": channel})
            print(json.dumps({"sent": sent}), flush=True)
        else:
            print(json.dumps({"ready": True}), flush=True)
            received = []
            errors = {"unprotect": 0, "foreign": 0}
            while len(received) < count:
                try:
                    data, src = await asyncio.wait_for(
                        loop.sock_recvfrom(sock, 4096), LISTEN_IDLE)
                except asyncio.TimeoutError:
                    break
                if src != media:
                    errors["foreign"] += 1
                    continue
                try:
                    received.append(rx.unprotect(data).hex())
                except pylibsrtp.Error:
                    errors["unprotect"] += 1
            print(json.dumps({"received": received, "errors": errors}), flush=True)
        await gw.ack(12, {"channel_id": channel})


if __name__ == "__main__":
    if len(sys.argv) != 10 or sys.argv[1] not in ("talk", "listen") \
            or sys.argv[6] not in PROFILES:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    m, u, uid, tok, ch, su = sys.argv[1:7]
    try:
        asyncio.run(main(m, u, uid, tok, ch, su, int(sys.argv[7]), int(sys.argv[8]),
                         int(sys.argv[9])))
    except Exception as e:  # report any failure as JSON, with its type
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
