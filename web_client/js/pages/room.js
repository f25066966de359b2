// The live room for every role: lobby, participants, chat, hands, handouts, moderation.
// Issue 15: a room for 40 students — the header (class, subject, clock, lobby count), alerts without sound, a paged
// gallery of the students' cameras, one compact row per person with icons and one menu of actions, the active
// speaker, "Gọi phát biểu"/"Xong", who has not arrived, in-page dialogs, every server error in the UI language.
import { api } from "../api.js";
import { banner, h, mount, placeChildren } from "../dom.js";
import { currentLanguage, formatList, formatNumber, formatTime, t } from "../i18n.js";
import { LiveConnection } from "../live.js";
import { MediaSession, deviceChoice, setDeviceChoice } from "../media.js";
import { bankErrorText, kindWords, pointsText } from "./bank.js";

// Why an account's room connection was closed, and why a join was refused: the catalogue's words for them.
const REMOVALS = new Set(["account_deactivated", "password_changed", "password_reset", "role_changed",
  "removed_from_class"]);
const REFUSALS = new Set(["account_inactive", "session_ended", "token_outdated"]);
// Why the server started the recording again by itself (a new recording of the same period).
const RESUMED = new Set(["node_lost", "node_moved", "server_restarted"]);

let current = null;
const PHONE = window.matchMedia("(max-width: 430px)").matches;
const AUDIO_SLOTS = ["teacher_audio", "audio_1", "audio_2", "audio_3"];
const GRID_SLOTS = 12; // the server forwards at most 12 students' cameras to the teacher (grid_1 … grid_12)
const PAGE_SIZE = PHONE ? 6 : 12; // gallery tiles per page, the teacher's own tile first
const NOTICE_SECONDS = 12; // a notice goes by itself after this long (or at once with ×)
const SPEAKING_LEVEL = 0.03; // an audioLevel (0–1) above this is someone speaking
// Data saver (media:saver): this device's choice, sent again after every join and resume.
const SAVER_MODES = ["off", "screen", "audio"];
const SAVER_KEY = "liveclass.saver";
const SAVER_ERRORS = new Set(["offline", "timeout", "rate_limited", "media_unavailable", "forbidden"]);
// What a weak link can turn down (you:link `reduced` / `paused`), in the catalogue's words.
const LINK_GROUPS = new Set(["teacher_camera", "screen", "stage", "grid"]);
const LEARNERS = new Set(["student", "guest"]);

function storedSaver() {
  const mode = localStorage.getItem(SAVER_KEY);
  return SAVER_MODES.includes(mode) ? mode : "off";
}

export function leaveRoom() {
  current?.media?.close();
  current?.deviceTest?.stop();
  current?.connection.close();
  if (current) for (const timer of current.timers) clearInterval(timer);
  document.querySelector("dialog.room-dialog")?.remove();
  current = null;
}

export function refreshRoom() {
  if (!current) return false;
  if (current.layout) current.layout.root.remove(); // rebuilt with the new language's words
  current.layout = null;
  if (current.waiting) {
    const testing = Boolean(current.deviceTest); // the device test goes on, in the new words
    current.deviceTest?.stop();
    current.deviceTest = null;
    current.lobbyView = null;
    renderLobbyWait(current);
    if (testing) current.lobbyView.startTest();
  }
  else if (current.state) render(current);
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
    // issue 15: the period (class, subject, times), the class list, alerts, the gallery's page, who speaks
    period: null, roster: null, notices: [], noticeId: 0, unread: 0, galleryPage: 0, speaking: new Set(),
    calledOn: new Map(), menuFor: null, chatDraft: "", absentOpen: false, timers: [], renderQueued: false,
    lobbyView: null, deviceTest: null, tileCache: new Map(), rowCache: new Map(), menuCache: new Map(),
    messageCache: new Map(), lastRender: 0,
    // the poll or quiz, the quick poll's form, the bank picker, the countdown, typed answers (end of this file)
    poll: null, pollDraft: null, pollHidden: null, bankDraft: null, pollEnds: null, pollTick: null,
    quizTyped: {}, quizPicked: {},
  };
  room.connection = new LiveConnection(sessionId, {
    onEvent: (name, data) => onEvent(room, name, data),
    onConnected: () => banner(""),
    onDropped: (closing) => {
      banner(t(closing === "node_moving" ? "room.moving" : "room.reconnecting"), "warning");
      // Whether the period is still being recorded is unknown until the server says so again.
      if (room.state?.recording) { room.state.recording_state = "unknown"; render(room); }
    },
    onRefused: (error) => showEnded(REFUSALS.has(error.code) ? t(`refused.${error.code}`) : roomErrorText(error)),
  });
  current = room;
  mount(h("p", {}, t("app.loading")));
  room.connection.connect();
  loadPeriod(room);
  room.timers.push(setInterval(() => tick(room), 1000));
  room.timers.push(setInterval(() => sampleSpeakers(room), 400));
}

function isTeacher(room) {
  return room.state?.you.role === "teacher";
}

// -- words for the server's codes -------------------------------------------------------------------------------
// Every refusal of the room has a code (docs/protocol.md); the page says it in the UI language, never the
// server's English message nor a raw code.
function roomErrorText(error) {
  const code = error?.code;
  if (!code) return t("error.generic");
  const key = `room.error.${code}`;
  const text = t(key, { seconds: error.retry_after ?? "", source: error.source ? t(`source.${error.source}`) : "" });
  return text === key ? error.text || t("error.generic") : text;
}

// -- the period: class, subject, times; the class list for "not arrived" --------------------------------------
async function loadPeriod(room) {
  try {
    const session = await api("GET", `/sessions/${room.sessionId}`);
    const period = await api("GET", `/periods/${session.period_id}`);
    if (room !== current) return;
    room.period = period;
    updateHeader(room);
    loadRoster(room);
  } catch {
    // The header then shows the clock alone; the room works without it.
  }
}

// The teacher's list of who has not arrived: the class list minus those present (GET /classes/{id}).
async function loadRoster(room) {
  if (!isTeacher(room) || !room.period || room.roster || room.rosterAsked) return;
  room.rosterAsked = true;
  const roster = await api("GET", `/classes/${room.period.class_id}`).catch(() => null);
  if (room !== current || !roster) return;
  room.roster = (roster.students || []).filter((s) => s.active !== false);
  queueRender(room);
}

function periodTitle(room) {
  const p = room.period;
  return p ? `${p.subject} · ${p.class_name}` : "";
}

function tick(room) {
  if (room !== current) return;
  const clock = room.layout?.clock;
  if (clock) clock.textContent = formatTime(new Date().toISOString());
}

// -- events -----------------------------------------------------------------------------------------------------
function onEvent(room, name, data) {
  if (room !== current) return;
  const state = room.state;
  switch (name) {
    case "lobby:waiting": room.waiting = data; return renderLobbyWait(room);
    case "lobby:admitted": room.waiting = null; return;
    case "lobby:denied": return showEnded(t("end.denied"), data.reason);
    case "lobby:updated": noticeLobby(room, data.lobby); room.lobby = data.lobby; return queueRender(room);
    case "room:state":
      room.state = data; room.chat = data.chat; room.hands = data.hands; room.waiting = null;
      // A new join starts without data saver on the server: the stored choice shows once the server took it.
      if (storedSaver() !== "off") room.saver = "off";
      room.gridSent = null; // a new join forgets the gallery's page: sent again
      room.deviceTest?.stop(); room.deviceTest = null; room.lobbyView = null;
      if (data.lobby) room.lobby = data.lobby;
      setPoll(room, data.poll ?? null);
      render(room);
      loadRoster(room);
      return startMedia(room); // a fresh state (join or resume): fresh media connections
    case "rtc:offer": return room.media?.onOffer(data).catch(() => banner(t("media.failed"), "error"));
    case "rtc:slots":
      Object.assign(room.slots, data.slots);
      updateStage(room);
      return queueRender(room);
    case "room:stage":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.stage = data.participant_id;
      return queueRender(room);
    case "room:quality": room.quality = data.participants; return queueRender(room);
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
      if (isTeacher(room) && data.participant.role === "observer") {
        notice(room, t("alert.observer", { name: data.participant.name }), "observer");
      }
      return queueRender(room);
    case "participant:updated":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.participants = state.participants.map((p) =>
        p.participant_id === data.participant.participant_id ? data.participant : p);
      return queueRender(room);
    case "participant:left":
      if (!state || data.version <= state.version) return;
      state.version = data.version;
      state.participants = state.participants.filter((p) => p.participant_id !== data.participant_id);
      room.calledOn.delete(data.participant_id);
      return queueRender(room);
    case "room:locks": if (state) { state.locks = data.locks; render(room); } return;
    case "you:permissions": {
      if (!state) return;
      const before = state.you.permissions;
      state.you.permissions = data.permissions;
      for (const source of ["camera", "microphone", "screen"]) {
        if (!data.permissions[source] && room.media?.isOn(source)) room.media.switchOff(source, false);
      }
      // "Gọi phát biểu": the teacher gave this student the microphone (and lowered the hand).
      if (LEARNERS.has(state.you.role) && data.permissions.microphone && !before?.microphone) {
        notice(room, t("you.mic_allowed"), "you");
      } else if (!data.permissions.microphone && room.notices.some((n) => n.kind === "you")) {
        room.notices = room.notices.filter((n) => n.kind !== "you"); // taken back: the invitation is over
        updateNotices(room);
      }
      return render(room);
    }
    case "you:muted":
      room.media?.switchOff(data.source, false);
      banner(t("you.muted", { source: t("source." + data.source) }), "warning");
      return render(room);
    case "chat:message":
      room.chat.push(data);
      if (room.tab !== "chat" && data.from?.participant_id !== state?.you.participant_id) room.unread += 1;
      return queueRender(room);
    case "chat:deleted":
      room.chat = room.chat.map((m) => (m.message_id === data.message_id ? { ...m, deleted: true, text: "" } : m));
      return queueRender(room);
    case "hand:queue": noticeHands(room, data.hands); room.hands = data.hands; return queueRender(room);
    case "poll:opened": case "poll:updated": case "poll:closed": case "poll:results": case "poll:counts":
      return onPollEvent(room, name, data);
    case "you:kicked": return showEnded(t("end.kicked"), data.reason);
    case "you:replaced": return showEnded(t("end.replaced"));
    case "you:logged_out": // logged out, or the account lost its rights (deactivated, password reset, …)
      return showEnded(t(REMOVALS.has(data.reason) ? `end.${data.reason}` : "end.logged_out"));
    case "room:ended": return showEnded(t("end.ended"), null, room);
    case "room:closing": // the connection closes; LiveConnection joins again (another node, same seat)
      banner(t(data.reason === "node_moving" ? "room.moving" : "room.reconnecting"), "warning");
      return;
    default: return;
  }
}

// Many events in a burst (40 students) make one render: on the next frame, at most about four a second.
const RENDER_GAP_MS = 250;

function queueRender(room) {
  if (room.renderQueued) return;
  room.renderQueued = true;
  const run = () => {
    if (!room.renderQueued) return;
    room.renderQueued = false;
    if (room === current) render(room);
  };
  const wait = Math.max(0, room.lastRender + RENDER_GAP_MS - performance.now());
  setTimeout(() => requestAnimationFrame(run), wait);
  setTimeout(run, wait + 250); // a page in the background gets no frames
}

