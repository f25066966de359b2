// The admin's pages: the records of sessions, the audit log, retention periods, and the school's setup
// (accounts, classes, the timetable: school.js and timetable.js).
import { api, ApiError } from "../api.js";
import { banner, currentPage, h, mount, stillOn } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { hashQuery, showSessionList } from "./records.js";
import { showAccounts, showClasses } from "./school.js";
import { showTimetable } from "./timetable.js";

const SECTIONS = [
  ["sessions", "admin.nav.sessions"],
  ["audit", "admin.nav.audit"],
  ["retention", "admin.nav.retention"],
  ["accounts", "admin.accounts"],
  ["classes", "admin.nav.classes"],
  ["timetable", "admin.nav.timetable"],
];

function failed(e) {
  banner(e?.message || t("error.generic"), "error");
}

function withNavigation(current) {
  return (content) => h("div", { class: "admin" },
    h("nav", { class: "admin-nav", "aria-label": t("admin.title") },
      h("ul", {}, SECTIONS.map(([name, key]) => h("li", {},
        h("a", { href: `#/admin/${name}`, "aria-current": name === current ? "page" : false }, t(key)))))),
    content);
}

export async function showAdmin(section) {
  if (/^\d+$/.test(section || "")) {
    location.replace(`#/records/${section}`); // the old address of a session's records
    return;
  }
  const name = SECTIONS.some(([n]) => n === section) ? section : "sessions";
  const wrap = withNavigation(name);
  if (name === "sessions") return showSessionList(wrap);
  if (name === "audit") return showAudit(wrap);
  if (name === "retention") return showRetention(wrap);
  if (name === "classes") return showClasses(wrap);
  if (name === "timetable") return showTimetable(wrap);
  return showAccounts(wrap);
}

// -- audit log ------------------------------------------------------------------------------------------
const AUDIT_ACTIONS = [
  "login", "login_failed", "logout", "password_changed", "password_reset", "user_created", "user_updated",
  "parent_linked", "class_created", "class_updated", "student_enrolled", "student_unenrolled", "roster_imported",
  "teacher_assigned", "teacher_unassigned", "period_created", "periods_scheduled", "online_limit_overridden",
  "period_updated", "period_started", "period_ended",
  "join_requested", "sessions_searched", "records_viewed", "attendance_viewed", "class_attendance_viewed",
  "recordings_listed", "recording_viewed", "recording_downloaded", "lesson_video_started", "lesson_video_viewed",
  "handout_uploaded", "handout_downloaded", "share_created", "share_revoked", "share_opened", "share_refused",
  "shared_recording_viewed", "session_exported", "legal_hold_set", "legal_hold_released", "retention_changed",
  "retention_deleted", "audit_log_viewed",
];

export function actionWords(action) {
  const key = "audit.action." + action;
  const words = t(key);
  return words === key ? action : words;
}

async function showAudit(wrap) {
  const query = hashQuery();
  const filters = {};
  for (const name of ["action", "actor_id", "target", "from", "to"]) {
    if (query.get(name)) filters[name] = query.get(name);
  }
  const current = currentPage();
  let page;
  try {
    page = await api("GET", `/audit?${new URLSearchParams({ ...filters, limit: 50 })}`);
  } catch (e) {
    if (stillOn(current)) failed(e);
    return;
  }
  if (!stillOn(current)) return;
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "more" }, t("audit.more"));
  const table = h("table", { class: "table audit responsive" },
    h("caption", { class: "visually-hidden" }, t("admin.nav.audit")),
    h("thead", {}, h("tr", {}, ["audit.at", "audit.who", "audit.action", "audit.target", "audit.address"]
      .map((k) => h("th", { scope: "col" }, t(k))))),
    body);

  function add(items) {
    body.append(...items.map((e) => h("tr", { "data-entry": e.entry_id },
      h("td", { "data-label": t("audit.at") }, formatDateTime(e.at, true)),
      h("td", { "data-label": t("audit.who") }, e.actor
        ? h("a", { href: `#/admin/audit?actor_id=${e.actor.user_id}`, title: t("audit.only_this_person") },
          `${e.actor.name} (${t("role." + e.actor.role)} · ${e.actor.user_id})`)
        : t("audit.system")),
      h("td", { "data-label": t("audit.action") }, h("span", { "data-action": e.action }, actionWords(e.action))),
      h("td", { "data-label": t("audit.target") }, targetLink(e.target)),
      h("td", { "data-label": t("audit.address") }, e.address || "—"))));
  }

  let next = page.next_before_id;
  more.hidden = !next;
  more.addEventListener("click", async () => {
    try {
      const older = await api("GET", `/audit?${new URLSearchParams({ ...filters, limit: 50, before_id: next })}`);
      add(older.items);
      next = older.next_before_id;
      more.hidden = !next;
    } catch (e) {
      failed(e);
    }
  });
  add(page.items);

  const form = h("form", { class: "filters", role: "search", "aria-label": t("archive.filters"), onsubmit: search },
    h("label", { for: "a-action" }, t("audit.action"),
      h("select", { id: "a-action", name: "action" },
        h("option", { value: "" }, t("audit.all_actions")),
        AUDIT_ACTIONS.map((a) => h("option", { value: a, selected: a === filters.action }, actionWords(a))))),
    h("label", { for: "a-actor" }, t("audit.person_id"),
      h("input", { id: "a-actor", name: "actor_id", type: "number", min: "1", inputmode: "numeric",
        value: filters.actor_id || "" })),
    h("label", { for: "a-target" }, t("audit.target"),
      h("input", { id: "a-target", name: "target", type: "text", placeholder: "session:7",
        value: filters.target || "" })),
    h("label", { for: "a-from" }, t("archive.from"),
      h("input", { id: "a-from", name: "from", type: "date", value: filters.from || "" })),
    h("label", { for: "a-to" }, t("archive.to"),
      h("input", { id: "a-to", name: "to", type: "date", value: filters.to || "" })),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary" }, t("archive.search")),
      h("button", { type: "button", onclick: () => { location.hash = "#/admin/audit"; } }, t("archive.clear"))));

  function search(event) {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (String(value).trim()) chosen.set(name, String(value).trim());
    const target = `#/admin/audit${chosen.toString() ? "?" + chosen : ""}`;
    if (location.hash === target) showAudit(wrap);
    else location.hash = target;
  }

  mount(wrap(h("section", { class: "card archive" },
    h("h1", {}, t("admin.nav.audit")),
    form,
    page.items.length ? table : h("p", { class: "empty" }, t("audit.none")),
    more)));
}

