// The live room for every role: lobby, participants, chat, hands, handouts, moderation.
import { api } from "../api.js";
import { banner, h, mount } from "../dom.js";
import { formatList, formatNumber, formatTime, t } from "../i18n.js";
import { LiveConnection } from "../live.js";
import { MediaSession } from "../media.js";

// Why an account's room connection was closed, and why a join was refused: the catalogue's words for them.
const REMOVALS = new Set(["account_deactivated", "password_changed", "password_reset", "role_changed",
  "removed_from_class"]);
const REFUSALS = new Set(["account_inactive", "session_ended", "token_outdated"]);
// Why the server started the recording again by itself (a new recording of the same period).
const RESUMED = new Set(["node_lost", "node_moved", "server_restarted"]);

let current = null;
const PHONE = window.matchMedia("(max-width: 430px)").matches;
const AUDIO_SLOTS = ["teacher_audio", "audio_1", "audio_2", "audio_3"];
// Data saver (media:saver): this device's choice, sent again after every join and resume.
const SAVER_MODES = ["off", "screen", "audio"];
const SAVER_KEY = "liveclass.saver";
const SAVER_ERRORS = new Set(["offline", "timeout", "rate_limited", "media_unavailable", "forbidden"]);
// What a weak link can turn down (you:link `reduced` / `paused`), in the catalogue's words.
const LINK_GROUPS = new Set(["teacher_camera", "screen", "stage", "grid"]);

function storedSaver() {
  const mode = localStorage.getItem(SAVER_KEY);
  return SAVER_MODES.includes(mode) ? mode : "off";
}

export function leaveRoom() {
  current?.media?.close();
  current?.connection.close();
  current = null;
}

export function refreshRoom() {
  if (!current) return false;
  if (current.layout) current.layout.root.remove(); // rebuilt with the new language's words
  current.layout = null;
  if (current.waiting || current.state) render(current);
  for (const [slot, element] of Object.entries(current.layout?.slots || {})) {
    if (current.tracks?.[slot]) element.srcObject = new MediaStream([current.tracks[slot]]);
  }
  updateStage(current);
  updateLink(current);
  return true;
}

export function showRoom(sessionId) {
  leaveRoom();
  const room = {
    sessionId, state: null, lobby: [], chat: [], hands: [], waiting: null, tab: "chat", privateTo: null,
    media: null, slots: {}, layout: null, saver: storedSaver(), link: null, linkDismissed: null,
    poll: null, pollDraft: null, pollHidden: null, // the quick poll (see the end of this file)
  };
  room.connection = new LiveConnection(sessionId, {
    onEvent: (name, data) => onEvent(room, name, data),
    onConnected: () => banner(""),
    onDropped: (closing) => {
      banner(t(closing === "node_moving" ? "room.moving" : "room.reconnecting"), "warning");
      // Whether the period is still being recorded is unknown until the server says so again.
      if (room.state?.recording) { room.state.recording_state = "unknown"; render(room); }
    },
    onRefused: (error) => showEnded(REFUSALS.has(error.code) ? t(`refused.${error.code}`) : error.message),
  });
  current = room;
  mount(h("p", {}, t("app.loading")));
  room.connection.connect();
}

function isTeacher(room) {
  return room.state?.you.role === "teacher";
}

