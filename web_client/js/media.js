// Camera, microphone and screen: one publish connection (we offer) and one subscribe connection
// (the server offers a fixed set of slots and switches what each carries: rtc:slots).
const SOURCES = ["camera", "microphone", "screen"];
const KIND = { camera: "video", microphone: "audio", screen: "video" };

function onlyCodec(transceiver, kind, name) {
  // The room has one codec per kind (VP8, Opus): the server forwards, it never transcodes.
  const capabilities = RTCRtpSender.getCapabilities(kind);
  if (!capabilities || !transceiver.setCodecPreferences) return;
  const wanted = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === `${kind}/${name}`);
  const extras = capabilities.codecs.filter((c) => /rtx|red|ulpfec/i.test(c.mimeType) && kind === "video");
  if (wanted.length) transceiver.setCodecPreferences([...wanted, ...extras.filter((c) => /rtx/i.test(c.mimeType))]);
}

function gathered(pc, timeoutMs = 2000) {
  // Send a complete offer/answer: wait for ICE gathering (bounded; host candidates come at once).
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

export class MediaSession {
  constructor({ request, iceServers, onSlots, onRemoteTrack, phone }) {
    this.request = request; // (event, data) => Promise<{ok, data, error}>
    this.iceServers = iceServers || [];
    this.onSlots = onSlots;
    this.onRemoteTrack = onRemoteTrack;
    this.phone = phone;
    this.publisher = null;
    this.subscriber = null;
    this.transceivers = {};
    this.local = {}; // source -> MediaStreamTrack
    this.slotOfMid = {};
  }

  async startPublishing() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.publisher = pc;
    for (const source of SOURCES) {
      const transceiver = pc.addTransceiver(KIND[source], { direction: "sendonly" });
      onlyCodec(transceiver, KIND[source], KIND[source] === "video" ? "vp8" : "opus");
      this.transceivers[source] = transceiver;
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const tracks = SOURCES.map((source) => ({ mid: this.transceivers[source].mid, source }));
    const answer = await this.request("rtc:publish", { sdp: pc.localDescription.sdp, tracks });
    if (!answer.ok) throw new Error(answer.error.message);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.data.sdp });
  }

  async subscribe() {
    const answer = await this.request("rtc:subscribe", {});
    if (!answer.ok) throw new Error(answer.error.message);
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
    await gathered(pc);
    await this.request("rtc:answer", { sdp: pc.localDescription.sdp });
  }

  isOn(source) {
    return Boolean(this.local[source]);
  }

  async capture(source) {
    if (source === "screen") {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = stream.getVideoTracks()[0];
      track.contentHint = "text"; // slides: keep text sharp rather than motion smooth
      return track;
    }
    if (source === "camera") {
      // Phones on weak links: a modest picture is enough for a face.
      const size = this.phone ? { width: 320, height: 240, frameRate: 15 } : { width: 640, height: 360, frameRate: 30 };
      const stream = await navigator.mediaDevices.getUserMedia({ video: size });
      return stream.getVideoTracks()[0];
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    return stream.getAudioTracks()[0];
  }

  // Turn a source on: capture, ask the room (permissions are checked there), then send.
  async switchOn(source, onEnded) {
    const track = await this.capture(source);
    const answer = await this.request("media:state", { [source]: true });
    if (!answer.ok) {
      track.stop();
      throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    }
    track.addEventListener("ended", () => onEnded?.(source));
    const sender = this.transceivers[source].sender;
    if (source === "camera" && this.phone) {
      const params = sender.getParameters();
      params.encodings = [{ ...(params.encodings?.[0] || {}), maxBitrate: 300000 }];
      await sender.setParameters(params).catch(() => {});
    }
    await sender.replaceTrack(track);
    this.local[source] = track;
    return track;
  }

  async switchOff(source, tellRoom = true) {
    const track = this.local[source];
    delete this.local[source];
    await this.transceivers[source]?.sender.replaceTrack(null);
    track?.stop();
    if (tellRoom) await this.request("media:state", { [source]: false });
  }

  async stats() {
    return {
      publish: this.publisher ? [...(await this.publisher.getStats()).values()] : [],
      subscribe: this.subscriber ? [...(await this.subscriber.getStats()).values()] : [],
    };
  }

  close() {
    for (const track of Object.values(this.local)) track.stop();
    this.local = {};
    this.publisher?.close();
    this.subscriber?.close();
    this.publisher = this.subscriber = null;
  }
}