function showEnded(message, reason, room = null) {
  // The teacher sees that the period was taught (and which one).
  const taught = room && isTeacher(room) && room.period
    ? t("end.taught", { period: periodTitle(room), time: formatTime(new Date().toISOString()) }) : null;
  leaveRoom();
  banner("");
  mount(h("section", { class: "card narrow ended", "data-screen": "ended" },
    h("h1", {}, message),
    taught ? h("p", { class: "taught", role: "status" }, taught) : null,
    reason ? h("p", {}, t("end.reason", { reason })) : null,
    h("a", { class: "button primary", href: "#/periods" }, t("end.back"))));
}

async function ask(room, name, data) {
  const answer = await room.connection.request(name, data);
  // After the end (or leaving) a late answer — "timeout" of the request that ended it — says nothing.
  if (!answer.ok && room === current && !lostConnection(room, answer.error)) banner(roomErrorText(answer.error), "error");
  return answer;
}

// A request lost with the connection: the page already says "Đang kết nối lại…" (not "timeout" over it).
function lostConnection(room, error) {
  return ["offline", "timeout"].includes(error?.code) && !room.connection.socket?.connected;
}

// A part of the side panel kept from the last render while what it shows (`signature`, with the language) is the
// same; `signature` null: always built again.
function kept(room, key, signature, build) {
  const text = signature === null ? null : JSON.stringify([currentLanguage(), signature]);
  const hit = room.parts?.[key];
  if (text !== null && hit?.text === text) return hit.element;
  const element = build();
  room.parts = { ...(room.parts || {}), [key]: { text, element } };
  return element;
}

// The same for the children of a container that stays in the page (the controls under the stage, the open tab):
// built again only when what they show changed, and placed without taking out what stays. A button rebuilt or
// taken out between the press and the release of a click or a tap loses it, and a file input its chosen file.
function keptChildren(room, key, container, signature, build) {
  const text = JSON.stringify([currentLanguage(), signature]);
  const hit = room.parts?.[key];
  if (hit?.element === container && hit.text === text) return;
  placeChildren(container, build());
  room.parts = { ...(room.parts || {}), [key]: { text, element: container } };
}

// One element per id (a student's menu, a chat message), built again only when its signature changed.
function keptById(cache, id, signature, build) {
  const text = JSON.stringify([currentLanguage(), signature]);
  const hit = cache.get(id);
  if (hit?.text === text) return hit.element;
  const element = build();
  cache.set(id, { text, element });
  return element;
}

// What the open tab shows: it is built again when this changes.
function panelSignature(room) {
  const ids = room.state.participants.map((p) => [p.participant_id, p.name]);
  if (room.tab === "participants") {
    return ["participants", room.lobby, room.state.participants, room.quality ?? null, room.hands, room.menuFor,
      room.state.stage, room.roster ?? null, room.absentOpen ?? false];
  }
  if (room.tab === "chat") {
    return ["chat", room.chat.length, room.chat.filter((m) => m.deleted).length, room.privateTo?.participant_id ?? null, ids];
  }
  if (room.tab === "hands") return ["hands", room.state.you, room.hands, [...room.calledOn.entries()], ids];
  return ["handouts", room.state.you.role, room.chat.filter((m) => m.kind === "handout" && !m.deleted).map((m) => m.message_id)];
}

// -- alerts: a quiet line of notices under the header, each dismissable ------------------------------------------
function notice(room, text, kind = "info") {
  const id = ++room.noticeId;
  room.notices = [...room.notices.slice(-3), { id, text, kind }];
  updateNotices(room);
  setTimeout(() => dismissNotice(room, id), NOTICE_SECONDS * 1000);
}

function dismissNotice(room, id) {
  room.notices = room.notices.filter((n) => n.id !== id);
  updateNotices(room);
}

function updateNotices(room) {
  const box = room.layout?.notices;
  if (!box) return;
  box.replaceChildren(...room.notices.map((n) => h("li", { class: "notice", "data-kind": n.kind, title: n.text },
    h("span", {}, n.text),
    h("button", { class: "small dismiss", "aria-label": t("alert.dismiss"), title: t("alert.dismiss"),
                  onclick: () => dismissNotice(room, n.id) }, "×"))));
}

function noticeLobby(room, lobby) {
  if (!isTeacher(room)) return;
  const known = new Set(room.lobby.map((e) => e.participant_id));
  const fresh = lobby.filter((e) => !known.has(e.participant_id));
  if (fresh.length === 1) notice(room, t("alert.lobby_one", { name: fresh[0].name }), "lobby");
  else if (fresh.length > 1) notice(room, t("alert.lobby_many", { count: fresh.length }), "lobby");
}

function noticeHands(room, hands) {
  if (!isTeacher(room)) return;
  const known = new Set(room.hands.map((x) => x.participant_id));
  for (const hand of hands.filter((x) => !known.has(x.participant_id))) {
    notice(room, t("alert.hand", { name: hand.name, position: hand.position }), "hand");
  }
}

// -- in-page dialogs (never prompt()/confirm()): Cancel cancels -------------------------------------------------
// Resolves to the text typed (possibly "") when confirmed, or null when cancelled.
function dialogBox({ title, message = null, input = null, confirm, danger = false }) {
  document.querySelector("dialog.room-dialog")?.remove();
  return new Promise((resolve) => {
    const field = input ? h("input", { type: "text", maxlength: 500, id: "dialog-input", autocomplete: "off" }) : null;
    let result = null;
    const dialog = h("dialog", { class: "room-dialog card", "aria-labelledby": "dialog-title" },
      h("form", { method: "dialog", onsubmit: (event) => {
        event.preventDefault(); result = field ? field.value.trim() : ""; dialog.close();
      } },
        h("h2", { id: "dialog-title" }, title),
        message ? h("p", {}, message) : null,
        field ? h("label", { for: "dialog-input" }, input) : null, field,
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", onclick: () => dialog.close() }, t("dialog.cancel")),
          h("button", { type: "submit", class: danger ? "danger" : "primary" }, confirm))));
    dialog.addEventListener("close", () => { dialog.remove(); resolve(result); });
    document.body.append(dialog);
    dialog.showModal();
    (field || dialog.querySelector("button[type=submit]")).focus();
  });
}

// -- the page ---------------------------------------------------------------------------------------------------
function render(room) {
  if (room.waiting) return renderLobbyWait(room);
  if (!room.state) return;
  room.renderQueued = false;
  room.lastRender = performance.now();
  if (!room.layout || !room.layout.root.isConnected) buildLayout(room);
  const focused = document.activeElement?.dataset?.key; // keep the keyboard's place across a re-render
  const tabs = ["participants", "chat", "hands", "handouts"];
  if (room.tab === "chat") room.unread = 0;
  const you = room.state.you;
  const hand = room.hands.find((x) => x.participant_id === you.participant_id);
  keptChildren(room, "controls", room.layout.controls, [you.role, you.permissions, Boolean(room.media),
    ["microphone", "camera", "screen"].map((source) => Boolean(room.media?.isOn(source))), hand?.position ?? null],
  () => renderControls(room));
  keptChildren(room, "saver", room.layout.saver, [room.saver], () => renderSaver(room));
  // With the data saver on, an empty stage says why (the teacher's camera is not coming on purpose).
  room.layout.placeholder.textContent = room.saver === "off" ? teacherName(room)
    : `${teacherName(room)} · ${t("saver.title")}: ${t(`saver.${room.saver}`)}`;
  const counter = (tab) => {
    const count = tab === "hands" ? room.hands.length : tab === "chat" ? room.unread
      : tab === "participants" && isTeacher(room) ? room.lobby.length : 0;
    if (!count) return null;
    const label = tab === "chat" ? t("alert.unread", { count }) : tab === "participants" ? t("alert.waiting", { count })
      : t("alert.hands", { count });
    return h("span", { class: `count count-${tab}`, "data-count": count },
      ` (${count})`, h("span", { class: "visually-hidden" }, ` ${label}`));
  };
  // The stage (with its playing videos) stays in the page; only the side panel is rebuilt, and of it only the
  // parts whose content changed (40 students make many events a minute), in place.
  const parts = [
    isTeacher(room) ? renderTeacherTools(room) : kept(room, "tools", [], () => h("span")),
    kept(room, "tabs", [room.tab, tabs.map((tab) => (tab === "hands" ? room.hands.length : tab === "chat" ? room.unread
      : room.lobby.length))], () => h("div", { class: "tabs", role: "tablist" }, tabs.map((tab) =>
      h("button", { role: "tab", class: room.tab === tab ? "tab active" : "tab", "aria-selected": room.tab === tab,
                    "data-tab": tab, "data-key": `tab-${tab}`, onclick: () => { room.tab = tab; render(room); } },
        t("room." + tab), counter(tab))))),
    room.layout.panel,
  ];
  keptChildren(room, "panel", room.layout.panel, panelSignature(room), () => [renderTab(room)]);
  placeChildren(room.layout.side, parts);
  if (focused) room.layout.root.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  updateHeader(room);
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
  // The grid slots' videos wait here when their tile is on another page of the gallery.
  const parked = h("div", { class: "parked", hidden: true });
  for (let i = 1; i <= GRID_SLOTS; i += 1) {
    slots[`grid_${i}`] = media(`grid_${i}`, "video");
    parked.append(slots[`grid_${i}`]);
  }
  const placeholder = h("div", { class: "stage-placeholder" });
  const stage = h("section", { class: "stage", "aria-label": t("room.participants") },
    placeholder, slots.screen, slots.teacher_camera, slots.stage, AUDIO_SLOTS.map((s) => slots[s]),
    h("span", { class: "rec", role: "status", hidden: true }, t("room.recording")));
  const controls = h("div", { class: "controls" });
  const selfView = h("video", { class: "self-view", autoplay: true, playsinline: true, hidden: true,
                                "aria-label": t("room.self_view") });
  selfView.muted = true;
  const selfScreen = h("video", { class: "self-screen", autoplay: true, playsinline: true, hidden: true,
                                  "aria-label": t("room.self_screen") });
  selfScreen.muted = true;
  const screenRule = h("p", { class: "screen-rule muted", role: "status", hidden: true });
  const side = h("section", { class: "side" });
  const panel = h("div", { class: "tab-panel", role: "tabpanel" }); // the open tab's content
  const people = h("ul", { class: "people" }); // its participant list: rows stay while they are the same
  const chat = h("div", { class: "chat" }); // the chat tab: its log and its form
  const chatLog = h("ol", { class: "chat-log", "aria-live": "polite" });
  const linkBanner = h("div", { class: "link-banner", role: "status", hidden: true },
    h("span", { class: "text" }),
    h("button", { class: "small dismiss", "aria-label": t("link.dismiss"), title: t("link.dismiss"),
                  onclick: () => { room.linkDismissed = linkKey(room.link); updateLink(room); } }, "×"));
  const saver = h("div", { class: "saver", role: "group", "aria-label": t("saver.title") });
  const dataUsed = h("span", { class: "data-used muted", role: "status", hidden: true });
  const pollBox = h("div", { class: "poll-box", hidden: true }); // the quick poll, above the stage
  // The header: the period, a clock, and (teacher) the lobby's count, whatever tab is open.
  const title = h("span", { class: "room-title" });
  const clock = h("time", { class: "room-clock", title: t("room.clock") });
  const lobbyBadge = h("button", { class: "lobby-badge", hidden: true,
                                   onclick: () => { room.tab = "participants"; render(room); } });
  const notices = h("ul", { class: "room-notices", "aria-live": "polite" });
  const header = h("header", { class: "room-header" }, h("h1", {}, title), clock, lobbyBadge);
  const gallery = h("section", { class: "gallery", "aria-label": t("gallery.title"), hidden: true },
    h("div", { class: "gallery-tiles" }), h("nav", { class: "gallery-pages", "aria-label": t("gallery.pages") }));
  const root = h("div", { class: "room", "data-role": room.state.you.role },
    h("div", { class: "room-top" }, header, notices),
    h("div", { class: "main-column" }, linkBanner, pollBox, stage,
      h("div", { class: "control-row" }, controls, selfView, selfScreen), screenRule,
      h("div", { class: "saver-row" }, saver, dataUsed), gallery, parked), side);
  room.tileCache = new Map();
  room.rowCache = new Map();
  room.menuCache = new Map();
  room.parts = {};
  room.layout = { root, stage, controls, side, panel, people, chat, chatLog, slots, placeholder, selfView, selfScreen,
                  screenRule, linkBanner, saver, dataUsed, pollBox, title, clock, lobbyBadge, notices, gallery, parked };
  // A click elsewhere closes an open action menu.
  root.addEventListener("click", (event) => {
    if (room.menuFor && !event.target.closest(".actions")) { room.menuFor = null; render(room); }
  });
  mount(root);
  tick(room);
  updateNotices(room);
}

