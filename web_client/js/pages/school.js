// The admin's school setup (issue 15): accounts (create, edit, deactivate, a new password on a printable slip),
// the roster import with the CLI's checks, classes with their students and teaching assignments.
import { api, ApiError } from "../api.js";
import { currentPage, h, mount, stillOn } from "../dom.js";
import { compareNames, t } from "../i18n.js";
import { hashQuery } from "./records.js";
import { session } from "../app.js";

export const ROLES = ["student", "teacher", "parent", "observer", "admin"];
export const SUBJECTS = ["Toán", "Ngữ văn", "Tiếng Anh", "Vật lý", "Hóa học", "Sinh học", "Lịch sử", "Địa lý",
  "Giáo dục kinh tế và pháp luật", "Tin học", "Công nghệ", "Giáo dục thể chất", "Âm nhạc", "Mỹ thuật",
  "Hoạt động trải nghiệm", "Giáo dục quốc phòng và an ninh"];

// Vietnamese school years start in September (liveclass/roster.py current_school_year).
export function currentSchoolYear() {
  const now = new Date(Date.now() + 7 * 3600 * 1000);
  const start = now.getUTCMonth() + 1 >= 8 ? now.getUTCFullYear() : now.getUTCFullYear() - 1;
  return `${start}-${start + 1}`;
}

// Words for an API refusal: the catalogue's for the codes it knows; the server's "English / Tiếng Việt" text in
// the page's language otherwise; never a raw code.
export function problemText(e) {
  if (!(e instanceof ApiError)) return t("error.generic");
  const known = `school.error.${e.code}`;
  if (t(known) !== known) return t(known);
  if (e.message && e.message.includes(" / ")) return pickLanguage(e.message);
  return t("error.generic");
}

// The server's texts in both languages: reasons "English / Tiếng Việt", column names "Tiếng Việt / English".
export function pickLanguage(text, englishFirst = true) {
  const value = String(text ?? "");
  const at = value.indexOf(" / ");
  if (at < 0) return value;
  return (document.documentElement.lang === "en") === englishFirst ? value.slice(0, at) : value.slice(at + 3);
}

// An in-page question: resolves true on the confirming button, false on Cancel or Escape.
export function ask(text, confirmLabel, { danger = false } = {}) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const close = (answer) => {
      overlay.remove();
      previous?.focus?.();
      resolve(answer);
    };
    const yes = h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => close(true) },
      confirmLabel);
    const overlay = h("div", { class: "school-dialog-backdrop" },
      h("div", { class: "school-dialog card", role: "dialog", "aria-modal": "true", "aria-labelledby": "ask-text",
        onkeydown: (event) => { if (event.key === "Escape") close(false); } },
      h("p", { id: "ask-text" }, text),
      h("div", { class: "actions" },
        yes, h("button", { type: "button", onclick: () => close(false) }, t("school.cancel")))));
    document.body.append(overlay);
    yes.focus();
  });
}

// -- the password slip ---------------------------------------------------------------------------------
// New passwords are shown once, on slips that print one per account (the rest of the page does not print).
export function showSlips(accounts) {
  document.getElementById("print-slips")?.remove();
  const close = () => {
    host.remove();
    document.body.classList.remove("has-slips");
  };
  const host = h("div", { id: "print-slips", class: "school-dialog-backdrop" },
    h("div", { class: "school-dialog card slips-panel", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "slips-title", onkeydown: (event) => { if (event.key === "Escape") close(); } },
    h("h2", { id: "slips-title", class: "no-print" }, t("slip.title_many", { count: accounts.length })),
    h("p", { class: "no-print warn-text" }, t("slip.once")),
    h("div", { class: "actions no-print" },
      h("button", { type: "button", class: "primary", onclick: () => window.print() }, t("slip.print")),
      h("button", { type: "button", onclick: close }, t("slip.close"))),
    h("div", { class: "slips" }, accounts.map((a) => h("article", { class: "slip", "data-personal-id": a.personal_id },
      h("h3", {}, t("slip.heading")),
      h("dl", {},
        h("dt", {}, t("accounts.name")), h("dd", { class: "slip-name" }, a.full_name),
        h("dt", {}, t("login.personal_id")), h("dd", { class: "slip-id" }, a.personal_id),
        h("dt", {}, t("slip.password")), h("dd", { class: "slip-password" }, a.password)),
      h("p", { class: "slip-note" }, t("slip.note")),
      h("p", { class: "slip-address" }, t("slip.address", { address: location.origin })))))));
  document.body.append(host);
  document.body.classList.add("has-slips");
  host.querySelector("button.primary").focus();
}

