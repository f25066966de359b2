// The admin's timetable (thời khóa biểu, #/admin/timetable?week=YYYY-MM-DD&class=ID): the week's periods, one
// period or a weekly period written in the school's time (a date, a start and an end: never an ISO time), the
// timetable file (XLSX or CSV) with every bad row named, the booking checks and the half-day rule's reason.
import { api, ApiError } from "../api.js";
import { currentPage, h, mount, stillOn } from "../dom.js";
import { formatDate, formatTime, t } from "../i18n.js";
import { hashQuery } from "./records.js";
import { currentSchoolYear, pickLanguage, problemText } from "./school.js";

const DAY = 24 * 3600 * 1000;
// Monday 1 … Sunday 7, as the API counts them; the page says "Thứ 2" … "Chủ nhật".
const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];

// Today's date at the school (UTC+7, no daylight saving), "YYYY-MM-DD".
export function schoolToday() {
  return new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
}

function addDays(day, count) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + count * DAY).toISOString().slice(0, 10);
}

function mondayOf(day) {
  const weekday = new Date(`${day}T00:00:00Z`).getUTCDay() || 7;
  return addDays(day, 1 - weekday);
}

// A double booking in words, from the refusal's details (the catalogue's sentences, the school's data).
function clashWords(item) {
  const o = item.other;
  const what = { subject: o.subject, class: o.class_name, teacher: o.teacher_name, when: o.when, id: o.period_id,
    line: o.line };
  const other = t(o.period_id ? "timetable.other.period" : o.line ? "timetable.other.line" : "timetable.other.request",
    what);
  return t(`timetable.clash.${item.who}`, { when: item.when, teacher: item.teacher_name, class: item.class_name,
    other });
}

// A crowded half-day in words: "Lớp 10A1 sẽ có 3 tiết trực tuyến hoàn toàn vào buổi sáng 07/12/2026 …".
function halfDayWords(item) {
  const [year, month, day] = String(item.date).split("-");
  return t(`timetable.half.${item.half}`, { class: item.class_name, count: item.count,
    date: `${day}/${month}/${year}` });
}

// A refusal's rows: each with its file line when it comes from the timetable file.
function refusalList(items, words) {
  return h("ul", { class: "row-problems" }, items.map((item) => h("li", { "data-line": item.line ?? false },
    item.line ? h("strong", {}, t("school.line", { line: item.line }) + ": ") : null, words(item))));
}

// Sends `send(reason)`; a double booking is shown, a crowded half-day asks for a reason and sends again.
async function withChecks(box, send, done) {
  document.querySelector(".school .notice")?.replaceChildren(); // the last success is not this request's
  box.replaceChildren(h("p", { role: "status" }, t("timetable.saving")));
  try {
    done(await send(null));
  } catch (e) {
    if (!(e instanceof ApiError)) {
      box.replaceChildren(h("p", { class: "error", role: "alert" }, problemText(e)));
      return;
    }
    if (e.code === "period_conflict") {
      const conflicts = e.details?.conflicts || [];
      box.replaceChildren(h("div", { class: "check-box refused", role: "alert" },
        h("p", { class: "error" }, t("timetable.conflict", { count: conflicts.length })), refusalList(conflicts, clashWords)));
      return;
    }
    if (e.code === "online_limit") {
      const reason = h("textarea", { id: "online-reason", required: true, maxlength: "500", rows: "2" });
      const error = h("p", { class: "error" });
      const go = h("button", { type: "button", class: "primary", onclick: async () => {
        if (!reason.value.trim()) {
          error.textContent = t("timetable.reason_needed");
          reason.focus();
          return;
        }
        go.disabled = true;
        try {
          done(await send(reason.value.trim()));
        } catch (again) {
          go.disabled = false;
          error.textContent = problemText(again);
        }
      } }, t("timetable.go_on"));
      box.replaceChildren(h("div", { class: "check-box warning", role: "alert" },
        h("p", { class: "warn-text" }, t("timetable.half_day")),
        refusalList(e.details?.half_days || [], halfDayWords),
        h("label", { for: "online-reason" }, t("timetable.reason"), reason),
        error,
        h("div", { class: "actions" }, go,
          h("button", { type: "button", onclick: () => box.replaceChildren() }, t("school.cancel")))));
      reason.focus();
      return;
    }
    if (e.code === "import_rejected" && Array.isArray(e.details)) {
      const lines = new Set(e.details.map((p) => p.line));
      box.replaceChildren(h("div", { class: "check-box refused", role: "alert" },
        h("p", { class: "error" }, t("timetable.rejected", { count: lines.size })),
        h("ul", { class: "row-problems" }, e.details.map((p) => h("li", { "data-line": p.line },
          h("strong", {}, `${t("school.line", { line: p.line })} (${pickLanguage(p.column, false)}): `),
          pickLanguage(p.reason))))));
      return;
    }
    box.replaceChildren(h("p", { class: "error", role: "alert" }, problemText(e)));
  }
}