function updateHeader(room) {
  const layout = room.layout;
  if (!layout) return;
  layout.title.textContent = periodTitle(room) || t("room.title");
  const count = isTeacher(room) ? room.lobby.length : 0;
  layout.lobbyBadge.hidden = !count;
  layout.lobbyBadge.textContent = count ? t("alert.lobby_badge", { count }) : "";
}

function updateStage(room) {
  if (!room.layout) return;
  const { slots, stage, placeholder } = room.layout;
  for (const [slot, element] of Object.entries(slots)) {
    const filled = Boolean(room.slots[slot]);
    element.hidden = !filled;
    if (filled && element.paused && element.srcObject) element.play().catch(() => {});
  }
  stage.classList.toggle("has-screen", Boolean(room.slots.screen));
  // Your own picture and your own shared screen, as the class sees them.
  const preview = (element, track) => {
    if (element.srcObject?.getVideoTracks()[0] !== track) element.srcObject = track ? new MediaStream([track]) : null;
    element.hidden = !track;
  };
  preview(room.layout.selfView, room.media?.local.camera);
  preview(room.layout.selfScreen, room.media?.local.screen);
  updateScreenRule(room);
  updateGallery(room);
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

// One screen slot: the teacher's share beats a student's. Both are told, so nobody wonders.
function updateScreenRule(room) {
  const rule = room.layout.screenRule;
  const teacher = room.state.participants.find((p) => p.role === "teacher");
  const sharing = room.state.participants.filter((p) => LEARNERS.has(p.role) && p.media?.screen);
  let text = "";
  if (isTeacher(room) && room.media?.isOn("screen") && sharing.length) {
    text = t("room.screen_rule_teacher", { names: formatList(sharing.map((p) => p.name)) });
  } else if (LEARNERS.has(room.state.you.role) && room.media?.isOn("screen") && teacher?.media?.screen) {
    text = t("room.screen_rule_student");
  }
  rule.textContent = text;
  rule.hidden = !text;
}

// -- the gallery: every student's tile, a page at a time; the teacher's own tile first ---------------------------
function gallerySlots(room) {
  const of = {};
  for (let i = 1; i <= GRID_SLOTS; i += 1) {
    const content = room.slots[`grid_${i}`];
    if (content) of[content.participant_id] = `grid_${i}`;
  }
  return of;
}

function updateGallery(room) {
  const { gallery, slots, parked } = room.layout;
  const slotOf = gallerySlots(room);
  const teacher = isTeacher(room);
  // The teacher sees every student; others see the classmates the server forwards (when it does).
  let people = room.state.participants.filter((p) => LEARNERS.has(p.role) && (teacher || slotOf[p.participant_id]));
  // In order of arrival; the server forwards the cameras of the page shown (media:grid). A server without
  // media:grid forwards the first 12 cameras: then those come first, so that they are on the first page.
  if (room.gridChoice === false) {
    people = [...people.filter((p) => slotOf[p.participant_id]), ...people.filter((p) => !slotOf[p.participant_id])];
  }
  const tiles = teacher ? [{ self: true }, ...people] : people;
  gallery.hidden = !tiles.length || (!teacher && !people.length);
  const pages = Math.max(1, Math.ceil(tiles.length / PAGE_SIZE));
  room.galleryPage = Math.min(room.galleryPage, pages - 1);
  const shown = tiles.slice(room.galleryPage * PAGE_SIZE, (room.galleryPage + 1) * PAGE_SIZE);
  if (teacher) chooseGrid(room, shown.filter((p) => !p.self).map((p) => p.participant_id));
  // Tiles are kept between updates and rebuilt only when what they show changed: a playing video is moved
  // only when its slot now shows someone else (40 students make many updates a minute).
  const cache = room.tileCache;
  const elements = shown.map((p) => {
    const key = p.self ? "self" : p.participant_id;
    const signature = tileSignature(room, p, slotOf);
    const hit = cache.get(key);
    if (hit && hit.signature === signature && (!hit.video || hit.element.contains(hit.video))) return hit.element;
    const element = p.self ? selfTile(room) : studentTile(room, p, slotOf[p.participant_id]);
    cache.set(key, { signature, element, video: element.querySelector("video") });
    return element;
  });
  for (const key of [...cache.keys()]) {
    if (key !== "self" && !room.state.participants.some((p) => p.participant_id === key)) cache.delete(key);
  }
  const box = gallery.querySelector(".gallery-tiles");
  const same = box.children.length === elements.length && elements.every((e, i) => box.children[i] === e);
  if (!same) box.replaceChildren(...elements);
  // The videos no shown tile holds wait, parked (still in the page: they keep their stream).
  const held = (video) => elements.some((e) => e.contains(video));
  for (let i = 1; i <= GRID_SLOTS; i += 1) {
    const video = slots[`grid_${i}`];
    if (video.parentNode !== parked && !held(video)) parked.append(video);
  }
  if (teacher && room.layout.selfView.parentNode !== parked && !held(room.layout.selfView)) parked.append(room.layout.selfView);
  for (const video of box.querySelectorAll("video")) if (video.paused && video.srcObject) video.play().catch(() => {});
  const nav = gallery.querySelector(".gallery-pages");
  if (pages <= 1) { nav.replaceChildren(); return; }
  const go = (page) => { room.galleryPage = page; updateGallery(room); };
  nav.replaceChildren(
    h("button", { class: "small", disabled: room.galleryPage === 0, "aria-label": t("gallery.previous"),
                  onclick: () => go(room.galleryPage - 1) }, "‹"),
    ...Array.from({ length: pages }, (_, i) => h("button", {
      class: i === room.galleryPage ? "small page active" : "small page", "aria-current": i === room.galleryPage ? "page" : null,
      "aria-label": t("gallery.page", { page: i + 1, pages }), "data-page": i + 1, onclick: () => go(i) }, String(i + 1))),
    h("button", { class: "small", disabled: room.galleryPage === pages - 1, "aria-label": t("gallery.next"),
                  onclick: () => go(room.galleryPage + 1) }, "›"),
    h("span", { class: "muted" }, t("gallery.page", { page: room.galleryPage + 1, pages })));
}

// Ask the server for the cameras of the page shown (only when the page's people changed).
async function chooseGrid(room, ids) {
  const wanted = JSON.stringify(ids.slice(0, GRID_SLOTS));
  if (room.gridChoice === false || room.gridSent === wanted || !room.connection.socket?.connected) return;
  room.gridSent = wanted;
  const answer = await room.connection.request("media:grid", { participant_ids: JSON.parse(wanted) });
  if (room !== current || answer.ok) return;
  if (answer.error?.code === "unknown_event") { room.gridChoice = false; updateGallery(room); }
  else if (room.gridSent === wanted) room.gridSent = null; // asked again at the next update
}

function tileSignature(room, p, slotOf) {
  if (p.self) {
    const you = room.state.participants.find((x) => x.participant_id === room.state.you.participant_id);
    return JSON.stringify([currentLanguage(), room.media?.local.camera?.id ?? null, you?.media ?? null, room.state.you.name]);
  }
  const hand = room.hands.find((x) => x.participant_id === p.participant_id);
  return JSON.stringify([currentLanguage(), p.name, slotOf[p.participant_id] ?? null, p.media ?? null, hand?.position ?? null,
    room.gridChoice === false]);
}

function selfTile(room) {
  const you = room.state.participants.find((x) => x.participant_id === room.state.you.participant_id);
  const own = room.media?.local.camera;
  return h("figure", { class: room.speaking.has(room.state.you.participant_id) ? "tile self speaking" : "tile self",
                       "data-participant": room.state.you.participant_id },
    own ? room.layout.selfView : h("span", { class: "avatar", "aria-hidden": "true", "data-initials": initials(room.state.you.name) }),
    h("figcaption", {}, h("span", { class: "tile-name" }, t("gallery.you", { name: room.state.you.name })),
      you ? stateIcons(room, you, ["microphone", "camera", "screen"]) : null));
}

function studentTile(room, p, slot) {
  const video = slot ? room.layout.slots[slot] : null;
  return h("figure", { class: room.speaking.has(p.participant_id) ? "tile speaking" : "tile",
                       "data-participant": p.participant_id, "data-tile": slot || "" },
    video || h("span", { class: "avatar", "aria-hidden": "true", "data-initials": initials(p.name) }),
    h("figcaption", {}, h("span", { class: "tile-name" }, p.name), stateIcons(room, p, ["microphone", "camera", "hand"])),
    p.media?.camera && !video && room.gridChoice === false ? h("span", { class: "tile-note" }, t("gallery.not_shown")) : null);
}

function initials(name) {
  const words = (name || "").trim().split(/\s+/);
  return ((words.length > 1 ? words[words.length - 2][0] : "") + (words[words.length - 1]?.[0] || "")).toUpperCase();
}

// -- icons: inline SVG, each with words for screen readers ----------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
const PATHS = {
  microphone: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z",
  camera: "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z",
  hand: "M18 7a1.5 1.5 0 0 0-1.5 1.5V12h-1V4.5a1.5 1.5 0 0 0-3 0V12h-1V3.5a1.5 1.5 0 0 0-3 0V12h-1V6.5a1.5 1.5 0 0 0-3 0V15a7 7 0 0 0 14 0V8.5A1.5 1.5 0 0 0 18 7z",
  screen: "M20 4H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h6v2H8v2h8v-2h-2v-2h6a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm0 12H4V6h16v10z",
};

function svgIcon(name, state) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (name === "link") {
    const bars = { good: 3, weak: 2, bad: 1 }[state] ?? 0;
    [[4, 16, 4], [10, 11, 9], [16, 6, 14]].forEach(([x, y, height], i) => {
      const rect = document.createElementNS(SVG, "rect");
      for (const [k, v] of Object.entries({ x, y, width: 4, height })) rect.setAttribute(k, v);
      rect.setAttribute("class", i < bars ? "bar lit" : "bar");
      svg.append(rect);
    });
    return svg;
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  if (state === "off") {
    const slash = document.createElementNS(SVG, "path");
    slash.setAttribute("d", "M3 3l18 18");
    slash.setAttribute("class", "slash");
    svg.append(slash);
  }
  return svg;
}

// One icon: `data-icon` and `data-state` for tests and styles, the words in `aria-label`/`title`.
function icon(name, state, label) {
  return h("span", { class: `icon icon-${name}`, role: "img", "data-icon": name, "data-state": state,
                     "aria-label": label, title: label }, svgIcon(name, state));
}

function stateIcons(room, p, which = ["microphone", "camera", "hand", "screen", "link"]) {
  const hand = room.hands.find((x) => x.participant_id === p.participant_id);
  const quality = room.quality?.[p.participant_id]?.quality;
  const parts = [];
  for (const name of which) {
    if (name === "microphone" || name === "camera") {
      const on = Boolean(p.media?.[name]);
      parts.push(icon(name, on ? "on" : "off", t(`icon.${name}_${on ? "on" : "off"}`)));
    } else if (name === "hand") {
      parts.push(hand ? icon("hand", "on", t("icon.hand", { position: hand.position }))
        : h("span", { class: "icon-space", "data-icon": "hand", "data-state": "off" }));
    } else if (name === "screen") {
      parts.push(p.media?.screen ? icon("screen", "on", t("icon.screen"))
        : h("span", { class: "icon-space", "data-icon": "screen", "data-state": "off" }));
    } else if (name === "link" && quality) {
      const details = linkInfo(room, p)?.textContent;
      const element = icon("link", quality, t(`icon.link_${quality}`));
      if (details) element.title = `${t(`icon.link_${quality}`)} · ${details}`;
      parts.push(element);
    }
  }
  return h("span", { class: "icons" }, parts);
}

// -- the active speaker: the received voices' levels, a few times a second -------------------------------------
async function sampleSpeakers(room) {
  if (room !== current || !room.media || !room.layout || room.sampling) return;
  room.sampling = true;
  let levels;
  try {
    levels = await room.media.audioLevels(); // slot -> 0..1
  } catch {
    levels = {};
  } finally {
    room.sampling = false;
  }
  if (room !== current || !room.layout) return;
  const speaking = new Set();
  for (const [slot, level] of Object.entries(levels)) {
    const who = room.slots[slot]?.participant_id;
    if (who && level > SPEAKING_LEVEL) speaking.add(who);
  }
  // Your own voice too, from your microphone's level (cheap: an analyser node reads it).
  if (room.media.ownLevel() > SPEAKING_LEVEL) speaking.add(room.state.you.participant_id);
  const changed = speaking.size !== room.speaking.size || [...speaking].some((id) => !room.speaking.has(id));
  if (!changed) return;
  room.speaking = speaking;
  for (const element of room.layout.root.querySelectorAll("[data-participant]")) {
    element.classList.toggle("speaking", speaking.has(element.dataset.participant));
  }
}

// -- media ------------------------------------------------------------------------------------------------------
async function startMedia(room) {
  room.media?.close();
  room.slots = {};
  updateStage(room);
  const media = room.media = new MediaSession({
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
  queueRender(room); // the controls come with the media session, not with the room's next event
  try {
    await room.media.subscribe();
    // A new join starts without data saver (a resume keeps it): ask again for this device's choice.
    const wish = storedSaver();
    if (wish !== "off") await chooseSaver(room, wish, false);
    if (room.state.you.role !== "observer") await room.media.startPublishing();
  } catch (e) {
    // Media connections of a dropped connection are made again after the resume: say nothing of them.
    if (room === current && media === room.media && !lostConnection(room, e)) {
      banner(e.code ? roomErrorText(e) : t("media.failed"), "error");
    }
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
  // Students: the hand in one tap from the main view, with its place in the queue beside it.
  if (LEARNERS.has(you.role)) {
    const mine = room.hands.find((hand) => hand.participant_id === you.participant_id);
    controls.push(h("button", { class: mine ? "toggle on hand-button" : "primary hand-button", "data-key": "hand",
                                onclick: () => ask(room, mine ? "hand:lower" : "hand:raise", {}) },
      h("span", { class: "icon icon-hand", "aria-hidden": "true" }, svgIcon("hand", "on")), " ", mine ? t("room.lower_hand") : t("room.raise_hand")));
    if (mine) {
      controls.push(h("span", { class: "hand-position", role: "status" },
        t("room.hand_position", { position: mine.position })));
    }
  }
  return controls;
}

async function toggleSource(room, source) {
  try {
    if (room.media.isOn(source)) await room.media.switchOff(source);
    else await room.media.switchOn(source, (ended) => { room.media.switchOff(ended).then(() => render(room)); });
  } catch (e) {
    const known = { NotAllowedError: "media.denied", NotFoundError: "media.no_device" }[e.name];
    banner(known ? t(known) : e.code ? roomErrorText(e) : t("error.generic"), "error");
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

// -- the lobby: waiting, and meanwhile choosing and testing the camera and microphone --------------------------
function renderLobbyWait(room) {
  const text = room.waiting.locked ? t("lobby.locked")
    : room.waiting.teacher_present ? t("lobby.waiting") : t("lobby.no_teacher");
  if (room.lobbyView?.root.isConnected) { room.lobbyView.status.textContent = text; return; }
  const status = h("p", { role: "status" }, text);
  const check = renderDeviceCheck(room);
  const root = h("section", { class: "card narrow lobby-wait", "data-screen": "lobby" },
    h("h1", {}, t("lobby.title")), status, check.section);
  room.lobbyView = { root, status, startTest: check.test };
  mount(root);
}

function renderDeviceCheck(room) {
  const camera = h("select", { id: "device-camera" });
  const microphone = h("select", { id: "device-microphone" });
  const preview = h("video", { class: "device-preview", autoplay: true, playsinline: true, hidden: true,
                               "aria-label": t("device.preview") });
  preview.muted = true;
  const meter = h("meter", { class: "device-meter", min: 0, max: 1, value: 0, "aria-label": t("device.level") });
  const result = h("p", { class: "device-result muted", role: "status" }, t("device.explain"));
  const fill = async () => {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const chosen = deviceChoice();
    for (const [select, kind, source] of [[camera, "videoinput", "camera"], [microphone, "audioinput", "microphone"]]) {
      const list = devices.filter((d) => d.kind === kind);
      // A device's own name is the system's words (often English), not the page's: lang "und".
      select.replaceChildren(...list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === chosen[source],
                                                                lang: d.label ? "und" : null },
        d.label || t(`device.${source}_n`, { n: i + 1 }))));
    }
  };
  const stop = () => {
    room.deviceTest?.stop();
    room.deviceTest = null;
  };
  const test = async () => {
    stop();
    setDeviceChoice({ camera: camera.value || null, microphone: microphone.value || null });
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: camera.value ? { deviceId: { exact: camera.value } } : true,
        audio: microphone.value ? { deviceId: { exact: microphone.value } } : true });
      preview.srcObject = stream;
      preview.hidden = false;
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      context.createMediaStreamSource(stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      let heard = 0;
      const timer = setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        const level = Math.min(1, Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length) * 4);
        meter.value = level;
        if (level > 0.05) heard += 1;
        result.textContent = heard > 2 ? t("device.heard") : t("device.speak");
      }, 100);
      room.deviceTest = { stop: () => { clearInterval(timer); context.close(); stream.getTracks().forEach((x) => x.stop());
                                        preview.srcObject = null; preview.hidden = true; meter.value = 0; } };
      await fill(); // the devices' names are known once the browser may use them
      setDeviceChoice({ camera: camera.value || null, microphone: microphone.value || null });
    } catch (e) {
      const known = { NotAllowedError: "media.denied", NotFoundError: "media.no_device" }[e.name];
      result.textContent = t(known || "media.failed");
    }
  };
  for (const select of [camera, microphone]) select.addEventListener("change", () => { if (room.deviceTest) test(); else setDeviceChoice({ camera: camera.value || null, microphone: microphone.value || null }); });
  fill().catch(() => {});
  return { test, section: h("section", { class: "device-check", "aria-labelledby": "device-title" },
    h("h2", { id: "device-title" }, t("device.title")),
    h("label", { for: "device-camera" }, t("device.camera")), camera,
    h("label", { for: "device-microphone" }, t("device.microphone")), microphone,
    h("div", { class: "device-actions" },
      h("button", { class: "primary", onclick: test }, t("device.test")),
      h("button", { onclick: () => { stop(); result.textContent = t("device.explain"); } }, t("device.stop"))),
    preview, h("label", { class: "device-meter-label" }, t("device.level"), meter), result) };
}

