import { api, ApiError } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { loggedIn, session, route } from "../app.js";

function field(id, label, type = "text", autocomplete = "off") {
  return h("label", { for: id }, label, h("input", { id, name: id, type, required: true, autocomplete }));
}

export function showLogin() {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", onsubmit: submit },
    h("h1", {}, t("login.title")),
    field("personal_id", t("login.personal_id"), "text", "username"),
    field("password", t("login.password"), "password", "current-password"),
    error,
    h("button", { type: "submit", class: "primary big" }, t("login.submit")));
  mount(form);
  form.querySelector("#personal_id").setAttribute("inputmode", "numeric");

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    try {
      const answer = await api("POST", "/auth/login", {
        personal_id: form.personal_id.value.trim(), password: form.password.value });
      await loggedIn(answer);
    } catch (e) {
      if (e instanceof ApiError && e.status === 429) {
        error.textContent = t("login.throttled", { seconds: e.headers.get("Retry-After") });
      } else if (e instanceof ApiError && e.status === 401) {
        error.textContent = t("login.wrong");
      } else {
        error.textContent = e.message || t("error.generic");
      }
    }
  }
}

export function showPasswordChange() {
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", onsubmit: submit },
    h("h1", {}, t("password.title")),
    h("p", {}, t("password.explain")),
    field("current_password", t("password.current"), "password", "current-password"),
    field("new_password", t("password.new"), "password", "new-password"),
    field("repeat_password", t("password.repeat"), "password", "new-password"),
    error,
    h("button", { type: "submit", class: "primary big" }, t("password.submit")));
  mount(form);

  async function submit(event) {
    event.preventDefault();
    if (form.new_password.value !== form.repeat_password.value) {
      error.textContent = t("password.mismatch");
      return;
    }
    try {
      session.user = await api("POST", "/auth/password", {
        current_password: form.current_password.value, new_password: form.new_password.value });
      route();
    } catch (e) {
      // Why a password is refused, in the page's language (the server's message is English).
      const reason = e.code === "weak_password" ? e.details.reason : null;
      error.textContent = reason ? t(`password.weak.${reason}`, { min: e.details.min_length })
        : e.message || t("error.generic");
    }
  }
}
