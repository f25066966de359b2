// The teacher's question bank ("Ngân hàng câu hỏi", #/bank?subject=&topic=&q=&mine=): questions by subject and
// topic (chương), made and changed in the page, shared with the teachers of the same subject, XLSX in and out.
import { api, ApiError } from "../api.js";
import { banner, currentPage, h, mount, stillOn } from "../dom.js";
import { currentLanguage, formatNumber, t } from "../i18n.js";
import { session } from "../app.js";
import { hashQuery } from "./records.js";

export const KINDS = ["single", "multiple", "truefalse", "text", "number"];
export const LETTERS = "ABCDEF";
const MAX_IMAGE = 1024 * 1024;
// The bank API's refusals the catalogue has words for ("bank.error.<code>"); others say "try again".
const BANK_ERRORS = new Set(["not_found", "forbidden", "invalid_request", "invalid_question", "invalid_json",
  "file_too_large", "unsupported_media_type", "file_type_not_allowed", "empty_file", "not_an_image",
  "image_too_large", "image_link_expired", "not_xlsx", "bad_header", "too_many_rows", "empty_import",
  "import_rejected", "not_authenticated", "csrf_failed", "network", "not_a_teacher", "too_many_requests",
  "rate_limited", "payload_too_large"]);
// Fields of the question the API may name in an invalid_request (details[].field).
const FIELDS = new Set(["subject", "topic", "kind", "text", "options", "correct", "tolerance", "points",
  "explanation", "shared"]);

// The bank's texts about a question or a row come in both languages, "English / Tiếng Việt" (reasons) or
// "Tiếng Việt / English" (column names): the half in the page's language.
export function oneLanguage(text, englishFirst = true) {
  const value = String(text ?? "");
  const at = value.indexOf(" / ");
  if (at < 0) return value;
  const [first, second] = [value.slice(0, at), value.slice(at + 3)];
  return (currentLanguage() === "en") === englishFirst ? first : second;
}

// Words for a refusal of the bank API: never a raw code or the server's English in the Vietnamese page.
export function bankErrorText(e) {
  const code = e instanceof ApiError ? e.code : "network";
  if (code === "invalid_question" && Array.isArray(e.details) && e.details.some((d) => String(d.message).includes(" / "))) {
    return t("bank.error.invalid_details", { details: e.details.map((d) => oneLanguage(d.message)).join(" ") });
  }
  if ((code === "invalid_request" || code === "invalid_question") && Array.isArray(e.details) && e.details.length) {
    const fields = [...new Set(e.details.map((d) => String(d.field || "").split(".")[0]))]
      .filter((f) => FIELDS.has(f)).map((f) => t(`bank.field.${f}`));
    if (fields.length) return t("bank.error.invalid_fields", { fields: fields.join(", ") });
  }
  if (e instanceof ApiError && e.status === 413) return t("bank.error.file_too_large");
  return BANK_ERRORS.has(code) ? t(`bank.error.${code}`) : t("error.generic");
}

export function kindWords(kind) {
  return t(`bank.kind.${kind}`);
}

// A number as the person's language writes it ("3,5" / "3.5"), from the API's "3.5".
function numberText(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return formatNumber(n, Number.isInteger(n) ? 0 : Math.min(6, String(value).split(".")[1]?.length || 1));
}

export function pointsText(points) {
  return points === null || points === undefined ? "" : numberText(points);
}

// "3,5" or "3.5" or " 3 " → "3.5"; null when it is not a number.
function parseNumber(text) {
  const cleaned = String(text ?? "").replace(/\s+/g, "").replace(",", ".");
  if (!cleaned || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(cleaned)) return null;
  return Number(cleaned);
}

// What the correct answer of a question is, in words ("B", "A, C", "Đúng", "3,5 (± 0,1)", "ba; Ba Đình").
export function correctWords(question) {
  const correct = question.correct;
  if (!correct || !correct.length) return "";
  if (question.kind === "truefalse") return t(`poll.${correct[0]}`);
  if (question.kind === "number") {
    const tolerance = question.tolerance ? ` (± ${numberText(question.tolerance)})` : "";
    return `${numberText(correct[0])}${tolerance}`;
  }
  if (question.kind === "text") return correct.join("; ");
  return correct.join(", ");
}