function onEvent(room, name, data) {
  if (room !== current) return;
  const state = room.state;
  switch (name) {
    case "lobby:waiting": room.waiting = data; return render(room);
    case "lobby:admitted": room.waiting = null; return;
    case "lobby:denied": return showEnded(t("end.denied"), data.reason);
    case "lobby:updated": room.lobby = data.lobby; return render(room);
    case "room:state":
      room.state = data; room.chat = data.chat; room.hands = data.hands; room.waiting = null;
      if (data.lobby) room.lobby = data.lobby;
      room.poll = data.poll ?? null;
      render(room);
      return startMedia(room); // a fresh state (join or resume): fresh media connections
    case "rtc:offer": return room.media?.onOffer(data).catch((e) => banner(e.message, "error"));
    case "rtc:slots":
      Object.assign(room.slots, data.slots);
      return updateStage(room);
    case "room:stage":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.stage = data.participant_id;
      return render(room);
    case "room:quality": room.quality = data.participants; return render(room);
    case "you:link":
      room.link = data;
      if (SAVER_MODES.includes(data.saver) && data.saver !== room.saver) { room.saver = data.saver; render(room); }
      return updateLink(room);
    case "rec:status":
      if (!state) return;
      state.recording = data.recording;
      state.recording_state = data.state;
      state.students_recorded = data.students_recorded;
      if (!data.recording && data.reason === "disk_full") banner(t("rec.disk_full"), "error");
      if (data.recording && RESUMED.has(data.reason)) {
        banner(t(`rec.${data.reason}`), "info");
      }
      return render(room);
    case "participant:joined":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.participants = state.participants.filter((p) => p.participant_id !== data.participant.participant_id);
      state.participants.push(data.participant);
      return render(room);
    case "participant:updated":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.participants = state.participants.map((p) =>
        p.participant_id === data.participant.participant_id ? data.participant : p);
      return render(room);
    case "participant:left":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.participants = state.participants.filter((p) => p.participant_id !== data.participant_id);
      return render(room);
    case "room:locks": if (state) { state.locks = data.locks; render(room); } return;
    case "you:permissions":
      if (!state) return;
      state.you.permissions = data.permissions;
      for (const source of ["camera", "microphone", "screen"]) {
        if (!data.permissions[source] && room.media?.isOn(source)) room.media.switchOff(source, false);
      }
      return render(room);
    case "you:muted":
      room.media?.switchOff(data.source, false);
      banner(t("you.muted", { source: t("source." + data.source) }), "warning");
      return render(room);
    case "chat:message": room.chat.push(data); return render(room);
    case "chat:deleted":
      room.chat = room.chat.map((m) => (m.message_id === data.message_id ? { ...m, deleted: true, text: "" } : m));
      return render(room);
    case "hand:queue": room.hands = data.hands; return render(room);
    case "poll:opened": case "poll:closed": case "poll:results": case "poll:counts":
      return onPollEvent(room, name, data);
    case "you:kicked": return showEnded(t("end.kicked"), data.reason);
    case "you:replaced": return showEnded(t("end.replaced"));
    case "you:logged_out": // logged out, or the account lost its rights (deactivated, password reset, …)
      return showEnded(t(REMOVALS.has(data.reason) ? `end.${data.reason}` : "end.logged_out"));
    case "room:ended": return showEnded(t("end.ended"));
    case "room:closing": // the connection closes; LiveConnection joins again (another node, same seat)
      banner(t(data.reason === "node_moving" ? "room.moving" : "room.reconnecting"), "warning");
      return;
    default: return;
  }
}

function showEnded(message, reason) {
  leaveRoom();
  banner("");
  mount(h("section", { class: "card narrow ended", "data-screen": "ended" },
    h("h1", {}, message),
    reason ? h("p", {}, t("end.reason", { reason })) : null,
    h("a", { class: "button primary", href: "#/periods" }, t("end.back"))));
}

async function ask(room, name, data) {
  const answer = await room.connection.request(name, data);
  if (!answer.ok) banner(answer.error.message, "error");
  return answer;
}

function render(room) {
  if (room.waiting) return renderLobbyWait(room);
  if (!room.state) return;
  if (!room.layout || !room.layout.root.isConnected) buildLayout(room);
  const keepDraft = document.getElementById("chat-input")?.value ?? "";
  const tabs = ["participants", "chat", "hands", "handouts"];
  room.layout.controls.replaceChildren(...renderControls(room));
  room.layout.saver.replaceChildren(...renderSaver(room));
  // With the data saver on, an empty stage says why (the teacher's camera is not coming on purpose).
  room.layout.placeholder.textContent = room.saver === "off" ? teacherName(room)
    : `${teacherName(room)} · ${t("saver.title")}: ${t(`saver.${room.saver}`)}`;
  // The stage (with its playing videos) stays in the page; only the side panel is rebuilt.
  room.layout.side.replaceChildren(
    isTeacher(room) ? renderTeacherTools(room) : h("span"),
    h("div", { class: "tabs", role: "tablist" }, tabs.map((tab) =>
      h("button", { role: "tab", class: room.tab === tab ? "tab active" : "tab", "aria-selected": room.tab === tab,
                    "data-tab": tab, onclick: () => { room.tab = tab; render(room); } },
        t("room." + tab), tab === "hands" && room.hands.length ? ` (${room.hands.length})` : ""))),
    h("div", { class: "tab-panel", role: "tabpanel" }, renderTab(room)));
  const input = document.getElementById("chat-input");
  if (input) input.value = keepDraft;
  updateStage(room);
  updateLink(room);
  renderPoll(room);
}

