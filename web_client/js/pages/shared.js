// A recording the teacher shared with the class (#/shared/TOKEN): students, and parents when the
// teacher included them, play it with the same synced player as the records page.
import { api, ApiError } from "../api.js";
import { currentPage, h, mount, stillOn } from "../dom.js";
import { formatDate, formatDateTime, formatTime, t } from "../i18n.js";
import { syncedPlayer } from "../player.js";

export async function showShared(token) {
  const page = currentPage();
  let shared;
  try {
    shared = await api("GET", `/shared/${encodeURIComponent(token)}`);
  } catch (e) {
    if (!stillOn(page)) return;
    const key = e instanceof ApiError && e.status === 410 ? "shared.expired"
      : e instanceof ApiError && e.status === 404 ? "shared.not_found" : null;
    mount(h("section", { class: "card narrow shared", "data-screen": "shared-error" },
      h("h1", {}, key ? t(key) : t("error.generic")),
      key ? h("p", {}, t(key + "_explain")) : h("p", {}, e.message),
      h("p", {}, h("a", { class: "button", href: "#/periods" }, t("end.back")))));
    return;
  }
  if (!stillOn(page)) return;
  const s = shared.session;
  const player = syncedPlayer(shared.recordings);
  mount(h("article", { class: "card archive shared", "data-screen": "shared" },
    h("h1", {}, `${s.subject} · ${s.class_name}`),
    h("p", {}, `${s.teacher?.name ?? ""} · ${formatDate(s.started_at)} · ${formatTime(s.started_at)}`,
      s.ended_at ? `–${formatTime(s.ended_at)}` : ""),
    h("p", { class: "muted" }, t("shared.until", { date: formatDateTime(shared.expires_at) })),
    shared.recordings.length ? player.element : h("p", { class: "empty" }, t("archive.no_recording"))));
}