// -- the page ---------------------------------------------------------------------------------------------
const state = { editing: null, confirmDelete: null, importResult: null };

function filtersFromHash() {
  const query = hashQuery();
  const filters = {};
  for (const name of ["subject", "topic", "q", "mine"]) if (query.get(name)) filters[name] = query.get(name);
  return filters;
}

export async function showBank() {
  const page = currentPage();
  const filters = filtersFromHash();
  let subjects;
  let questions;
  try {
    [subjects, questions] = await Promise.all([
      api("GET", "/questions/subjects"),
      api("GET", `/questions?${new URLSearchParams(filters)}`),
    ]);
  } catch (e) {
    if (stillOn(page)) banner(bankErrorText(e), "error");
    return;
  }
  if (!stillOn(page)) return;
  const view = { page, filters, subjects: subjects.items, items: questions.items };
  renderBank(view);
}

function reload() {
  return showBank();
}

function renderBank(view) {
  const { filters, subjects, items } = view;
  const exportQuery = new URLSearchParams(filters);
  exportQuery.delete("q");
  const toolbar = h("div", { class: "bank-toolbar" },
    h("button", { class: "primary", "data-bank-action": "new", onclick: () => {
      state.editing = blankDraft(filters);
      state.confirmDelete = null;
      renderBank(view);
      document.querySelector(".bank-form [name=text]")?.focus();
    } }, t("bank.new")),
    h("label", { class: "button", "data-bank-action": "import" }, t("bank.import"),
      h("input", { type: "file", class: "visually-hidden", "aria-label": t("bank.import"),
                   accept: ".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   onchange: (event) => importFile(view, event.target) })),
    h("a", { class: "button", href: `/api/v1/questions/export.xlsx?${exportQuery}`, download: "",
             "data-bank-action": "export" }, t("bank.export")),
    h("a", { class: "button", href: "/api/v1/questions/template.xlsx", download: "", "data-bank-action": "template" },
      t("bank.template")));
  mount(h("section", { class: "card bank", "data-screen": "bank" },
    h("h1", {}, t("bank.title")),
    h("p", { class: "muted" }, t("bank.explain")),
    toolbar,
    renderImportResult(view),
    state.editing && !state.editing.id ? renderForm(view, state.editing) : null,
    renderFilters(view),
    h("p", { class: "bank-count muted", role: "status" }, t("bank.count", { count: items.length })),
    items.length
      ? h("ol", { class: "bank-list" }, items.map((q) => state.editing?.id === q.id
        ? h("li", { "data-question": q.id }, renderForm(view, state.editing)) : renderItem(view, q)))
      : h("p", { class: "empty" }, Object.keys(filters).length ? t("bank.none_filtered") : t("bank.none")),
    subjectsList(subjects)));
}

// The subjects and topics already in the bank, offered while typing them.
function subjectsList(subjects) {
  return h("div", { hidden: true },
    h("datalist", { id: "bank-subjects" }, subjects.map((s) => h("option", { value: s.subject }))),
    h("datalist", { id: "bank-topics" }, [...new Set(subjects.flatMap((s) => s.topics))].filter(Boolean)
      .map((topic) => h("option", { value: topic }))));
}

function renderFilters(view) {
  const { filters, subjects } = view;
  const chosen = subjects.find((s) => s.subject === filters.subject);
  const subject = h("select", { name: "subject", "aria-label": t("bank.subject"),
                                onchange: () => { topic.value = ""; apply(); } },
    h("option", { value: "" }, t("bank.all_subjects")),
    subjects.map((s) => h("option", { value: s.subject, selected: s.subject === filters.subject },
      `${s.subject} (${s.count})`)));
  const topic = h("select", { name: "topic", "aria-label": t("bank.topic"), disabled: !chosen, onchange: () => apply() },
    h("option", { value: "" }, t("bank.all_topics")),
    (chosen?.topics || []).filter(Boolean).map((name) => h("option", { value: name, selected: name === filters.topic }, name)));
  const search = h("input", { type: "search", name: "q", value: filters.q || "", placeholder: t("bank.search") });
  const mine = h("input", { type: "checkbox", name: "mine", checked: filters.mine === "true", onchange: () => apply() });
  function apply() {
    const next = new URLSearchParams();
    if (subject.value) next.set("subject", subject.value);
    if (subject.value && topic.value) next.set("topic", topic.value);
    if (search.value.trim()) next.set("q", search.value.trim());
    if (mine.checked) next.set("mine", "true");
    state.editing = null;
    location.hash = `#/bank${next.toString() ? `?${next}` : ""}`;
  }
  return h("form", { class: "bank-filters", role: "search", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("label", {}, t("bank.subject"), subject),
    h("label", {}, t("bank.topic"), topic),
    h("label", { class: "bank-search" }, t("bank.search_label"), search),
    h("label", { class: "poll-check" }, mine, t("bank.mine")),
    h("button", { type: "submit" }, t("bank.filter")));
}

function renderItem(view, q) {
  const confirming = state.confirmDelete === q.id;
  const mine = q.owner?.id === session.user?.id;
  return h("li", { class: "bank-item", "data-question": q.id, "data-kind": q.kind },
    h("div", { class: "bank-meta" },
      h("span", { class: "badge" }, kindWords(q.kind)),
      h("span", {}, q.topic ? `${q.subject} · ${q.topic}` : q.subject),
      q.shared ? h("span", { class: "badge ok" }, t("bank.shared_badge")) : null,
      !mine && q.owner ? h("span", { class: "muted" }, t("bank.by", { name: q.owner.full_name })) : null),
    h("p", { class: "bank-text" }, q.text),
    q.image_url ? h("img", { class: "bank-image", src: q.image_url, alt: t("bank.image_alt"), loading: "lazy" }) : null,
    q.options?.length ? h("ol", { class: "bank-options" }, q.options.map((text, i) => {
      const right = q.correct?.includes(LETTERS[i]);
      return h("li", { class: right ? "correct" : "", "data-option": LETTERS[i] },
        h("strong", {}, `${LETTERS[i]}. `), text, right ? h("span", { class: "visually-hidden" }, ` (${t("bank.correct")})`) : null,
        right ? " ✓" : "");
    })) : null,
    q.correct?.length && !q.options?.length
      ? h("p", { class: "bank-answer" }, `${t(q.kind === "text" ? "bank.accepted" : "bank.answer")}: ${correctWords(q)}`) : null,
    !q.correct?.length ? h("p", { class: "muted" }, t("bank.no_correct")) : null,
    q.points !== null && q.points !== undefined
      ? h("p", { class: "bank-points" }, t("bank.points_value", { points: pointsText(q.points) })) : null,
    q.explanation ? h("p", { class: "bank-explanation" }, h("em", {}, `${t("bank.explanation")}: `), q.explanation) : null,
    q.may_edit ? h("div", { class: "bank-actions" },
      confirming
        ? h("div", { class: "bank-confirm", role: "alertdialog", "aria-label": t("bank.delete_confirm") },
          h("span", {}, t("bank.delete_confirm")),
          h("button", { class: "danger", "data-bank-action": "confirm-delete", onclick: () => deleteQuestion(view, q) },
            t("bank.delete")),
          h("button", { onclick: () => { state.confirmDelete = null; renderBank(view); } }, t("poll.cancel")))
        : [h("button", { "data-bank-action": "edit", onclick: () => {
          state.editing = draftOf(q);
          state.confirmDelete = null;
          renderBank(view);
        } }, t("bank.edit")),
        h("button", { class: "danger", "data-bank-action": "delete", onclick: () => {
          state.confirmDelete = q.id;
          renderBank(view);
        } }, t("bank.delete"))]) : null);
}

async function deleteQuestion(view, q) {
  try {
    await api("DELETE", `/questions/${q.id}`);
  } catch (e) {
    banner(bankErrorText(e), "error");
    return;
  }
  state.confirmDelete = null;
  banner(t("bank.deleted"), "info");
  await reload();
}

// -- import -------------------------------------------------------------------------------------------------
async function importFile(view, input) {
  const file = input.files[0];
  input.value = "";
  if (!file) return;
  state.importResult = { busy: true, name: file.name };
  renderBank(view);
  let result;
  try {
    result = await api("POST", "/questions/import", file);
  } catch (e) {
    // A file with bad rows: nothing created, every bad row listed (in the answer or the error's details).
    const details = e instanceof ApiError ? e.details : null;
    const errors = Array.isArray(details?.errors) ? details.errors
      : Array.isArray(details) && details.some((d) => d && "line" in d) ? details : null;
    state.importResult = errors ? { name: file.name, created: 0, errors } : { name: file.name, failed: bankErrorText(e) };
    renderBank(view);
    return;
  }
  state.importResult = { name: file.name, created: result.created || 0, errors: result.errors || [] };
  if (!state.importResult.errors.length) {
    await reload();
    return;
  }
  renderBank(view);
}

function importReason(reason) {
  return oneLanguage(reason || "", true);
}

function renderImportResult() {
  const result = state.importResult;
  if (!result) return null;
  const close = h("button", { class: "small", onclick: () => { state.importResult = null; document.querySelector(".bank-import")?.remove(); } },
    t("poll.hide"));
  if (result.busy) return h("div", { class: "bank-import", role: "status" }, t("bank.importing", { name: result.name }));
  if (result.failed) {
    return h("div", { class: "bank-import error-box", role: "alert" }, h("p", {}, result.failed), close);
  }
  if (!result.errors.length) {
    return h("div", { class: "bank-import ok-box", role: "status" },
      h("p", {}, t("bank.imported", { count: result.created, name: result.name })), close);
  }
  return h("div", { class: "bank-import error-box", role: "alert" },
    h("p", {}, h("strong", {}, t("bank.import_failed", { count: result.errors.length, name: result.name }))),
    h("div", { class: "table-scroll" }, h("table", { class: "table bank-import-errors" },
      h("thead", {}, h("tr", {}, ["bank.import.line", "bank.import.column", "bank.import.reason"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, result.errors.map((e) => h("tr", { "data-line": e.line ?? "" },
        h("td", { class: "num" }, e.line ?? "—"), h("td", {}, e.column ? oneLanguage(e.column, false) : "—"), h("td", {}, importReason(e.reason))))))),
    close);
}

// -- the form -------------------------------------------------------------------------------------------------
function blankDraft(filters) {
  return { id: null, subject: filters.subject || "", topic: filters.topic || "", kind: "single", text: "",
           options: ["", "", "", ""], letters: [], tf: null, accepted: "", number: "", tolerance: "", points: "",
           explanation: "", shared: false, image_url: null, imageFile: null, removeImage: false, error: "" };
}

function draftOf(q) {
  const draft = blankDraft({});
  Object.assign(draft, { id: q.id, subject: q.subject, topic: q.topic || "", kind: q.kind, text: q.text,
                         points: pointsText(q.points).replace(/\s/g, ""), explanation: q.explanation || "",
                         shared: Boolean(q.shared), image_url: q.image_url });
  if (q.kind === "single" || q.kind === "multiple") {
    draft.options = [...q.options];
    draft.letters = [...(q.correct || [])];
  } else if (q.kind === "truefalse") draft.tf = q.correct?.[0] ?? null;
  else if (q.kind === "text") draft.accepted = (q.correct || []).join("\n");
  else if (q.kind === "number") {
    draft.number = q.correct?.[0] ? numberText(q.correct[0]).replace(/\s/g, "") : "";
    draft.tolerance = q.tolerance ? numberText(q.tolerance).replace(/\s/g, "") : "";
  }
  return draft;
}

// The question as the API takes it; a string (the catalogue's words) when something is missing.
function payloadOf(draft) {
  const body = { subject: draft.subject.trim(), topic: draft.topic.trim(), kind: draft.kind, text: draft.text.trim(),
                 explanation: draft.explanation.trim() || null, shared: draft.shared, options: [], correct: null,
                 tolerance: null, points: null };
  if (!body.subject) return t("bank.need.subject");
  if (!body.text) return t("bank.need.text");
  if (draft.kind === "single" || draft.kind === "multiple") {
    body.options = draft.options.map((o) => o.trim());
    if (body.options.length < 2 || body.options.some((o) => !o)) return t("bank.need.options");
    const letters = draft.letters.filter((l) => LETTERS.indexOf(l) < body.options.length).sort();
    if (letters.length) body.correct = draft.kind === "single" ? letters.slice(0, 1) : letters;
  } else if (draft.kind === "truefalse") {
    if (draft.tf) body.correct = [draft.tf];
  } else if (draft.kind === "text") {
    const accepted = draft.accepted.split("\n").map((a) => a.trim()).filter(Boolean);
    if (accepted.length > 10) return t("bank.need.accepted");
    if (accepted.length) body.correct = accepted;
  } else if (draft.kind === "number") {
    if (draft.number.trim()) {
      const n = parseNumber(draft.number);
      if (n === null) return t("bank.need.number");
      body.correct = [String(n)];
    }
    if (draft.tolerance.trim()) {
      const tol = parseNumber(draft.tolerance);
      if (tol === null || tol < 0) return t("bank.need.tolerance");
      body.tolerance = tol;
    }
  }
  if (draft.points.trim()) {
    const points = parseNumber(draft.points);
    if (points === null || points < 0 || points > 1000) return t("bank.need.points");
    if (!body.correct) return t("bank.need.correct_for_points");
    body.points = points;
  }
  return body;
}

function renderForm(view, draft) {
  const redraw = () => {
    const old = document.querySelector(".bank-form");
    const fresh = renderForm(view, draft);
    old?.replaceWith(fresh);
  };
  const field = (name, label, input) => h("label", { class: `bank-field bank-${name}` }, label, input);
  const text = (name, attrs = {}) => h("input", { type: "text", name, value: draft[name], ...attrs,
                                                  oninput: (e) => { draft[name] = e.target.value; } });
  const kinds = h("div", { class: "poll-row bank-kinds", role: "radiogroup", "aria-label": t("bank.kind") },
    KINDS.map((kind) => h("button", { type: "button", role: "radio", "aria-checked": draft.kind === kind,
      class: draft.kind === kind ? "toggle on" : "toggle", "data-kind": kind,
      onclick: () => {
        draft.kind = kind;
        if (kind === "single") draft.letters = draft.letters.slice(0, 1);
        redraw();
      } }, kindWords(kind))));
  const answer = [];
  if (draft.kind === "single" || draft.kind === "multiple") {
    answer.push(h("p", { class: "muted" }, t(draft.kind === "single" ? "bank.pick_correct_one" : "bank.pick_correct_many")),
      h("ol", { class: "bank-option-rows" }, draft.options.map((value, i) => {
        const letter = LETTERS[i];
        const chosen = draft.letters.includes(letter);
        return h("li", { "data-option": letter },
          h("span", { class: "bank-letter" }, letter),
          h("input", { type: "text", value, maxlength: 200, "aria-label": t("bank.option", { letter }),
                       name: `option-${letter}`, oninput: (e) => { draft.options[i] = e.target.value; } }),
          h("label", { class: "poll-check bank-right" },
            h("input", { type: draft.kind === "single" ? "radio" : "checkbox", name: "correct-letter", checked: chosen,
                         "aria-label": t("bank.option_correct", { letter }),
                         onchange: (e) => {
                           if (draft.kind === "single") draft.letters = e.target.checked ? [letter] : [];
                           else draft.letters = e.target.checked ? [...draft.letters, letter] : draft.letters.filter((l) => l !== letter);
                         } }),
            t("bank.correct")));
      })),
      h("div", { class: "poll-row" },
        draft.options.length < 6 ? h("button", { type: "button", "data-bank-action": "add-option",
          onclick: () => { draft.options.push(""); redraw(); } }, t("bank.add_option")) : null,
        draft.options.length > 2 ? h("button", { type: "button", "data-bank-action": "remove-option", onclick: () => {
          draft.options.pop();
          draft.letters = draft.letters.filter((l) => LETTERS.indexOf(l) < draft.options.length);
          redraw();
        } }, t("bank.remove_option", { letter: LETTERS[draft.options.length - 1] })) : null));
  } else if (draft.kind === "truefalse") {
    answer.push(h("fieldset", { class: "bank-tf" }, h("legend", {}, t("bank.answer_optional")),
      [["true", "poll.true"], ["false", "poll.false"], [null, "bank.no_answer"]].map(([value, key]) =>
        h("label", { class: "poll-check" }, h("input", { type: "radio", name: "tf", checked: draft.tf === value,
          onchange: () => { draft.tf = value; } }), t(key)))));
  } else if (draft.kind === "text") {
    answer.push(field("accepted", t("bank.accepted_label"), h("textarea", { name: "accepted", rows: 3,
      oninput: (e) => { draft.accepted = e.target.value; } }, draft.accepted)),
    h("p", { class: "muted" }, t("bank.accepted_hint")));
  } else {
    answer.push(h("div", { class: "bank-pair" },
      field("number", t("bank.number_label"), text("number", { inputmode: "decimal", autocomplete: "off" })),
      field("tolerance", t("bank.tolerance_label"), text("tolerance", { inputmode: "decimal", autocomplete: "off" }))));
  }
  const preview = draft.imageFile ? URL.createObjectURL(draft.imageFile) : draft.removeImage ? null : draft.image_url;
  const error = h("p", { class: "error", role: "alert" }, draft.error || "");
  const form = h("form", { class: "bank-form card", "data-editing": draft.id ?? "new", onsubmit: async (event) => {
    event.preventDefault();
    const body = payloadOf(draft);
    if (typeof body === "string") { draft.error = body; error.textContent = body; return; }
    await save(view, draft, body, error);
  } },
    h("h2", {}, t(draft.id ? "bank.edit_title" : "bank.new_title")),
    h("div", { class: "bank-pair" },
      field("subject", t("bank.subject"), text("subject", { maxlength: 100, list: "bank-subjects" })),
      field("topic", t("bank.topic_label"), text("topic", { maxlength: 200, list: "bank-topics" }))),
    h("div", {}, h("span", { class: "bank-label" }, t("bank.kind")), kinds),
    field("text", t("bank.text"), h("textarea", { name: "text", rows: 3, maxlength: 1000,
      oninput: (e) => { draft.text = e.target.value; } }, draft.text)),
    ...answer,
    h("div", { class: "bank-pair" },
      field("points", t("bank.points"), text("points", { inputmode: "decimal", autocomplete: "off" }))),
    field("explanation", t("bank.explanation_label"), h("textarea", { name: "explanation", rows: 2, maxlength: 1000,
      oninput: (e) => { draft.explanation = e.target.value; } }, draft.explanation)),
    h("div", { class: "bank-image-field" },
      h("span", { class: "bank-label" }, t("bank.image")),
      preview ? h("img", { class: "bank-image", src: preview, alt: t("bank.image_alt") }) : null,
      h("label", { class: "button" }, preview ? t("bank.image_change") : t("bank.image_add"),
        h("input", { type: "file", class: "visually-hidden", name: "image", accept: "image/png,image/jpeg,image/webp,image/gif",
                     "aria-label": t("bank.image"), onchange: (e) => {
                       const file = e.target.files[0];
                       if (!file) return;
                       if (file.size > MAX_IMAGE) { draft.error = t("bank.error.image_too_large"); redraw(); return; }
                       draft.imageFile = file;
                       draft.removeImage = false;
                       draft.error = "";
                       redraw();
                     } })),
      preview ? h("button", { type: "button", onclick: () => {
        draft.imageFile = null;
        draft.removeImage = Boolean(draft.image_url);
        redraw();
      } }, t("bank.image_remove")) : null,
      h("span", { class: "muted" }, t("bank.image_hint"))),
    h("label", { class: "poll-check" }, h("input", { type: "checkbox", name: "shared", checked: draft.shared,
      onchange: (e) => { draft.shared = e.target.checked; } }), t("bank.share")),
    error,
    h("div", { class: "poll-row" },
      h("button", { type: "submit", class: "primary", "data-bank-action": "save" }, t("bank.save")),
      h("button", { type: "button", onclick: () => { state.editing = null; renderBank(view); } }, t("poll.cancel"))));
  return form;
}

async function save(view, draft, body, error) {
  let saved;
  try {
    saved = draft.id ? await api("PATCH", `/questions/${draft.id}`, body) : await api("POST", "/questions", body);
    if (draft.imageFile) saved = await api("PUT", `/questions/${saved.id}/image`, draft.imageFile);
    else if (draft.removeImage && draft.image_url) await api("DELETE", `/questions/${saved.id}/image`);
  } catch (e) {
    draft.error = bankErrorText(e);
    error.textContent = draft.error;
    if (saved) draft.id = saved.id; // saved, but its image was refused: the form stays to try another
    return;
  }
  state.editing = null;
  banner(t(draft.id ? "bank.saved" : "bank.created"), "info");
  await reload();
}