// -- the teacher's tools: states said apart from the buttons, which say what they do ---------------------------
// The bar stays in the page and each of its parts is built again only when what it shows changed: a student
// switching the microphone on changes the count, and must not rebuild the button the teacher is pressing (a click
// whose button is replaced between the press and the release is lost).
function renderTeacherTools(room) {
  const locks = room.state.locks;
  const recording = room.state.recording;
  const paused = room.state.recording_state === "paused";
  const speaking = room.state.participants.filter((p) => LEARNERS.has(p.role) && p.media?.microphone);
  const pollOpen = room.poll?.state === "open";
  const cache = room.toolParts ||= new Map();
  const part = (id, signature, build) => keptById(cache, id, signature, build);
  const toggle = (what, on, off) => part(`lock-${what}`, locks[what], () => h("button", { "data-lock": what,
    "data-key": `lock-${what}`, onclick: () => ask(room, "mod:lock", { what, locked: !room.state.locks[what] }) },
    locks[what] ? off : on));
  const stateChip = (what) => h("li", { class: locks[what] ? "state locked" : "state", "data-state": what },
    t(`room.state.${what}`), ": ", h("strong", {}, t(locks[what] ? "room.state.locked" : "room.state.open")));
  const bar = room.toolBar ||= h("div", { class: "teacher-tools" }, h("ul", { class: "room-states" }),
    h("div", { class: "tool-buttons" }));
  const [states, buttons] = bar.children;
  states.setAttribute("aria-label", t("room.state.title"));
  placeChildren(states, [
    ...["room", "microphones", "cameras", "chat"].map((what) => part(`state-${what}`, locks[what], () => stateChip(what))),
    part("state-speaking", speaking.length, () => h("li", { class: "state", "data-state": "speaking" },
      t("room.state.mics_on", { count: speaking.length })))]);
  placeChildren(buttons, [
    part("poll", pollOpen, () => h("button", { class: "primary", "data-poll-action": "compose", disabled: pollOpen,
                                               onclick: () => openPollForm(room) }, t("poll.title"))),
    part("bank", pollOpen, () => h("button", { class: "primary", "data-poll-action": "bank", disabled: pollOpen,
                                               onclick: () => openBankPicker(room) }, t("quiz.from_bank"))),
    part("record", recording, () => h("button", { class: recording ? "toggle on record" : "record",
      "aria-pressed": recording, onclick: () => ask(room, recording ? "rec:stop" : "rec:start", {}) },
      recording ? t("rec.stop") : t("rec.start"))),
    recording ? part("pause", paused, () => h("button", { class: paused ? "toggle on" : "toggle", "aria-pressed": paused,
                                                           onclick: () => ask(room, paused ? "rec:resume" : "rec:pause", {}) },
      paused ? t("rec.resume") : t("rec.pause"))) : null,
    part("mute-all", speaking.length > 0, () => h("button", { "data-key": "mute-all", disabled: !speaking.length,
                                                              onclick: () => muteAll(room) }, t("room.mute_all"))),
    toggle("microphones", t("room.lock_mics"), t("room.unlock_mics")),
    toggle("cameras", t("room.lock_cams"), t("room.unlock_cams")),
    toggle("chat", t("room.lock_chat"), t("room.unlock_chat")),
    toggle("room", t("room.lock"), t("room.unlock")),
    part("end", null, () => h("button", { class: "danger", onclick: async () => {
      const ok = await dialogBox({ title: t("room.end"), message: t("room.end_confirm"), confirm: t("room.end"),
                                   danger: true });
      if (ok !== null) ask(room, "room:end");
    } }, t("room.end")))]);
  return bar;
}