function targetLink(target) {
  if (!target) return "—";
  const session = /^session:(\d+)$/.exec(target);
  return session ? h("a", { href: `#/records/${session[1]}` }, target) : target;
}

// -- retention --------------------------------------------------------------------------------------------
async function showRetention(wrap) {
  const current = currentPage();
  let settings;
  try {
    settings = await api("GET", "/retention");
  } catch (e) {
    if (stillOn(current)) failed(e);
    return;
  }
  if (!stillOn(current)) return;
  const status = h("p", { role: "status" });
  const lastRun = h("div", { class: "last-run" });
  const inputs = {};
  const form = h("form", { class: "retention-form", onsubmit: save },
    h("table", { class: "table retention" },
      h("thead", {}, h("tr", {}, ["retention.kind", "retention.days", "retention.default", "retention.changed"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, settings.policies.map((p) => {
        const id = `keep-${p.kind}`;
        inputs[p.kind] = h("input", { id, name: p.kind, type: "number", min: "1", max: "36500", required: true,
          inputmode: "numeric", value: p.days, "aria-describedby": `${id}-default` });
        return h("tr", { "data-kind": p.kind },
          h("th", { scope: "row" }, h("label", { for: id }, t("retention.kind." + p.kind)),
            h("span", { class: "muted small-text" }, t("retention.what." + p.kind))),
          h("td", {}, inputs[p.kind]),
          h("td", { id: `${id}-default` }, t("retention.default_days", { days: p.default_days })),
          h("td", {}, p.updated_at
            ? `${formatDateTime(p.updated_at)}${p.updated_by ? " · " + (p.updated_by.name ?? p.updated_by) : ""}`
            : "—"));
      }))),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("retention.save")),
      h("button", { type: "button", onclick: run }, t("retention.run"))));

  function showRun(run, heading) {
    if (!run) {
      lastRun.replaceChildren(h("p", { class: "muted" }, t("retention.never_run")));
      return;
    }
    const deleted = Object.entries(run.deleted || {});
    lastRun.replaceChildren(
      h("h2", {}, heading),
      h("p", {}, t("retention.ran_at", { date: formatDateTime(run.at) })),
      h("ul", { class: "run-report" },
        deleted.length ? deleted.map(([kind, count]) => h("li", { "data-kind": kind },
          t("retention.deleted", { kind: t("retention.kind." + kind), count })))
          : h("li", {}, t("retention.nothing_deleted")),
        h("li", {}, t("retention.held", { count: run.held_sessions ?? 0 })),
        run.failed_sessions?.length
          ? h("li", { class: "error" }, t("retention.failed", { count: run.failed_sessions.length })) : null));
  }

  async function save(event) {
    event.preventDefault();
    const body = {};
    for (const [kind, input] of Object.entries(inputs)) body[kind] = Number(input.value);
    try {
      settings = await api("PUT", "/retention", body);
      status.textContent = t("retention.saved");
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.message : t("error.generic");
    }
  }

  async function run() {
    if (!confirm(t("retention.run_confirm"))) return;
    status.textContent = t("retention.running");
    try {
      const report = await api("POST", "/retention/run");
      status.textContent = "";
      showRun(report, t("retention.report"));
    } catch (e) {
      status.textContent = e instanceof ApiError ? e.message : t("error.generic");
    }
  }

  showRun(settings.last_run, t("retention.last_run"));
  mount(wrap(h("section", { class: "card archive" },
    h("h1", {}, t("admin.nav.retention")),
    h("p", { class: "muted" }, t("retention.explain")),
    form, status, lastRun)));
}
