// Media: the microphone, one RTCPeerConnection per joined channel (PROTOCOL.md section 4:
// the offer goes in CHANNEL_JOIN as `sdp_offer`, the ACK's `sdp_answer` comes back), and the
// level meters.

/** The level (0..1) of an analyser's current window: RMS, scaled so speech fills the bar. */
function level(analyser, buf) {
  analyser.getFloatTimeDomainData(buf);
  let sum = 0;
  for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
  return Math.min(1, Math.sqrt(sum / buf.length) * 4);
}

export class Media {
  constructor() {
    this.ctx = null;
    this.mic = null;          // MediaStream from getUserMedia
    this.micError = null;     // why there is no microphone, in words
    this.camera = null;       // MediaStream of the camera, when asked for
    this.pc = null;
    this.talking = false;
    this.micAnalyser = null;
    this.inAnalyser = null;
    this.onVideo = null;      // (track, on) => void
    this.onState = null;      // (RTCPeerConnectionState) => void
  }

  /** The audio context, created or resumed (browsers start it only after a gesture). */
  audio() {
    if (!this.ctx) this.ctx = new AudioContext();
    if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    return this.ctx;
  }

  /** Opens the microphone (`deviceId` or the default); keeps it muted until talking. */
  async openMic(deviceId) {
    try {
      const audio = deviceId ? { deviceId: { exact: deviceId } } : true;
      const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
      const old = this.mic;
      this.mic = stream;
      this.micError = null;
      const track = stream.getAudioTracks()[0];
      track.enabled = this.talking;
      const sender = this.pc && this.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
      if (sender) await sender.replaceTrack(track);
      if (old) old.getTracks().forEach((t) => t.stop());
      const ctx = this.audio();
      this.micAnalyser = ctx.createAnalyser();
      this.micAnalyser.fftSize = 1024;
      ctx.createMediaStreamSource(stream).connect(this.micAnalyser);
    } catch (e) {
      this.micError = !window.isSecureContext
        ? "The microphone needs an https:// address."
        : e && e.name === "NotAllowedError"
          ? "The microphone is blocked: allow it in the browser's site settings."
          : "No microphone found.";
    }
  }

  /** Microphones, for the selector. */
  async microphones() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
    const all = await navigator.mediaDevices.enumerateDevices();
    return all.filter((d) => d.kind === "audioinput");
  }

  /** The current microphone's device id. */
  micDevice() {
    const t = this.mic && this.mic.getAudioTracks()[0];
    return (t && t.getSettings().deviceId) || "";
  }

  /**
   * A new peer connection and its offer: audio (sending only if there is a microphone) and
   * video (received; sent too when `sendCamera`). Resolves with {sdp, ssrc}, `ssrc` the
   * audio SSRC the offer names (null when it sends no audio).
   */
  async offer(sendCamera) {
    this.close();
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.pc = pc;
    const track = this.mic && this.mic.getAudioTracks()[0];
    if (track) {
      track.enabled = this.talking;
      pc.addTransceiver(track, { direction: "sendrecv", streams: [this.mic] });
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    let cam = null;
    if (sendCamera) {
      try {
        this.camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
        cam = this.camera.getVideoTracks()[0];
        cam.enabled = this.talking;
      } catch {
        this.camera = null;
      }
    }
    if (cam) pc.addTransceiver(cam, { direction: "sendrecv", streams: [this.camera] });
    else pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (e) => this.track(e.track);
    pc.onconnectionstatechange = () => {
      if (this.pc === pc && this.onState) this.onState(pc.connectionState);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // The server is ICE-lite (RFC 8445 section 2.5): it needs no candidates of ours, it
    // learns our address from our checks.
    const sdp = pc.localDescription.sdp;
    return { sdp, ssrc: audioSsrc(sdp) };
  }

  /** Applies the server's answer. */
  async answer(sdp) {
    if (this.pc) await this.pc.setRemoteDescription({ type: "answer", sdp });
  }

  track(track) {
    if (track.kind === "audio") {
      const stream = new MediaStream([track]);
      const speaker = document.getElementById("speaker");
      speaker.srcObject = stream;
      speaker.play().catch(() => {});
      const ctx = this.audio();
      this.inAnalyser = ctx.createAnalyser();
      this.inAnalyser.fftSize = 2048;
      ctx.createMediaStreamSource(stream).connect(this.inAnalyser);
    } else if (this.onVideo) {
      this.onVideo(track, !track.muted);
      track.onunmute = () => this.onVideo(track, true);
      track.onmute = () => this.onVideo(track, false);
      track.onended = () => this.onVideo(track, false);
    }
  }

  /** Sends the microphone (and camera) only while the floor is ours. */
  setTalking(on) {
    this.talking = on;
    for (const s of [this.mic, this.camera]) {
      if (s) s.getTracks().forEach((t) => { t.enabled = on; });
    }
  }

  /** {mic, incoming} levels, 0..1. */
  levels() {
    const buf = new Float32Array(1024);
    return {
      mic: this.micAnalyser ? level(this.micAnalyser, buf) : 0,
      incoming: this.inAnalyser ? level(this.inAnalyser, new Float32Array(this.inAnalyser.fftSize)) : 0,
    };
  }

  /** The strongest frequency of what is heard, in Hz (0 when silent): for the browser tests. */
  incomingHz() {
    const a = this.inAnalyser;
    if (!a) return 0;
    const bins = new Float32Array(a.frequencyBinCount);
    a.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    return bins[best] < -80 ? 0 : (best * this.ctx.sampleRate) / a.fftSize;
  }

  /** Ends the peer connection (the microphone stays open for the next channel). */
  close() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.inAnalyser = null;
    if (this.camera) this.camera.getTracks().forEach((t) => t.stop());
    this.camera = null;
    const speaker = document.getElementById("speaker");
    if (speaker) speaker.srcObject = null;
  }
}

/** The first `a=ssrc` of the first audio section of an SDP, or null (nothing sent). */
function audioSsrc(sdp) {
  const audio = sdp.split(/\r?\nm=/).find((s) => s.startsWith("audio"));
  const m = audio && /\r?\na=ssrc:(\d+)/.exec(audio);
  return m ? Number(m[1]) : null;
}

/** A random SSRC, for a join without an offer. */
export function randomSsrc() {
  const r = new Uint32Array(1);
  crypto.getRandomValues(r);
  return r[0] || 1;
}
