// The live-room connection: a fresh single-use join token for every (re)connect, resume after a drop.
// The join answer names the node that hosts the room; when that node goes away (it died, or it moved the
// class to another node: room:closing), joining again finds the new one and the resume token keeps the seat.
import { api } from "./api.js";

// Refusals that mean "ask /join again": the room is on another node, or is moving there right now.
// rate_limited: a phone that reconnected too often in a minute waits a little, then knocks again.
const JOIN_AGAIN = new Set(["wrong_node", "node_moving", "node_unavailable", "no_node", "rate_limited"]);

export class LiveConnection {
  constructor(sessionId, handlers) {
    this.sessionId = sessionId;
    this.handlers = handlers; // { onEvent(name, data), onConnected(), onDropped(closingReason), onRefused(error) }
    this.socket = null;
    this.resumeToken = null;
    this.closed = false;
    this.retryTimer = null;
  }

  async connect() {
    let join;
    try {
      join = await api("POST", `/sessions/${this.sessionId}/join`);
    } catch (error) {
      // Offline, or the servers are busy moving a class (503) or restarting behind the proxy (502): keep trying.
      if (error.status === 0 || error.status >= 500) return this.retryLater();
      // error.message is already in the page's language (api.js): kept as `text` for codes the room does not know.
      return this.handlers.onRefused({ code: error.code, message: error.message, text: error.message });
    }
    this.iceServers = join.ice_servers;
    const auth = { token: join.token };
    if (this.resumeToken) auth.resume_token = this.resumeToken;
    this.closing = null; // why the server is closing this connection (room:closing), if it is
    const socket = window.io(join.connect.url + join.connect.namespace, {
      path: join.connect.socketio_path, auth, transports: ["websocket"], reconnection: false,
      forceNew: true,
    });
    this.socket = socket;
    socket.onAny((name, data) => {
      if (name === "room:state") this.resumeToken = data.you.resume_token;
      if (name === "room:closing") this.closing = data.reason || "closing"; // to be joined again
      this.handlers.onEvent(name, data);
    });
    socket.on("connect", () => this.handlers.onConnected());
    socket.on("connect_error", (error) => {
      const reason = error.data || { code: "network", message: error.message };
      socket.close();
      if (reason.code === "network" || !error.data || JOIN_AGAIN.has(reason.code)) return this.retryLater();
      this.handlers.onRefused(reason);
    });
    socket.on("disconnect", (reason) => {
      if (this.closed || reason === "io client disconnect") return;
      // The room said why (ended, kicked, …), unless it is closing to be joined again.
      if (reason === "io server disconnect" && !this.closing) return;
      this.handlers.onDropped(this.closing);
      this.retryLater();
    });
  }

  retryLater() {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), 2000);
  }

  async request(name, data = {}) {
    if (!this.socket?.connected) return { ok: false, error: { code: "offline", message: "offline" } };
    try {
      return await this.socket.timeout(10000).emitWithAck(name, data);
    } catch {
      return { ok: false, error: { code: "timeout", message: "timeout" } };
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
  }
}
