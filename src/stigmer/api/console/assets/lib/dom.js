// A tiny DOM builder. Text always goes in as text nodes (never innerHTML), so server data cannot inject markup.
// Attributes: "class", "for", "data-*", aria-*, boolean attributes (true / false), properties that are not
// attributes ("value", "checked"), and "on<event>" handlers. No "style": the CSP forbids inline style; use classes.

const PROPERTIES = new Set(["value", "checked", "selected", "disabled", "open"]);
const SVG = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "style") throw new Error("h(): inline style is refused by the CSP; use a class");
    else if (PROPERTIES.has(name) && !(el instanceof SVGElement)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("a", {href: "#/keys", class: "x"}, "text", otherNode, [more]) -> an HTMLElement. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements (charts). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replace every child of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
