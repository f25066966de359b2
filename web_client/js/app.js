// The single-page client: who is logged in, and which page the address names.
import { api, ApiError, setCsrf } from "./api.js";
import { banner, h, mount, nextPage } from "./dom.js";
import { currentLanguage, setLanguage, t } from "./i18n.js";
import { showLogin, showPasswordChange } from "./pages/login.js";
import { showPeriods } from "./pages/periods.js";
import { showAdmin } from "./pages/admin.js";
import { showRoom, leaveRoom, refreshRoom } from "./pages/room.js";
import { showSessionList, showSessionPage } from "./pages/records.js";
import { showClassSummary } from "./pages/class_summary.js";
import { showShared } from "./pages/shared.js";
import { showBank } from "./pages/bank.js";

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
  nextPage();
  banner("");
  renderTopbar();
  // "#/page/id?filters": the filters (of a list) stay in the address, so "back" returns to them.
  const [, page, id, sub] = (location.hash || "#/periods").split("?")[0].split("/");
  if (page !== "room") leaveRoom();
  if (!session.user) return showLogin();
  if (session.user.must_change_password) return showPasswordChange();
  const role = session.user.role;
  if (page === "room" && id) return showRoom(Number(id));
  if (page === "admin" && role === "admin") return showAdmin(id || null);
  if (page === "records" && (role === "admin" || role === "teacher")) {
    if (id === "class" && /^\d+$/.test(sub || "")) return showClassSummary(Number(sub)); // a class's summary
    return id && id !== "class" ? showSessionPage(Number(id)) : showSessionList();
  }
  if (page === "bank" && (role === "teacher" || role === "admin")) return showBank();
  if (page === "shared" && id) return showShared(id);
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
