// Changes: the live change stream of the tenant (or of one namespace / key prefix), filtered by type, with
// pause and resume. The stream resumes after a dropped connection from the last revision it saw (ctx.stream),
// so no change is missed; each row shows its revision.

const TYPES = ["put", "delete", "expire"];
const SHOWN = 500; // rows kept on the page

export default {
  id: "changes", title: "Changes", hotkey: "c", scopes: ["watch"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const ns = params.ns || "", prefix = params.prefix || "";
    const types = new Set((params.types || TYPES.join(",")).split(",").filter((t) => TYPES.includes(t)));
    const limited = Boolean(ctx.whoami.prefixes);
    let paused = false, held = [];

    const nsBox = h("input", {type: "text", name: "ns", value: ns, placeholder: limited ? "required" : "every namespace",
                              "aria-label": "Namespace", "data-filter": true, required: limited});
    const prefixBox = h("input", {type: "text", name: "prefix", value: prefix, placeholder: "key prefix",
                                  "aria-label": "Key prefix"});
    const typeBoxes = TYPES.map((t) => h("label", null,
      h("input", {type: "checkbox", checked: types.has(t), "data-type": t,
                  onchange: (e) => { e.target.checked ? types.add(t) : types.delete(t); redraw(); }}), ` ${t}`));
    const pause = h("button", {type: "button", "aria-pressed": "false", id: "pause", onclick: () => toggle()}, "Pause");
    const live = h("span", {class: "live", "data-state": "idle"});
    const count = h("span", {class: "note", id: "held"});
    const rows = h("tbody", {id: "changes"});
    const events = []; // every change received, newest first (at most SHOWN)

    const form = h("form", {class: "bar", onsubmit: (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      if (nsBox.value.trim()) q.set("ns", nsBox.value.trim());
      if (prefixBox.value && nsBox.value.trim()) q.set("prefix", prefixBox.value);
      if (types.size !== TYPES.length) q.set("types", [...types].join(","));
      ctx.go(`#/changes${q.toString() ? "?" + q : ""}`);
    }}, h("h2", null, "Changes"), nsBox, prefixBox, typeBoxes, h("button", {type: "submit"}, "Watch"), pause, live, count);
    fill(el, h("div", {class: "pane"}, form,
      h("table", {class: "grid"},
        h("thead", null, h("tr", null, ["revision", "when", "type", "namespace", "key", "version", "value"]
          .map((t) => h("th", {scope: "col", class: ["revision", "type", "version"].includes(t) ? "narrow" : null}, t)))), rows)));

    function row(c) {
      return h("tr", {"data-revision": c.revision, "data-type": c.type, "data-key": c.key, "data-namespace": c.namespace},
        h("td", {class: "num"}, String(c.revision)),
        h("td", {title: fmt.time(c.ts)}, h("time", {datetime: c.ts}, fmt.time(c.ts))),
        h("td", null, h("span", {class: `badge ${c.type}`}, c.type)),
        h("td", null, c.namespace),
        h("td", null, h("a", {href: `#/keys?ns=${encodeURIComponent(c.namespace)}&key=${encodeURIComponent(c.key)}`}, c.key)),
        h("td", {class: "num"}, String(c.version)),
        h("td", {class: "value"}, c.type === "put" ? fmt.short(c.value) : ""));
    }

    function redraw() {
      fill(rows, events.filter((c) => types.has(c.type)).map(row));
    }

    function show(changes) {
      for (const c of changes) events.unshift(c);
      events.length = Math.min(events.length, SHOWN);
      const fresh = changes.filter((c) => types.has(c.type)).reverse().map(row);
      rows.prepend(...fresh);
      while (rows.children.length > SHOWN) rows.lastChild.remove();
    }

    function label(error) { // the stream's state and the last revision received
      const state = live.dataset.state;
      fill(live, state === "live" ? "● live" : state, error, rows.dataset.revision ? ` · revision ${rows.dataset.revision}` : "");
    }

    function toggle() {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      fill(pause, paused ? "Resume" : "Pause");
      if (!paused) { show(held); held = []; }
      fill(count, paused ? `paused: ${held.length} held` : "");
    }

    if (limited && !ns) {
      fill(rows, h("tr", null, h("td", {colspan: 7, class: "note"}, "This key is limited to some namespaces: name one to watch.")));
      return () => {};
    }
    const query = {namespace: ns || undefined, prefix: ns && prefix ? prefix : undefined, from: params.from};
    const stream = ctx.stream("/v1/watch", query, {
      onEvent: (ev) => {
        if (ev.event === "compacted") { ctx.status(`history before revision ${ev.data.oldest_revision} is gone: watching on`); return; }
        if (ev.event !== "change") return;
        rows.dataset.revision = ev.data.revision;
        label("");
        if (paused) { held.push(...ev.data.changes); fill(count, `paused: ${held.length} held`); }
        else show(ev.data.changes);
      },
      onStatus: (state, err) => {
        live.dataset.state = state;
        label(state === "error" && err ? `: ${err.message}` : "");
      },
    });
    return () => stream.close();
  },
};
