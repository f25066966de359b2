// A class's attendance over a date range (#/records/class/ID?from=YYYY-MM-DD&to=YYYY-MM-DD), for admins
// and the class's teachers (over their own periods; the server decides): per student the sessions
// counted, attended, late and absent, the attendance rate (those under 80 % marked in words), minutes
// and participation, and beside them the assessments (quick polls and quizzes) answered and the total
// score out of the maximum (with a percentage); the sessions counted, each linking to its page; and the table as a CSV file made
// in the browser from the same answer, or as an Excel file from the server.
import { api, ApiError } from "../api.js";
import { banner, currentPage, h, mount, stillOn } from "../dom.js";
import { compareNames, currentLanguage, formatDateTime, t } from "../i18n.js";
import { route } from "../app.js";
import { classSummaryHash, hashQuery, listBackHash, number } from "./records.js";

const THRESHOLD = 0.8; // an attendance rate below this is marked
const MAX_DAYS = 400; // the API's longest range
const SCHOOL_TIME_ZONE = "Asia/Ho_Chi_Minh";

function locale() {
  return currentLanguage() === "en" ? "en-GB" : "vi-VN";
}

// The mark of a student under the threshold, in words (not colour alone): "Dưới 80%".
function belowWords() {
  return t("summary.below", { percent: percent(THRESHOLD) });
}

function percent(rate) {
  if (rate === null || rate === undefined) return "—";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(rate);
}

// "2026-05-29" (a school-local date) → "29/05/2026"
function day(isoDate) {
  return new Intl.DateTimeFormat(locale(), { timeZone: "UTC", day: "2-digit", month: "2-digit", year: "numeric" })
    .format(new Date(`${isoDate}T00:00:00Z`));
}

function schoolToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: SCHOOL_TIME_ZONE }).format(new Date()); // YYYY-MM-DD
}

function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

// The API's refusals in the reader's language (its own messages are in English).
function errorText(e, from, to) {
  if (!(e instanceof ApiError)) return e?.message || t("error.generic");
  if (e.status === 404) return t("summary.not_found");
  if (e.status === 400) {
    const valid = (value) => !value || /^\d{4}-\d{2}-\d{2}$/.test(value);
    if (!valid(from) || !valid(to)) return t("summary.bad_range");
    if (from && to && to < from) return t("summary.reversed");
    if (from && daysBetween(from, to || schoolToday()) > MAX_DAYS) return t("summary.too_long", { days: MAX_DAYS });
    return t("summary.bad_range");
  }
  return e.message || t("error.generic");
}