function buildLayout(room) {
  const media = (slot, kind) => {
    const element = h(kind, { autoplay: true, playsinline: true, "data-slot": slot, hidden: true });
    if (kind === "video") element.muted = true; // sound comes from the audio slots
    return element;
  };
  const slots = {
    teacher_camera: media("teacher_camera", "video"), screen: media("screen", "video"), stage: media("stage", "video"),
  };
  for (const slot of AUDIO_SLOTS) slots[slot] = media(slot, "audio");
  const grid = h("div", { class: "grid" });
  for (let i = 1; i <= 12; i += 1) {
    const video = media(`grid_${i}`, "video");
    slots[`grid_${i}`] = video;
    grid.append(h("figure", { class: "tile", "data-tile": `grid_${i}`, hidden: true }, video, h("figcaption")));
  }
  const placeholder = h("div", { class: "stage-placeholder" });
  const stage = h("section", { class: "stage", "aria-label": t("room.participants") },
    placeholder, slots.screen, slots.teacher_camera, slots.stage, AUDIO_SLOTS.map((s) => slots[s]),
    h("span", { class: "rec", role: "status", hidden: true }, t("room.recording")));
  const controls = h("div", { class: "controls" });
  const selfView = h("video", { class: "self-view", autoplay: true, playsinline: true, hidden: true,
                                "aria-label": t("room.self_view") });
  selfView.muted = true;
  const side = h("section", { class: "side" });
  const linkBanner = h("div", { class: "link-banner", role: "status", hidden: true },
    h("span", { class: "text" }),
    h("button", { class: "small dismiss", "aria-label": t("link.dismiss"), title: t("link.dismiss"),
                  onclick: () => { room.linkDismissed = linkKey(room.link); updateLink(room); } }, "×"));
  const saver = h("div", { class: "saver", role: "group", "aria-label": t("saver.title") });
  const dataUsed = h("span", { class: "data-used muted", role: "status", hidden: true });
  const pollBox = h("div", { class: "poll-box", hidden: true }); // the quick poll, above the stage
  const root = h("div", { class: "room", "data-role": room.state.you.role },
    h("div", { class: "main-column" }, linkBanner, pollBox, stage, h("div", { class: "control-row" }, controls, selfView),
      h("div", { class: "saver-row" }, saver, dataUsed), grid), side);
  room.layout = { root, stage, controls, side, slots, grid, placeholder, selfView, linkBanner, saver, dataUsed,
                  pollBox };
  mount(root);
}

function nameOf(room, participantId) {
  return room.state.participants.find((p) => p.participant_id === participantId)?.name ?? "";
}

function updateStage(room) {
  if (!room.layout) return;
  const { slots, stage, grid, placeholder } = room.layout;
  for (const [slot, element] of Object.entries(slots)) {
    const filled = Boolean(room.slots[slot]);
    element.hidden = !filled;
    if (filled && element.paused && element.srcObject) element.play().catch(() => {});
    const tile = grid.querySelector(`[data-tile="${slot}"]`);
    if (tile) {
      tile.hidden = !filled;
      tile.querySelector("figcaption").textContent = filled ? nameOf(room, room.slots[slot].participant_id) : "";
    }
  }
  stage.classList.toggle("has-screen", Boolean(room.slots.screen));
  const ownCamera = room.media?.local.camera;  // your own picture, as the class sees it
  if (room.layout.selfView.srcObject?.getVideoTracks()[0] !== ownCamera) {
    room.layout.selfView.srcObject = ownCamera ? new MediaStream([ownCamera]) : null;
  }
  room.layout.selfView.hidden = !ownCamera;
  placeholder.hidden = Boolean(room.slots.teacher_camera || room.slots.screen);
  const rec = stage.querySelector(".rec");
  const paused = room.state.recording_state === "paused";
  rec.hidden = !room.state.recording;
  const unknown = room.state.recording_state === "unknown";
  rec.classList.toggle("paused", paused || unknown);
  rec.textContent = unknown ? t("room.recording_unknown") : paused ? t("room.recording_paused") : t("room.recording");
  // Everyone knows whether their own camera and voice go into the recording.
  if (room.state.students_recorded === false) rec.textContent += ` · ${t("room.recording_teacher_only")}`;
}

async function startMedia(room) {
  room.media?.close();
  room.slots = {};
  updateStage(room);
  room.media = new MediaSession({
    request: (name, data) => room.connection.request(name, data),
    iceServers: room.connection.iceServers,
    phone: PHONE,
    role: room.state.you.role,
    onRemoteTrack: (slot, track) => {
      room.tracks = { ...(room.tracks || {}), [slot]: track };
      const element = room.layout?.slots[slot];
      if (!element) return;
      element.srcObject = new MediaStream([track]);
      element.play().catch(() => {});
    },
  });
  window.liveclassMedia = room.media; // for diagnostics (getStats) from the console and tests
  try {
    await room.media.subscribe();
    // A new join starts without data saver (a resume keeps it): ask again for this device's choice.
    const wish = storedSaver();
    if (wish !== "off") await chooseSaver(room, wish, false);
    if (room.state.you.role !== "observer") await room.media.startPublishing();
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
  }
}

function renderControls(room) {
  const you = room.state.you;
  if (you.role === "observer" || !room.media) return [];
  const button = (source, on, off) => {
    const active = room.media.isOn(source);
    const allowed = you.permissions[source];
    return h("button", {
      class: active ? "toggle on" : "toggle", "aria-pressed": active, "data-source": source,
      disabled: !active && !allowed, title: !allowed ? t("room.not_permitted") : null,
      onclick: () => toggleSource(room, source),
    }, active ? off : on, !allowed && !active ? h("span", { class: "reason" }, ` · ${t("room.not_permitted")}`) : null);
  };
  const controls = [button("microphone", t("room.mic_on"), t("room.mic_off")),
    button("camera", t("room.camera_on"), t("room.camera_off"))];
  if (you.permissions.screen || room.media.isOn("screen")) {
    controls.push(button("screen", t("room.share_screen"), t("room.stop_share")));
  }
  return controls;
}

