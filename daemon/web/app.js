// The web PTT client: sign in, channels, members, chat and push-to-talk over the gateway
// (PROTOCOL.md sections 1 and 4).

import { Gateway, OP, ServerError } from "./gateway.js";
import { Media, randomSsrc } from "./media.js";
import { closeWords, denyWords, errorWords, revokeWords } from "./words.js";

const $ = (id) => document.getElementById(id);

/** Reconnect delays: doubling from 0.5 s up to 15 s, with a random part (jitter). */
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
/** FLOOR_PING period while holding the floor: well inside LIVECHAT_FLOOR_PING_MS. */
const PING_MS = 1000;
/** The channel list is asked for again this often (creations are not broadcast). */
const LIST_REFRESH_MS = 15000;
/** Period of the countdown and the meters. */
const TICK_MS = 100;
/** Chat lines kept on the page. */
const CHAT_KEEP = 200;

const media = new Media();
const state = {
  creds: null,          // {user_id, token, priority}
  gw: null,
  signedIn: false,
  wantOnline: false,    // false after signing out or a refused token: no reconnect
  backoff: BACKOFF_MIN_MS,
  retryTimer: 0,
  channels: new Map(),  // channel_id -> CHANNEL_LIST entry
  room: null,           // {id, members: Set}
  holder: null,         // who holds the current channel's floor
  mine: "none",         // none | asking | queued | granted | releasing
  queue: null,          // {position, size}
  note: "",             // the last denial or revocation, in words
  until: 0,             // when our grant ends (ms, performance.now())
  held: false,          // the talk button (or space) is down, or latched on
  pingTimer: 0,
};

