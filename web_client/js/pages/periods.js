import { api } from "../api.js";
import { banner, h, mount } from "../dom.js";
import { formatTime, t, todayRange } from "../i18n.js";
import { session } from "../app.js";

export async function showPeriods() {
  const { from, to } = todayRange();
  const query = new URLSearchParams({ from, to });
  let periods;
  try {
    periods = (await api("GET", `/periods?${query}`)).items;
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
    return;
  }
  const user = session.user;
  const list = h("ul", { class: "periods" }, periods.map((period) => periodItem(period, user)));
  mount(h("section", { class: "card" },
    h("h1", {}, t("periods.title")),
    user.role === "admin" ? h("p", { class: "page-links" }, h("a", { href: "#/admin" }, t("admin.title")),
      h("a", { href: "#/bank" }, t("bank.title"))) : null,
    user.role === "teacher" ? h("p", { class: "page-links" }, h("a", { href: "#/records" }, t("archive.sessions")),
      h("a", { href: "#/bank" }, t("bank.title"))) : null,
    periods.length ? list : h("p", {}, t("periods.none"))));
}

function periodItem(period, user) {
  const live = period.live_session;
  const isTeacher = period.teacher_id === user.id;
  const actions = [];
  if (isTeacher && !live) {
    actions.push(h("button", { class: "primary", onclick: () => start(period) }, t("periods.start")));
  }
  if (live) actions.push(h("a", { class: "button primary", href: `#/room/${live.id}` }, t("periods.join")));
  return h("li", { class: "period", "data-period": period.id },
    h("div", { class: "period-time" }, `${formatTime(period.starts_at)}–${formatTime(period.ends_at)}`),
    h("div", { class: "period-what" },
      h("strong", {}, `${period.subject} · ${period.class_name}`),
      h("span", {}, `${t("periods.teacher")}: ${period.teacher_name}`),
      live ? h("span", { class: "live-badge" }, t("periods.live")) : null),
    h("div", { class: "period-actions" }, actions));
}

async function start(period) {
  try {
    const started = await api("POST", `/periods/${period.id}/start`);
    location.hash = `#/room/${started.id}`;
  } catch (e) {
    banner(e.message || t("error.generic"), "error");
  }
}
