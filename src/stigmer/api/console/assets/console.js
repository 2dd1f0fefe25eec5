// The Stigmer console: sign-in, the shell (header, nav, shortcuts) and the router. Views live in views/*.js.
//
// THE VIEW CONTRACT (docs/console.md, "Writing a view"; other views code against it: only ever add to it)
//
// - views/index.js exports default an array of view modules, in nav order.
// - A view module views/<id>.js exports default
//     {id: "keys", title: "Keys", hotkey: "k", scopes: ["read"], mount(el, ctx) -> unmount function}
//   Routing is by hash: #/<id>?a=b. `mount` gets a fresh, empty container; the function it returns is called
//   when the view is left and must close its streams and timers. A view whose `scopes` the key does not hold
//   is hidden from the nav and cannot be opened (the server refuses its calls anyway).
// - ctx:
//     api(path, {method, body, query}) -> Promise of the parsed JSON; throws an Error with the server's
//       message, `.status` and `.code`.
//       Also {headers} (extra request headers, e.g. X-Tenant-ID) and {keyHeader} (send the key in this header
//       instead of Authorization, e.g. "X-API-Key" for the Statewave routes).
//     stream(path, query, {onEvent(ev), onStatus(state, error)}) -> {close(), lastId}: an SSE reader over
//       fetch with the Authorization header. ev = {id, event, data (parsed JSON)}; state is "connecting",
//       "live", "reconnecting", "error" (a 4xx: it stops) or "closed". It reconnects with backoff and resumes
//       with Last-Event-ID after the last event (or keep-alive progress id), so no event is lost or repeated.
//     h(tag, attrs, ...children) -> HTMLElement; svg(tag, attrs, ...children) for SVG; fill(el, ...children).
//       Text is always text (no innerHTML): server data cannot inject markup.
//     params: the hash's query as an object; go(hash): navigate (e.g. go("#/keys?ns=app")).
//     whoami: {tenant, scopes, prefixes, kind, key_id, expires_at}; can(scope) -> whether the key holds it.
//     prefixes(namespace) -> the key prefixes the key may read there: [""] (all of it), some, or [] (none).
//     fmt: {ago(ts), left(ts), duration(s), time(ts), bytes(n), json(v), short(v, max)}.
//     chart: {line(el, series, opts)}: an SVG line chart or sparkline (lib/chart.js).
//     diff(a, b) -> [{path, op, from, to}]: a structural JSON diff (lib/diff.js).
//     status(text): a short message in the shell's status line ("" clears it).
// - A view puts its search/filter box under an element with the attribute data-filter (an <input>), which the
//   "/" shortcut focuses. Keep every control reachable by Tab; use <button> and <a href>, not clickable divs.

import {client} from "./lib/api.js";
import {h, svg, fill} from "./lib/dom.js";
import * as fmt from "./lib/fmt.js";
import * as chart from "./lib/chart.js";
import {diff} from "./lib/diff.js";
import views from "./views/index.js";

const STORAGE = "stigmer.console.key"; // sessionStorage: this tab only, gone when it closes
const app = document.getElementById("app");

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const id = q < 0 ? hash : hash.slice(0, q);
  return {id: decodeURIComponent(id), params: Object.fromEntries(new URLSearchParams(q < 0 ? "" : hash.slice(q + 1)))};
}

function prefixesOf(whoami, namespace) {
  if (!whoami.prefixes) return [""];
  const mine = whoami.prefixes.filter((g) => g.split("/")[0] === namespace)
    .map((g) => (g.includes("/") ? g.slice(g.indexOf("/") + 1) : ""));
  return mine.includes("") ? [""] : mine;
}

function holds(whoami, scope) {
  const s = whoami.scopes || [];
  return s.includes(scope) || s.includes("admin") || s.includes("*") || s.includes(`${scope.split(":")[0]}:*`);
}

function signIn(message) {
  document.body.dataset.view = "sign-in";
  const input = h("input", {id: "key", type: "password", autocomplete: "off", spellcheck: "false",
                            placeholder: "stg_… (empty: a local server in open mode)", "aria-describedby": "sign-in-note"});
  const error = h("p", {class: "error", role: "alert", id: "sign-in-error"}, message || "");
  const form = h("form", {class: "sign-in", onsubmit: async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    const c = client(key, () => {});
    try {
      const whoami = await c.api("/v1/whoami");
      sessionStorage.setItem(STORAGE, key);
      input.value = "";
      shell(key, whoami);
    } catch (err) {
      fill(error, err.status !== 401 ? err.message : key ? "The server does not know this key." : "This server needs an API key.");
    }
  }},
    h("h1", null, "Stigmer console"),
    h("label", {for: "key"}, "API key"), input,
    h("p", {id: "sign-in-note", class: "note"},
      "The key stays in this tab (session storage) and is sent only to this server, in the Authorization header."),
    h("button", {type: "submit"}, "Sign in"), error);
  fill(app, form);
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(STORAGE);
  window.removeEventListener("hashchange", route);
  document.removeEventListener("keydown", onKey);
  if (current) current.unmount();
  current = null;
  signIn(message);
}