// -- accounts ------------------------------------------------------------------------------------------
export async function showAccounts(wrap) {
  const current = currentPage();
  const query = hashQuery();
  const filters = { q: query.get("q") || "", role: query.get("role") || "" };
  let users;
  try {
    users = await api("GET", `/users?${new URLSearchParams({ limit: 1000, ...(filters.q ? { q: filters.q } : {}),
      ...(filters.role ? { role: filters.role } : {}) })}`);
  } catch (e) {
    if (stillOn(current)) mount(wrap(h("p", { class: "error", role: "alert" }, problemText(e))));
    return;
  }
  if (!stillOn(current)) return;
  const status = h("p", { role: "status", class: "school-status" });
  const reload = () => showAccounts(wrap);

  // Create one account.
  const createError = h("p", { class: "error", role: "alert" });
  const createForm = h("form", { class: "school-form", onsubmit: create },
    h("label", {}, t("accounts.name"), h("input", { name: "full_name", required: true, maxlength: "200",
      autocomplete: "off" })),
    h("label", {}, t("login.personal_id"), h("input", { name: "personal_id", required: true, maxlength: "32",
      inputmode: "numeric", autocomplete: "off" })),
    h("label", {}, t("accounts.role"), h("select", { name: "role", "aria-label": t("accounts.role") },
      ROLES.map((r) => h("option", { value: r }, t("role." + r))))),
    h("label", {}, t("accounts.birth"), h("input", { name: "date_of_birth", type: "date" })),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("accounts.create"))),
    createError);

  async function create(event) {
    event.preventDefault();
    createError.textContent = "";
    const data = Object.fromEntries(new FormData(createForm));
    const body = { full_name: data.full_name.trim(), personal_id: data.personal_id.trim(), role: data.role };
    if (data.date_of_birth) body.date_of_birth = data.date_of_birth;
    try {
      const made = await api("POST", "/users", body);
      await reload();
      showSlips([{ ...made.user, password: made.generated_password }]);
    } catch (e) {
      createError.textContent = problemText(e);
    }
  }

  const rows = users.items.map((u) => accountRow(u, status, reload));
  const filterForm = h("form", { class: "filters", role: "search", "aria-label": t("accounts.find"),
    onsubmit: (event) => {
      event.preventDefault();
      const chosen = new URLSearchParams();
      for (const [name, value] of new FormData(event.target)) if (String(value).trim()) chosen.set(name, String(value).trim());
      const target = `#/admin/accounts${chosen.toString() ? "?" + chosen : ""}`;
      if (location.hash === target) reload(); else location.hash = target;
    } },
  h("label", {}, t("accounts.find"), h("input", { name: "q", type: "search", value: filters.q })),
  h("label", {}, t("accounts.role"), h("select", { name: "role", "aria-label": t("accounts.role") }, h("option", { value: "" }, t("accounts.all_roles")),
    ROLES.map((r) => h("option", { value: r, selected: r === filters.role }, t("role." + r))))),
  h("div", { class: "filter-actions" }, h("button", { type: "submit" }, t("archive.search"))));

  mount(wrap(h("div", { class: "school" },
    h("section", { class: "card" },
      h("h1", {}, t("admin.accounts")),
      h("p", { class: "muted" }, t("accounts.explain")),
      h("details", { class: "school-box", open: users.items.length < 2 },
        h("summary", {}, t("accounts.new")), createForm),
      rosterImport(reload)),
    h("section", { class: "card" },
      h("h2", {}, t("accounts.list", { count: users.items.length })),
      filterForm, status,
      users.items.length >= 1000 ? h("p", { class: "muted" }, t("accounts.first_thousand")) : null,
      users.items.length
        ? h("div", { class: "table-scroll" }, h("table", { class: "table accounts responsive" },
          h("thead", {}, h("tr", {}, ["accounts.name", "accounts.personal_id", "accounts.role", "accounts.state",
            "accounts.actions"].map((k) => h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, rows)))
        : h("p", { class: "empty" }, t("accounts.none"))))));
}

function accountRow(user, status, reload) {
  const row = h("tr", { "data-user": user.id, "data-personal-id": user.personal_id });
  const edit = h("button", { type: "button", class: "small", onclick: () => editRow() }, t("accounts.edit"));
  // One's own account is never deactivated from here (the server refuses it too).
  const toggle = user.id === session.user?.id ? null
    : h("button", { type: "button", class: user.active ? "small danger" : "small", onclick: flip },
      user.active ? t("accounts.deactivate") : t("accounts.activate"));
  const reset = h("button", { type: "button", class: "small", onclick: resetPassword }, t("accounts.reset"));
  const cells = () => [
    h("td", { "data-label": t("accounts.name") }, user.full_name),
    h("td", { "data-label": t("accounts.personal_id") }, user.personal_id),
    h("td", { "data-label": t("accounts.role") }, t("role." + user.role)),
    h("td", { "data-label": t("accounts.state") }, h("span", { class: user.active ? "badge ok" : "badge warn" },
      user.active ? t("accounts.active") : t("accounts.inactive"))),
    h("td", { "data-label": t("accounts.actions"), class: "row-actions" }, edit, toggle, reset)];
  row.append(...cells());

  async function flip() {
    const name = user.full_name;
    if (user.active && !await ask(t("accounts.deactivate_confirm", { name }), t("accounts.deactivate"), { danger: true })) return;
    try {
      await api("PATCH", `/users/${user.id}`, { active: !user.active });
      await reload();
      document.querySelector(".school .school-status").textContent =
        t(user.active ? "accounts.deactivated" : "accounts.activated", { name });
    } catch (e) {
      status.textContent = problemText(e);
    }
  }

  async function resetPassword() {
    if (!await ask(t("accounts.reset_confirm", { name: user.full_name }), t("accounts.reset"))) return;
    try {
      const answer = await api("POST", `/users/${user.id}/reset-password`);
      showSlips([{ ...user, password: answer.generated_password }]);
    } catch (e) {
      status.textContent = problemText(e);
    }
  }

  function editRow() {
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "school-form inline", onsubmit: save },
      h("label", {}, t("accounts.name"), h("input", { name: "full_name", required: true, maxlength: "200",
        value: user.full_name })),
      h("label", {}, t("accounts.role"), h("select", { name: "role", "aria-label": t("accounts.role") },
        ROLES.map((r) => h("option", { value: r, selected: r === user.role }, t("role." + r))))),
      h("label", {}, t("accounts.birth"), h("input", { name: "date_of_birth", type: "date",
        value: user.date_of_birth || "" })),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, t("accounts.save")),
        h("button", { type: "button", onclick: () => row.replaceChildren(...cells()) }, t("school.cancel"))),
      error);
    row.replaceChildren(h("td", { colspan: "5" }, form));
    form.querySelector("input").focus();

    async function save(event) {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      try {
        await api("PATCH", `/users/${user.id}`, { full_name: data.full_name.trim(), role: data.role,
          date_of_birth: data.date_of_birth || null });
        await reload();
      } catch (e) {
        error.textContent = problemText(e);
      }
    }
  }
  return row;
}

