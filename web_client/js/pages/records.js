// The records archive ("Hồ sơ buổi học"): the list of sessions (admins: all; teachers: their own,
// filtered by the server) and one session's page: attendance with its chart, the synced recording
// player, chat, lobby decisions, moderation, the assessments (quick polls and quizzes: per question a
// chart and every answer, per student the score), handouts, share links, export and the legal hold.
import { api, ApiError } from "../api.js";
import { banner, currentPage, h, mount, stillOn } from "../dom.js";
import { compareNames, formatDate, formatDateTime, formatTime, t } from "../i18n.js";
import { session } from "../app.js";
import { syncedPlayer } from "../player.js";

const PAGE_SIZE = 20;
const SVG = "http://www.w3.org/2000/svg";
let lastListHash = null; // where "back to the list" goes (with the filters the person chose)

export function hashQuery() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

function listHome() {
  return session.user?.role === "admin" ? "#/admin/sessions" : "#/records";
}

// Where "back to the list of sessions" goes: the list with the filters last chosen.
export function listBackHash() {
  return lastListHash || listHome();
}

// The class attendance summary's address; a range left empty is the API's default (the last 30 days).
export function classSummaryHash(classId, from = "", to = "") {
  const params = new URLSearchParams();
  if (from) params.set("from", from);
  if (to) params.set("to", to);
  return `#/records/class/${encodeURIComponent(classId)}${params.toString() ? "?" + params : ""}`;
}

function failed(e) {
  banner(e instanceof ApiError && e.status === 404 ? t("archive.not_found") : e.message || t("error.generic"),
    "error");
}

function minutesBetween(from, to) {
  return Math.round((new Date(to) - new Date(from)) / 60000);
}

function duration(summary) {
  if (summary.running || !summary.ended_at) return t("archive.running");
  return t("archive.minutes", { n: minutesBetween(summary.started_at, summary.ended_at) });
}

export function number(value) {
  return new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-GB" : "vi-VN",
    { maximumFractionDigits: 1 }).format(value ?? 0);
}

