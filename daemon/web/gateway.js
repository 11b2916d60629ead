// The gateway connection: one WebSocket, JSON frames, requests answered by `id`, heartbeats
// (PROTOCOL.md section 1).

export const OP = {
  HELLO: 0, HEARTBEAT: 1, HEARTBEAT_ACK: 2, IDENTIFY: 3, READY: 4,
  CHANNEL_CREATE: 10, CHANNEL_JOIN: 11, CHANNEL_LEAVE: 12, CHANNEL_UPDATE: 13,
  CHANNEL_DELETE: 14, CHANNEL_LIST: 15, CHANNEL_INFO: 16, MESSAGE_CREATE: 20,
  FLOOR_REQUEST: 30, FLOOR_RELEASE: 31, FLOOR_PING: 32,
  FLOOR_GRANTED: 50, FLOOR_DENY: 51, FLOOR_REVOKE: 52, FLOOR_TAKEN: 53, FLOOR_IDLE: 54,
  FLOOR_QUEUE_POS_INFO: 55, FLOOR_PONG: 56, CHANNEL_EVENT: 100, MESSAGE_EVENT: 101,
  ACK: 200, ERROR: 201,
};

/** How long a request waits for its answer. */
const ANSWER_TIMEOUT_MS = 10000;

/** A request the server refused: `d` is the ERROR's payload. */
export class ServerError extends Error {
  constructor(d) {
    super(`error ${d && d.code}`);
    this.d = d || {};
    this.code = this.d.code;
  }
}

/**
 * One connection. Events: `frame` (detail: the frame, for everything not answering a
 * request) and `close` (detail: {code, reason}).
 */
export class Gateway extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.beat = 0;
  }

  /** Opens the socket and waits for HELLO; resolves with HELLO's `d`. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let hello = false;
      ws.onmessage = (e) => {
        let f;
        try { f = JSON.parse(e.data); } catch { return; }
        if (!hello && f.op === OP.HELLO) {
          hello = true;
          const every = Math.max(1000, Math.floor(((f.d && f.d.heartbeat_interval) || 15000) * 0.6));
          this.beat = setInterval(() => this.send(OP.HEARTBEAT, null), every);
          resolve(f.d || {});
          return;
        }
        this.dispatch(f);
      };
      ws.onclose = (e) => {
        clearInterval(this.beat);
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error("connection closed"));
        }
        this.pending.clear();
        if (!hello) reject(new Error("connection failed"));
        this.dispatchEvent(new CustomEvent("close", { detail: { code: e.code, reason: e.reason } }));
      };
    });
  }

  dispatch(f) {
    if (typeof f.id === "number" && this.pending.has(f.id)) {
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.op === OP.ERROR) p.reject(new ServerError(f.d));
      else p.resolve(f.d || {});
      return;
    }
    if (f.op === OP.HEARTBEAT_ACK) return;
    this.dispatchEvent(new CustomEvent("frame", { detail: f }));
  }

  /** Sends a frame without waiting for an answer. */
  send(op, d) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  /** Sends a request with an `id`; resolves with the answer's `d`, rejects on ERROR. */
  request(op, d) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected"));
        return;
      }
      const id = this.nextId;
      this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("no answer from the server"));
      }, ANSWER_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ op, d, id }));
    });
  }

  /** Closes the connection (a `close` event follows). */
  close() {
    if (this.ws) this.ws.close(1000, "bye");
  }
}