// -- the roster import ---------------------------------------------------------------------------------------
// The CLI's reasons (liveclass/roster.py) in the page's language.
const ROSTER_REASONS = [
  [/^personal_id is missing$/, "roster.r.pid_missing"],
  [/^personal ID '(.*)' does not match the required pattern (.*)$/, "roster.r.pid_pattern", ["id", "pattern"]],
  [/^duplicate personal_id (.*) \(first on line (\d+)\)$/, "roster.r.duplicate", ["id", "line"]],
  [/^full_name is missing$/, "roster.r.name_missing"],
  [/^full_name is longer than (\d+) characters$/, "roster.r.name_long", ["max"]],
  [/^unknown role '(.*)' \(use one of: (.*)\)$/, "roster.r.role", ["role", "roles"]],
  [/^class is longer than 64 characters$/, "roster.r.class_long"],
  [/^class is only for students and teachers, not for role '(.*)'$/, "roster.r.class_role", ["role"]],
  [/^date_of_birth '(.*)' is not YYYY-MM-DD or DD\/MM\/YYYY$/, "roster.r.birth", ["value"]],
  [/^parent_of is only for parents$/, "roster.r.parent_only"],
  [/^parent_of names (.*), who is not in the file nor registered$/, "roster.r.child_unknown", ["id"]],
  [/^parent_of names (.*), who is not a student$/, "roster.r.child_not_student", ["id"]],
  [/^too many columns \((\d+)\)$/, "roster.r.columns", ["count"]],
  [/^line 1: the header must name the columns (.*); missing: (.*)$/, "roster.r.header", ["columns", "missing"]],
  [/^line (\d+): the file is not UTF-8.*$/, "roster.r.utf8", ["line"]],
  [/^line (\d+): the file contains the NUL character$/, "roster.r.nul", ["line"]],
];