async function toggleSource(room, source) {
  try {
    if (room.media.isOn(source)) await room.media.switchOff(source);
    else await room.media.switchOn(source, (ended) => { room.media.switchOff(ended).then(() => render(room)); });
  } catch (e) {
    const known = { NotAllowedError: "media.denied", NotFoundError: "media.no_device" }[e.name];
    banner(known ? t(known) : e.message || t("error.generic"), "error");
  }
  render(room);
}

function renderSaver(room) {
  return [h("span", { class: "saver-title" }, t("saver.title")),
    ...SAVER_MODES.map((mode) => h("button", {
      class: room.saver === mode ? "toggle on" : "toggle", "aria-pressed": room.saver === mode, "data-saver": mode,
      onclick: () => chooseSaver(room, mode, true),
    }, t(`saver.${mode}`)))];
}

// Ask the room for a data saver mode; `remember`: the person chose it here (kept for the next joins).
async function chooseSaver(room, mode, remember) {
  const answer = await room.connection.request("media:saver", { mode });
  if (room !== current) return;
  if (!answer.ok) {
    const code = answer.error?.code;
    banner(t(SAVER_ERRORS.has(code) ? `saver.failed.${code}` : "saver.failed"), "error");
    if (!remember) { room.saver = "off"; render(room); } // a fresh join starts without it
    return;
  }
  const applied = SAVER_MODES.includes(answer.data?.mode) ? answer.data.mode : mode;
  if (remember) localStorage.setItem(SAVER_KEY, applied);
  room.saver = applied;
  render(room);
}

function linkKey(link) {
  return link ? JSON.stringify([link.reduced || [], link.paused || [], link.quality]) : null;
}

// "Kết nối yếu: camera giáo viên và màn hình chia sẻ đang ở chất lượng thấp", or "" on a good link.
function weakText(room, link) {
  const words = (groups) => groups.filter((g) => LINK_GROUPS.has(g))
    .map((g) => t(g === "grid" && isTeacher(room) ? "link.item.grid_teacher" : `link.item.${g}`));
  const phrase = (key, groups) => {
    const items = words(groups);
    if (!items.length) return null;
    const many = items.length > 1 || groups.includes("grid");
    return t(`${key}_${many ? "many" : "one"}`, { items: formatList(items) });
  };
  const parts = [phrase("link.reduced", link.reduced || []), phrase("link.paused", link.paused || [])].filter(Boolean);
  if (!parts.length && !["weak", "bad"].includes(link.quality)) return "";
  return t("link.weak", { what: parts.length ? parts.join("; ") : t("link.weak_only") });
}

function megabytes(bytes) {
  return formatNumber((bytes || 0) / 1e6);
}

// The weak-link banner (dismissable; it goes by itself when the link is good again) and the data used.
function updateLink(room) {
  if (!room.layout) return;
  const { linkBanner, dataUsed } = room.layout;
  const link = room.link;
  dataUsed.hidden = !link || typeof link.data_bytes !== "number";
  dataUsed.textContent = dataUsed.hidden ? "" : t("link.data_used", { mb: megabytes(link.data_bytes) });
  const text = link ? weakText(room, link) : "";
  if (!text) room.linkDismissed = null; // good again: the next weak spell is shown again
  linkBanner.querySelector(".text").textContent = text;
  linkBanner.hidden = !text || linkKey(link) === room.linkDismissed;
  linkBanner.dataset.quality = link?.quality || "";
}

// The teacher's participant list: what each person's link carries now (room:quality).
function linkInfo(room, p) {
  const q = room.quality?.[p.participant_id];
  if (!q) return null;
  const parts = [];
  // "Chỉ âm thanh" by choice is said by the data saver part.
  if (["low", "paused", "none"].includes(q.video) && !(q.video === "none" && q.saver === "audio")) {
    parts.push(t(`link.video.${q.video}`));
  }
  if (typeof q.loss === "number") parts.push(t("link.loss", { percent: formatNumber(q.loss * 100) }));
  if (typeof q.data_bytes === "number") parts.push(t("link.data", { mb: megabytes(q.data_bytes) }));
  if (SAVER_MODES.includes(q.saver) && q.saver !== "off") parts.push(t("link.saver", { mode: t(`saver.${q.saver}`) }));
  return parts.length ? h("span", { class: "link-info muted", "data-video": q.video ?? "" }, parts.join(" · ")) : null;
}

function teacherName(room) {
  const teacher = room.state.participants.find((p) => p.role === "teacher");
  return teacher ? `${t("role.teacher")}: ${teacher.name}` : t("lobby.no_teacher");
}

function renderLobbyWait(room) {
  const text = room.waiting.locked ? t("lobby.locked")
    : room.waiting.teacher_present ? t("lobby.waiting") : t("lobby.no_teacher");
  mount(h("section", { class: "card narrow lobby-wait", "data-screen": "lobby" },
    h("h1", {}, t("lobby.title")), h("p", { role: "status" }, text)));
}

