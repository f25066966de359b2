// Camera, microphone and screen: one publish connection (we offer) and one subscribe connection
// (the server offers a fixed set of slots and switches what each carries: rtc:slots).
// Weak links (issue 13): the teacher's camera and every shared screen also go out as a second, low
// layer (`camera_low`, `screen_low`: a clone of the track, scaled down and capped) on the same publish
// connection; the server picks, per subscriber, which layer a slot carries. Students' and guests'
// cameras send one modest layer only.
const KIND = { camera: "video", microphone: "audio", screen: "video", camera_low: "video", screen_low: "video" };
const LOW = { camera: "camera_low", screen: "screen_low" }; // a source -> its low layer
const LEARNERS = new Set(["student", "guest"]);
// The camera and microphone chosen (and tested) before entering: this device's choice, by deviceId.
const DEVICE_KEY = "liveclass.devices";

export function deviceChoice() {
  try {
    const stored = JSON.parse(localStorage.getItem(DEVICE_KEY) || "{}");
    return { camera: stored.camera || null, microphone: stored.microphone || null };
  } catch {
    return { camera: null, microphone: null };
  }
}

export function setDeviceChoice(choice) {
  localStorage.setItem(DEVICE_KEY, JSON.stringify({ ...deviceChoice(), ...choice }));
}

// What each role's publish connection carries, low layers included (all listed in every rtc:publish).
export function publishedSources(role) {
  return LEARNERS.has(role) ? ["camera", "microphone", "screen", "screen_low"]
    : ["camera", "microphone", "screen", "camera_low", "screen_low"];
}

// Ask the browser's encoder for `encoding` (and send parameters like degradationPreference) on a sender.
async function encode(sender, encoding, extra = {}) {
  const params = sender.getParameters();
  params.encodings = [{ ...(params.encodings?.[0] || {}), ...encoding }];
  try {
    await sender.setParameters({ ...params, ...extra });
  } catch (error) {
    if (!Object.keys(extra).length) return console.warn("setParameters", error);
    await encode(sender, encoding); // an older browser without degradationPreference: the encoding alone
  }
}

function onlyCodec(transceiver, kind, name) {
  // The room has one codec per kind (VP8, Opus): the server forwards, it never transcodes.
  const capabilities = RTCRtpSender.getCapabilities(kind);
  if (!capabilities || !transceiver.setCodecPreferences) return;
  const wanted = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === `${kind}/${name}`);
  const extras = capabilities.codecs.filter((c) => /rtx|red|ulpfec/i.test(c.mimeType) && kind === "video");
  if (wanted.length) transceiver.setCodecPreferences([...wanted, ...extras.filter((c) => /rtx/i.test(c.mimeType))]);
}

// Does the join's ice_servers list a TURN relay (turn: or turns:)?
export function hasTurn(iceServers) {
  return (iceServers || []).some((server) =>
    [].concat(server.urls || server.url || []).some((url) => /^turns?:/i.test(url)));
}

function gathered(pc, withTurn) {
  // Send a complete offer/answer (no trickle): wait for ICE gathering, bounded. Host candidates come
  // at once (2 s at most). A TURN relay, over TCP/TLS especially, may take seconds to answer, and a
  // student whose only way out is the relay gets no media without its candidate: with TURN servers
  // the wait is up to 8 s, ending at gathering complete or as soon as a relay candidate is in.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      pc.removeEventListener("icecandidate", relay);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const relay = (event) => { if (/ typ relay( |$)/.test(event.candidate?.candidate || "")) done(); };
    pc.addEventListener("icegatheringstatechange", check);
    if (withTurn) pc.addEventListener("icecandidate", relay);
    const timer = setTimeout(done, withTurn ? 8000 : 2000);
  });
}