export function rosterReason(text) {
  const cleaned = String(text).replace(/\. Nothing was imported\.$/, "");
  return cleaned.split("; ").map((part) => {
    for (const [pattern, key, names = []] of ROSTER_REASONS) {
      const found = pattern.exec(part);
      if (found) return t(key, Object.fromEntries(names.map((n, i) => [n, found[i + 1]])));
    }
    return part;
  }).join("; ");
}

function rosterImport(reload) {
  const result = h("div", { class: "import-result", "aria-live": "polite" });
  const file = h("input", { id: "roster-file", name: "file", type: "file", accept: ".csv,text/csv", required: true });
  const year = h("input", { id: "roster-year", name: "school_year", required: true, pattern: "\\d{4}-\\d{4}",
    value: currentSchoolYear() });
  const form = h("form", { class: "school-form", onsubmit: send },
    h("p", { class: "muted" }, t("roster.explain")),
    h("pre", { class: "template-line" }, "personal_id,full_name,role,class,date_of_birth,parent_of"),
    h("label", { for: "roster-file" }, t("roster.file"), file),
    h("label", { for: "roster-year" }, t("school.year"), year),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("roster.import")),
      h("a", { class: "button", href: templateHref(), download: "mau-danh-sach.csv" }, t("roster.template"))),
    result);

  async function send(event) {
    event.preventDefault();
    result.replaceChildren(h("p", { role: "status" }, t("roster.importing")));
    const chosen = file.files[0];
    try {
      const answer = await api("POST", `/roster/import?school_year=${encodeURIComponent(year.value.trim())}`,
        new Blob([await chosen.arrayBuffer()], { type: "text/csv" }));
      await reload();
      const summary = t("roster.done", { created: answer.created, updated: answer.updated,
        unchanged: answer.unchanged, year: answer.school_year });
      document.querySelector(".school .school-status").textContent = summary;
      if (answer.passwords.length) showSlips(answer.passwords);
    } catch (e) {
      const errors = e instanceof ApiError && Array.isArray(e.details) ? e.details : null;
      result.replaceChildren(
        h("p", { class: "error", role: "alert" }, errors
          ? t("roster.rejected", { count: new Set(errors.map((p) => p.line)).size })
          : (e instanceof ApiError && e.code === "bad_roster_file" ? rosterReason(e.message) : problemText(e))),
        errors ? h("ul", { class: "row-problems" }, errors.map((p) => h("li", { "data-line": p.line },
          h("strong", {}, t("school.line", { line: p.line })), " ", rosterReason(p.reason)))) : null);
    }
  }

  return h("details", { class: "school-box" }, h("summary", {}, t("roster.title")), form);
}