async function muteAll(room) {
  const on = room.state.participants.filter((p) => LEARNERS.has(p.role) && p.media?.microphone);
  await Promise.all(on.map((p) => ask(room, "mod:mute", { participant_id: p.participant_id, source: "microphone" })));
  if (room === current) notice(room, t("room.muted_all", { count: on.length }), "info");
}

function renderTab(room) {
  if (room.tab === "participants") return renderParticipants(room);
  if (room.tab === "hands") return renderHands(room);
  if (room.tab === "handouts") return renderHandouts(room);
  return renderChat(room);
}

async function deny(room, entry) {
  const reason = await dialogBox({ title: t("lobby.deny_title", { name: entry.name }), input: t("lobby.deny_reason"),
                                   confirm: t("lobby.deny"), danger: true });
  if (reason === null) return; // Cancel: nobody is denied
  ask(room, "lobby:deny", { participant_ids: [entry.participant_id], reason: reason || null });
}

function renderParticipants(room) {
  const teacher = isTeacher(room);
  // Kept while the lobby is the same: the list is rebuilt with the panel (a link report every few seconds), and
  // an "admit" button rebuilt under a click would lose it.
  const lobby = teacher ? kept(room, "lobby", [room.lobby], () => h("div", { class: "lobby-panel" },
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
      h("button", { onclick: () => deny(room, entry) }, t("lobby.deny"))))))) : null;
  const people = room.layout.people;
  // Rows stay in the list: a row whose person changed gets new content, but its element and its action menu (kept
  // while the menu shows the same) stay in place, so that a click on the menu is not lost to a link report.
  placeChildren(people, room.state.participants.map((p) => {
    const q = room.quality?.[p.participant_id];
    const hand = room.hands.find((x) => x.participant_id === p.participant_id);
    const signature = JSON.stringify([currentLanguage(), p, q ?? null, hand?.position ?? null,
      room.menuFor === p.participant_id, room.state.stage === p.participant_id]);
    const hit = room.rowCache.get(p.participant_id);
    const element = hit?.element ?? h("li", { "data-participant": p.participant_id, class: "person" });
    element.classList.toggle("speaking", room.speaking.has(p.participant_id));
    if (hit?.signature === signature) return element;
    placeChildren(element, [
      h("span", { class: "name" }, p.name),
      p.role !== "student" ? h("span", { class: "muted role" }, t("role." + p.role)) : null,
      p.role === "observer" ? null : stateIcons(room, p), // observers never send anything
      p.connection !== "connected" ? h("span", { class: "badge warn" }, t("room.reconnecting")) : null,
      ["weak", "bad"].includes(q?.quality) ? h("span", { class: "badge warn", title: `${q.rtt_ms ?? "?"} ms` }, t("room.weak"))
        : null,
      teacher ? linkInfo(room, p) : null,
      teacher && LEARNERS.has(p.role) ? keptMenu(room, p) : null]);
    room.rowCache.set(p.participant_id, { signature, element });
    return element;
  }));
  if (room.rowCache.size > room.state.participants.length) {
    const here = new Set(room.state.participants.map((p) => p.participant_id));
    for (const key of [...room.rowCache.keys()]) {
      if (!here.has(key)) { room.rowCache.delete(key); room.menuCache.delete(key); }
    }
  }
  return [lobby, h("h2", {}, `${t("room.participants")} (${room.state.participants.length})`), people,
    teacher ? renderAbsent(room) : null];
}

// Who of the class list is not here (neither in the room nor in the lobby).
function renderAbsent(room) {
  if (!room.roster) return null;
  const present = new Set(room.state.participants.map((p) => p.user_id).filter(Boolean));
  const waiting = new Set(room.lobby.map((e) => e.personal_id));
  const absent = room.roster.filter((s) => !present.has(s.id) && !waiting.has(s.personal_id));
  const details = h("details", { class: "absent", open: room.absentOpen,
                                 ontoggle: (event) => { room.absentOpen = event.target.open; } },
    h("summary", { "data-key": "absent" }, t("room.absent", { count: absent.length, total: room.roster.length })),
    absent.length ? h("ul", { class: "absent-list" }, absent.map((s) => h("li", { "data-user": s.id }, s.full_name)))
      : h("p", {}, t("room.absent_none")));
  return details;
}

// A student's action menu, built again only when what it shows changed.
function keptMenu(room, p) {
  return keptById(room.menuCache, p.participant_id, [room.menuFor === p.participant_id, p.name,
    p.media?.microphone ?? false, p.permissions, room.state.stage === p.participant_id], () => participantMenu(room, p));
}

// One menu of actions per student, instead of seven buttons.
function participantMenu(room, p) {
  const open = room.menuFor === p.participant_id;
  const back = () => room.layout?.side.querySelector(`[data-key="menu-${CSS.escape(p.participant_id)}"]`)?.focus();
  const close = () => { room.menuFor = null; render(room); back(); };
  const act = (fn) => () => { room.menuFor = null; fn(); render(room); back(); };
  const permit = (name, value) => ask(room, "mod:permit", { participant_id: p.participant_id, permissions: { [name]: value } });
  let index = 0;
  const item = (label, fn, extra = {}) => h("button", { role: "menuitem", tabindex: "-1", onclick: act(fn),
                                                         "data-key": `item-${p.participant_id}-${index++}`, ...extra }, label);
  const toggle = h("button", { class: "small menu-button", "aria-haspopup": "menu", "aria-expanded": open,
                               "data-key": `menu-${p.participant_id}`, "aria-label": t("room.actions_for", { name: p.name }),
                               title: t("room.actions"),
                               onclick: () => { room.menuFor = open ? null : p.participant_id; render(room); if (!open) focusMenu(room); } },
    "⋯ ", h("span", { class: "menu-label" }, t("room.actions")));
  if (!open) return h("span", { class: "actions" }, toggle);
  const menu = h("div", { class: "menu", role: "menu", "aria-label": t("room.actions_for", { name: p.name }),
                          onkeydown: (event) => menuKeys(event, close) },
    p.media?.microphone ? item(t("room.mute"), () => ask(room, "mod:mute", { participant_id: p.participant_id, source: "microphone" })) : null,
    item(p.permissions.microphone ? t("room.revoke_mic") : t("room.allow_mic"), () => permit("microphone", !p.permissions.microphone)),
    item(p.permissions.screen ? t("room.revoke_screen") : t("room.allow_screen"), () => permit("screen", !p.permissions.screen)),
    item(p.permissions.chat ? t("room.mute_chat") : t("room.unmute_chat"), () => permit("chat", !p.permissions.chat)),
    item(room.state.stage === p.participant_id ? t("room.unstage") : t("room.stage"), () => ask(room, "mod:stage", {
      participant_id: room.state.stage === p.participant_id ? null : p.participant_id })),
    item(t("chat.private"), () => { room.privateTo = p; room.tab = "chat"; }),
    item(t("room.kick"), () => kick(room, p), { class: "danger" }));
  return h("span", { class: "actions open" }, toggle, menu);
}

function focusMenu(room) {
  room.layout?.side.querySelector(".menu [role=menuitem]")?.focus();
}