function renderTeacherTools(room) {
  const locks = room.state.locks;
  const toggle = (what, on, off) => h("button", {
    class: locks[what] ? "toggle on" : "toggle", "aria-pressed": locks[what],
    onclick: () => ask(room, "mod:lock", { what, locked: !locks[what] }) }, locks[what] ? off : on);
  const recording = room.state.recording;
  const paused = room.state.recording_state === "paused";
  return h("div", { class: "teacher-tools" },
    h("button", { class: "primary", "data-poll-action": "compose", disabled: room.poll?.state === "open",
                  onclick: () => openPollForm(room) }, t("poll.title")),
    h("button", { class: recording ? "toggle on record" : "record", "aria-pressed": recording,
                  onclick: () => ask(room, recording ? "rec:stop" : "rec:start", {}) },
      recording ? t("rec.stop") : t("rec.start")),
    recording ? h("button", { class: paused ? "toggle on" : "toggle", "aria-pressed": paused,
                              onclick: () => ask(room, paused ? "rec:resume" : "rec:pause", {}) },
      paused ? t("rec.resume") : t("rec.pause")) : null,
    toggle("room", t("room.lock"), t("room.unlock")),
    toggle("microphones", t("room.lock_mics"), t("room.unlock_mics")),
    toggle("cameras", t("room.lock_cams"), t("room.unlock_cams")),
    toggle("chat", t("room.lock_chat"), t("room.unlock_chat")),
    h("button", { class: "danger", onclick: () => { if (confirm(t("room.end_confirm"))) ask(room, "room:end"); } },
      t("room.end")));
}

function renderTab(room) {
  if (room.tab === "participants") return renderParticipants(room);
  if (room.tab === "hands") return renderHands(room);
  if (room.tab === "handouts") return renderHandouts(room);
  return renderChat(room);
}

function renderParticipants(room) {
  const teacher = isTeacher(room);
  const lobby = teacher ? h("div", { class: "lobby-panel" },
    h("h2", {}, `${t("lobby.title")} (${room.lobby.length})`),
    room.lobby.length ? h("button", { class: "primary", onclick: () => ask(room, "lobby:admit", { all: true }) },
      t("lobby.admit_all")) : h("p", {}, t("lobby.empty")),
    h("ul", { class: "lobby-list" }, room.lobby.map((entry) => h("li", { "data-participant": entry.participant_id },
      h("span", { class: "name" }, entry.name),
      h("span", { class: "muted" }, entry.personal_id),
      h("span", { class: entry.on_roster ? "badge ok" : "badge warn" },
        entry.on_roster ? t("lobby.on_roster") : t("lobby.not_on_roster")),
      entry.was_removed ? h("span", { class: "badge warn" }, t("lobby.was_removed")) : null,
      h("button", { class: "primary", onclick: () => ask(room, "lobby:admit", { participant_ids: [entry.participant_id] }) },
        t("lobby.admit")),
      h("button", { onclick: () => {
        const reason = prompt(t("lobby.deny_reason")) ?? "";
        ask(room, "lobby:deny", { participant_ids: [entry.participant_id], reason: reason || null });
      } }, t("lobby.deny")))))) : null;
  const people = h("ul", { class: "people" }, room.state.participants.map((p) =>
    h("li", { "data-participant": p.participant_id },
      h("span", { class: "name" }, p.name),
      h("span", { class: "muted" }, t("role." + p.role)),
      p.connection !== "connected" ? h("span", { class: "badge warn" }, t("room.reconnecting")) : null,
      ["weak", "bad"].includes(room.quality?.[p.participant_id]?.quality)
        ? h("span", { class: "badge warn", title: `${room.quality[p.participant_id].rtt_ms ?? "?"} ms` }, t("room.weak"))
        : null,
      teacher ? linkInfo(room, p) : null,
      teacher && p.role !== "teacher" && p.role !== "observer" ? participantActions(room, p) : null)));
  return h("div", {}, lobby, h("h2", {}, t("room.participants")), people);
}

function participantActions(room, p) {
  const permit = (name, value) => ask(room, "mod:permit", { participant_id: p.participant_id, permissions: { [name]: value } });
  return h("span", { class: "actions" },
    h("button", { onclick: () => ask(room, "mod:mute", { participant_id: p.participant_id, source: "microphone" }) },
      t("room.mute")),
    h("button", { onclick: () => permit("microphone", !p.permissions.microphone) },
      p.permissions.microphone ? t("room.revoke_mic") : t("room.allow_mic")),
    h("button", { onclick: () => permit("screen", !p.permissions.screen) },
      p.permissions.screen ? t("room.revoke_screen") : t("room.allow_screen")),
    h("button", { onclick: () => permit("chat", !p.permissions.chat) },
      p.permissions.chat ? t("room.mute_chat") : t("room.unmute_chat")),
    h("button", { onclick: () => ask(room, "mod:stage", {
      participant_id: room.state.stage === p.participant_id ? null : p.participant_id }) },
      room.state.stage === p.participant_id ? t("room.unstage") : t("room.stage")),
    h("button", { onclick: () => room.privateTo = p }, t("chat.private")),
    h("button", { class: "danger", onclick: () => {
      const reason = prompt(t("room.kick_reason"));
      if (reason !== null) ask(room, "mod:kick", { participant_id: p.participant_id, reason: reason || null });
    } }, t("room.kick")));
}