function templateHref() {
  const text = "\ufeffpersonal_id,full_name,role,class,date_of_birth,parent_of\r\n" +
    "001209000001,Lý Thu Trang,student,10A1,06/05/2011,\r\n" +
    "001088000123,Nguyễn Thị Hà,teacher,10A1,,\r\n" +
    "001075000999,Lý Văn Sơn,parent,,,001209000001\r\n";
  return `data:text/csv;charset=utf-8,${encodeURIComponent(text)}`;
}

// -- classes -------------------------------------------------------------------------------------------
export async function showClasses(wrap) {
  const current = currentPage();
  const chosen = Number(hashQuery().get("class")) || null;
  let classes, teachers, detail = null, students = null;
  try {
    [classes, teachers] = await Promise.all([api("GET", "/classes"), api("GET", "/users?role=teacher&limit=1000")]);
    if (chosen) {
      [detail, students] = await Promise.all([api("GET", `/classes/${chosen}`),
        api("GET", "/users?role=student&limit=1000")]);
    }
  } catch (e) {
    if (stillOn(current)) mount(wrap(h("p", { class: "error", role: "alert" }, problemText(e))));
    return;
  }
  if (!stillOn(current)) return;
  const reload = () => showClasses(wrap);
  const teacherName = new Map(teachers.items.map((u) => [u.id, u.full_name]));
  const createError = h("p", { class: "error", role: "alert" });
  const createForm = h("form", { class: "school-form", onsubmit: create },
    h("label", {}, t("classes.name"), h("input", { name: "name", required: true, maxlength: "64",
      placeholder: "10A1" })),
    h("label", {}, t("school.year"), h("input", { name: "school_year", required: true, pattern: "\\d{4}-\\d{4}",
      value: currentSchoolYear() })),
    h("label", {}, t("classes.homeroom"), teacherSelect("homeroom_teacher_id", teachers.items, null, true,
      t("classes.homeroom"))),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("classes.create"))),
    createError);

  async function create(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(createForm));
    const body = { name: data.name.trim(), school_year: data.school_year.trim() };
    if (data.homeroom_teacher_id) body.homeroom_teacher_id = Number(data.homeroom_teacher_id);
    try {
      const made = await api("POST", "/classes", body);
      location.hash = `#/admin/classes?class=${made.id}`;
    } catch (e) {
      createError.textContent = problemText(e);
    }
  }

  mount(wrap(h("div", { class: "school" },
    h("section", { class: "card" },
      h("h1", {}, t("admin.nav.classes")),
      h("details", { class: "school-box", open: !classes.items.length }, h("summary", {}, t("classes.new")),
        createForm),
      classes.items.length
        ? h("div", { class: "table-scroll" }, h("table", { class: "table classes" },
          h("thead", {}, h("tr", {}, ["classes.name", "school.year", "classes.homeroom"].map((k) =>
            h("th", { scope: "col" }, t(k))))),
          h("tbody", {}, classes.items.map((c) => h("tr", { "data-class": c.id, class: c.id === chosen ? "chosen" : "" },
            h("td", {}, h("a", { href: `#/admin/classes?class=${c.id}`, "aria-current": c.id === chosen ? "page" : false },
              c.name)),
            h("td", {}, c.school_year),
            h("td", {}, teacherName.get(c.homeroom_teacher_id) || "—"))))))
        : h("p", { class: "empty" }, t("classes.none"))),
    detail ? classDetail(detail, teachers.items, students.items, reload) : null)));
}

// A select inside its label: aria-label keeps its name to the label's words (not the chosen option's too).
function teacherSelect(name, teachers, selected, optional, label) {
  return h("select", { name, required: !optional, "aria-label": label },
    h("option", { value: "" }, optional ? t("classes.no_teacher") : t("classes.choose_teacher")),
    [...teachers].filter((u) => u.active).sort((a, b) => compareNames(a.full_name, b.full_name))
      .map((u) => h("option", { value: u.id, selected: u.id === selected }, `${u.full_name} (${u.personal_id})`)));
}

