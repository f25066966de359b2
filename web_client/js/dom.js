// A tiny element builder: user data only ever goes in as text, never as HTML.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
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

export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  main.focus();
}

export function banner(text, kind = "info") {
  const element = document.getElementById("banner");
  element.hidden = !text;
  element.textContent = text || "";
  element.dataset.kind = kind;
}
