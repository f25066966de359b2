import { api } from "../api.js";
import { banner, h, mount } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";

// The admin's entry: accounts and the records of periods (the full archive pages come with issue 7).
export async function showAdmin(sessionId) {
  if (sessionId) return showRecords(sessionId);
  try {
    const [users, periods] = await Promise.all([api("GET", "/users?limit=200"), api("GET", "/periods")]);
    mount(h("section", { class: "card" },
      h("h1", {}, t("admin.title")),
      h("h2", {}, t("admin.records")),
      h("ul", {}, periods.items.filter((p) => p.live_session).map((p) =>
        h("li", {}, h("a", { href: `#/admin/${p.live_session.id}` },
          `${p.subject} · ${p.class_name} · ${formatDateTime(p.starts_at)}`)))),
      h("h2", {}, t("admin.accounts")),
      h("table", { class: "table" }, h("tbody", {}, users.items.map((u) =>
        h("tr", {}, h("td", {}, u.full_name), h("td", {}, u.personal_id), h("td", {}, t("role." + u.role))))))));
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
  }
}

async function showRecords(sessionId) {
  try {
    const records = await api("GET", `/sessions/${sessionId}/records`);
    mount(h("section", { class: "card" },
      h("h1", {}, `${t("admin.records_for")}: ${records.period.subject} · ${records.period.class_name}`),
      h("table", { class: "table" }, h("tbody", {}, records.attendance.map((a) =>
        h("tr", {}, h("td", {}, a.name), h("td", {}, t("role." + a.room_role)),
          h("td", {}, `${Math.round(a.seconds_present / 60)} min`))))),
      h("h2", {}, t("room.chat")),
      h("ul", { class: "chat-log" }, records.chat.map((m) =>
        h("li", {}, `${formatDateTime(m.at)} ${m.from?.name ?? ""}: `,
          m.deleted_at ? h("em", {}, `${m.text} (${t("chat.deleted")})`) : m.text)))));
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
  }
}