function renderChat(room) {
  const you = room.state.you;
  const teacherP = room.state.participants.find((p) => p.role === "teacher");
  const targets = isTeacher(room)
    ? room.state.participants.filter((p) => p.participant_id !== you.participant_id)
    : teacherP ? [teacherP] : [];
  const select = h("select", { id: "chat-to", "aria-label": t("chat.private") },
    you.role !== "observer" ? h("option", { value: "" }, t("chat.to_everyone")) : null,
    targets.map((p) => h("option", { value: p.participant_id, selected: room.privateTo?.participant_id === p.participant_id },
      t("chat.private_to", { name: p.name }))));
  const input = h("input", { id: "chat-input", type: "text", maxlength: 2000, placeholder: t("chat.placeholder"),
                             "aria-label": t("chat.placeholder"), autocomplete: "off" });
  const form = h("form", { class: "chat-form", onsubmit: async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const to = select.value || undefined;
    const answer = await ask(room, "chat:send", to ? { text, to } : { text });
    if (answer.ok) { input.value = ""; input.focus(); }
  } }, select, input, h("button", { type: "submit", class: "primary" }, t("chat.send")));
  const log = h("ol", { class: "chat-log", "aria-live": "polite" }, room.chat.map((m) => h("li", {
    class: m.to ? "message private" : "message", "data-message": m.message_id },
    h("span", { class: "meta" }, `${formatTime(new Date(m.at * 1000).toISOString())} ${m.from.name}`,
      m.to ? ` → ${m.to.name}` : ""),
    m.deleted ? h("em", { class: "deleted" }, t("chat.deleted"))
      : m.kind === "handout"
        ? h("a", { href: m.handout.url, download: m.handout.filename }, t("chat.handout", { name: m.handout.filename }))
        : h("span", { class: "text" }, m.text),
    isTeacher(room) && !m.deleted
      ? h("button", { class: "small", onclick: () => ask(room, "chat:delete", { message_id: m.message_id }) },
        t("chat.delete")) : null)));
  const wrapper = h("div", { class: "chat" }, log, you.role === "observer" && !targets.length ? null : form);
  requestAnimationFrame(() => { log.scrollTop = log.scrollHeight; });
  return wrapper;
}

function renderHands(room) {
  const you = room.state.you;
  const mine = room.hands.find((hand) => hand.participant_id === you.participant_id);
  const learner = you.role === "student" || you.role === "guest";
  return h("div", { class: "hands" },
    learner ? h("button", { class: mine ? "toggle on big" : "primary big", "aria-pressed": Boolean(mine),
      onclick: () => ask(room, mine ? "hand:lower" : "hand:raise", {}) }, mine ? t("room.lower_hand") : t("room.raise_hand"))
      : null,
    mine ? h("p", { class: "hand-position", role: "status" }, t("room.hand_position", { position: mine.position })) : null,
    isTeacher(room) && room.hands.length
      ? h("button", { onclick: () => ask(room, "hand:lower", { all: true }) }, t("room.lower_all")) : null,
    room.hands.length ? h("ol", { class: "hand-queue" }, room.hands.map((hand) =>
      h("li", { "data-participant": hand.participant_id }, `#${hand.position} ${hand.name}`,
        isTeacher(room) ? h("button", { class: "small", onclick: () => ask(room, "hand:lower", { participant_id: hand.participant_id }) },
          t("room.lower_hand")) : null)))
      : h("p", {}, t("room.no_hands")));
}

function renderHandouts(room) {
  const items = room.chat.filter((m) => m.kind === "handout" && !m.deleted);
  const upload = isTeacher(room) ? h("label", { class: "button" }, t("handout.upload"),
    h("input", { type: "file", class: "visually-hidden", onchange: async (event) => {
      const file = event.target.files[0];
      if (!file) return;
      const form = new FormData();
      form.append("file", file);
      try {
        await api("POST", `/sessions/${room.sessionId}/handouts`, form);
      } catch (e) {
        banner(e.message, "error");
      }
    } })) : null;
  return h("div", {}, upload, h("ul", { class: "handouts" }, items.map((m) =>
    h("li", {}, h("a", { href: m.handout.url, download: m.handout.filename }, m.handout.filename)))));
}

// -- quick polls ("Câu hỏi nhanh"): the teacher asks A/B/C/D or Đúng/Sai, students answer with one tap ----------
const POLL_ERRORS = new Set(["poll_open", "poll_closed", "unknown_poll", "unknown_choice", "single_choice",
  "invalid_poll", "rate_limited", "forbidden"]);

function onPollEvent(room, name, data) {
  if (name === "poll:counts") {
    if (room.poll?.poll_id === data.poll_id) room.poll.results = data;
  } else {
    if (data.poll?.poll_id !== room.poll?.poll_id) room.pollHidden = null; // a new poll is shown again
    room.poll = data.poll;
  }
  renderPoll(room);
}