// -- the list of sessions -----------------------------------------------------------------------------
// `wrap(content)` puts the list into its page (the admin's page has its own navigation).
export async function showSessionList(wrap = (content) => content) {
  const user = session.user;
  const isAdmin = user.role === "admin";
  const query = hashQuery();
  const filters = {};
  for (const name of ["class_id", "teacher_id", "subject", "from", "to"]) {
    if (query.get(name)) filters[name] = query.get(name);
  }
  const offset = Math.max(0, Number(query.get("offset")) || 0);
  const page = currentPage();
  let classes, teachers, found;
  try {
    [classes, teachers, found] = await Promise.all([
      api("GET", "/classes").then((a) => a.items),
      isAdmin ? api("GET", "/users?role=teacher&limit=1000").then((a) => a.items) : Promise.resolve([]),
      api("GET", `/sessions?${new URLSearchParams({ ...filters, limit: PAGE_SIZE, offset })}`),
    ]);
  } catch (e) {
    if (stillOn(page)) failed(e);
    return;
  }
  if (!stillOn(page)) return;
  lastListHash = location.hash || listHome();
  const base = lastListHash.split("?")[0];

  const form = h("form", { class: "filters", role: "search", "aria-label": t("archive.filters"), onsubmit: search },
    h("label", { for: "f-class" }, t("archive.class"),
      h("select", { id: "f-class", name: "class_id" },
        h("option", { value: "" }, t("archive.all_classes")),
        classes.map((c) => h("option", { value: c.id, selected: String(c.id) === filters.class_id },
          `${c.name} (${c.school_year})`)))),
    isAdmin ? h("label", { for: "f-teacher" }, t("archive.teacher"),
      h("select", { id: "f-teacher", name: "teacher_id" },
        h("option", { value: "" }, t("archive.all_teachers")),
        teachers.map((u) => h("option", { value: u.id, selected: String(u.id) === filters.teacher_id },
          u.full_name)))) : null,
    h("label", { for: "f-subject" }, t("archive.subject"),
      h("input", { id: "f-subject", name: "subject", type: "search", value: filters.subject || "",
        autocomplete: "off" })),
    h("label", { for: "f-from" }, t("archive.from"),
      h("input", { id: "f-from", name: "from", type: "date", value: filters.from || "" })),
    h("label", { for: "f-to" }, t("archive.to"),
      h("input", { id: "f-to", name: "to", type: "date", value: filters.to || "" })),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary" }, t("archive.search")),
      h("button", { type: "button", onclick: () => go({}, 0) }, t("archive.clear"))));

  // With a class chosen: its attendance summary over the same dates (as chosen in the form, even
  // before searching; no dates: the summary's default range).
  const summaryLink = h("a", { class: "button", href: "#" }, t("summary.link"));
  const summaryLine = h("p", { class: "summary-link" }, summaryLink);
  function updateSummaryLink() {
    const field = (name) => form.elements.namedItem(name)?.value || "";
    summaryLine.hidden = !field("class_id");
    if (field("class_id")) summaryLink.href = classSummaryHash(field("class_id"), field("from"), field("to"));
  }
  form.addEventListener("input", updateSummaryLink);
  form.addEventListener("change", updateSummaryLink);
  updateSummaryLink();

  function go(chosen, newOffset) {
    const params = new URLSearchParams(chosen);
    if (newOffset) params.set("offset", newOffset);
    const target = `${base}${params.toString() ? "?" + params : ""}`;
    if (location.hash === target) showSessionList(wrap);
    else location.hash = target;
  }

  function search(event) {
    event.preventDefault();
    const chosen = {};
    for (const [name, value] of new FormData(form)) if (String(value).trim()) chosen[name] = String(value).trim();
    go(chosen, 0);
  }

  const headers = ["archive.when", "archive.class", "archive.subject", "archive.teacher", "archive.duration",
    "archive.participants", "archive.recordings", "archive.legal_hold"];
  const rows = found.items.map((s) => h("tr", {
    class: "session-row", "data-session": s.session_id,
    onclick: (event) => { if (!event.target.closest("a")) location.hash = `#/records/${s.session_id}`; },
  },
  h("td", { "data-label": t("archive.when") },
    h("a", { href: `#/records/${s.session_id}` }, formatDateTime(s.started_at))),
  h("td", { "data-label": t("archive.class") }, s.class_name),
  h("td", { "data-label": t("archive.subject") }, s.subject),
  h("td", { "data-label": t("archive.teacher") }, s.teacher?.name ?? ""),
  h("td", { "data-label": t("archive.duration") }, duration(s)),
  h("td", { "data-label": t("archive.participants") }, number(s.participants)),
  h("td", { "data-label": t("archive.recordings") }, number(s.recordings)),
  h("td", { "data-label": t("archive.legal_hold") },
    s.legal_hold ? h("span", { class: "badge warn" }, t("archive.held")) : "")));

  const shownTo = offset + found.items.length;
  const pager = h("nav", { class: "pager", "aria-label": t("archive.pages") },
    h("button", { type: "button", disabled: offset === 0, onclick: () => go(filters, Math.max(0, offset - PAGE_SIZE)) },
      t("archive.previous")),
    h("span", { role: "status" },
      found.total ? t("archive.showing", { from: offset + 1, to: shownTo, total: found.total }) : ""),
    h("button", { type: "button", disabled: shownTo >= found.total, onclick: () => go(filters, offset + PAGE_SIZE) },
      t("archive.next")));

  mount(wrap(h("section", { class: "card archive" },
    h("p", { class: "kicker" }, t("admin.records")),
    h("h1", {}, t("archive.sessions")),
    isAdmin ? null : h("p", {}, h("a", { href: "#/periods" }, t("archive.back_to_periods"))),
    form,
    summaryLine,
    found.items.length
      ? h("table", { class: "table sessions responsive" },
        h("caption", { class: "visually-hidden" }, t("archive.sessions")),
        h("thead", {}, h("tr", {}, headers.map((key) => h("th", { scope: "col" }, t(key))))),
        h("tbody", {}, rows))
      : h("p", { class: "empty" }, t("archive.none")),
    pager)));
}