export class MediaSession {
  constructor({ request, iceServers, onSlots, onRemoteTrack, phone, role }) {
    this.request = request; // (event, data) => Promise<{ok, data, error}>
    this.iceServers = iceServers || [];
    this.onSlots = onSlots;
    this.onRemoteTrack = onRemoteTrack;
    this.phone = phone;
    this.role = role;
    this.publisher = null;
    this.subscriber = null;
    this.transceivers = {};
    this.local = {}; // source (low layers included) -> MediaStreamTrack
    this.slotOfMid = {};
    this.published = []; // the sources of the publish connection, as the server accepted them
  }

  async startPublishing(sources = publishedSources(this.role)) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.publisher = pc;
    this.transceivers = {};
    for (const source of sources) {
      const transceiver = pc.addTransceiver(KIND[source], { direction: "sendonly" });
      onlyCodec(transceiver, KIND[source], KIND[source] === "video" ? "vp8" : "opus");
      this.transceivers[source] = transceiver;
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, hasTurn(this.iceServers));
    const tracks = sources.map((source) => ({ mid: this.transceivers[source].mid, source }));
    const answer = await this.request("rtc:publish", { sdp: pc.localDescription.sdp, tracks });
    if (!answer.ok && answer.error.code === "invalid_payload" && sources.some((s) => s.endsWith("_low"))) {
      // A server that knows no low layers yet (a node not upgraded): publish the main sources alone.
      console.warn("rtc:publish without low layers:", answer.error.message);
      pc.close();
      return this.startPublishing(sources.filter((s) => !s.endsWith("_low")));
    }
    if (!answer.ok) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.data.sdp });
    this.published = sources;
  }

  async subscribe() {
    const answer = await this.request("rtc:subscribe", {});
    if (!answer.ok) throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
  }

  async onOffer({ sdp, slots }) {
    this.subscriber?.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.subscriber = pc;
    this.slotOfMid = Object.fromEntries(slots.map((s) => [s.mid, s.slot]));
    pc.ontrack = (event) => {
      const slot = this.slotOfMid[event.transceiver.mid];
      if (slot) this.onRemoteTrack(slot, event.track);
    };
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc, hasTurn(this.iceServers));
    await this.request("rtc:answer", { sdp: pc.localDescription.sdp });
  }

  isOn(source) {
    return Boolean(this.local[source]);
  }

  learner() {
    return LEARNERS.has(this.role);
  }

  async capture(source) {
    if (source === "screen") {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = stream.getVideoTracks()[0];
      track.contentHint = "text"; // slides: keep text sharp rather than motion smooth
      return track;
    }
    if (source === "camera") {
      // A student's face needs little: one modest layer. The teacher's camera is sent twice (main + low
      // layer); on a phone she sends a modest one too.
      const size = this.learner() ? { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 15 } }
        : this.phone ? { width: 320, height: 240, frameRate: 15 } : { width: 640, height: 360, frameRate: 30 };
      const chosen = deviceChoice().camera;
      const stream = await navigator.mediaDevices.getUserMedia({ video: chosen ? { ...size, deviceId: { ideal: chosen } } : size });
      return stream.getVideoTracks()[0];
    }
    const chosen = deviceChoice().microphone;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: {
      echoCancellation: true, noiseSuppression: true, ...(chosen ? { deviceId: { ideal: chosen } } : {}) } });
    return stream.getAudioTracks()[0];
  }

  // What the main layer of a source may use.
  mainEncoding(source) {
    if (source === "camera") return { maxBitrate: this.learner() || this.phone ? 300000 : 1000000 };
    if (source === "screen") return { maxBitrate: 1500000 };
    return null;
  }

  // The low layer of a video source: a clone of its track, scaled down and capped, on its own transceiver.
  async sendLowLayer(source, track) {
    const low = LOW[source];
    const transceiver = low && this.transceivers[low];
    if (!transceiver) return;
    const clone = track.clone();
    const width = track.getSettings().width || 0;
    if (source === "screen") {
      clone.contentHint = "text"; // 5 frames a second, but letters stay readable
      await encode(transceiver.sender,
        { scaleResolutionDownBy: Math.max(1, width / 640), maxFramerate: 5, maxBitrate: 60000 },
        { degradationPreference: "maintain-resolution" });
    } else {
      await encode(transceiver.sender,
        { scaleResolutionDownBy: Math.max(1, width / 320), maxBitrate: 150000, maxFramerate: 15 });
    }
    await transceiver.sender.replaceTrack(clone);
    this.local[low] = clone;
  }

  // Turn a source on: capture, ask the room (permissions are checked there), then send.
  async switchOn(source, onEnded) {
    const track = await this.capture(source);
    const answer = await this.request("media:state", { [source]: true });
    if (!answer.ok) {
      track.stop();
      throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    }
    if (source === "microphone") this.listen(track);
    track.addEventListener("ended", () => onEnded?.(source));
    const sender = this.transceivers[source].sender;
    const encoding = this.mainEncoding(source);
    if (encoding) await encode(sender, encoding);
    await sender.replaceTrack(track);
    this.local[source] = track;
    await this.sendLowLayer(source, track);
    return track;
  }

  async switchOff(source, tellRoom = true) {
    for (const name of [source, LOW[source]].filter(Boolean)) {
      const track = this.local[name];
      delete this.local[name];
      await this.transceivers[name]?.sender.replaceTrack(null);
      track?.stop();
    }
    if (tellRoom) await this.request("media:state", { [source]: false });
  }

  // The voices received, by slot (0–1): the loudness since the last call, from the received audio's energy
  // (inbound-rtp totalAudioEnergy over totalSamplesDuration: a short sound between two samples counts), or the
  // receiver's latest level where the statistics lack it. Called a few times a second.
  async audioLevels() {
    const levels = {};
    const pc = this.subscriber;
    if (!pc) return levels;
    const stats = await pc.getStats();
    const last = this.energy || {};
    this.energy = {};
    for (const report of stats.values()) {
      if (report.type !== "inbound-rtp" || report.kind !== "audio") continue;
      const slot = this.slotOfMid[report.mid];
      if (!slot || typeof report.totalAudioEnergy !== "number") continue;
      const now = { energy: report.totalAudioEnergy, duration: report.totalSamplesDuration || 0 };
      this.energy[slot] = now;
      const before = last[slot];
      const span = before ? now.duration - before.duration : 0;
      if (span > 0) levels[slot] = Math.sqrt(Math.max(0, now.energy - before.energy) / span);
    }
    for (const transceiver of pc.getTransceivers()) {
      const slot = this.slotOfMid[transceiver.mid];
      if (!slot || slot in levels || transceiver.receiver.track?.kind !== "audio") continue;
      const sources = transceiver.receiver.getSynchronizationSources?.() || [];
      levels[slot] = Math.max(0, ...sources.map((x) => x.audioLevel || 0));
    }
    return levels;
  }

  // Your own microphone's level (0–1), read from an analyser while it is on.
  listen(track) {
    this.meter?.context.close();
    this.meter = null;
    try {
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 256;
      context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      this.meter = { context, analyser, samples: new Float32Array(analyser.fftSize) };
    } catch {
      this.meter = null; // no level for the own voice; everything else works
    }
  }

  ownLevel() {
    if (!this.meter || !this.local.microphone) return 0;
    const { analyser, samples } = this.meter;
    analyser.getFloatTimeDomainData(samples);
    return Math.min(1, Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length) * 4);
  }

  async stats() {
    return {
      publish: this.publisher ? [...(await this.publisher.getStats()).values()] : [],
      subscribe: this.subscriber ? [...(await this.subscriber.getStats()).values()] : [],
    };
  }

  close() {
    this.meter?.context.close();
    this.meter = null;
    for (const track of Object.values(this.local)) track.stop();
    this.local = {};
    this.publisher?.close();
    this.subscriber?.close();
    this.publisher = this.subscriber = null;
  }
}
