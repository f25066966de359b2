// One player for a session's recorded files: every file sits on the session clock (start_ms,
// duration_ms), and one master clock drives them all. Each <video>/<audio> is set to
// currentTime = master - start when the master is inside its span, and paused and hidden outside it;
// a file that drifts more than MAX_DRIFT from where it should be is put back.
import { h } from "./dom.js";
import { t } from "./i18n.js";

const MAX_DRIFT = 0.3; // seconds
const TICK_MS = 200;
const STALL_LIMIT_MS = 4000; // waiting longer than this for a file to buffer: go on without it
const EDGE = 0.1; // seconds: a file starting this soon counts as started

export function formatClock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(whole / 3600);
  const mm = String(Math.floor((whole % 3600) / 60)).padStart(2, "0");
  const ss = String(whole % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

// A recorded file's label as the recorder writes it, "teacher: Cô Hà" (role: name), in the page's words:
// "Giáo viên: Cô Hà".
export function trackLabel(label) {
  const match = /^(teacher|student|observer|guest|parent|admin): (.*)$/s.exec(label || "");
  return match ? `${t("role." + match[1])}: ${match[2]}` : label || "";
}

// `recordings`: [{recording_id, kind: "video"|"audio", source, label, start_ms, duration_ms, url}].
// Returns {element, destroy()}.
export function syncedPlayer(recordings) {
  const tracks = recordings.filter((r) => r.duration_ms > 0).map((r) => {
    const media = h(r.kind === "video" ? "video" : "audio", {
      src: r.url, preload: "auto", playsinline: true,
      "data-source": r.source, "data-kind": r.kind, "data-recording": r.recording_id,
      "aria-label": `${t("source." + r.source)} · ${trackLabel(r.label)}`,
      hidden: true,
    });
    if (r.kind === "video") media.muted = true; // the recorder writes sound in separate audio files
    return { info: r, media, start: r.start_ms / 1000, end: (r.start_ms + r.duration_ms) / 1000 };
  });
  const from = tracks.length ? Math.min(...tracks.map((x) => x.start)) : 0;
  const to = tracks.length ? Math.max(...tracks.map((x) => x.end)) : 0;
  const origin = Math.floor(from); // the slider and the clock read session time
  const end = Math.max(origin, to);

  let master = from;
  let playing = false;
  let wallBase = 0; // performance.now() when master was `masterBase`
  let masterBase = master;
  let stalledSince = null;
  let timer = null;

  const playButton = h("button", { type: "button", class: "primary play", onclick: toggle }, t("player.play"));
  const slider = h("input", {
    type: "range", min: String(origin), max: String(end), step: "any", value: String(master),
    "aria-label": t("player.seek"), class: "seek",
    oninput: () => seek(Number(slider.value)), onkeydown: sliderKeys,
  });
  const clock = h("span", { class: "player-clock", "aria-live": "off" });
  const status = h("span", { class: "player-status muted", role: "status" });
  const stage = h("div", { class: "player-stage" },
    tracks.filter((x) => x.info.kind === "video").map((x) => x.media),
    h("p", { class: "player-empty", hidden: true }, t("player.nothing_now")));
  const audios = h("div", { hidden: true }, tracks.filter((x) => x.info.kind === "audio").map((x) => x.media));
  const legend = h("ul", { class: "player-tracks" }, tracks.map((x) => h("li",
    { "data-recording": x.info.recording_id },
    `${t("source." + x.info.source)} · ${trackLabel(x.info.label)} · ${formatClock(x.start)}–${formatClock(x.end)}`)));
  const element = h("div", { class: "player", "data-player": "" },
    stage, audios,
    h("div", { class: "player-controls" }, playButton, slider, clock),
    status,
    h("details", { class: "player-details" }, h("summary", {}, t("player.tracks", { count: tracks.length })), legend));

  for (const x of tracks) {
    x.media.addEventListener("error", () => { status.textContent = t("player.file_error"); });
  }

  function now() {
    return playing ? masterBase + (performance.now() - wallBase) / 1000 : master;
  }

  function rebase(value) {
    master = value;
    masterBase = value;
    wallBase = performance.now();
  }

  function inside(x, at) {
    return at >= x.start - EDGE && at < x.end; // (files start a few ms apart: show them from the first)
  }

  function ready(x, at) {
    // HAVE_FUTURE_DATA, or the last moments of a file (nothing after them to buffer).
    return !x.media.seeking && (x.media.readyState >= 3 || (x.media.readyState >= 2 && at > x.end - 0.5));
  }

  function place(x, at, force) {
    const local = at - x.start;
    if (force || Math.abs(x.media.currentTime - local) > MAX_DRIFT) x.media.currentTime = Math.max(0, local);
  }

  // Put every file where the master clock says; play the ones inside their span when playing.
  function sync(force = false) {
    let at = now();
    if (playing && at >= end) {
      at = end;
      pause();
    }
    // Between two recordings nothing plays: jump to the next one.
    if (playing && !tracks.some((x) => inside(x, at))) {
      const next = tracks.map((x) => x.start).filter((s) => s > at).sort((a, b) => a - b)[0];
      if (next !== undefined) { rebase(next); at = next; force = true; }
    }
    master = at;
    const active = tracks.filter((x) => inside(x, at));
    const waiting = playing && active.some((x) => !ready(x, at));
    if (waiting) {
      stalledSince ??= performance.now();
      if (performance.now() - stalledSince < STALL_LIMIT_MS) rebase(at); // hold the clock while buffering
    } else {
      stalledSince = null;
    }
    for (const x of tracks) {
      const on = active.includes(x);
      if (x.info.kind === "video") x.media.hidden = !on;
      if (!on) {
        if (!x.media.paused) x.media.pause();
        continue;
      }
      place(x, at, force);
      if (playing && !waiting && x.media.paused) x.media.play().catch(() => {});
      if ((!playing || waiting) && !x.media.paused) x.media.pause();
    }
    stage.querySelector(".player-empty").hidden = tracks.some((x) => x.info.kind === "video" && active.includes(x));
    status.textContent = waiting ? t("player.buffering") : "";
    if (document.activeElement !== slider || !playing) slider.value = String(at);
    const text = `${formatClock(at)} / ${formatClock(end)}`;
    clock.textContent = text;
    slider.setAttribute("aria-valuetext", text);
    element.dataset.time = at.toFixed(2);
  }

  // The page moved on (another address, the other language): stop the sound of a player no one sees.
  function tick() {
    if (element.isConnected) sync();
    else destroy();
  }

  function destroy() {
    pause();
    for (const x of tracks) {
      x.media.removeAttribute("src");
      x.media.load();
    }
  }

  function play() {
    if (!tracks.length) return;
    if (master >= end - 0.05) rebase(from);
    else rebase(master);
    playing = true;
    playButton.textContent = t("player.pause");
    element.dataset.state = "playing";
    sync(true);
    timer ??= setInterval(tick, TICK_MS);
  }

  function pause() {
    master = now();
    playing = false;
    playButton.textContent = t("player.play");
    element.dataset.state = "paused";
    for (const x of tracks) if (!x.media.paused) x.media.pause();
    clearInterval(timer);
    timer = null;
  }

  function toggle() {
    if (playing) pause();
    else play();
  }

  function seek(value) {
    rebase(Math.min(end, Math.max(origin, value)));
    sync(true);
  }

  function sliderKeys(event) {
    const steps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -30, PageUp: 30 };
    if (event.key in steps) seek(now() + steps[event.key]);
    else if (event.key === "Home") seek(origin);
    else if (event.key === "End") seek(end);
    else if (event.key === " " || event.key === "k") toggle();
    else return;
    event.preventDefault();
  }

  if (!tracks.length) {
    playButton.disabled = true;
    slider.disabled = true;
  }
  element.dataset.state = "paused";
  sync(true);
  return { element, destroy };
}