async function askPoll(room, name, data) {
  const answer = await room.connection.request(name, data);
  if (!answer.ok) {
    const code = answer.error?.code;
    banner(POLL_ERRORS.has(code) ? t(`poll.error.${code}`) : answer.error?.message || t("error.generic"), "error");
  }
  return answer;
}

function pollLabel(poll, choice) {
  return poll.kind === "truefalse" ? t(`poll.${choice}`) : choice;
}

function pollChoicesText(poll, choices) {
  return formatList(choices.map((c) => pollLabel(poll, c)));
}

// The bar chart: one bar per choice, its count and share; the correct choices marked when known.
function pollChart(poll, results) {
  const counts = results?.counts || {};
  const answered = results?.answered || 0;
  return h("ol", { class: "poll-chart", "aria-label": t("poll.chart") }, poll.options.map((choice) => {
    const count = counts[choice] || 0;
    const share = answered ? Math.round((100 * count) / answered) : 0;
    const right = poll.correct?.includes(choice);
    const fill = h("span", { class: "poll-fill" });
    fill.style.width = `${share}%`; // through the CSSOM: the page's CSP allows no inline style attributes
    return h("li", { class: right ? "correct" : "", "data-choice": choice },
      h("span", { class: "poll-label" }, pollLabel(poll, choice), right ? " ✓" : ""),
      h("span", { class: "poll-bar" }, fill),
      h("span", { class: "poll-count", "data-count": count }, `${count} · ${share}%`));
  }));
}

function renderPollForm(room) {
  const draft = room.pollDraft;
  const options = draft.kind === "truefalse" ? ["true", "false"] : "ABCDEF".slice(0, draft.options).split("");
  const redraw = () => renderPoll(room);
  const pick = (choice) => {
    const chosen = draft.correct.includes(choice);
    if (draft.multiple) draft.correct = chosen ? draft.correct.filter((c) => c !== choice) : [...draft.correct, choice];
    else draft.correct = chosen ? [] : [choice];
    redraw();
  };
  const kindButton = (kind) => h("button", {
    class: draft.kind === kind ? "toggle on" : "toggle", "aria-pressed": draft.kind === kind, "data-kind": kind,
    onclick: () => { Object.assign(draft, { kind, correct: [], multiple: false }); redraw(); } }, t(`poll.kind.${kind}`));
  return h("div", { class: "poll card", "data-poll": "form" },
    h("h2", {}, t("poll.title")),
    h("div", { class: "poll-row", role: "group", "aria-label": t("poll.kind") }, kindButton("abcd"), kindButton("truefalse")),
    draft.kind === "abcd" ? h("label", { class: "poll-inline" }, t("poll.options"),
      h("select", { "data-options": "", onchange: (e) => {
        draft.options = Number(e.target.value);
        draft.correct = draft.correct.filter((c) => "ABCDEF".slice(0, draft.options).includes(c));
        redraw();
      } }, [2, 3, 4, 5, 6].map((n) => h("option", { value: n, selected: n === draft.options }, `A–${"ABCDEF"[n - 1]}`))))
      : null,
    draft.kind === "abcd" ? h("label", { class: "poll-check" }, h("input", { type: "checkbox", checked: draft.multiple,
      "data-multiple": "", onchange: (e) => { draft.multiple = e.target.checked; draft.correct = draft.correct.slice(0, draft.multiple ? 6 : 1); redraw(); } }),
      t("poll.multiple")) : null,
    h("label", { class: "poll-check" }, h("input", { type: "checkbox", checked: draft.anonymous, "data-anonymous": "",
      onchange: (e) => { draft.anonymous = e.target.checked; } }), t("poll.anonymous")),
    h("p", { class: "muted" }, t("poll.correct_hint")),
    h("div", { class: "poll-row", role: "group", "aria-label": t("poll.correct") }, options.map((choice) =>
      h("button", { class: draft.correct.includes(choice) ? "toggle on" : "toggle", "data-correct": choice,
                    "aria-pressed": draft.correct.includes(choice), onclick: () => pick(choice) },
        pollLabel({ kind: draft.kind }, choice)))),
    h("div", { class: "poll-row" },
      h("button", { class: "primary", "data-poll-action": "start", onclick: async () => {
        const payload = { kind: draft.kind, anonymous: draft.anonymous };
        if (draft.kind === "abcd") Object.assign(payload, { options: draft.options, multiple: draft.multiple });
        if (draft.correct.length) payload.correct = draft.correct;
        const answer = await askPoll(room, "poll:open", payload);
        if (answer.ok) { room.pollDraft = null; renderPoll(room); }
      } }, t("poll.start")),
      h("button", { onclick: () => { room.pollDraft = null; redraw(); } }, t("poll.cancel"))));
}