// -- one session ----------------------------------------------------------------------------------------
export async function showSessionPage(sessionId) {
  const page = currentPage();
  let attendance, records, shares, assessments;
  try {
    [attendance, records, assessments] = await Promise.all([
      api("GET", `/sessions/${sessionId}/attendance`),
      api("GET", `/sessions/${sessionId}/records`),
      api("GET", `/sessions/${sessionId}/assessments`).catch(() => null),
    ]);
    shares = await api("GET", `/sessions/${sessionId}/shares`).catch(() => null);
  } catch (e) {
    if (!stillOn(page)) return;
    failed(e);
    mount(h("section", { class: "card" }, h("p", {}, h("a", { href: listBackHash() }, t("archive.back")))));
    return;
  }
  if (!stillOn(page)) return;
  const summary = attendance.session;
  const isAdmin = session.user.role === "admin";
  const started = summary.started_at;
  const ended = summary.ended_at;
  const player = records.recordings.length ? syncedPlayer(records.recordings) : null;

  mount(h("article", { class: "card archive session-page", "data-session": sessionId },
    h("p", {}, h("a", { href: listBackHash() }, t("archive.back"))),
    h("h1", {}, `${summary.subject} · ${summary.class_name}`),
    h("dl", { class: "facts" },
      fact(t("archive.teacher"), summary.teacher?.name ?? ""),
      fact(t("archive.date"), formatDate(started)),
      fact(t("archive.time"), `${formatTime(started)}–${ended ? formatTime(ended) : t("archive.running")}`),
      fact(t("archive.scheduled"), `${formatTime(summary.period_starts_at)}–${formatTime(summary.period_ends_at)}`),
      summary.legal_hold || records.session.legal_hold
        ? fact(t("archive.legal_hold"), h("span", { class: "badge warn" }, t("archive.held"))) : null),
    purgedNote(records.session.purged),
    h("div", { class: "page-actions" },
      h("a", { class: "button", href: `/api/v1/sessions/${sessionId}/export`, download: "" }, t("archive.export")),
      h("a", { class: "button", href: `/api/v1/sessions/${sessionId}/attendance.xlsx`, download: "" },
        t("archive.attendance_xlsx")),
      assessments?.items.length
        ? h("a", { class: "button", href: `/api/v1/sessions/${sessionId}/polls.xlsx`, download: "" },
          t("assess.xlsx")) : null),
    h("section", { class: "block", "aria-labelledby": "h-recording" },
      h("h2", { id: "h-recording" }, t("archive.recording")),
      player ? player.element : h("p", { class: "empty" }, t("archive.no_recording")),
      player ? lessonVideoSection(sessionId) : null),
    attendanceSection(attendance),
    assessments ? assessmentsSection(assessments) : null,
    chatSection(records.chat),
    lobbySection(records.lobby),
    moderationSection(records.moderation ?? []),
    handoutsSection(records.handouts),
    shares ? sharesSection(sessionId, shares.items, records.recordings.length > 0) : null,
    isAdmin ? legalHoldSection(sessionId, records.session) : null));
}

function fact(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

function purgedNote(purged) {
  const kinds = Object.entries(purged || {});
  if (!kinds.length) return null;
  return h("p", { class: "note" }, t("archive.purged"), " ",
    kinds.map(([kind, at]) => `${t("retention.kind." + kind)} (${typeof at === "string" ? formatDate(at) : ""})`)
      .join(", "));
}

// -- attendance ---------------------------------------------------------------------------------------------
const STATUS_ORDER = { present: 0, late: 1, absent: 2, denied: 3, not_admitted: 4 };

function attendanceSection(attendance) {
  const items = attendance.items;
  // The chart: the class's students, and any other student who was in the room (not those turned away).
  const students = items.filter((a) => a.enrolled || (a.room_role === "student" && a.intervals.length));
  const summary = attendance.session;
  const lesson = Math.max(1, minutesBetween(summary.period_starts_at, summary.period_ends_at));
  const counts = { present: 0, late: 0, absent: 0, denied: 0, not_admitted: 0 };
  for (const a of items) if (a.room_role === "student" || a.enrolled) counts[a.status] = (counts[a.status] || 0) + 1;
  const refused = counts.denied + counts.not_admitted;
  const headers = ["attendance.name", "attendance.status", "attendance.arrived", "attendance.minutes_present",
    "attendance.minutes_late", "attendance.camera", "attendance.microphone", "attendance.hands",
    "attendance.messages", "attendance.intervals"];
  const table = h("table", { class: "table attendance" },
    h("caption", {}, t("attendance.table_caption")),
    h("thead", {}, h("tr", {}, headers.map((key) => h("th", { scope: "col" }, t(key))))),
    h("tbody", {}, items.map((a) => h("tr", { "data-user": a.user_id, "data-status": a.status },
      h("th", { scope: "row" }, a.name, a.room_role !== "student"
        ? h("span", { class: "muted" }, ` (${t("role." + a.room_role)})`) : null),
      h("td", {}, h("span", { class: `status ${a.status}` }, t("attendance.status." + a.status)),
        a.admitted_by
          ? h("span", { class: "small-text muted" }, t("attendance.admitted_by", { name: a.admitted_by })) : null,
        a.denied_by ? h("span", { class: "small-text muted" }, t("attendance.denied_by", { name: a.denied_by }),
          a.denied_reason ? ` · ${t("archive.reason", { reason: a.denied_reason })}` : "") : null),
      h("td", {}, a.arrived_at ? formatTime(a.arrived_at, true) : "—"),
      h("td", { class: "num" }, number(a.minutes_present)),
      h("td", { class: "num" }, number(a.minutes_late)),
      h("td", { class: "num" }, number(a.camera_minutes)),
      h("td", { class: "num" }, number(a.microphone_minutes)),
      h("td", { class: "num" }, number(a.hands_raised)),
      h("td", { class: "num" }, number(a.messages)),
      h("td", {}, a.intervals.length ? h("details", {},
        h("summary", {}, t("attendance.interval_count", { n: a.intervals.length })),
        h("ul", { class: "intervals" }, a.intervals.map((i) => h("li", {},
          `${formatTime(i.joined_at, true)}–${i.left_at ? formatTime(i.left_at, true) : "…"}`,
          i.end_reason ? ` (${t("attendance.end." + i.end_reason)})` : ""))))
        : "—")))));
  return h("section", { class: "block", "aria-labelledby": "h-attendance" },
    h("h2", { id: "h-attendance" }, t("attendance.title")),
    h("p", {}, t("attendance.summary", { present: counts.present, late: counts.late, absent: counts.absent }),
      refused ? ` · ${t("attendance.refused", { denied: counts.denied, waiting: counts.not_admitted })}` : "",
      attendance.lesson_started_at
        ? ` · ${t("attendance.lesson_started", { time: formatTime(attendance.lesson_started_at, true) })}` : ""),
    attendanceChart(students, lesson, new Set(items.map((a) => a.status))),
    h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": t("attendance.table_caption") },
      table));
}

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

