import { t } from "./i18n.js";

// A tiny element builder: user data only ever goes in as text, never as HTML.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    // ARIA states are words ("true"/"false"), not present-or-absent like `hidden` or `disabled`.
    if (name.startsWith("aria-") && typeof value === "boolean") { element.setAttribute(name, String(value)); continue; }
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Make `container`'s children exactly `children` (nulls left out), in order, touching only what differs: a node
// that stays is never taken out, so a click pressed on it and released after the update still counts (taking a
// node out and putting it back, as replaceChildren does, loses that click).
export function placeChildren(container, children) {
  const wanted = children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
  const keep = new Set(wanted);
  for (const node of [...container.childNodes]) if (!keep.has(node)) node.remove();
  wanted.forEach((child, i) => {
    const current = container.childNodes[i];
    if (current !== child) container.insertBefore(child, current ?? null);
  });
}

export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  main.focus();
}

// The same page drawn again (a list refreshed): the focus stays where the person left it.
export function replaceMain(...children) {
  document.getElementById("main").replaceChildren(...children);
}

// The message line under the top bar. Every banner can be closed (×, named for screen readers); the
// close button has no text of its own, so the banner's text is the message alone.
export function banner(text, kind = "info") {
  const element = document.getElementById("banner");
  element.hidden = !text;
  element.dataset.kind = kind;
  if (!text) { element.replaceChildren(); return; }
  const close = h("button", { type: "button", class: "banner-close", "aria-label": t("banner.close"),
    title: t("banner.close"), onclick: () => {
      element.hidden = true;
      element.replaceChildren();
      document.getElementById("main").focus(); // the focus was on the button that went away
    } });
  element.replaceChildren(h("span", { class: "banner-text" }, text), close);
}

// Every route is a new page: a page still loading when the person has moved on must not show up
// over the one they went to. A page notes currentPage() when it starts and checks stillOn() after
// each wait.
let pageNumber = 0;

export function nextPage() {
  return ++pageNumber;
}

export function currentPage() {
  return pageNumber;
}

export function stillOn(number) {
  return number === pageNumber;
}