function renderTeacherPoll(room, poll) {
  const results = poll.results || {};
  const open = poll.state === "open";
  const action = (key, name, data) => h("button", { class: key === "close" ? "primary" : "", "data-poll-action": key,
    onclick: () => askPoll(room, name, { poll_id: poll.poll_id, ...data }) }, t(`poll.${key}`));
  const waiting = results.not_answered || [];
  return h("div", { class: "poll card", "data-poll": poll.poll_id, "data-state": poll.state },
    h("h2", {}, t("poll.title"), " ", h("span", { class: open ? "badge ok" : "badge" },
      t(open ? "poll.state.open" : poll.revealed ? "poll.state.revealed" : "poll.state.closed"))),
    poll.anonymous ? h("p", { class: "muted" }, t("poll.anonymous_note")) : null,
    pollChart(poll, results),
    h("p", { class: "poll-answered", role: "status" },
      t("poll.answered", { answered: results.answered || 0, eligible: results.eligible || 0 })),
    waiting.length ? h("details", { class: "poll-waiting", open: waiting.length <= 10 },
      h("summary", {}, t("poll.not_answered", { count: waiting.length })),
      h("p", {}, formatList(waiting.map((p) => p.name)))) : null,
    h("div", { class: "poll-row" },
      open ? action("close", "poll:close", {}) : null,
      !poll.revealed ? action("reveal", "poll:reveal", { show_correct: false }) : null,
      !poll.revealed && poll.has_correct ? action("reveal_correct", "poll:reveal", { show_correct: true }) : null,
      poll.revealed && poll.has_correct && !poll.show_correct
        ? action("reveal_correct", "poll:reveal", { show_correct: true }) : null,
      !open ? h("button", { "data-poll-action": "new", onclick: () => openPollForm(room) }, t("poll.new")) : null,
      !open ? h("button", { onclick: () => { room.pollHidden = poll.poll_id; renderPoll(room); } }, t("poll.hide"))
        : null));
}

function renderLearnerPoll(room, poll) {
  const student = room.state.you.role === "student";
  const mine = poll.mine?.choices || [];
  const tap = async (choice) => {
    let choices = [choice];
    if (poll.multiple) {
      choices = mine.includes(choice) ? mine.filter((c) => c !== choice) : [...mine, choice];
      if (!choices.length) return; // an answer has at least one choice
    }
    const answer = await askPoll(room, "poll:answer", { poll_id: poll.poll_id, choices });
    if (answer.ok && room.poll?.poll_id === poll.poll_id) {
      room.poll.mine = { ...(room.poll.mine || {}), choices: answer.data.choices };
      renderPoll(room);
    }
  };
  const parts = [h("h2", {}, t("poll.title"))];
  if (poll.state === "open") {
    if (student) {
      parts.push(h("p", { class: "muted" }, t(poll.multiple ? "poll.pick_many" : "poll.pick_one")),
        h("div", { class: "poll-choices", role: "group", "aria-label": t("poll.title") }, poll.options.map((choice) =>
          h("button", { class: mine.includes(choice) ? "poll-choice chosen" : "poll-choice", "data-choice": choice,
                        "aria-pressed": mine.includes(choice), onclick: () => tap(choice) }, pollLabel(poll, choice)))));
    } else {
      parts.push(h("p", {}, t("poll.class_answering")));
    }
  } else if (!poll.revealed) {
    parts.push(h("p", {}, t("poll.closed_wait")));
  }
  if (student) {
    parts.push(h("p", { class: "poll-mine", role: "status" },
      mine.length ? t("poll.mine", { choices: pollChoicesText(poll, mine) }) : t("poll.mine_none")));
  }
  if (poll.revealed) {
    parts.push(pollChart(poll, poll.results));
    if (poll.correct) parts.push(h("p", {}, t("poll.correct_is", { choices: pollChoicesText(poll, poll.correct) })));
    if (student && typeof poll.mine?.correct === "boolean") {
      parts.push(h("p", { class: poll.mine.correct ? "poll-verdict right" : "poll-verdict wrong", role: "status" },
        t(poll.mine.correct ? "poll.right" : "poll.wrong")));
    }
    parts.push(h("button", { onclick: () => { room.pollHidden = poll.poll_id; renderPoll(room); } }, t("poll.hide")));
  }
  return h("div", { class: "poll card", "data-poll": poll.poll_id, "data-state": poll.revealed ? "revealed" : poll.state },
    ...parts);
}

function openPollForm(room) {
  room.pollDraft = { kind: "abcd", options: 4, multiple: false, anonymous: false, correct: [] };
  renderPoll(room);
}

function renderPoll(room) {
  const box = room.layout?.pollBox;
  if (!box || !room.state) return;
  const poll = room.poll;
  let content = null;
  if (isTeacher(room) && room.pollDraft) content = renderPollForm(room);
  else if (poll && room.pollHidden !== poll.poll_id) {
    content = isTeacher(room) ? renderTeacherPoll(room, poll) : renderLearnerPoll(room, poll);
  }
  box.replaceChildren(...(content ? [content] : []));
  box.hidden = !content;
}