// Minutes present per student, one horizontal bar each, scaled to the lesson's length. The table
// below says the same in words (the chart is hidden from screen readers' reading order by its label).
function attendanceChart(students, lessonMinutes, statuses) {
  const sorted = [...students].sort((a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status]
    || b.minutes_present - a.minutes_present || compareNames(a.name, b.name));
  const width = 400;
  const row = 44;
  const barWidth = 300;
  const scale = Math.max(lessonMinutes, ...sorted.map((a) => a.minutes_present));
  const height = Math.max(1, sorted.length) * row + 24;
  const titleId = "chart-title";
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-labelledby": titleId, preserveAspectRatio: "xMinYMin meet",
  }, svg("title", { id: titleId }, t("attendance.chart_title", { minutes: lessonMinutes })));
  sorted.forEach((a, index) => {
    const y = index * row;
    const w = Math.round((a.minutes_present / scale) * barWidth * 10) / 10;
    const label = t("attendance.bar", { name: a.name, minutes: number(a.minutes_present),
      status: t("attendance.status." + a.status) });
    chart.append(svg("g", { class: "bar-row", "data-user": a.user_id, "data-minutes": a.minutes_present,
      "data-status": a.status },
    svg("title", {}, label),
    svg("text", { x: 0, y: y + 14, class: "bar-name" }, a.name),
    svg("rect", { x: 0, y: y + 20, width: barWidth, height: 14, rx: 3, class: "bar-track" }),
    svg("rect", { x: 0, y: y + 20, width: w, height: 14, rx: 3, class: `bar ${a.status}` }),
    svg("text", { x: Math.min(w, barWidth) + 6, y: y + 32, class: "bar-value" },
      `${number(a.minutes_present)} ${t("attendance.min")}`,
      // No bar to colour: the status in words (absent, denied, not admitted).
      ["absent", "denied", "not_admitted"].includes(a.status) ? ` · ${t("attendance.status." + a.status)}` : "")));
  });
  const axis = sorted.length * row + 16;
  chart.append(svg("text", { x: 0, y: axis, class: "bar-axis" }, "0"),
    svg("text", { x: barWidth, y: axis, class: "bar-axis", "text-anchor": "end" },
      `${number(scale)} ${t("attendance.min")}`));
  // Every status of the chart and the table below has its colour's word: present, late, absent always; denied
  // and not admitted when someone was (turned away from the lobby: in the table, and in the chart if enrolled).
  const shown = ["present", "late", "absent", "denied", "not_admitted"]
    .filter((s) => ["present", "late", "absent"].includes(s) || statuses.has(s));
  return h("figure", { class: "chart-figure" }, chart,
    h("figcaption", { class: "legend" },
      shown.map((s) => h("span", { class: `legend-item ${s}` }, t("attendance.status." + s)))));
}

// -- assessments: quick polls and quizzes ----------------------------------------------------------------
// Per poll: its questions, each with a bar chart of the answers (the correct ones marked in words, not
// colour alone), the typed answers listed, every student's answer; then every student's score.
function choiceLabel(question, id) {
  if (id === "true") return t("poll.true");
  if (id === "false") return t("poll.false");
  const option = question.options.find((o) => o.id === id);
  return option?.text ? `${id}. ${option.text}` : id;
}

function answerText(question, a) {
  if (a.choices) return a.choices.map((c) => choiceLabel(question, c)).join(", ");
  return a.text ?? "";
}

