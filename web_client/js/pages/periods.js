// Today's periods ("Tiết học hôm nay"): each says what a person can do now and, when there is no join
// button, why (not started yet, the teacher has not opened it, ended, taught).
//
// The list keeps itself up to date by asking the server again every 10 s while the page is on screen
// (and at once when it comes back on screen): there is no server push outside the live room (its
// Socket.IO connection needs a join token for one session), and a GET /periods of one day is one small
// indexed query. A hidden tab asks nothing; leaving the page stops it.
import { api } from "../api.js";
import { banner, currentPage, h, mount, replaceMain, stillOn } from "../dom.js";
import { formatTime, t, todayRange } from "../i18n.js";
import { session } from "../app.js";

export const REFRESH_MS = 10000;

export async function showPeriods() {
  const page = currentPage();
  const view = { page, shown: null, timer: null, live: new Set(), first: true };
  await refresh(view);
  if (!stillOn(page)) return;
  const again = () => {
    clearTimeout(view.timer);
    if (!stillOn(page)) { document.removeEventListener("visibilitychange", onVisible); return; }
    view.timer = setTimeout(async () => {
      if (!stillOn(page)) { document.removeEventListener("visibilitychange", onVisible); return; }
      if (document.visibilityState === "visible") await refresh(view);
      again();
    }, REFRESH_MS);
  };
  const onVisible = () => {
    if (!stillOn(page)) { document.removeEventListener("visibilitychange", onVisible); return; }
    if (document.visibilityState === "visible") refresh(view).then(again);
  };
  document.addEventListener("visibilitychange", onVisible);
  again();
}

async function refresh(view) {
  const { from, to } = todayRange();
  const query = new URLSearchParams({ from, to });
  let periods;
  try {
    periods = (await api("GET", `/periods?${query}`)).items;
  } catch (e) {
    if (!stillOn(view.page)) return;
    if (view.first) banner(e.message || t("error.generic"), "error");
    return; // a refresh that fails keeps the list on screen; the next one tries again
  }
  if (!stillOn(view.page)) return;
  // Only a change redraws the list: a redraw would move the keyboard focus and the screen reader.
  const now = Date.now();
  const key = JSON.stringify([periods, periods.map((p) => stateOf(p, now))]);
  if (key === view.shown) return;
  view.shown = key;
  const announce = view.first ? [] : periods.filter((p) => p.live_session && !view.live.has(p.id));
  view.live = new Set(periods.filter((p) => p.live_session).map((p) => p.id));
  render(view, periods, now, announce);
  view.first = false;
}

// Where a period stands for the person looking: live, taught (ended), not started yet, late (the time has
// come but the teacher has not opened it), or over without a session.
function stateOf(period, now) {
  if (period.live_session) return "live";
  if (period.taught_until) return "taught";
  if (now < Date.parse(period.starts_at)) return "later";
  if (now < Date.parse(period.ends_at)) return "late";
  return "over";
}

function render(view, periods, now, announce) {
  const user = session.user;
  const focused = document.activeElement?.closest?.("[data-period]");
  const focusedPeriod = focused?.dataset.period;
  const focusedClass = document.activeElement?.className;
  const list = h("ul", { class: "periods" }, periods.map((period) => periodItem(period, user, now)));
  // The first drawing is a new page (the focus goes to it); a refresh leaves the focus where it is.
  (view.first ? mount : replaceMain)(h("section", { class: "card", "data-screen": "periods" },
    h("h1", {}, t("periods.title")),
    user.role === "admin" ? h("nav", { class: "page-links", "aria-label": t("periods.links") },
      h("a", { href: "#/admin" }, t("admin.title")), h("a", { href: "#/bank" }, t("bank.title"))) : null,
    user.role === "teacher" ? h("nav", { class: "page-links", "aria-label": t("periods.links") },
      h("a", { href: "#/records" }, t("archive.sessions")), h("a", { href: "#/bank" }, t("bank.title"))) : null,
    periods.length ? list : h("p", {}, t("periods.none"))));
  // A period that has just started is said by screen readers: a live region that stays in the page (one
  // inserted with its words already in it is not read out).
  const live = announcer();
  if (view.first) live.textContent = "";
  if (announce.length) {
    live.textContent = announce.map((p) => t("periods.started_now", { what: `${p.subject} · ${p.class_name}` })).join(" ");
  }
  if (focusedPeriod) {
    // The same control of the same period keeps the focus after a redraw (or its row, if it went).
    const row = document.querySelector(`[data-period="${CSS.escape(focusedPeriod)}"]`);
    const again = focusedClass ? [...(row?.querySelectorAll("a, button") ?? [])]
      .find((c) => c.className === focusedClass) : null;
    (again || row?.querySelector("a, button"))?.focus();
  }
}

function announcer() {
  let element = document.getElementById("announcer");
  if (!element) {
    element = h("p", { id: "announcer", class: "visually-hidden", role: "status", "aria-live": "polite" });
    document.body.append(element);
  }
  return element;
}

function periodItem(period, user, now) {
  const state = stateOf(period, now);
  const live = period.live_session;
  const isTeacher = period.teacher_id === user.id;
  const actions = [];
  let note = null;
  if (state === "live") {
    actions.push(h("a", { class: "button primary", href: `#/room/${live.id}` }, t("periods.join")));
  } else if (isTeacher && state === "taught") {
    note = t("periods.taught_at", { time: formatTime(period.taught_until) });
    // A period ended by mistake can be opened again while its time lasts; less prominent than a start.
    if (now < Date.parse(period.ends_at)) {
      actions.push(h("button", { type: "button", class: "reopen", onclick: () => start(period) }, t("periods.reopen")));
    }
  } else if (isTeacher) { // also late, or after its time: a teacher who runs late still starts it
    actions.push(h("button", { type: "button", class: "primary", onclick: () => start(period) }, t("periods.start")));
  } else {
    note = whyNoJoin(period, state);
  }
  const badge = state === "live" ? h("span", { class: "live-badge" }, t("periods.live"))
    : state === "taught" ? h("span", { class: "badge ok taught-badge" }, t("periods.taught")) : null;
  return h("li", { class: `period ${state}`, "data-period": period.id, "data-state": state },
    h("div", { class: "period-time" }, `${formatTime(period.starts_at)}–${formatTime(period.ends_at)}`),
    h("div", { class: "period-what" },
      h("strong", {}, `${period.subject} · ${period.class_name}`),
      h("span", {}, `${t("periods.teacher")}: ${period.teacher_name}`),
      badge,
      note ? h("span", { class: "period-note" }, note) : null),
    h("div", { class: "period-actions" }, actions));
}

// Why a person sees no join button: words that say what will happen, with the time.
function whyNoJoin(period, state) {
  if (state === "taught") return t("periods.ended_at", { time: formatTime(period.taught_until) });
  if (state === "over") return t("periods.over");
  if (state === "later") return t("periods.not_started", { time: formatTime(period.starts_at) });
  return t("periods.not_opened");
}

async function start(period) {
  try {
    const started = await api("POST", `/periods/${period.id}/start`);
    location.hash = `#/room/${started.id}`;
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
  }
}
