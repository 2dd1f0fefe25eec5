// Keys: the tenant's namespaces with their key counts; a namespace's keys with live values, version and TTL
// left, updated from /v1/watch; a key's history as a timeline of revisions, and a diff of two of them.

const PAGE = 1000; // keys shown per namespace (the list route's largest page)

export default {
  id: "keys", title: "Keys", hotkey: "k", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const ns = params.ns || null, selected = params.key ?? null;
    const entries = new Map(); // key -> entry, as the list and then the stream say
    const prefixes = ctx.prefixes(ns);
    const timers = [];
    let streams = [], filter = "", refresh = new Set(), refreshTimer = null;
    const fresh = new Map(); // key -> when its last change arrived (ms): highlighted for a moment

    const nsList = h("ul", {class: "list", "aria-label": "Namespaces"});
    const filterBox = h("input", {type: "search", "data-filter": true, placeholder: "filter keys  (/)",
                                  "aria-label": "Filter keys by text", oninput: () => { filter = filterBox.value; drawKeys(); }});
    const live = h("span", {class: "live", "data-state": "idle"});
    const rows = h("tbody");
    const detail = h("div", {class: "detail"});
    const diffBox = h("div", {"aria-live": "polite"});
    fill(el,
      h("div", {class: "columns"},
        h("aside", {class: "pane namespaces"}, h("h2", null, "Namespaces"), nsList),
        h("div", {class: "pane keys"},
          h("div", {class: "bar"}, h("h2", null, ns ? `Keys of ${ns}` : "Keys"), filterBox, live),
          ns ? h("table", {class: "grid"},
            h("thead", null, h("tr", null, ["key", "value", "version", "TTL left", "updated"].map((t) => h("th", {scope: "col", class: t === "version" ? "narrow" : t === "value" ? "wide" : null}, t)))),
            rows) : h("p", {class: "note"}, "Pick a namespace.")),
        detail));

    ctx.api("/v1/namespaces").then(({namespaces}) => {
      if (ns === null && namespaces.length) { // open the first namespace rather than an empty table
        location.replace(`#/keys?ns=${encodeURIComponent(namespaces[0].namespace)}`);
        return;
      }
      fill(nsList, namespaces.length ? namespaces.map((n) => h("li", null,
        h("a", {href: `#/keys?ns=${encodeURIComponent(n.namespace)}`, "aria-current": n.namespace === ns ? "true" : null,
                "data-namespace": n.namespace}, n.namespace, " ", h("span", {class: "count"}, String(n.keys))))) :
        h("li", {class: "note"}, "No keys yet."));
    }, (err) => fill(nsList, h("li", {class: "error"}, err.message)));

    function link(key) {
      return `#/keys?ns=${encodeURIComponent(ns)}&key=${encodeURIComponent(key)}`;
    }

    function recount() { // the open namespace's count follows the live table (when the table holds them all)
      const count = nsList.querySelector("a[aria-current] .count");
      if (count && entries.size < PAGE) count.textContent = String(entries.size);
    }

    function drawKeys() {
      const keys = [...entries.keys()].sort().filter((k) => !filter || k.includes(filter));
      fill(rows, keys.map((k) => {
        const e = entries.get(k);
        return h("tr", {"data-key": k, "aria-selected": k === selected ? "true" : null, class: Date.now() - (fresh.get(k) || 0) < 1000 ? "fresh" : null},
          h("td", null, h("a", {href: link(k)}, k)),
          h("td", {class: "value"}, "value" in e ? fmt.short(e.value) : ""),
          h("td", {class: "num"}, String(e.version)),
          h("td", {class: "ttl", "data-expires": e.expires_at || ""}, fmt.left(e.expires_at)),
          h("td", {title: fmt.time(e.updated_at)}, fmt.ago(e.updated_at)));
      }));
      if (!keys.length) rows.append(h("tr", null, h("td", {colspan: 5, class: "note"}, filter ? "No key matches." : "No keys.")));
    }

    function tick() { // the TTL and age columns move with the clock, not only with changes
      for (const td of rows.querySelectorAll("td.ttl[data-expires]")) {
        if (td.dataset.expires) td.textContent = fmt.left(td.dataset.expires);
      }
    }

    async function reread() { // after a put: the change carries no expiry, the entry does
      const keys = [...refresh];
      refresh = new Set();
      refreshTimer = null;
      for (const k of keys) {
        try {
          const e = await ctx.api(`/v1/kv/${encodeURIComponent(ns)}/${encodeURIComponent(k)}`);
          const known = entries.get(k);
          if (known && known.mod_revision <= e.mod_revision) entries.set(k, e);
        } catch (err) {
          if (err.status !== 404) ctx.status(err.message);
        }
      }
      drawKeys();
    }

    function apply(change) {
      const known = entries.get(change.key);
      if (known && known.mod_revision >= change.revision) return; // already in the listing
      if (change.type === "put") {
        entries.set(change.key, {...known, key: change.key, value: change.value, version: change.version,
                                 mod_revision: change.revision, updated_at: change.ts, expires_at: null});
        fresh.set(change.key, Date.now());
        refresh.add(change.key);
        refreshTimer ??= setTimeout(reread, 200);
      } else {
        entries.delete(change.key);
      }
      recount();
      if (change.key === selected) history.add(change);
    }

    async function load() {
      if (ns === null) return;
      try {
        const {revision} = await ctx.api("/v1/revision"); // watch from here: nothing between list and watch is lost
        for (const prefix of prefixes) {
          const {entries: page, next_cursor: more} = await ctx.api(`/v1/kv/${encodeURIComponent(ns)}`,
                                                                   {query: {limit: PAGE, prefix}});
          for (const e of page) entries.set(e.key, e);
          if (more) ctx.status(`Showing the first ${PAGE} keys of ${ns}, by key order.`);
        }
        drawKeys();
        if (!ctx.can("watch")) {
          fill(live, "not live: this key has no watch scope");
          return;
        }
        streams = prefixes.map((prefix) => ctx.stream("/v1/watch", {namespace: ns, prefix, from: revision + 1}, {
          onEvent: (ev) => {
            if (ev.event === "change") { ev.data.changes.forEach(apply); drawKeys(); live.dataset.revision = ev.data.revision; }
            else if (ev.event === "compacted") { entries.clear(); streams.forEach((s) => s.close()); load(); }
          },
          onStatus: (state, err) => {
            live.dataset.state = state;
            fill(live, state === "live" ? "● live" : state, err && state === "error" ? `: ${err.message}` : "");
          },
        }));
      } catch (err) {
        fill(rows, h("tr", null, h("td", {colspan: 5, class: "error"}, err.message)));
      }
    }

    const history = {
      changes: [], picked: [],
      add(change) { // the stream may bring a revision the history read already had
        if (this.changes.some((c) => c.revision === change.revision)) return;
        this.changes = [change, ...this.changes].sort((a, b) => b.revision - a.revision);
        this.draw();
      },
      async load() {
        if (ns === null || selected === null) return;
        try {
          const {history: changes} = await ctx.api(`/v1/history/${encodeURIComponent(ns)}/${encodeURIComponent(selected)}`,
                                                   {query: {limit: 100}});
          const seen = new Set(this.changes.map((c) => c.revision));
          this.changes = [...this.changes, ...changes.filter((c) => !seen.has(c.revision))]
            .sort((a, b) => b.revision - a.revision);
          this.draw();
        } catch (err) {
          fill(detail, h("p", {class: "error"}, err.message));
        }
      },
      pick(revision, on) { // redraws the diff only: the focus stays on the box just ticked
        this.picked = on ? [...this.picked.filter((r) => r !== revision), revision].slice(-2)
                         : this.picked.filter((r) => r !== revision);
        for (const box of detail.querySelectorAll("ol.timeline input")) box.checked = this.picked.includes(Number(box.value));
        this.drawDiff();
      },
      drawDiff() {
        const [a, b] = this.picked.map((r) => this.changes.find((c) => c.revision === r)).sort((x, y) => x.revision - y.revision);
        fill(diffBox, a && b ? diffView(a, b) : "");
      },
      draw() {
        const current = this.changes[0];
        fill(detail,
          h("h2", null, selected),
          current ? h("pre", {class: "json", "aria-label": "current value"}, current.type === "put" ? fmt.json(current.value) : `(${current.type}d)`) : null,
          h("h3", null, "History"),
          h("p", {class: "note"}, "Tick two revisions to compare them."),
          h("ol", {class: "timeline"}, this.changes.map((c) => h("li", {"data-revision": c.revision, class: c.type},
            h("label", null,
              h("input", {type: "checkbox", value: c.revision, checked: this.picked.includes(c.revision),
                          onchange: (e) => this.pick(c.revision, e.target.checked)}),
              ` revision ${c.revision} · ${c.type}`, c.type === "put" ? ` · version ${c.version}` : "",
              " · ", h("time", {datetime: c.ts, title: fmt.time(c.ts)}, fmt.ago(c.ts))),
            c.type === "put" ? h("code", null, fmt.short(c.value, 120)) : null))),
          diffBox);
        this.drawDiff();
      },
    };

    function diffView(a, b) {
      const changes = ctx.diff(a.type === "put" ? a.value : null, b.type === "put" ? b.value : null);
      return h("section", {class: "diff", "aria-label": "diff"},
        h("h3", null, `Revision ${a.revision} → ${b.revision}`),
        changes.length ? h("ul", null, changes.map((d) => h("li", {class: d.op},
          h("code", {class: "path"}, d.path || "(the whole value)"), ` ${d.op} `,
          d.op !== "added" ? h("code", {class: "from"}, fmt.short(d.from, 200)) : null,
          d.op === "changed" ? " → " : null,
          d.op !== "removed" ? h("code", {class: "to"}, fmt.short(d.to, 200)) : null))) :
          h("p", {class: "note"}, "The two values are equal."));
    }

    load();
    history.load();
    timers.push(setInterval(tick, 1000));
    return () => {
      streams.forEach((s) => s.close());
      timers.forEach(clearInterval);
      clearTimeout(refreshTimer);
    };
  },
};
