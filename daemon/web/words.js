// What the protocol's codes mean, in words a user reads (PROTOCOL.md section 1).

const ERRORS = {
  1000: "You are not signed in.",
  1001: "The token is not valid or has expired. Ask for a new one.",
  1002: "This user name is already signed in somewhere else.",
  1003: "The server did not understand a request.",
  1004: "The server refused a request as malformed.",
  1005: "That was too large to send.",
  1006: "Slow down: too many requests.",
  2000: "That channel does not exist.",
  2001: "That channel is full.",
  2002: "You are not allowed to do that.",
  2003: "You are already in that channel.",
  2004: "You are not in that channel.",
  2005: "A channel with that id already exists.",
  2006: "The server is full. Try again later.",
  2007: "Audio stream id clash. Leave and join again.",
  2008: "The server cannot use this browser's audio offer.",
  3000: "The message is empty.",
  3001: "The message is too long.",
  3002: "Join the channel to chat in it.",
  9000: "The server had an internal error.",
};

/** An ERROR frame's `d` in words. */
export function errorWords(d) {
  const base = ERRORS[d && d.code] || "The server refused the request.";
  // 1004 and 2008 carry a reason that names what is wrong; the others say it in the code.
  if (d && (d.code === 1004 || d.code === 2008) && d.reason) return `${base} (${d.reason})`;
  return base;
}

const DENY = {
  queue_full: "the queue is full",
  already_granted: "you already have the floor",
};

/** FLOOR_DENY's `reason` in words. */
export function denyWords(reason) {
  return DENY[reason] || String(reason || "no reason given").replace(/_/g, " ");
}

const REVOKE = {
  preempted: "someone with a higher priority took over",
  timeout: "no audio arrived from you for too long",
  max_duration: "you reached the longest time one may talk",
  admin: "an operator ended it",
};

/** FLOOR_REVOKE's `cause` in words. */
export function revokeWords(cause) {
  return REVOKE[cause] || String(cause || "no cause given").replace(/_/g, " ");
}

const CLOSES = {
  1000: "the connection was closed",
  1001: "the server is restarting",
  1006: "the connection dropped",
  1008: "the server closed the connection (too many requests or connections)",
  1009: "a message was too large",
  1013: "the server is full",
  4008: "signing in took too long",
  4009: "the connection went quiet",
  4010: "an operator signed you out",
};

/** A WebSocket close code in words. */
export function closeWords(code) {
  return CLOSES[code] || "the connection was lost";
}