function rangeForm(classId, values) {
  const form = h("form", { class: "filters range-form", "aria-label": t("summary.range_label"), onsubmit: show },
    h("label", { for: "cs-from" }, t("archive.from"),
      h("input", { id: "cs-from", name: "from", type: "date", value: values.from || "" })),
    h("label", { for: "cs-to" }, t("archive.to"),
      h("input", { id: "cs-to", name: "to", type: "date", value: values.to || "" })),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary" }, t("summary.show"))));

  function show(event) {
    event.preventDefault();
    const field = (name) => String(form.elements.namedItem(name).value || "").trim();
    const target = classSummaryHash(classId, field("from"), field("to"));
    if (location.hash === target) route(); // the same range again: read it afresh
    else location.hash = target; // a new entry in the history: "back" returns to the range before
  }
  return form;
}

export async function showClassSummary(classId) {
  const page = currentPage();
  const query = hashQuery();
  const asked = { from: query.get("from") || "", to: query.get("to") || "" };
  const params = new URLSearchParams(Object.entries(asked).filter(([, value]) => value));
  let answer;
  try {
    answer = await api("GET", `/classes/${encodeURIComponent(classId)}/attendance`
      + (params.toString() ? `?${params}` : ""));
  } catch (e) {
    if (!stillOn(page)) return;
    banner(errorText(e, asked.from, asked.to), "error");
    const notFound = e instanceof ApiError && e.status === 404;
    mount(h("section", { class: "card archive class-summary" },
      h("p", {}, h("a", { href: listBackHash() }, t("archive.back"))),
      h("h1", {}, t("summary.title")),
      notFound ? null : rangeForm(classId, asked)));
    return;
  }
  if (!stillOn(page)) return;

  const school = answer.class;
  const students = [...answer.items].sort((a, b) => compareNames(a.name, b.name) || a.user_id - b.user_id);
  const below = (s) => s.attendance_rate !== null && s.attendance_rate !== undefined && s.attendance_rate < THRESHOLD;

  mount(h("article", { class: "card archive class-summary", "data-class": school.class_id },
    h("p", {}, h("a", { href: listBackHash() }, t("archive.back"))),
    h("p", { class: "kicker" }, t("admin.records")),
    h("h1", {}, t("summary.title")),
    h("p", { class: "summary-what" }, h("strong", {}, `${school.name} (${school.school_year})`), " · ",
      t("summary.range", { from: day(answer.from), to: day(answer.to) })),
    rangeForm(school.class_id, { from: answer.from, to: answer.to }),
    h("p", {}, t("summary.counted", { n: answer.sessions.length }), " · ",
      t("summary.threshold", { percent: percent(THRESHOLD), below: belowWords() })),
    h("div", { class: "page-actions" },
      h("button", { type: "button", onclick: () => downloadCsv(answer, students, below) }, t("summary.download")),
      // Excel keeps the personal IDs' leading zeros only from an XLSX file, which the server makes.
      h("a", { class: "button", download: "", href: `/api/v1/classes/${school.class_id}/attendance.xlsx?`
        + new URLSearchParams({ from: answer.from, to: answer.to }) }, t("summary.download_xlsx"))),
    studentsTable(students, below),
    sessionsSection(answer.sessions)));
}

const COUNTS = [
  ["summary.sessions", "sessions"], ["summary.attended", "attended"], ["summary.late", "late"],
  ["summary.absent", "absent"],
];
const MINUTES = [
  ["attendance.minutes_present", "minutes_present"], ["attendance.minutes_late", "minutes_late"],
  ["attendance.camera", "camera_minutes"], ["attendance.hands", "hands_raised"], ["attendance.messages", "messages"],
];

function studentsTable(students, below) {
  if (!students.length) return h("p", { class: "empty" }, t("summary.no_students"));
  const headers = ["summary.name", "summary.personal_id", ...COUNTS.map(([key]) => key), "summary.rate",
    ...MINUTES.map(([key]) => key), "summary.assessments", "summary.score", "summary.score_rate"];
  const table = h("table", { class: "table class-attendance" },
    h("caption", {}, t("summary.table_caption")),
    h("thead", {}, h("tr", {}, headers.map((key) => h("th", { scope: "col" }, t(key))))),
    h("tbody", {}, students.map((s) => h("tr", {
      "data-user": s.user_id, class: below(s) ? "below" : null, "data-below": below(s) ? "true" : "false",
    },
    h("th", { scope: "row" }, s.name),
    h("td", {}, s.personal_id),
    COUNTS.map(([, field]) => h("td", { class: "num", "data-field": field }, number(s[field]))),
    h("td", { class: "num rate", "data-field": "attendance_rate" }, percent(s.attendance_rate),
      below(s) ? h("span", { class: "badge warn below-badge" }, belowWords()) : null),
    MINUTES.map(([, field]) => h("td", { class: "num", "data-field": field }, number(s[field]))),
    h("td", { class: "num", "data-field": "assessments_answered" },
      t("summary.answered_of", { answered: s.assessments_answered ?? 0, total: s.assessments ?? 0 })),
    h("td", { class: "num", "data-field": "score" },
      s.max_score === null || s.max_score === undefined ? "—" : `${number(s.score)}/${number(s.max_score)}`),
    h("td", { class: "num", "data-field": "score_rate" }, percent(s.score_rate))))));
  // Wide: it scrolls sideways inside its own box (the page itself never does), the names staying put.
  return h("div", { class: "table-scroll summary-scroll", tabindex: "0", role: "region",
    "aria-label": t("summary.table_caption") }, table);
}

function sessionsSection(sessions) {
  const headers = ["archive.when", "archive.subject", "archive.teacher"];
  return h("section", { class: "block", "aria-labelledby": "h-counted" },
    h("h2", { id: "h-counted" }, t("summary.sessions_title")),
    sessions.length ? h("table", { class: "table counted-sessions responsive" },
      h("caption", { class: "visually-hidden" }, t("summary.sessions_title")),
      h("thead", {}, h("tr", {}, headers.map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", {}, sessions.map((s) => h("tr", { "data-session": s.session_id },
        h("td", { "data-label": t("archive.when") },
          h("a", { href: `#/records/${s.session_id}` }, formatDateTime(s.started_at))),
        h("td", { "data-label": t("archive.subject") }, s.subject),
        h("td", { "data-label": t("archive.teacher") }, s.teacher?.name ?? "")))))
      : h("p", { class: "empty" }, t("summary.no_sessions")));
}

// -- the CSV file ------------------------------------------------------------------------------------------
// As the server's exports: UTF-8 with a BOM (Excel then shows Vietnamese names), CRLF line ends, and a
// text cell that a spreadsheet would run as a formula (= + - @, tab, CR) gets a leading apostrophe.
const FORMULA_START = ["=", "+", "-", "@", "\t", "\r"];

export function csvCell(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  if (typeof value === "string" && FORMULA_START.some((c) => text.startsWith(c))) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvText(rows) {
  return "\ufeff" + rows.map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function fileSafe(text) {
  return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D")
    .replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
}

function downloadCsv(answer, students, below) {
  const header = [t("summary.csv.number"), t("summary.name"), t("summary.personal_id"),
    ...COUNTS.map(([key]) => t(key)), t("summary.csv.rate"), belowWords(),
    ...MINUTES.map(([key]) => t(key)), t("summary.csv.assessments"), t("summary.csv.answered"),
    t("summary.csv.score"), t("summary.csv.max_score"), t("summary.csv.score_rate")];
  const blank = (value) => (value === null || value === undefined ? "" : value);
  const rows = students.map((s, index) => [index + 1, s.name, s.personal_id, ...COUNTS.map(([, field]) => s[field]),
    s.attendance_rate === null || s.attendance_rate === undefined ? "" : Math.round(s.attendance_rate * 1000) / 10,
    below(s) ? t("archive.yes") : "", ...MINUTES.map(([, field]) => s[field]),
    s.assessments ?? 0, s.assessments_answered ?? 0, blank(s.score), blank(s.max_score),
    s.score_rate === null || s.score_rate === undefined ? "" : Math.round(s.score_rate * 1000) / 10]);
  const school = fileSafe(answer.class.name) || answer.class.class_id;
  const name = `${t("summary.csv.file")}-${school}-${answer.from}-${answer.to}.csv`;
  const url = URL.createObjectURL(new Blob([csvText([header, ...rows])], { type: "text/csv;charset=utf-8" }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000); // once the browser has taken the file
}