function correctText(question) {
  if (!question.correct) return null;
  if (question.kind === "single" || question.kind === "multiple" || question.kind === "truefalse") {
    return question.correct.map((c) => choiceLabel(question, c)).join(", ");
  }
  const shown = question.correct.join(" | ");
  return question.kind === "number" && question.tolerance ? `${shown} (± ${question.tolerance})` : shown;
}

function scoreText(score, max) {
  if (max === null || max === undefined) return "—";
  return `${number(score ?? 0)}/${number(max)}`;
}

function rightText(value) {
  if (value === true) return t("assess.right");
  if (value === false) return t("assess.wrong");
  return "—";
}

// One horizontal bar per answer given (every choice for choice questions), scaled to those who answered.
function questionChart(poll, question) {
  const counts = question.counts;
  const width = 400;
  const row = 40;
  const barWidth = 260;
  const scale = Math.max(1, question.answered);
  const height = Math.max(1, counts.length) * row + 8;
  const titleId = `q-chart-${poll.number}-${question.index}`;
  const chart = svg("svg", {
    class: "chart answers-chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-labelledby": titleId, preserveAspectRatio: "xMinYMin meet",
  }, svg("title", { id: titleId }, t("assess.chart_title", { n: question.index + 1, answered: question.answered })));
  counts.forEach((c, index) => {
    const y = index * row;
    const label = c.other ? t("assess.other") : (question.options.length || question.kind === "truefalse")
      ? choiceLabel(question, c.answer) : c.answer;
    const w = Math.round((c.count / scale) * barWidth * 10) / 10;
    const mark = c.correct === true ? ` ✓ ${t("assess.correct_mark")}` : "";
    chart.append(svg("g", { class: "bar-row", "data-answer": c.answer ?? "", "data-count": c.count,
      "data-correct": c.correct === null ? "" : String(c.correct) },
    svg("title", {}, `${label}: ${c.count}${mark}`),
    svg("text", { x: 0, y: y + 13, class: "bar-name" }, `${label.length > 48 ? label.slice(0, 47) + "…" : label}${mark}`),
    svg("rect", { x: 0, y: y + 18, width: barWidth, height: 14, rx: 3, class: "bar-track" }),
    svg("rect", { x: 0, y: y + 18, width: w, height: 14, rx: 3,
      class: `bar ${c.correct === true ? "right" : c.correct === false ? "wrong" : "neutral"}` }),
    svg("text", { x: Math.min(w, barWidth) + 6, y: y + 30, class: "bar-value" }, String(c.count))));
  });
  return h("figure", { class: "chart-figure" }, chart);
}

function questionBlock(poll, question) {
  const typed = question.kind === "text" || question.kind === "number";
  const correct = correctText(question);
  return h("section", { class: "question-record", "data-question": question.index },
    h("h4", {}, t("assess.question", { n: question.index + 1 }), " · ", t("assess.kind." + question.kind),
      question.points !== null && question.points !== undefined
        ? h("span", { class: "muted" }, ` · ${t("assess.points", { points: number(question.points) })}`) : null),
    question.text ? h("p", { class: "question-text" }, question.text) : null,
    h("p", { class: "muted" }, t("assess.answered_right", { answered: question.answered,
      right: question.right ?? "—" }), correct ? ` · ${t("assess.correct_is", { answer: correct })}` : ""),
    question.answered ? questionChart(poll, question) : h("p", { class: "empty" }, t("assess.no_answers")),
    typed && question.answers.length
      ? h("ul", { class: "typed-answers" }, question.answers.map((a) => h("li", { "data-user": a.user_id },
        h("strong", {}, a.name), ": ", a.text ?? "", " ", h("span", { class: "muted" }, `(${rightText(a.correct)})`))))
      : null,
    question.answers.length ? h("details", { class: "answers-detail" },
      h("summary", {}, t("assess.answers", { n: question.answers.length })),
      h("div", { class: "table-scroll" }, h("table", { class: "table question-answers" },
        h("thead", {}, h("tr", {}, ["summary.name", "assess.answer", "assess.right_col", "assess.points_col",
          "assess.at", "assess.changes"].map((key) => h("th", { scope: "col" }, t(key))))),
        h("tbody", {}, question.answers.map((a) => h("tr", { "data-user": a.user_id },
          h("th", { scope: "row" }, a.name),
          h("td", {}, answerText(question, a)),
          h("td", {}, rightText(a.correct)),
          h("td", { class: "num" }, a.points === null ? "—" : number(a.points)),
          h("td", {}, formatTime(a.answered_at, true)),
          h("td", { class: "num" }, String(a.changes)))))))) : null);
}