// ---------------------------------------------------------------- sign in and connection

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/gateway`;
}

function setConn(text) {
  $("conn").textContent = text;
}

function showAlert(text) {
  const a = $("alert");
  a.textContent = text;
  a.hidden = !text;
  clearTimeout(showAlert.timer);
  if (text) showAlert.timer = setTimeout(() => { a.hidden = true; }, 8000);
}

function words(e) {
  return e instanceof ServerError ? errorWords(e.d) : e && e.message ? `${e.message[0].toUpperCase()}${e.message.slice(1)}.` : "Something went wrong.";
}

async function signIn(creds) {
  state.creds = creds;
  state.wantOnline = true;
  $("signin-error").textContent = "";
  media.audio();
  await connect();
}

async function connect() {
  clearTimeout(state.retryTimer);
  setConn("Connecting…");
  const gw = new Gateway(wsUrl());
  state.gw = gw;
  gw.addEventListener("frame", (e) => onFrame(e.detail));
  gw.addEventListener("close", (e) => { if (state.gw === gw) onClose(e.detail); });
  try {
    await gw.open();
    const d = { user_id: state.creds.user_id, token: state.creds.token };
    if (state.creds.priority) d.priority = state.creds.priority;
    await gw.request(OP.IDENTIFY, d);
  } catch (e) {
    if (state.gw !== gw) return;
    if (e instanceof ServerError && e.code === 1001) {
      // The token will not get better by retrying.
      state.wantOnline = false;
      gw.close();
      signedOut(errorWords(e.d));
      return;
    }
    gw.close();
    if (!state.signedIn) {
      state.wantOnline = false;
      signedOut(e instanceof ServerError ? errorWords(e.d) : "Cannot reach the server.");
    }
    return;
  }
  state.backoff = BACKOFF_MIN_MS;
  state.signedIn = true;
  setConn(`Connected as ${state.creds.user_id}`);
  $("me").textContent = state.creds.user_id;
  $("me").hidden = false;
  $("signout").hidden = false;
  $("signin").hidden = true;
  $("app").hidden = false;
  await listChannels();
  // User Timing marks, for profiling and docs/performance.md: signed in with the list shown.
  if (!performance.getEntriesByName("livechat-signed-in").length) performance.mark("livechat-signed-in");
  if (state.room) {
    // Rejoin after a reconnect: the server forgot our membership with the old connection.
    const id = state.room.id;
    state.room = null;
    await join(id);
  }
}

function onClose({ code }) {
  state.gw = null;
  clearInterval(state.pingTimer);
  media.setTalking(false);
  state.mine = "none";
  state.holder = null;
  renderFloor();
  if (!state.wantOnline) return;
  if (code === 4010) {
    state.wantOnline = false;
    signedOut(`Signed out: ${closeWords(code)}.`);
    return;
  }
  const wait = Math.round(state.backoff * (0.75 + Math.random() * 0.5));
  state.backoff = Math.min(BACKOFF_MAX_MS, state.backoff * 2);
  setConn(`Disconnected: ${closeWords(code)}. Reconnecting in ${Math.ceil(wait / 1000)} s…`);
  state.retryTimer = setTimeout(() => { if (state.wantOnline) connect(); }, wait);
}

function signedOut(why) {
  state.signedIn = false;
  state.room = null;
  media.close();
  $("app").hidden = true;
  $("signin").hidden = false;
  $("me").hidden = true;
  $("signout").hidden = true;
  $("signin-error").textContent = why || "";
  setConn("Not signed in");
}

// ---------------------------------------------------------------- channels

async function listChannels() {
  if (!state.gw) return;
  try {
    const d = await state.gw.request(OP.CHANNEL_LIST, null);
    state.channels = new Map((d.channels || []).map((c) => [c.channel_id, c]));
    renderChannels();
  } catch (e) {
    if (e instanceof ServerError) showAlert(words(e));
  }
}

function renderChannels() {
  const ul = $("channel-list");
  ul.replaceChildren();
  const list = [...state.channels.values()].sort((a, b) => a.channel_id.localeCompare(b.channel_id));
  for (const c of list) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "channel";
    b.dataset.channel = c.channel_id;
    const here = state.room && state.room.id === c.channel_id;
    if (here) b.setAttribute("aria-current", "true");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name || c.channel_id;
    const info = document.createElement("span");
    info.className = "info";
    const n = c.member_count;
    info.textContent = `${n} ${n === 1 ? "member" : "members"} · ${c.codec || "PCMU"}${c.freq ? ` · ${c.freq}` : ""}`;
    b.append(name, info);
    b.setAttribute("aria-label", `${here ? "In" : "Join"} ${c.name || c.channel_id}, ${info.textContent}`);
    b.addEventListener("click", () => { if (!here) join(c.channel_id); });
    li.append(b);
    ul.append(li);
  }
  $("no-channels").hidden = list.length > 0;
}

async function create(ev) {
  ev.preventDefault();
  const d = { channel_id: $("new-id").value.trim(), codec: $("new-codec").value, video_codec: $("new-video").value };
  const name = $("new-name").value.trim();
  if (name) d.name = name;
  try {
    await state.gw.request(OP.CHANNEL_CREATE, d);
    $("create-form").reset();
    $("create").open = false;
    await listChannels();
    await join(d.channel_id);
  } catch (e) {
    showAlert(words(e));
  }
}

async function join(id) {
  if (!state.gw) return;
  if (state.room) await leave();
  const ch = state.channels.get(id);
  $("media-status").textContent = "";
  if (!media.mic && !media.micError) await media.openMic();
  await fillMics();
  let ack;
  let audio = "";
  try {
    const offer = await media.offer($("camera").checked);
    try {
      const d = { channel_id: id, sdp_offer: offer.sdp };
      if (offer.ssrc !== null) d.ssrc = offer.ssrc;
      ack = await state.gw.request(OP.CHANNEL_JOIN, d);
    } catch (e) {
      // A server without WebRTC refuses the offer (1004): chat and floor still work.
      if (!(e instanceof ServerError && e.code === 1004 && /sdp_offer/.test(e.d.reason || ""))) throw e;
      media.close();
      ack = await state.gw.request(OP.CHANNEL_JOIN, { channel_id: id, ssrc: offer.ssrc ?? randomSsrc() });
      audio = "No audio: this server does not take browsers' audio.";
    }
    if (ack.sdp_answer) await media.answer(ack.sdp_answer);
    else if (!audio) {
      media.close();
      audio = "No audio: the server sent no answer to the audio offer.";
    }
  } catch (e) {
    media.close();
    showAlert(`Cannot join ${id}: ${words(e)}`);
    return;
  }
  if (!audio && media.micError) audio = `Listening only. ${media.micError}`;
  if (!audio && media.pc) audio = AUDIO_STATES[media.pc.connectionState] || "";
  $("media-status").textContent = audio;
  state.room = { id, members: new Set(ack.active_members || [state.creds.user_id]), video: !!(ch && ch.video_codec) };
  state.holder = null;
  state.mine = "none";
  state.note = "";
  $("room-title").textContent = (ch && ch.name) || id;
  $("room-hint").hidden = true;
  $("in-room").hidden = false;
  $("leave").hidden = false;
  $("chat").replaceChildren();
  renderMembers();
  renderFloor();
  listChannels();
  try {
    const info = await state.gw.request(OP.CHANNEL_INFO, { channel_id: id });
    if (state.room && state.room.id === id) {
      if (info.members) state.room.members = new Set(info.members);
      if (info.floor && info.floor.state === "taken") state.holder = info.floor.holder || null;
      renderMembers();
      renderFloor();
    }
  } catch {
    // The list and the floor fill in from events anyway.
  }
}

async function leave() {
  const room = state.room;
  if (!room) return;
  stopTalking();
  state.room = null;
  media.close();
  $("videos").replaceChildren();
  $("videos").hidden = true;
  $("in-room").hidden = true;
  $("leave").hidden = true;
  $("room-hint").hidden = false;
  $("room-title").textContent = "No channel";
  try {
    await state.gw.request(OP.CHANNEL_LEAVE, { channel_id: room.id });
  } catch (e) {
    if (!(e instanceof ServerError && e.code === 2004)) showAlert(words(e));
  }
  listChannels();
}

function renderMembers() {
  const ul = $("members");
  ul.replaceChildren();
  if (!state.room) return;
  for (const m of [...state.room.members].sort()) {
    const li = document.createElement("li");
    li.dataset.user = m;
    const talking = m === state.holder;
    li.textContent = m + (m === state.creds.user_id ? " (you)" : "") + (talking ? " — talking" : "");
    if (talking) li.className = "talking";
    ul.append(li);
  }
}

// ---------------------------------------------------------------- events from the server

function onFrame(f) {
  const d = f.d || {};
  const here = state.room && d.channel_id === state.room.id;
  switch (f.op) {
    case OP.CHANNEL_EVENT:
      return onChannelEvent(d, here);
    case OP.MESSAGE_EVENT:
      if (here) addChat(d);
      return;
    case OP.FLOOR_GRANTED:
      if (!here) return;
      state.holder = state.creds.user_id;
      state.queue = null;
      if (state.mine === "releasing") {
        // Let go before the grant came: the release sent then follows it.
      } else if (!state.held) {
        state.gw.send(OP.FLOOR_RELEASE, { channel_id: state.room.id });
        state.mine = "releasing";
      } else {
        state.mine = "granted";
        state.until = performance.now() + (d.max_duration_ms || 0);
        media.setTalking(true);
        clearInterval(state.pingTimer);
        state.pingTimer = setInterval(() => {
          if (state.mine === "granted" && state.room) state.gw.send(OP.FLOOR_PING, { channel_id: state.room.id });
        }, PING_MS);
      }
      break;
    case OP.FLOOR_TAKEN:
      if (!here) return;
      state.holder = d.user_id;
      if (state.mine === "granted" || state.mine === "releasing") endTurn();
      break;
    case OP.FLOOR_IDLE:
      if (!here) return;
      state.holder = null;
      if (state.mine !== "queued" && state.mine !== "asking") endTurn();
      break;
    case OP.FLOOR_QUEUE_POS_INFO:
      if (!here) return;
      if (state.mine === "asking" || state.mine === "queued") {
        state.mine = "queued";
        state.queue = { position: d.position, size: d.queue_size };
      }
      break;
    case OP.FLOOR_DENY:
      if (!here) return;
      endTurn();
      state.note = `Could not talk: ${denyWords(d.reason)}.`;
      break;
    case OP.FLOOR_REVOKE:
      if (!here) return;
      endTurn();
      if (state.holder === state.creds.user_id) state.holder = null;
      state.note = `Your turn was ended: ${revokeWords(d.cause)}.`;
      break;
    case OP.ERROR:
      // A release the server no longer expected (the turn had already ended) is no news.
      if (d.req_op === OP.FLOOR_RELEASE && d.code === 2002) return;
      showAlert(errorWords(d));
      return;
    default:
      return;
  }
  renderFloor();
  renderMembers();
}

function onChannelEvent(d, here) {
  const c = state.channels.get(d.channel_id);
  switch (d.event) {
    case "join":
      if (c) c.member_count = (c.member_count || 0) + 1;
      if (here) state.room.members.add(d.user_id);
      break;
    case "leave":
      if (c) c.member_count = Math.max(0, (c.member_count || 1) - 1);
      if (here) {
        state.room.members.delete(d.user_id);
        if (state.holder === d.user_id) state.holder = null;
      }
      break;
    case "update":
      if (c) {
        for (const k of ["name", "freq", "capacity"]) if (k in d) c[k] = d[k];
      }
      if (here && d.name) $("room-title").textContent = d.name;
      break;
    case "delete":
      state.channels.delete(d.channel_id);
      if (here) {
        showAlert(`Channel ${d.channel_id} was deleted.`);
        state.room = null;
        media.close();
        stopTalking();
        $("in-room").hidden = true;
        $("leave").hidden = true;
        $("room-hint").hidden = false;
        $("room-title").textContent = "No channel";
      }
      break;
    default:
      break;
  }
  renderChannels();
  renderMembers();
  renderFloor();
}

function addChat(d) {
  const ol = $("chat");
  const li = document.createElement("li");
  const t = document.createElement("time");
  const when = new Date(d.timestamp || Date.now());
  t.dateTime = when.toISOString();
  t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const who = document.createElement("b");
  who.textContent = d.user_id;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = d.content;
  li.append(t, " ", who, ": ", text);
  ol.append(li);
  while (ol.children.length > CHAT_KEEP) ol.firstElementChild.remove();
  li.scrollIntoView({ block: "nearest" });
}

function say(ev) {
  ev.preventDefault();
  const input = $("say");
  const content = input.value;
  if (!content.trim() || !state.room || !state.gw) return;
  state.gw.send(OP.MESSAGE_CREATE, { channel_id: state.room.id, content });
  input.value = "";
}

// ---------------------------------------------------------------- push-to-talk

function startTalking() {
  if (!state.room || !state.gw) return;
  state.held = true;
  state.note = "";
  if (state.mine === "none" || state.mine === "releasing") {
    state.mine = "asking";
    state.gw.send(OP.FLOOR_REQUEST, { channel_id: state.room.id });
  }
  renderFloor();
}

function stopTalking() {
  state.held = false;
  if (state.room && state.gw && ["asking", "queued", "granted"].includes(state.mine)) {
    // Cancels a queued request, or hands the floor on (PROTOCOL.md section 1).
    state.gw.send(OP.FLOOR_RELEASE, { channel_id: state.room.id });
    state.mine = state.mine === "queued" ? "none" : "releasing";
  }
  media.setTalking(false);
  clearInterval(state.pingTimer);
  state.queue = null;
  renderFloor();
}

function endTurn() {
  state.mine = "none";
  state.queue = null;
  media.setTalking(false);
  clearInterval(state.pingTimer);
  if ($("latch").checked) state.held = false;
}

function press() {
  if ($("latch").checked) {
    if (state.held) stopTalking();
    else startTalking();
  } else if (!state.held) {
    startTalking();
  }
}

function release() {
  if (!$("latch").checked && state.held) stopTalking();
}

function renderFloor() {
  const box = $("floor");
  const me = state.creds && state.creds.user_id;
  let text;
  let cls;
  if (state.mine === "granted") {
    text = "You are talking";
    cls = "mine";
  } else if (state.mine === "queued" && state.queue) {
    text = `Waiting to talk: position ${state.queue.position} of ${state.queue.size}`;
    if (state.holder && state.holder !== me) text += `. ${state.holder} is talking`;
    cls = "queued";
  } else if (state.mine === "asking") {
    text = "Asking to talk…";
    cls = "queued";
  } else if (state.holder && state.holder !== me) {
    text = `${state.holder} is talking`;
    cls = "taken";
  } else {
    text = "Channel is quiet";
    cls = "idle";
  }
  if (state.note && state.mine !== "granted") text = `${state.note} ${text}`;
  if ($("floor-text").textContent !== text) $("floor-text").textContent = text;
  box.className = `floor ${cls}`;
  const ptt = $("ptt");
  ptt.setAttribute("aria-pressed", String(state.held));
  ptt.classList.toggle("on", state.mine === "granted");
  const latch = $("latch").checked;
  ptt.textContent = state.mine === "granted"
    ? (latch ? "Talking: tap to stop" : "Talking: release to stop")
    : state.held ? (latch ? "Waiting: tap to cancel" : "Waiting…") : (latch ? "Tap to talk" : "Hold to talk");
  $("ptt-help").textContent = latch
    ? "Tap the button, or press the space bar, to start; again to stop."
    : "Hold the button, or the space bar, while you speak.";
}

/** The time left of our turn and the meters, every TICK_MS (timers, unlike animation
frames, also run in a page in the background). */
function tick() {
  if (state.mine === "granted") {
    const left = Math.max(0, Math.ceil((state.until - performance.now()) / 1000));
    $("floor-time").textContent = `${left} s left`;
  } else if ($("floor-time").textContent) {
    $("floor-time").textContent = "";
  }
  if (state.room) {
    const l = media.levels();
    $("mic-meter").value = state.mine === "granted" ? l.mic : l.mic * 0.3;
    $("in-meter").value = l.incoming;
  }
}

function isTyping(el) {
  return el && (el.tagName === "INPUT" && el.type !== "checkbox" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
}

function wirePtt() {
  const ptt = $("ptt");
  ptt.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    ptt.setPointerCapture(e.pointerId);
    media.audio();
    press();
  });
  for (const ev of ["pointerup", "pointercancel"]) ptt.addEventListener(ev, release);
  ptt.addEventListener("contextmenu", (e) => e.preventDefault());
  ptt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.repeat) {
      e.preventDefault();
      press();
    }
  });
  ptt.addEventListener("keyup", (e) => { if (e.key === "Enter") release(); });
  document.addEventListener("keydown", (e) => {
    if (e.code !== "Space" || isTyping(e.target) || !state.room) return;
    e.preventDefault();
    if (!e.repeat) {
      media.audio();
      press();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code !== "Space" || isTyping(e.target)) return;
    e.preventDefault();
    release();
  });
  // A hold that loses the page (another window, a locked phone) ends, so no one talks on
  // by accident.
  window.addEventListener("blur", release);
  document.addEventListener("visibilitychange", () => { if (document.hidden) release(); });
  $("latch").addEventListener("change", () => {
    if (state.held) stopTalking();
    renderFloor();
  });
}

// ---------------------------------------------------------------- devices and video

async function fillMics() {
  const sel = $("mic");
  const mics = await media.microphones().catch(() => []);
  const current = media.micDevice();
  sel.replaceChildren();
  mics.forEach((m, i) => {
    const o = document.createElement("option");
    o.value = m.deviceId;
    o.textContent = m.label || `Microphone ${i + 1}`;
    o.selected = m.deviceId === current;
    sel.append(o);
  });
  sel.disabled = mics.length < 2;
}

const AUDIO_STATES = {
  new: "Connecting audio…",
  connecting: "Connecting audio…",
  connected: "Audio connected.",
  disconnected: "Audio interrupted; waiting for it to come back…",
  failed: "Audio failed: this browser could not reach the server's media port (UDP). Leave and join again to retry.",
};

media.onState = (s) => {
  const text = AUDIO_STATES[s];
  if (text && state.room) $("media-status").textContent = media.micError && s === "connected" ? `Listening only. ${media.micError}` : text;
};

media.onVideo = (track, on) => {
  const box = $("videos");
  let tile = box.querySelector(`[data-track="${CSS.escape(track.id)}"]`);
  if (on && !tile) {
    tile = document.createElement("figure");
    tile.dataset.track = track.id;
    const v = document.createElement("video");
    v.autoplay = true;
    v.muted = true;
    v.playsInline = true;
    v.srcObject = new MediaStream([track]);
    const cap = document.createElement("figcaption");
    cap.textContent = state.holder ? `${state.holder}` : "Video";
    tile.append(v, cap);
    box.append(tile);
  } else if (!on && tile) {
    tile.remove();
  }
  box.hidden = box.children.length === 0;
};

// ---------------------------------------------------------------- start

function start() {
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const priority = Number($("priority").value) || 0;
    signIn({ user_id: $("user").value.trim(), token: $("token").value.trim(), priority });
  });
  $("signout").addEventListener("click", () => {
    state.wantOnline = false;
    clearTimeout(state.retryTimer);
    if (state.gw) state.gw.close();
    state.creds = null;
    $("token").value = "";
    signedOut("");
  });
  $("create-form").addEventListener("submit", create);
  $("leave").addEventListener("click", leave);
  $("say-form").addEventListener("submit", say);
  $("mic").addEventListener("change", (e) => media.openMic(e.target.value));
  $("camera").addEventListener("change", () => { if (state.room) join(state.room.id); });
  wirePtt();
  setInterval(() => { if (state.signedIn && state.gw) listChannels(); }, LIST_REFRESH_MS);
  setInterval(tick, TICK_MS);
  renderFloor();
  performance.mark("livechat-interactive");
  // A sign-in link (`livechatd token USER --link URL`) carries user and token in the
  // fragment, which browsers never send; it is cleared from the address bar and history.
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("user") && frag.get("token")) {
    history.replaceState(null, "", location.pathname + location.search);
    $("user").value = frag.get("user");
    signIn({ user_id: frag.get("user"), token: frag.get("token"), priority: 0 });
  }
}

// The browser tests read what is heard through this.
window.livechat = {
  incomingHz: () => media.incomingHz(),
  connectionState: () => (media.pc ? media.pc.connectionState : "none"),
};

start();