function classDetail(detail, teachers, students, reload) {
  const error = h("p", { class: "error", role: "alert" });
  const act = async (work) => {
    error.textContent = "";
    try {
      await work();
      await reload();
    } catch (e) {
      error.textContent = problemText(e);
    }
  };
  const teacherName = new Map(teachers.map((u) => [u.id, u.full_name]));
  const enrolled = new Set(detail.students.map((s) => s.id));

  const homeroom = h("form", { class: "school-form inline", onsubmit: (event) => {
    event.preventDefault();
    const value = new FormData(event.target).get("homeroom_teacher_id");
    act(() => api("PATCH", `/classes/${detail.id}`, { homeroom_teacher_id: value ? Number(value) : null }));
  } },
  h("label", {}, t("classes.homeroom"), teacherSelect("homeroom_teacher_id", teachers, detail.homeroom_teacher_id, true,
    t("classes.homeroom"))),
  h("div", { class: "actions" }, h("button", { type: "submit" }, t("accounts.save"))));

  const addStudent = h("form", { class: "school-form inline", onsubmit: (event) => {
    event.preventDefault();
    const id = new FormData(event.target).get("student_id");
    if (id) act(() => api("PUT", `/classes/${detail.id}/students/${id}`));
  } },
  h("label", {}, t("classes.add_student"), h("select", { name: "student_id", required: true,
    "aria-label": t("classes.add_student") },
    h("option", { value: "" }, t("classes.choose_student")),
    students.filter((s) => s.active && !enrolled.has(s.id)).sort((a, b) => compareNames(a.full_name, b.full_name))
      .map((s) => h("option", { value: s.id }, `${s.full_name} (${s.personal_id})`)))),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("classes.enrol"))));

  const assign = h("form", { class: "school-form inline", onsubmit: (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.target));
    act(() => api("POST", `/classes/${detail.id}/assignments`, { teacher_id: Number(data.teacher_id),
      subject: data.subject.trim() }));
  } },
  h("label", {}, t("classes.teacher"), teacherSelect("teacher_id", teachers, null, false, t("classes.teacher"))),
  h("label", {}, t("classes.subject"), h("input", { name: "subject", required: true, maxlength: "100",
    list: "school-subjects", autocomplete: "off" })),
  h("datalist", { id: "school-subjects" }, SUBJECTS.map((s) => h("option", { value: s }))),
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("classes.assign"))));

  const sorted = [...detail.students].sort((a, b) => compareNames(a.full_name, b.full_name));
  return h("section", { class: "card class-detail", "aria-labelledby": "class-title" },
    h("h2", { id: "class-title" }, t("classes.detail", { name: detail.name, year: detail.school_year })),
    error,
    homeroom,
    h("h3", {}, t("classes.assignments")),
    detail.assignments.length
      ? h("ul", { class: "assignments" }, detail.assignments.map((a) => h("li", { "data-assignment": a.id },
        h("span", {}, `${a.subject} · ${teacherName.get(a.teacher_id) || a.teacher_id}`),
        h("button", { type: "button", class: "small danger", onclick: async () => {
          if (await ask(t("classes.unassign_confirm", { subject: a.subject, name: teacherName.get(a.teacher_id) || "" }),
            t("classes.unassign"), { danger: true })) act(() => api("DELETE", `/classes/${detail.id}/assignments/${a.id}`));
        } }, t("classes.unassign")))))
      : h("p", { class: "muted" }, t("classes.no_assignments")),
    assign,
    h("h3", {}, t("classes.students", { count: detail.students.length })),
    sorted.length
      ? h("ol", { class: "roster" }, sorted.map((s) => h("li", { "data-student": s.id },
        h("span", {}, `${s.full_name} (${s.personal_id})`),
        h("button", { type: "button", class: "small danger", onclick: async () => {
          if (await ask(t("classes.unenrol_confirm", { name: s.full_name, class: detail.name }), t("classes.unenrol"),
            { danger: true })) act(() => api("DELETE", `/classes/${detail.id}/students/${s.id}`));
        } }, t("classes.unenrol")))))
      : h("p", { class: "muted" }, t("classes.no_students")),
    addStudent,
    h("p", {}, h("a", { href: `#/admin/timetable?class=${detail.id}` }, t("classes.timetable"))));
}