function scoresTable(rows, caption, cls) {
  return h("div", { class: "table-scroll" }, h("table", { class: `table ${cls}` },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ["summary.name", "summary.personal_id", "assess.score", "assess.right_answers",
      "assess.answered_col"].map((key) => h("th", { scope: "col" }, t(key))))),
    h("tbody", {}, rows.map((s) => h("tr", { "data-user": s.user_id, "data-score": s.score ?? "" },
      h("th", { scope: "row" }, s.name),
      h("td", {}, s.personal_id),
      h("td", { class: "num score" }, scoreText(s.score, s.max_score)),
      h("td", { class: "num" }, s.right === null ? "—" : number(s.right)),
      h("td", { class: "num" }, `${s.answered}/${s.questions}`))))));
}

function assessmentsSection(answer) {
  const polls = answer.items;
  return h("section", { class: "block assessments", "aria-labelledby": "h-assessments" },
    h("h2", { id: "h-assessments" }, t("assess.title")),
    polls.length ? polls.map((poll) => h("article", { class: "poll-record", "data-poll": poll.poll_id },
      h("h3", {}, t("assess.poll", { n: poll.number }), ": ",
        poll.title || (poll.quick ? t("poll.title") : t("assess.quiz"))),
      h("p", { class: "muted" }, formatTime(poll.opened_at, true),
        poll.closed_at ? `–${formatTime(poll.closed_at, true)}` : "",
        ` · ${t("assess.answered_of", { answered: poll.answered,
          eligible: poll.eligible ?? poll.answered + poll.not_answered.length })}`,
        poll.max_score !== null ? ` · ${t("assess.max", { max: number(poll.max_score) })}` : "",
        poll.anonymous ? ` · ${t("assess.anonymous")}` : "",
        poll.revealed ? ` · ${t("poll.state.revealed")}` : ""),
      poll.not_answered.length
        ? h("p", { class: "not-answered" }, t("assess.not_answered", { names: poll.not_answered.map((p) => p.name)
          .join(", ") })) : null,
      poll.questions.map((q) => questionBlock(poll, q)),
      poll.scores.length ? scoresTable(poll.scores, t("assess.scores_of", { n: poll.number }), "poll-scores") : null))
      : h("p", { class: "empty" }, t("assess.none")),
    polls.length > 1 && answer.students.length
      ? scoresTable(answer.students, t("assess.session_scores"), "session-scores") : null);
}

// -- chat, lobby, moderation, handouts ---------------------------------------------------------------------
function person(p) {
  return p?.name ?? t("archive.someone");
}

function chatSection(chat) {
  return h("section", { class: "block", "aria-labelledby": "h-chat" },
    h("h2", { id: "h-chat" }, t("archive.chat")),
    chat.length ? h("ol", { class: "chat-log archive-chat" }, chat.map((m) => h("li", {
      class: `message${m.to ? " private" : ""}${m.deleted_at ? " deleted" : ""}`, "data-message": m.message_id,
    },
    h("span", { class: "meta" }, `${formatTime(m.at, true)} · ${person(m.from)}`,
      m.to ? ` → ${person(m.to)} (${t("chat.private")})` : ""),
    h("span", {}, m.kind === "handout" ? t("chat.handout", { name: m.text }) : m.text),
    m.deleted_at ? h("span", { class: "deleted-mark" },
      t("archive.deleted_by", { name: person(m.deleted_by), time: formatTime(m.deleted_at, true) })) : null)))
      : h("p", { class: "empty" }, t("archive.no_chat")));
}

const LOCK_WORDS = {
  room: ["room.lock", "room.unlock"], microphones: ["room.lock_mics", "room.unlock_mics"],
  cameras: ["room.lock_cams", "room.unlock_cams"], chat: ["room.lock_chat", "room.unlock_chat"],
};

function eventWords(entry) {
  const data = entry.data || {};
  const parts = [];
  if (entry.type === "lock_changed" && LOCK_WORDS[data.what]) {
    parts.push(t(LOCK_WORDS[data.what][data.locked ? 0 : 1]));
  } else if (entry.type === "permissions_changed") {
    for (const [name, allowed] of Object.entries(data)) {
      if (typeof allowed !== "boolean") continue;
      parts.push(t(allowed ? "archive.allowed" : "archive.revoked", { what: t("permission." + name) }));
    }
  } else if (entry.type === "stage_changed") {
    parts.push(t(entry.person ? "room.stage" : "room.unstage"));
  }
  if (data.source) parts.push(t("source." + data.source));
  if (entry.type === "lobby_entered" && "on_roster" in data) {
    parts.push(data.on_roster ? t("lobby.on_roster") : t("lobby.not_on_roster"));
  }
  if (data.reason) parts.push(t("archive.reason", { reason: data.reason }));
  return parts.join(" · ");
}