function menuKeys(event, close) {
  const items = [...event.currentTarget.querySelectorAll("[role=menuitem]")];
  const at = items.indexOf(document.activeElement);
  if (event.key === "Escape") { event.preventDefault(); close(); }
  else if (event.key === "ArrowDown") { event.preventDefault(); items[(at + 1) % items.length].focus(); }
  else if (event.key === "ArrowUp") { event.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
}

async function kick(room, p) {
  const reason = await dialogBox({ title: t("room.kick_title", { name: p.name }), input: t("room.kick_reason"),
                                   confirm: t("room.kick"), danger: true });
  if (reason !== null) ask(room, "mod:kick", { participant_id: p.participant_id, reason: reason || null });
}

function renderChat(room) {
  const you = room.state.you;
  const teacherP = room.state.participants.find((p) => p.role === "teacher");
  const targets = isTeacher(room)
    ? room.state.participants.filter((p) => p.participant_id !== you.participant_id)
    : teacherP ? [teacherP] : [];
  // The form stays while its choices are the same: a message arriving does not take the box from under a
  // person typing (a phone's keyboard, Vietnamese typed through an input method) nor "Gửi" from under a click.
  const form = you.role === "observer" && !targets.length ? null
    : kept(room, "chat-form", [you.role, targets.map((p) => [p.participant_id, p.name]),
      room.privateTo?.participant_id ?? null], () => chatForm(room, targets));
  const log = room.layout.chatLog;
  placeChildren(log, room.chat.map((m) => chatMessage(room, m)));
  requestAnimationFrame(() => { log.scrollTop = log.scrollHeight; });
  placeChildren(room.layout.chat, [log, form]);
  return room.layout.chat;
}

function chatForm(room, targets) {
  const you = room.state.you;
  const select = h("select", { id: "chat-to", "aria-label": t("chat.private"),
                               onchange: (event) => { room.privateTo = targets.find((p) => p.participant_id === event.target.value) || null; } },
    you.role !== "observer" ? h("option", { value: "" }, t("chat.to_everyone")) : null,
    targets.map((p) => h("option", { value: p.participant_id, selected: room.privateTo?.participant_id === p.participant_id },
      t("chat.private_to", { name: p.name }))));
  const input = h("input", { id: "chat-input", type: "text", maxlength: 2000, placeholder: t("chat.placeholder"),
                             "aria-label": t("chat.placeholder"), autocomplete: "off", "data-key": "chat-input",
                             oninput: (event) => { room.chatDraft = event.target.value; } });
  input.value = room.chatDraft;
  return h("form", { class: "chat-form", onsubmit: async (event) => {
    event.preventDefault();
    const text = room.chatDraft.trim();
    if (!text) return;
    const to = select.value || undefined;
    // The box empties at once (the message comes back to the log before the answer); a refusal puts it back.
    room.chatDraft = "";
    const box = document.getElementById("chat-input");
    if (box) box.value = "";
    const answer = await ask(room, "chat:send", to ? { text, to } : { text });
    if (!answer.ok && room === current && !room.chatDraft) {
      room.chatDraft = text;
      const again = document.getElementById("chat-input");
      if (again) again.value = text;
    }
    document.getElementById("chat-input")?.focus();
  } }, select, input, h("button", { type: "submit", class: "primary" }, t("chat.send")));
}

// One message of the log, kept while it shows the same (its "Xóa" button is not taken from under a click).
function chatMessage(room, m) {
  const teacher = isTeacher(room);
  return keptById(room.messageCache, m.message_id, [m.deleted ?? false, teacher], () => h("li",
    { class: m.to ? "message private" : "message", "data-message": m.message_id },
    h("span", { class: "meta" }, `${formatTime(new Date(m.at * 1000).toISOString())} ${m.from.name}`,
      m.to ? ` → ${m.to.name}` : ""),
    m.deleted ? h("em", { class: "deleted" }, t("chat.deleted"))
      : m.kind === "handout"
        ? h("a", { href: m.handout.url, download: m.handout.filename }, t("chat.handout", { name: m.handout.filename }))
        : h("span", { class: "text" }, m.text),
    teacher && !m.deleted
      ? h("button", { class: "small", onclick: () => ask(room, "chat:delete", { message_id: m.message_id }) },
        t("chat.delete")) : null));
}

// "Gọi phát biểu": the microphone allowed and the hand lowered in one action; "Xong" takes the microphone back.
async function callOn(room, hand) {
  const permitted = await ask(room, "mod:permit", { participant_id: hand.participant_id, permissions: { microphone: true } });
  if (!permitted.ok) return;
  room.calledOn.set(hand.participant_id, hand.name);
  await ask(room, "hand:lower", { participant_id: hand.participant_id });
  render(room);
}

async function done(room, participantId) {
  // With the microphones locked, the grant is taken back; otherwise the microphone is turned off.
  const answer = room.state.locks.microphones
    ? await ask(room, "mod:permit", { participant_id: participantId, permissions: { microphone: false } })
    : await ask(room, "mod:mute", { participant_id: participantId, source: "microphone" });
  if (answer.ok) room.calledOn.delete(participantId);
  render(room);
}

function renderHands(room) {
  const you = room.state.you;
  const mine = room.hands.find((hand) => hand.participant_id === you.participant_id);
  const teacher = isTeacher(room);
  const speakers = [...room.calledOn.entries()].filter(([id]) => room.state.participants.some((p) => p.participant_id === id));
  return h("div", { class: "hands" },
    // Students raise and lower their hand from the main view (beside the camera and microphone).
    mine && !teacher ? h("p", {}, t("room.hand_raised_here")) : null,
    teacher && speakers.length ? h("div", { class: "speakers" }, h("h2", {}, t("room.speaking_now")),
      h("ul", { class: "speaker-list" }, speakers.map(([id, name]) => h("li", { "data-participant": id },
        h("span", { class: "name" }, name),
        h("button", { class: "small", "data-key": `done-${id}`, onclick: () => done(room, id) }, t("room.done")))))) : null,
    teacher && room.hands.length
      ? h("button", { onclick: () => ask(room, "hand:lower", { all: true }) }, t("room.lower_all")) : null,
    room.hands.length ? h("ol", { class: "hand-queue" }, room.hands.map((hand) =>
      h("li", { "data-participant": hand.participant_id }, `#${hand.position} ${hand.name}`,
        teacher ? h("span", { class: "hand-actions" },
          h("button", { class: "small primary", "data-key": `call-${hand.participant_id}`, onclick: () => callOn(room, hand) },
            t("room.call_on")),
          h("button", { class: "small", onclick: () => ask(room, "hand:lower", { participant_id: hand.participant_id }) },
            t("room.lower_hand"))) : null)))
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

// -- polls and quizzes (issue 14) ------------------------------------------------------------------------------
// "Câu hỏi nhanh": the teacher asks A/B/C/D or Đúng/Sai with nothing to type; "Từ ngân hàng câu hỏi": one question
// or a quiz from the teacher's bank (the browser sends the questions' contents: the room never reads the bank).
// Students answer with one tap per choice (or type a short text / a number); the teacher sees the counts live,
// who has not answered and, when named, each student's score; after the reveal each student sees their result.
const POLL_ERRORS = new Set(["poll_open", "poll_closed", "unknown_poll", "unknown_choice", "single_choice",
  "invalid_poll", "rate_limited", "forbidden", "unknown_question", "not_current_question", "answer_final",
  "wrong_kind", "answer_too_long", "not_a_number", "empty_answer", "not_paced", "invalid_question",
  "invalid_payload", "payload_too_large", "offline", "timeout"]);
const CHOICE_KINDS = new Set(["single", "multiple", "truefalse"]);

function onPollEvent(room, name, data) {
  if (name === "poll:counts") {
    if (room.poll?.poll_id === data.poll_id) room.poll.results = data;
  } else {
    if (data.poll?.poll_id !== room.poll?.poll_id) room.pollHidden = null; // a new poll is shown again
    setPoll(room, data.poll);
  }
  renderPoll(room);
}

// A fresh view of the poll (room:state, poll:opened/updated/closed/results): its countdown starts from it.
function setPoll(room, poll) {
  room.poll = poll ?? null;
  room.pollEnds = typeof poll?.deadline_in === "number" && poll.state === "open"
    ? Date.now() + poll.deadline_in * 1000 : null;
  if (room.pollEnds && !room.pollTick) {
    room.pollTick = setInterval(() => {
      if (current !== room || !room.pollEnds) { clearInterval(room.pollTick); room.pollTick = null; return; }
      updateCountdowns(room);
    }, 250);
  }
}

function countdownText(room) {
  const left = Math.max(0, Math.ceil((room.pollEnds - Date.now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

function updateCountdowns(room) {
  for (const element of document.querySelectorAll(".poll-countdown .time")) element.textContent = countdownText(room);
}

function countdown(room, poll) {
  if (!room.pollEnds || poll.state !== "open") return null;
  return h("span", { class: "poll-countdown", role: "timer", "aria-live": "off" },
    t(poll.pace === "one" ? "quiz.time_question" : "quiz.time_left"), " ", h("span", { class: "time" }, countdownText(room)));
}

function pollErrorText(error) {
  const code = error?.code;
  return POLL_ERRORS.has(code) ? t(`poll.error.${code}`) : t("error.generic");
}

async function askPoll(room, name, data) {
  const answer = await room.connection.request(name, data);
  const shown = document.getElementById("banner");
  if (!answer.ok) {
    room.pollBanner = pollErrorText(answer.error);
    banner(room.pollBanner, "error");
  } else if (room.pollBanner && shown?.textContent === room.pollBanner) {
    banner(""); // the poll's last refusal is over (e.g. a number typed again, now sent)
    room.pollBanner = null;
  }
  return answer;
}

function pollLabel(poll, choice) {
  return poll.kind === "truefalse" ? t(`poll.${choice}`) : choice;
}

function pollChoicesText(poll, choices) {
  return formatList(choices.map((c) => pollLabel(poll, c)));
}

// A student's own answer to question `index` (`mine.answers`; a quick poll's view also has it at the top).
function mineOf(poll, index) {
  return poll.mine?.answers?.[String(index)] ?? (index === 0 && poll.mine?.choices ? poll.mine : null);
}

function setMine(poll, index, answer) {
  const mine = poll.mine || { answers: {} };
  mine.answers = { ...(mine.answers || {}), [String(index)]: { ...(mine.answers?.[String(index)] || {}), ...answer } };
  if (poll.quick && index === 0) Object.assign(mine, answer);
  poll.mine = mine;
}

// The counts of question `index`: the teacher's live counts, or the class's after the reveal.
function resultsOf(poll, index) {
  const results = poll.results;
  if (!results) return null;
  return results.questions?.find((q) => q.index === index)
    ?? (index === 0 ? { counts: results.counts, answered: results.answered } : null);
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
  const own = mineOf(poll, 0);
  const mine = own?.choices || [];
  const tap = async (choice) => {
    let choices = [choice];
    if (poll.multiple) {
      choices = mine.includes(choice) ? mine.filter((c) => c !== choice) : [...mine, choice];
      if (!choices.length) return; // an answer has at least one choice
    }
    const answer = await askPoll(room, "poll:answer", { poll_id: poll.poll_id, choices });
    if (answer.ok && room.poll?.poll_id === poll.poll_id) {
      setMine(room.poll, 0, { choices: answer.data.choices });
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
    parts.push(pollChart(poll, resultsOf(poll, 0)));
    if (poll.correct) parts.push(h("p", {}, t("poll.correct_is", { choices: pollChoicesText(poll, poll.correct) })));
    if (student && typeof own?.correct === "boolean") {
      parts.push(h("p", { class: own.correct ? "poll-verdict right" : "poll-verdict wrong", role: "status" },
        t(own.correct ? "poll.right" : "poll.wrong")));
    }
    parts.push(h("button", { onclick: () => { room.pollHidden = poll.poll_id; renderPoll(room); } }, t("poll.hide")));
  }
  return h("div", { class: "poll card", "data-poll": poll.poll_id, "data-state": poll.revealed ? "revealed" : poll.state },
    ...parts);
}

function openPollForm(room) {
  room.bankDraft = null;
  room.pollDraft = { kind: "abcd", options: 4, multiple: false, anonymous: false, correct: [] };
  renderPoll(room);
}

// -- a question or a quiz from the bank ----------------------------------------------------------------------------
function openBankPicker(room) {
  room.pollDraft = null;
  room.bankDraft = { subjects: null, subject: "", topic: "", items: null, chosen: [], timing: "none", seconds: "30",
                     minutes: "10", anonymous: false, changeable: true, title: "", error: "", busy: false };
  renderPoll(room);
  loadBankSubjects(room);
}

async function loadBankSubjects(room) {
  const draft = room.bankDraft;
  try {
    draft.subjects = (await api("GET", "/questions/subjects")).items;
  } catch (e) {
    draft.subjects = [];
    draft.error = bankErrorText(e);
  }
  if (draft.subjects[0] && !draft.subject) draft.subject = draft.subjects[0].subject;
  if (room.bankDraft === draft) { renderPoll(room); if (draft.subject) loadBankQuestions(room); }
}

async function loadBankQuestions(room) {
  const draft = room.bankDraft;
  draft.items = null;
  renderPoll(room);
  const query = new URLSearchParams({ subject: draft.subject });
  if (draft.topic) query.set("topic", draft.topic);
  try {
    draft.items = (await api("GET", `/questions?${query}`)).items;
  } catch (e) {
    draft.items = [];
    draft.error = bankErrorText(e);
  }
  draft.chosen = draft.chosen.filter((id) => draft.items.some((q) => q.id === id));
  if (room.bankDraft === draft) renderPoll(room);
}

// The question as poll:open takes it (only the fields the room knows).
function questionPayload(q) {
  const payload = { kind: q.kind, text: q.text, options: CHOICE_KINDS.has(q.kind) && q.kind !== "truefalse" ? q.options : [],
                    correct: q.correct?.length ? q.correct : null, points: q.correct?.length ? q.points ?? null : null,
                    explanation: q.explanation || null, bank_id: q.id };
  if (q.kind === "number" && q.tolerance !== null && q.tolerance !== undefined) payload.tolerance = q.tolerance;
  if (q.image_url) payload.image_url = q.image_url;
  return payload;
}

async function launchFromBank(room) {
  const draft = room.bankDraft;
  const chosen = draft.items.filter((q) => draft.chosen.includes(q.id));
  if (!chosen.length) { draft.error = t("quiz.pick_some"); return renderPoll(room); }
  const payload = { questions: chosen.map(questionPayload), anonymous: draft.anonymous, final: !draft.changeable,
                    title: draft.title.trim() || (chosen.length > 1 ? (draft.topic || draft.subject) : null) || null };
  if (draft.timing === "per") {
    const seconds = Number(draft.seconds);
    if (!Number.isInteger(seconds) || seconds < 5 || seconds > 600) { draft.error = t("quiz.bad_seconds"); return renderPoll(room); }
    payload.seconds_per_question = seconds;
  } else if (draft.timing === "overall") {
    const minutes = Number(String(draft.minutes).replace(",", "."));
    if (!Number.isFinite(minutes) || minutes * 60 < 10 || minutes > 120) { draft.error = t("quiz.bad_minutes"); return renderPoll(room); }
    payload.time_limit = Math.round(minutes * 60);
  }
  draft.busy = true;
  draft.error = "";
  renderPoll(room);
  const answer = await room.connection.request("poll:open", payload);
  draft.busy = false;
  if (!answer.ok) {
    draft.error = answer.error?.code === "invalid_question" && typeof answer.error?.question === "number"
      ? t("poll.error.invalid_question_n", { n: answer.error.question + 1 }) : pollErrorText(answer.error);
  } else if (room.bankDraft === draft) room.bankDraft = null;
  renderPoll(room);
}

function renderBankPicker(room) {
  const draft = room.bankDraft;
  const redraw = () => renderPoll(room);
  const subjects = draft.subjects || [];
  const topics = subjects.find((s) => s.subject === draft.subject)?.topics?.filter(Boolean) || [];
  const items = draft.items || [];
  const timing = (value, key, extra) => h("div", { class: "quiz-timing" }, h("label", { class: "poll-check" },
    h("input", { type: "radio", name: "quiz-timing", value, checked: draft.timing === value,
                 onchange: () => { draft.timing = value; redraw(); } }), t(key)), extra);
  const number = (name, attrs) => h("input", { type: "number", inputmode: "numeric", class: "quiz-number", value: draft[name],
    "data-focus-key": `quiz-${name}`, disabled: draft.timing !== (name === "seconds" ? "per" : "overall"), ...attrs,
    oninput: (e) => { draft[name] = e.target.value; } });
  return h("div", { class: "poll card quiz-picker", "data-poll": "bank" },
    h("h2", {}, t("quiz.from_bank")),
    draft.subjects === null ? h("p", {}, t("app.loading")) : !subjects.length
      ? h("p", { class: "empty" }, t("quiz.bank_empty"), " ", h("a", { href: "#/bank", target: "_blank", rel: "noopener" }, t("bank.title")))
      : h("div", { class: "poll-row" },
        h("label", {}, t("bank.subject"), h("select", { name: "quiz-subject", onchange: (e) => {
          draft.subject = e.target.value; draft.topic = ""; loadBankQuestions(room);
        } }, subjects.map((s) => h("option", { value: s.subject, selected: s.subject === draft.subject }, s.subject)))),
        h("label", {}, t("bank.topic"), h("select", { name: "quiz-topic", onchange: (e) => {
          draft.topic = e.target.value; loadBankQuestions(room);
        } }, h("option", { value: "" }, t("bank.all_topics")),
        topics.map((name) => h("option", { value: name, selected: name === draft.topic }, name))))),
    draft.subject && draft.items === null ? h("p", {}, t("app.loading")) : null,
    draft.items && !items.length ? h("p", { class: "empty" }, t("bank.none_filtered")) : null,
    items.length ? h("p", { class: "muted" }, t("quiz.tick_hint")) : null,
    items.length ? h("ol", { class: "quiz-pick-list" }, items.map((q) => h("li", { "data-question": q.id },
      h("label", { class: "poll-check" },
        h("input", { type: "checkbox", checked: draft.chosen.includes(q.id), "aria-label": q.text,
                     onchange: (e) => {
                       draft.chosen = e.target.checked ? [...draft.chosen, q.id] : draft.chosen.filter((id) => id !== q.id);
                       redraw();
                     } }),
        h("span", { class: "quiz-pick-text" }, q.text,
          h("span", { class: "muted" }, ` · ${kindWords(q.kind)}${q.topic && !draft.topic ? ` · ${q.topic}` : ""}`
            + (q.points != null ? ` · ${t("bank.points_value", { points: pointsText(q.points) })}` : ""))))))) : null,
    items.length ? h("p", { class: "quiz-chosen", role: "status" },
      draft.chosen.length > 1 ? t("quiz.chosen_quiz", { count: draft.chosen.length })
        : draft.chosen.length ? t("quiz.chosen_one") : t("quiz.chosen_none")) : null,
    items.length ? h("fieldset", { class: "quiz-time" }, h("legend", {}, t("quiz.time")),
      timing("none", "quiz.time_none"),
      timing("per", "quiz.time_per", [number("seconds", { min: 5, max: 600, step: 5, "aria-label": t("quiz.seconds") }),
        " ", t("quiz.seconds")]),
      timing("overall", "quiz.time_overall", [number("minutes", { min: 1, max: 120, step: 1, "aria-label": t("quiz.minutes") }),
        " ", t("quiz.minutes")])) : null,
    items.length && draft.chosen.length > 1 ? h("label", { class: "quiz-title" }, t("quiz.title_label"),
      h("input", { type: "text", maxlength: 200, value: draft.title, "data-focus-key": "quiz-title",
                   placeholder: draft.topic || draft.subject, oninput: (e) => { draft.title = e.target.value; } })) : null,
    items.length ? h("label", { class: "poll-check" }, h("input", { type: "checkbox", checked: draft.anonymous,
      name: "quiz-anonymous", onchange: (e) => { draft.anonymous = e.target.checked; } }), t("poll.anonymous")) : null,
    items.length ? h("label", { class: "poll-check" }, h("input", { type: "checkbox", checked: draft.changeable,
      name: "quiz-changeable", onchange: (e) => { draft.changeable = e.target.checked; } }), t("quiz.changeable")) : null,
    h("p", { class: "error", role: "alert" }, draft.error || ""),
    h("div", { class: "poll-row" },
      items.length ? h("button", { class: "primary", "data-poll-action": "launch", disabled: draft.busy || !draft.chosen.length,
        onclick: () => launchFromBank(room) }, t("quiz.launch")) : null,
      h("button", { onclick: () => { room.bankDraft = null; redraw(); } }, t("poll.cancel"))));
}

// -- a quiz (or a bank question) while open and after ----------------------------------------------------------------
function optionLabel(question, id) {
  if (question.kind === "truefalse") return t(`poll.${id}`);
  return id;
}

function answerWords(question, answer) {
  if (!answer) return "";
  if (answer.text !== null && answer.text !== undefined && !CHOICE_KINDS.has(question.kind)) return answer.text;
  return formatList((answer.choices || []).map((c) => optionLabel(question, c)));
}

function correctText(question) {
  if (!question.correct) return "";
  if (question.kind === "number") {
    const value = Number(question.correct[0]).toLocaleString(currentLanguage() === "vi" ? "vi-VN" : "en-GB");
    return question.tolerance ? `${value} (± ${Number(question.tolerance).toLocaleString(currentLanguage() === "vi" ? "vi-VN" : "en-GB")})` : value;
  }
  if (question.kind === "text") return question.correct.join(" / ");
  return formatList(question.correct.map((c) => optionLabel(question, c)));
}

function sameText(a, b) {
  const norm = (s) => String(s).normalize("NFC").toLocaleLowerCase("vi").split(/\s+/).filter(Boolean).join(" ");
  return norm(a) === norm(b);
}

function typedIsRight(question, key) {
  if (!question.correct) return false;
  if (question.kind === "number") {
    const value = Number(String(key).replace(/\s/g, "").replace(",", "."));
    return Number.isFinite(value) && Math.abs(value - Number(question.correct[0])) <= (question.tolerance || 0) + 1e-9;
  }
  return question.correct.some((c) => sameText(c, key));
}

// The chart of one question: bars per choice (choice kinds), or the answers typed, grouped, most given first.
function questionChart(question, results) {
  const counts = results?.counts || {};
  const answered = results?.answered || 0;
  const bar = (key, label, count, right) => {
    const share = answered ? Math.round((100 * count) / answered) : 0;
    const fill = h("span", { class: "poll-fill" });
    fill.style.width = `${share}%`;
    return h("li", { class: right ? "correct" : "", "data-choice": key },
      h("span", { class: "poll-label" }, label, right ? " ✓" : ""),
      h("span", { class: "poll-bar" }, fill),
      h("span", { class: "poll-count", "data-count": count }, `${count} · ${share}%`));
  };
  if (CHOICE_KINDS.has(question.kind)) {
    return h("ol", { class: "poll-chart", "aria-label": t("poll.chart") }, question.options.map((o) =>
      bar(o.id, optionLabel(question, o.id), counts[o.id] || 0, Boolean(question.correct?.includes(o.id)))));
  }
  const typed = Object.entries(counts);
  if (!typed.length) return h("p", { class: "muted quiz-no-answers" }, t("quiz.no_answers_yet"));
  return h("ol", { class: "poll-chart typed", "aria-label": t("quiz.typed_answers") }, typed.map(([key, count]) =>
    bar(key, key, count, typedIsRight(question, key))));
}

function questionHead(poll, question) {
  const total = poll.questions.length;
  return h("div", { class: "quiz-q-head" },
    total > 1 ? h("strong", {}, t("quiz.question_n", { n: question.index + 1, total })) : null,
    h("span", { class: "badge" }, kindWords(question.kind)),
    question.points != null ? h("span", { class: "muted" }, t("bank.points_value", { points: pointsText(question.points) })) : null,
    question.open && poll.pace === "one" ? h("span", { class: "badge ok" }, t("quiz.asking_now")) : null);
}

// The question's text, image and (unless the answer buttons already show them) its options.
function questionBody(question, withOptions = true) {
  return [question.text ? h("p", { class: "quiz-text" }, question.text) : null,
    question.image_url ? h("img", { class: "quiz-image", src: question.image_url, alt: t("bank.image_alt") }) : null,
    withOptions && CHOICE_KINDS.has(question.kind) && question.kind !== "truefalse" && question.options.some((o) => o.text)
      ? h("ol", { class: "quiz-options" }, question.options.map((o) => h("li", { "data-option": o.id },
        h("strong", {}, `${o.id}. `), o.text))) : null];
}

function pollSettingsText(poll) {
  const parts = [t(poll.questions.length > 1 ? "quiz.n_questions" : "quiz.one_question", { count: poll.questions.length })];
  if (poll.seconds_per_question) parts.push(t("quiz.per_question", { seconds: poll.seconds_per_question }));
  else if (poll.time_limit) parts.push(t("quiz.overall", { minutes: Math.round(poll.time_limit / 6) / 10 }));
  parts.push(t(poll.anonymous ? "quiz.anonymous" : "quiz.named"));
  parts.push(t(poll.final ? "quiz.final" : "quiz.changeable_short"));
  return parts.join(" · ");
}

function scoreText(value) {
  return Number(value || 0).toLocaleString(currentLanguage() === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 2 });
}

function renderTeacherQuiz(room, poll) {
  const results = poll.results || {};
  const open = poll.state === "open";
  const hasCorrect = poll.questions.some((q) => q.has_correct);
  const action = (key, name, data, primary) => h("button", { class: primary ? "primary" : "", "data-poll-action": key,
    onclick: () => askPoll(room, name, { poll_id: poll.poll_id, ...data }) }, t(key === "next" ? "quiz.next" : `poll.${key}`));
  const waiting = results.not_answered || [];
  const answers = results.answers || [];
  const last = poll.pace === "one" && poll.current + 1 >= poll.questions.length;
  const questions = h("ol", { class: "quiz-questions" }, poll.questions.map((q) => {
    const r = resultsOf(poll, q.index) || {};
    const given = answers.filter((a) => a.question === q.index);
    return h("li", { class: q.open ? "quiz-question open" : "quiz-question", "data-question": q.index,
                     "data-open": String(Boolean(q.open)) },
      questionHead(poll, q), ...questionBody(q),
      questionChart(q, r),
      h("p", { class: "quiz-q-answered" }, t("quiz.q_answered", { answered: r.answered || 0 }),
        typeof r.right === "number" ? ` · ${t("quiz.q_right", { right: r.right })}` : ""),
      q.correct ? h("p", { class: "quiz-correct" }, t("poll.correct_is", { choices: correctText(q) })) : null,
      given.length ? h("details", { class: "quiz-who" }, h("summary", {}, t("quiz.who_answered", { count: given.length })),
        h("ul", {}, given.map((a) => h("li", {}, `${a.name}: ${answerWords(q, a)}`,
          typeof a.correct === "boolean" ? (a.correct ? " ✓" : " ✗") : "")))) : null);
  }));
  const scores = results.scores;
  const maxScore = poll.max_score;
  return h("div", { class: "poll card quiz", "data-poll": poll.poll_id, "data-state": poll.state },
    h("h2", {}, poll.title || t(poll.questions.length > 1 ? "quiz.title" : "quiz.one_title"), " ",
      h("span", { class: open ? "badge ok" : "badge" },
        t(open ? "poll.state.open" : poll.revealed ? "poll.state.revealed" : "poll.state.closed")),
      countdown(room, poll)),
    h("p", { class: "muted" }, pollSettingsText(poll)),
    poll.anonymous ? h("p", { class: "muted" }, t("poll.anonymous_note")) : null,
    h("p", { class: "poll-answered", role: "status" },
      t("poll.answered", { answered: results.answered || 0, eligible: results.eligible || 0 }),
      poll.questions.length > 1 ? ` · ${t("quiz.complete", { count: results.complete || 0 })}` : ""),
    waiting.length ? h("details", { class: "poll-waiting", open: waiting.length <= 10 },
      h("summary", {}, t("poll.not_answered", { count: waiting.length })),
      h("p", {}, formatList(waiting.map((p) => p.name)))) : null,
    h("div", { class: "poll-row" },
      open && poll.pace === "one" ? action("next", "poll:next", {}, true) : null,
      open ? action("close", "poll:close", {}, poll.pace !== "one") : null,
      !poll.revealed ? action("reveal", "poll:reveal", { show_correct: false }) : null,
      (!poll.revealed || !poll.show_correct) && hasCorrect ? action("reveal_correct", "poll:reveal", { show_correct: true }) : null,
      !open ? h("button", { "data-poll-action": "new", onclick: () => openBankPicker(room) }, t("quiz.new")) : null,
      !open ? h("button", { onclick: () => { room.pollHidden = poll.poll_id; renderPoll(room); } }, t("poll.hide")) : null),
    last && open ? h("p", { class: "muted" }, t("quiz.last_question")) : null,
    questions,
    scores && scores.length ? h("div", { class: "table-scroll" }, h("table", { class: "table quiz-scores" },
      h("caption", {}, t("quiz.scores")),
      h("thead", {}, h("tr", {}, ["quiz.student", "quiz.score", "quiz.right", "quiz.answered"]
        .map((k) => h("th", { scope: "col", class: k === "quiz.student" ? "" : "num" }, t(k))))),
      h("tbody", {}, scores.map((s) => h("tr", { "data-participant": s.participant_id },
        h("td", {}, s.name),
        h("td", { class: "num" }, maxScore ? `${scoreText(s.score)}/${scoreText(maxScore)}` : "—"),
        h("td", { class: "num" }, hasCorrect ? `${s.right}/${poll.questions.length}` : "—"),
        h("td", { class: "num" }, `${s.answered}/${poll.questions.length}`)))))) : null);
}

function typedKey(poll, index) {
  return `${poll.poll_id}:${index}`;
}

async function sendAnswer(room, poll, index, body) {
  const answer = await askPoll(room, "poll:answer", { poll_id: poll.poll_id, question: index, ...body });
  if (answer.ok && room.poll?.poll_id === poll.poll_id) {
    setMine(room.poll, index, { choices: answer.data?.choices ?? null, text: answer.data?.text ?? null });
    delete room.quizPicked?.[typedKey(poll, index)];
    renderPoll(room);
  }
  return answer;
}

function renderAnswerControls(room, poll, q) {
  const own = mineOf(poll, q.index);
  const locked = poll.final && Boolean(own);
  const key = typedKey(poll, q.index);
  if (CHOICE_KINDS.has(q.kind)) {
    room.quizPicked ||= {};
    const sent = own?.choices || [];
    const picked = q.kind === "multiple" ? room.quizPicked[key] ?? sent : sent;
    const buttons = q.options.map((o) => h("button", {
      class: picked.includes(o.id) ? "poll-choice quiz-choice chosen" : "poll-choice quiz-choice",
      "data-choice": o.id, "aria-pressed": picked.includes(o.id), disabled: locked,
      onclick: () => {
        if (q.kind !== "multiple") return sendAnswer(room, poll, q.index, { choices: [o.id] });
        room.quizPicked[key] = picked.includes(o.id) ? picked.filter((c) => c !== o.id) : [...picked, o.id];
        return renderPoll(room);
      } },
    h("span", { class: "quiz-letter" }, optionLabel(q, o.id)), o.text ? h("span", { class: "quiz-option-text" }, o.text) : null));
    const dirty = q.kind === "multiple" && room.quizPicked[key] && room.quizPicked[key].join() !== sent.join();
    return [h("p", { class: "muted" }, t(q.kind === "multiple" ? "quiz.pick_many" : "quiz.pick_one")),
      h("div", { class: q.kind === "truefalse" ? "poll-choices" : "quiz-choices", role: "group",
                 "aria-label": t("quiz.question_n", { n: q.index + 1, total: poll.questions.length }) }, buttons),
      q.kind === "multiple" && !locked ? h("button", { class: "primary big quiz-send", disabled: !picked.length || !dirty,
        "data-poll-action": "send", onclick: () => sendAnswer(room, poll, q.index, { choices: picked }) },
      t("quiz.send")) : null];
  }
  room.quizTyped ||= {};
  const input = h("input", { type: "text", class: "quiz-input", maxlength: 500, autocomplete: "off",
    inputmode: q.kind === "number" ? "decimal" : "text", "data-focus-key": `answer-${key}`, disabled: locked,
    value: room.quizTyped[key] ?? own?.text ?? "",
    placeholder: t(q.kind === "number" ? "quiz.number_placeholder" : "quiz.text_placeholder"),
    "aria-label": t(q.kind === "number" ? "quiz.number_placeholder" : "quiz.text_placeholder"),
    oninput: (e) => { room.quizTyped[key] = e.target.value; } });
  return [h("form", { class: "quiz-typed", onsubmit: async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const answer = await sendAnswer(room, poll, q.index, { text });
    if (answer.ok) delete room.quizTyped[key];
  } }, input, locked ? null : h("button", { type: "submit", class: "primary big", "data-poll-action": "send" }, t("quiz.send")))];
}

function renderLearnerQuiz(room, poll) {
  const student = room.state.you.role === "student";
  const graded = poll.revealed && poll.show_correct;
  const open = poll.state === "open";
  // While open, one question at a time (pace one) shows only the one being asked.
  const shown = open && poll.pace === "one" ? poll.questions.filter((q) => q.open) : poll.questions;
  const parts = [h("h2", {}, poll.title || t(poll.questions.length > 1 ? "quiz.title" : "quiz.one_title"), " ",
    countdown(room, poll))];
  if (open) {
    if (!student) parts.push(h("p", {}, t("quiz.class_answering")));
    else if (poll.final) parts.push(h("p", { class: "muted" }, t("quiz.final_note")));
  } else if (!poll.revealed) parts.push(h("p", {}, t("poll.closed_wait")));
  if (student && graded && typeof poll.mine?.score === "number") {
    parts.push(h("p", { class: "quiz-score", role: "status" },
      poll.max_score ? t("quiz.your_score", { score: scoreText(poll.mine.score), max: scoreText(poll.max_score) }) : "",
      poll.max_score ? " · " : "", t("quiz.your_right", { right: poll.mine.right ?? 0, total: poll.questions.length })));
  } else if (student && graded && !poll.mine) {
    parts.push(h("p", { class: "quiz-score", role: "status" }, t("quiz.you_did_not_answer")));
  }
  parts.push(h("ol", { class: "quiz-questions" }, shown.map((q) => {
    const own = student ? mineOf(poll, q.index) : null;
    const answering = student && poll.may_answer !== false && open && q.open;
    const items = [questionHead(poll, q), ...questionBody(q, !answering)];
    if (answering) items.push(...renderAnswerControls(room, poll, q));
    if (student) {
      items.push(h("p", { class: own ? "quiz-sent sent" : "quiz-sent", role: "status" },
        own ? t("quiz.sent", { answer: answerWords(q, own) }) : t(open && q.open ? "quiz.not_sent" : "poll.mine_none")));
    }
    if (poll.revealed) {
      const r = resultsOf(poll, q.index);
      if (r) items.push(questionChart(q, r));
      if (q.correct) items.push(h("p", { class: "quiz-correct" }, t("poll.correct_is", { choices: correctText(q) })));
      if (student && typeof own?.correct === "boolean") {
        items.push(h("p", { class: own.correct ? "poll-verdict right" : "poll-verdict wrong" },
          t(own.correct ? "poll.right" : "poll.wrong"),
          typeof own.points === "number" ? ` (${t("quiz.points_got", { points: scoreText(own.points) })})` : ""));
      }
      if (q.explanation) items.push(h("p", { class: "quiz-explanation" }, h("strong", {}, `${t("bank.explanation")}: `), q.explanation));
    }
    return h("li", { class: "quiz-question", "data-question": q.index, "data-open": String(Boolean(q.open)) }, ...items);
  })));
  if (poll.revealed) {
    parts.push(h("button", { onclick: () => { room.pollHidden = poll.poll_id; renderPoll(room); } }, t("poll.hide")));
  }
  return h("div", { class: "poll card quiz", "data-poll": poll.poll_id, "data-state": poll.revealed ? "revealed" : poll.state },
    ...parts);
}

function renderPoll(room) {
  const box = room.layout?.pollBox;
  if (!box || !room.state) return;
  const poll = room.poll;
  let content = null;
  const quiz = poll && Array.isArray(poll.questions) && !poll.quick;
  if (isTeacher(room) && room.pollDraft) content = renderPollForm(room);
  else if (isTeacher(room) && room.bankDraft) content = renderBankPicker(room);
  else if (poll && room.pollHidden !== poll.poll_id) {
    if (quiz) content = isTeacher(room) ? renderTeacherQuiz(room, poll) : renderLearnerQuiz(room, poll);
    else content = isTeacher(room) ? renderTeacherPoll(room, poll) : renderLearnerPoll(room, poll);
  }
  // What the person is typing in (an answer, a time) keeps its focus through the redraw.
  const focused = box.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused?.getAttribute("data-focus-key");
  const caret = focusKey && typeof focused.selectionStart === "number" ? focused.selectionStart : null;
  box.replaceChildren(...(content ? [content] : []));
  box.hidden = !content;
  if (focusKey) {
    const again = box.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (again && !again.disabled) {
      again.focus();
      if (caret !== null) try { again.setSelectionRange(caret, caret); } catch { /* type=number has no caret */ }
    }
  }
}