let current = null; // {id, unmount}
let shellParts = null;
let pendingG = 0;

function allowed(whoami) {
  return views.filter((v) => (v.scopes || []).every((s) => holds(whoami, s)));
}

function shell(key, whoami) {
  const c = client(key, () => signOut("The key was refused (revoked or expired): sign in again."));
  const visible = allowed(whoami);
  const nav = h("nav", {class: "views", "aria-label": "Views"},
    h("ul", null, visible.map((v) => h("li", null,
      h("a", {href: `#/${v.id}`, "data-view": v.id}, v.title, " ", h("kbd", {"aria-hidden": "true"}, `g ${v.hotkey}`))))));
  const statusLine = h("p", {class: "status", role: "status", "aria-live": "polite"});
  const main = h("main", {id: "view", tabindex: "-1"});
  const help = h("dialog", {id: "help", "aria-label": "Keyboard shortcuts"},
    h("h2", null, "Keyboard shortcuts"),
    h("dl", null,
      visible.map((v) => [h("dt", null, h("kbd", null, "g"), " ", h("kbd", null, v.hotkey)), h("dd", null, v.title)]),
      h("dt", null, h("kbd", null, "/")), h("dd", null, "focus the view's search or filter"),
      h("dt", null, h("kbd", null, "?")), h("dd", null, "this list"),
      h("dt", null, h("kbd", null, "Esc")), h("dd", null, "close a dialog, leave a field"),
      h("dt", null, h("kbd", null, "Tab")), h("dd", null, "move between controls")),
    h("form", {method: "dialog"}, h("button", null, "Close")));
  const header = h("header", {class: "top"},
    h("a", {class: "brand", href: "#/"}, "Stigmer"),
    h("span", {class: "who", "data-tenant": whoami.tenant},
      "tenant ", h("strong", null, whoami.tenant), " · ", (whoami.scopes || []).join(", "),
      whoami.prefixes ? ` · limited to ${whoami.prefixes.join(", ")}` : ""),
    h("button", {type: "button", class: "link", onclick: () => help.showModal(), "aria-keyshortcuts": "?"}, "Shortcuts ?"),
    h("button", {type: "button", id: "sign-out", onclick: () => signOut()}, "Sign out"));
  fill(app, header, nav, h("div", {class: "body"}, statusLine, main), help);
  shellParts = {c, whoami, visible, nav, main, statusLine, help};
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", onKey);
  route();
}

function route() {
  const {c, whoami, visible, nav, main, statusLine} = shellParts;
  const {id, params} = parseHash();
  const view = visible.find((v) => v.id === id);
  if (!view) {
    if (visible.length) location.replace(`#/${visible[0].id}`);
    else fill(main, h("p", null, "This key's scopes allow none of the console's views."));
    return;
  }
  if (current) current.unmount();
  for (const a of nav.querySelectorAll("a")) a.toggleAttribute("aria-current", a.dataset.view === view.id);
  fill(statusLine);
  const el = h("section", {class: `view view-${view.id}`, "aria-label": view.title});
  fill(main, el);
  document.title = `${view.title} · Stigmer console`;
  const ctx = {
    api: c.api, stream: c.stream, h, svg, fill, params, whoami, fmt, chart, diff,
    go: (hash) => { location.hash = hash; },
    can: (scope) => holds(whoami, scope),
    prefixes: (namespace) => prefixesOf(whoami, namespace),
    status: (text) => fill(statusLine, text || ""),
  };
  let unmount = () => {};
  try {
    unmount = view.mount(el, ctx) || unmount;
  } catch (err) {
    fill(el, h("p", {class: "error", role: "alert"}, `This view failed: ${err.message}`));
  }
  current = {id: view.id, unmount};
  document.body.dataset.view = view.id;
}

function onKey(e) {
  const {visible, main, help} = shellParts;
  const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
  if (e.key === "Escape") {
    if (typing) e.target.blur();
    return; // an open <dialog> closes itself on Esc
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey || help.open) return;
  if (pendingG && Date.now() - pendingG < 1500) {
    pendingG = 0;
    const view = visible.find((v) => v.hotkey === e.key);
    if (view) { e.preventDefault(); location.hash = `#/${view.id}`; }
    return;
  }
  if (e.key === "g") { pendingG = Date.now(); return; }
  if (e.key === "/") {
    const box = main.querySelector("[data-filter]");
    if (box) { e.preventDefault(); box.focus(); }
  } else if (e.key === "?") {
    e.preventDefault();
    help.showModal();
  }
}

const saved = sessionStorage.getItem(STORAGE);
if (saved !== null) {
  client(saved, () => {}).api("/v1/whoami").then((whoami) => shell(saved, whoami),
    () => signOut("Sign in again: the saved key was refused."));
} else {
  signIn();
}