function eventList(entries, emptyKey, cls) {
  if (!entries.length) return h("p", { class: "empty" }, t(emptyKey));
  return h("ol", { class: `event-list ${cls}` }, entries.map((e) => h("li", { "data-type": e.type },
    h("span", { class: "meta" }, formatTime(e.at, true)), " ",
    h("strong", {}, t("event." + e.type)), " ",
    e.person ? h("span", {}, person(e.person)) : null,
    e.by && e.by.user_id !== e.person?.user_id
      ? h("span", { class: "muted" }, ` · ${t("archive.by", { name: person(e.by) })}`) : null,
    eventWords(e) ? h("span", { class: "muted" }, ` · ${eventWords(e)}`) : null)));
}

function lobbySection(lobby) {
  return h("section", { class: "block", "aria-labelledby": "h-lobby" },
    h("h2", { id: "h-lobby" }, t("archive.lobby")), eventList(lobby, "archive.no_lobby", "lobby-log"));
}

function moderationSection(moderation) {
  return h("section", { class: "block", "aria-labelledby": "h-moderation" },
    h("h2", { id: "h-moderation" }, t("archive.moderation")),
    eventList(moderation, "archive.no_moderation", "moderation-log"));
}

function size(bytes) {
  if (bytes >= 1 << 20) return `${number(bytes / (1 << 20))} MB`;
  return `${number(Math.max(1, bytes / 1024))} KB`;
}

function handoutsSection(handouts) {
  return h("section", { class: "block", "aria-labelledby": "h-handouts" },
    h("h2", { id: "h-handouts" }, t("room.handouts")),
    handouts.length ? h("ul", { class: "handouts" }, handouts.map((x) => h("li", {},
      h("a", { href: x.url, download: x.filename }, x.filename),
      ` · ${size(x.size)} · ${formatTime(x.uploaded_at, true)}`)))
      : h("p", { class: "empty" }, t("archive.no_handouts")));
}

// -- shares ---------------------------------------------------------------------------------------------------
function sharesSection(sessionId, items, hasRecording) {
  const created = h("div", { class: "share-created", hidden: true, role: "status" });
  const list = h("div", {});
  const days = h("input", { id: "share-days", name: "days", type: "number", min: "1", max: "90", value: "7",
    required: true, inputmode: "numeric" });
  const parents = h("input", { id: "share-parents", name: "include_parents", type: "checkbox" });
  const form = h("form", { class: "share-form", onsubmit: create },
    h("label", { for: "share-days" }, t("share.days"), days),
    h("label", { for: "share-parents", class: "check" }, parents, t("share.include_parents")),
    h("button", { type: "submit", class: "primary", disabled: !hasRecording }, t("share.create")));

  function render(shares) {
    list.replaceChildren(shares.length ? h("table", { class: "table shares responsive" },
      h("thead", {}, h("tr", {},
        ["share.created", "share.by", "share.expires", "share.parents", "share.state", "share.actions"]
          .map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", {}, shares.map((s) => {
        const state = s.revoked_at ? "revoked" : s.active ? "active" : "expired";
        return h("tr", { "data-share": s.share_id, "data-state": state },
          h("td", { "data-label": t("share.created") }, formatDateTime(s.created_at)),
          h("td", { "data-label": t("share.by") }, s.created_by?.name ?? ""),
          h("td", { "data-label": t("share.expires") }, formatDateTime(s.expires_at)),
          h("td", { "data-label": t("share.parents") }, s.include_parents ? t("archive.yes") : t("archive.no")),
          h("td", { "data-label": t("share.state") }, h("span", { class: `badge ${state === "active" ? "ok" : ""}` },
            t("share.state." + state))),
          h("td", { "data-label": t("share.actions") }, state === "active"
            ? h("button", { type: "button", class: "danger small", onclick: (event) => askRevoke(event.currentTarget, s) },
              t("share.revoke"))
            : ""));
      }))) : h("p", { class: "empty" }, t("share.none")));
  }

  async function reload() {
    try {
      render((await api("GET", `/sessions/${sessionId}/shares`)).items);
    } catch (e) {
      failed(e);
    }
  }

  async function create(event) {
    event.preventDefault();
    try {
      const share = await api("POST", `/sessions/${sessionId}/shares`,
        { days: Number(days.value), include_parents: parents.checked });
      const link = new URL(share.url, location.origin).href;
      const field = h("input", { id: "share-link", type: "text", readonly: true, value: link, class: "share-link" });
      const copied = h("span", { class: "muted", "aria-live": "polite" });
      created.replaceChildren(
        h("p", {}, t("share.shown_once", { date: formatDateTime(share.expires_at) })),
        h("label", { for: "share-link" }, t("share.link"), field),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "primary", onclick: () => copy(field, copied) }, t("share.copy")),
          copied));
      created.hidden = false;
      field.focus();
      field.select();
      await reload();
    } catch (e) {
      failed(e);
    }
  }

  // The question in the page (no confirm()): "Thu hồi" again to revoke, "Hủy" to keep the link.
  function askRevoke(button, share) {
    const cell = button.parentElement;
    const keep = () => { question.replaceWith(button); button.focus(); };
    const question = h("div", { class: "bank-confirm", role: "alertdialog", "aria-label": t("share.revoke_confirm") },
      h("span", {}, t("share.revoke_confirm")),
      h("button", { type: "button", class: "danger small", "data-share-action": "confirm-revoke",
                    onclick: () => revoke(share) }, t("share.revoke")),
      h("button", { type: "button", class: "small", onclick: keep }, t("poll.cancel")));
    cell.replaceChildren(question);
    question.querySelector("button").focus();
  }

  async function revoke(share) {
    try {
      await api("DELETE", `/sessions/${sessionId}/shares/${share.share_id}`);
      await reload();
    } catch (e) {
      failed(e);
    }
  }

  render(items);
  return h("section", { class: "block", "aria-labelledby": "h-shares" },
    h("h2", { id: "h-shares" }, t("share.title")),
    h("p", { class: "muted" }, hasRecording ? t("share.explain") : t("share.nothing")),
    form, created, list);
}