export async function showTimetable(wrap, notice = "") {
  const current = currentPage();
  const query = hashQuery();
  const week = mondayOf(/^\d{4}-\d{2}-\d{2}$/.test(query.get("week") || "") ? query.get("week") : schoolToday());
  const classId = Number(query.get("class")) || null;
  let classes, periods, details;
  try {
    classes = (await api("GET", "/classes")).items;
    const range = new URLSearchParams({ from: `${week}T00:00:00+07:00`, to: `${addDays(week, 6)}T23:59:59+07:00` });
    if (classId) range.set("class_id", classId);
    [periods, details] = await Promise.all([api("GET", `/periods?${range}`),
      Promise.all(classes.map((c) => api("GET", `/classes/${c.id}`)))]);
  } catch (e) {
    if (stillOn(current)) mount(wrap(h("p", { class: "error", role: "alert" }, problemText(e))));
    return;
  }
  if (!stillOn(current)) return;
  const teachers = (await api("GET", "/users?role=teacher&limit=1000").catch(() => ({ items: [] }))).items;
  if (!stillOn(current)) return;
  const teacherName = new Map(teachers.map((u) => [u.id, u.full_name]));
  const assignments = details.flatMap((c) => c.assignments.map((a) => ({ ...a, class_name: c.name })))
    .sort((a, b) => a.class_name.localeCompare(b.class_name, "vi") || a.subject.localeCompare(b.subject, "vi"));
  const goTo = (params) => {
    const next = new URLSearchParams({ week, ...(classId ? { class: classId } : {}), ...params });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.hash = `#/admin/timetable?${next}`;
  };
  const reload = (message) => showTimetable(wrap, message);

  // -- the week ---------------------------------------------------------------------------------------
  const byDay = new Map(WEEKDAYS.map((d) => [addDays(week, d - 1), []]));
  for (const p of periods.items) {
    const day = new Date(Date.parse(p.starts_at) + 7 * 3600 * 1000).toISOString().slice(0, 10);
    byDay.get(day)?.push(p);
  }
  const weekView = h("section", { class: "card timetable-week", "aria-labelledby": "week-title" },
    h("h2", { id: "week-title" }, t("timetable.week", { from: formatDate(`${week}T12:00:00+07:00`),
      to: formatDate(`${addDays(week, 6)}T12:00:00+07:00`) })),
    h("div", { class: "week-controls" },
      h("button", { type: "button", onclick: () => goTo({ week: addDays(week, -7) }) }, t("timetable.previous")),
      h("button", { type: "button", onclick: () => goTo({ week: mondayOf(schoolToday()) }) }, t("timetable.this_week")),
      h("button", { type: "button", onclick: () => goTo({ week: addDays(week, 7) }) }, t("timetable.next")),
      h("label", {}, t("timetable.class_filter"), h("select", { "aria-label": t("timetable.class_filter"), onchange: (event) => goTo({ class: event.target.value }) },
        h("option", { value: "" }, t("timetable.all_classes")),
        classes.map((c) => h("option", { value: c.id, selected: c.id === classId }, `${c.name} (${c.school_year})`))))),
    h("div", { class: "week-days" }, [...byDay].map(([day, items]) => h("div", { class: "week-day", "data-day": day },
      h("h3", {}, formatDate(`${day}T12:00:00+07:00`)),
      items.length
        ? h("ul", {}, items.map((p) => h("li", { "data-period": p.id, class: `mode-${p.mode}` },
          h("span", { class: "period-time" }, `${formatTime(p.starts_at)}–${formatTime(p.ends_at)}`),
          h("span", {}, `${p.subject} · ${p.class_name}`),
          h("span", { class: "muted" }, `${p.teacher_name} · ${t("timetable.mode." + p.mode)}`))))
        : h("p", { class: "muted" }, t("timetable.free"))))));

  // -- one period or a weekly period ---------------------------------------------------------------------
  const formBox = h("div", { class: "check-result", "aria-live": "polite" });
  const kindSingle = h("input", { type: "radio", name: "kind", value: "single", checked: true });
  const kindWeekly = h("input", { type: "radio", name: "kind", value: "weekly" });
  const singlePart = h("div", { class: "single-part" },
    h("label", {}, t("timetable.date"), h("input", { name: "date", type: "date", value: schoolToday(),
      required: true })));
  const weeklyPart = h("div", { class: "weekly-part", hidden: true },
    h("fieldset", { class: "weekdays" }, h("legend", {}, t("timetable.weekdays")),
      WEEKDAYS.map((d) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "weekday", value: d }),
        t(`timetable.day.${d}`)))),
    h("label", {}, t("archive.from"), h("input", { name: "from_date", type: "date", value: week })),
    h("label", {}, t("archive.to"), h("input", { name: "to_date", type: "date", value: addDays(week, 6) })));
  // How many periods the weekly choice makes, said as it changes.
  const preview = h("p", { class: "muted", "aria-live": "polite" });
  const countDays = () => {
    const days = new Set([...weeklyPart.querySelectorAll("[name=weekday]:checked")].map((box) => Number(box.value)));
    const first = weeklyPart.querySelector("[name=from_date]").value;
    const last = weeklyPart.querySelector("[name=to_date]").value;
    if (!days.size || !first || !last || last < first) {
      preview.textContent = "";
      return;
    }
    let count = 0;
    for (let day = first; day <= last && count <= 3000; day = addDays(day, 1)) {
      if (days.has(new Date(`${day}T00:00:00Z`).getUTCDay() || 7)) count += 1;
    }
    preview.textContent = t("timetable.will_make", { count });
  };
  weeklyPart.addEventListener("change", countDays);
  weeklyPart.append(preview);
  const showKind = () => {
    const weekly = kindWeekly.checked;
    weeklyPart.hidden = !weekly;
    singlePart.hidden = weekly;
    singlePart.querySelector("input").required = !weekly;
    for (const name of ["from_date", "to_date"]) weeklyPart.querySelector(`[name=${name}]`).required = weekly;
  };
  kindSingle.addEventListener("change", showKind);
  kindWeekly.addEventListener("change", showKind);
  const form = h("form", { class: "school-form timetable-form", onsubmit: add },
    h("label", {}, t("timetable.assignment"), h("select", { name: "assignment", required: true,
      "aria-label": t("timetable.assignment") },
      h("option", { value: "" }, assignments.length ? t("timetable.choose_assignment") : t("timetable.no_assignments")),
      assignments.map((a) => h("option", { value: `${a.class_id}|${a.teacher_id}|${a.subject}`,
        selected: classId !== null && a.class_id === classId && a === assignments.find((x) => x.class_id === classId) },
      `${a.class_name} · ${a.subject} · ${teacherName.get(a.teacher_id) || a.teacher_id}`)))),
    h("fieldset", { class: "kind" }, h("legend", {}, t("timetable.kind")),
      h("label", { class: "check" }, kindSingle, t("timetable.single")),
      h("label", { class: "check" }, kindWeekly, t("timetable.weekly"))),
    singlePart, weeklyPart,
    h("label", {}, t("timetable.start"), h("input", { name: "start", type: "time", required: true, value: "07:00" })),
    h("label", {}, t("timetable.end"), h("input", { name: "end", type: "time", required: true, value: "07:45" })),
    h("label", {}, t("timetable.mode"), h("select", { name: "mode", "aria-label": t("timetable.mode") },
      ["online", "hybrid"].map((m) => h("option", { value: m }, t(`timetable.mode.${m}`))))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "parents_invited" }), t("timetable.parents")),
    h("p", { class: "muted small-text" }, t("timetable.local_time")),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("timetable.add"))),
    formBox);

  function add(event) {
    event.preventDefault();
    const data = new FormData(form);
    const [cls, teacher, ...subject] = String(data.get("assignment")).split("|");
    const body = { class_id: Number(cls), teacher_id: Number(teacher), subject: subject.join("|"),
      start: data.get("start"), end: data.get("end"), mode: data.get("mode"),
      parents_invited: data.get("parents_invited") === "on" };
    if (kindWeekly.checked) {
      body.weekdays = data.getAll("weekday").map(Number);
      body.from_date = data.get("from_date");
      body.to_date = data.get("to_date");
      if (!body.weekdays.length) {
        formBox.replaceChildren(h("p", { class: "error", role: "alert" }, t("timetable.pick_weekday")));
        return;
      }
    } else {
      body.date = data.get("date");
    }
    if (body.end <= body.start) {
      formBox.replaceChildren(h("p", { class: "error", role: "alert" }, t("timetable.end_after_start")));
      return;
    }
    withChecks(formBox, (reason) => api("POST", "/timetable/periods", reason ? { ...body, online_reason: reason } : body),
      (answer) => reload(t("timetable.added", { count: answer.created })));
  }

  // -- the timetable file ----------------------------------------------------------------------------------
  const importBox = h("div", { class: "check-result", "aria-live": "polite" });
  const file = h("input", { id: "timetable-file", type: "file", required: true,
    accept: ".xlsx,.csv,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" });
  const year = h("input", { id: "timetable-year", required: true, pattern: "\\d{4}-\\d{4}", value: currentSchoolYear() });
  const importForm = h("form", { class: "school-form", onsubmit: send },
    h("p", { class: "muted" }, t("timetable.file_explain")),
    h("p", { class: "template-line" }, t("timetable.columns")),
    h("label", { for: "timetable-file" }, t("timetable.file"), file),
    h("label", { for: "timetable-year" }, t("school.year"), year),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("timetable.import")),
      h("a", { class: "button", href: "/api/v1/timetable/template.xlsx", download: "" }, t("timetable.template_xlsx")),
      h("a", { class: "button", href: "/api/v1/timetable/template.csv", download: "" }, t("timetable.template_csv"))),
    importBox);

  async function send(event) {
    event.preventDefault();
    const chosen = file.files[0];
    const type = /\.xlsx$/i.test(chosen.name) ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
      : "text/csv";
    const bytes = await chosen.arrayBuffer();
    withChecks(importBox, (reason) => {
      const params = new URLSearchParams({ school_year: year.value.trim() });
      if (reason) params.set("online_reason", reason);
      return api("POST", `/timetable/import?${params}`, new Blob([bytes], { type }));
    }, (answer) => reload(t("timetable.imported", { count: answer.created })));
  }

  mount(wrap(h("div", { class: "school" },
    h("section", { class: "card" },
      h("h1", {}, t("admin.nav.timetable")),
      notice ? h("p", { role: "status", class: "notice ok-text" }, notice) : h("p", { role: "status" }),
      h("details", { class: "school-box", open: true }, h("summary", {}, t("timetable.new")), form),
      h("details", { class: "school-box" }, h("summary", {}, t("timetable.import_title")), importForm)),
    weekView)));
}
