// The single-page client: who is logged in, and which page the address names.
import { api, ApiError, setCsrf } from "./api.js";
import { banner, h, mount } from "./dom.js";
import { currentLanguage, setLanguage, t } from "./i18n.js";
import { showLogin, showPasswordChange } from "./pages/login.js";
import { showPeriods } from "./pages/periods.js";
import { showAdmin } from "./pages/admin.js";
import { showRoom, leaveRoom, refreshRoom } from "./pages/room.js";

export const session = { user: null };

async function whoAmI() {
  try {
    const me = await api("GET", "/me");
    setCsrf(me.csrf_token);
    session.user = me.user;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    session.user = null;
  }
}

function renderTopbar() {
  document.getElementById("lang-switch").textContent = t("lang.switch");
  const who = document.getElementById("who");
  const logout = document.getElementById("logout");
  who.textContent = session.user ? `${session.user.full_name} · ${t("role." + session.user.role)}` : "";
  logout.hidden = !session.user;
  logout.textContent = t("logout");
}

export async function route() {
  banner("");
  renderTopbar();
  const [, page, id] = (location.hash || "#/periods").split("/");
  if (page !== "room") leaveRoom();
  if (!session.user) return showLogin();
  if (session.user.must_change_password) return showPasswordChange();
  if (page === "room" && id) return showRoom(Number(id));
  if (page === "admin" && session.user.role === "admin") return showAdmin(id ? Number(id) : null);
  return showPeriods();
}

export async function loggedIn(answer) {
  setCsrf(answer.csrf_token);
  session.user = answer.user;
  await route();
}

async function start() {
  setLanguage(currentLanguage());
  document.getElementById("lang-switch").addEventListener("click", () => {
    setLanguage(currentLanguage() === "vi" ? "en" : "vi");
    // In a live room only the words change: reconnecting would put a student back in the lobby.
    if (location.hash.startsWith("#/room/") && refreshRoom()) renderTopbar();
    else route();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    leaveRoom();
    await api("POST", "/auth/logout").catch(() => {});
    session.user = null;
    location.hash = "#/periods";
    route();
  });
  window.addEventListener("hashchange", route);
  mount(h("p", {}, t("app.loading")));
  try {
    await whoAmI();
  } catch {
    banner(t("error.network"), "error");
    return;
  }
  route();
}

start();