async function copy(field, note) {
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  note.textContent = t("share.copied");
}

// -- the lesson video: one shareable file made offline from the recording -------------------------------
function lessonVideoSection(sessionId) {
  const url = `/sessions/${sessionId}/lesson-video`;
  const state = h("p", { role: "status" });
  const progress = h("progress", { max: "1", value: "0", hidden: true });
  const link = h("a", { class: "button", hidden: true, download: "" }, t("lesson.download"));
  const start = h("button", { type: "button", onclick: make }, t("lesson.make"));

  function show(job) {
    progress.hidden = job.state !== "running";
    progress.value = job.progress ?? 0;
    link.hidden = job.state !== "done";
    if (job.url) link.href = job.url;
    start.hidden = job.state === "running";
    state.textContent = job.state === "running" ? t("lesson.running", { percent: Math.round((job.progress ?? 0) * 100) })
      : job.state === "done" ? t("lesson.done") : job.error ? t("lesson.failed") : "";
    if (job.state === "running") setTimeout(poll, 1000);
  }

  async function poll() {
    if (!document.body.contains(state)) return; // the user has moved on
    try {
      show(await api("GET", url));
    } catch {
      show({ state: "none" });
    }
  }

  async function make() {
    try {
      show(await api("POST", url));
    } catch (e) {
      failed(e);
    }
  }

  poll();
  return h("div", { class: "lesson-video" }, h("h3", {}, t("lesson.title")),
    h("p", { class: "muted" }, t("lesson.explain")), state, progress, h("div", { class: "page-actions" }, start, link));
}

// -- legal hold (admins) ----------------------------------------------------------------------------------
function legalHoldSection(sessionId, info) {
  const hold = h("input", { id: "hold", type: "checkbox", checked: !!info.legal_hold });
  const reason = h("input", { id: "hold-reason", type: "text", value: info.legal_hold_reason || "", maxlength: "500" });
  const state = h("p", { role: "status" });
  const form = h("form", { class: "hold-form", onsubmit: save },
    h("label", { for: "hold", class: "check" }, hold, t("hold.keep")),
    h("label", { for: "hold-reason" }, t("hold.reason"), reason),
    h("button", { type: "submit", class: "primary" }, t("hold.save")));

  function describe(current) {
    state.textContent = current.legal_hold
      ? t("hold.on", { reason: current.legal_hold_reason || "",
        date: current.legal_hold_at ? formatDateTime(current.legal_hold_at) : "" })
      : t("hold.off");
  }

  async function save(event) {
    event.preventDefault();
    if (hold.checked && reason.value.trim().length < 3) {
      state.textContent = t("hold.reason_needed");
      reason.focus();
      return;
    }
    try {
      const answer = await api("PUT", `/sessions/${sessionId}/legal-hold`,
        { hold: hold.checked, reason: reason.value.trim() || null });
      describe({ ...info, ...(answer?.session ?? answer ?? {}), legal_hold: hold.checked,
        legal_hold_reason: reason.value.trim() });
      banner(t("hold.saved"));
    } catch (e) {
      failed(e);
    }
  }

  describe(info);
  return h("section", { class: "block", "aria-labelledby": "h-hold" },
    h("h2", { id: "h-hold" }, t("hold.title")), h("p", { class: "muted" }, t("hold.explain")), state, form);
}
