// Leases: every active lease (the mirror keys of the reserved namespace _leases, docs/leases.md) with its
// resource, holder, fencing token and time left (ticking), updated live when a holder changes or a lease ends.

const LEASES = "_leases";
const RECENT = 50; // lease events kept in the log below the table

export default {
  id: "leases", title: "Leases", hotkey: "l", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt} = ctx;
    const leases = new Map(); // resource -> {value, revision}
    const recent = [];
    let filter = "", streams = [];
    const prefixes = ctx.prefixes(LEASES); // a key limited to prefixes sees the leases it covers

    const filterBox = h("input", {type: "search", "data-filter": true, placeholder: "filter resources  (/)",
                                  "aria-label": "Filter leases by resource", oninput: () => { filter = filterBox.value; draw(); }});
    const live = h("span", {class: "live", "data-state": "idle"});
    const rows = h("tbody", {id: "leases"});
    const log = h("ol", {class: "timeline", id: "lease-events"}, h("li", {class: "note"}, "Nothing yet: acquisitions, renewals, releases and expiries appear here as they happen."));
    fill(el, h("div", {class: "columns two"},
      h("div", {class: "pane"},
        h("div", {class: "bar"}, h("h2", null, "Active leases"), filterBox, live),
        h("table", {class: "grid"},
          h("thead", null, h("tr", null, ["resource", "holder", "fencing token", "time left", "acquired", "renewed"]
            .map((t) => h("th", {scope: "col", class: t === "fencing token" ? "narrow" : t === "resource" ? "wide" : null}, t)))), rows)),
      h("div", {class: "pane"}, h("h2", null, "Lease events"), log)));

    function draw() {
      const now = Date.now() / 1000;
      const shown = [...leases.keys()].sort().filter((r) => !filter || r.includes(filter));
      fill(rows, shown.map((r) => {
        const l = leases.get(r).value;
        return h("tr", {"data-resource": r, "data-holder": l.holder, "data-token": l.fencing_token},
          h("td", null, r), h("td", {class: "holder"}, l.holder), h("td", {class: "num"}, String(l.fencing_token)),
          h("td", {class: "ttl", "data-expires": l.expires_at}, fmt.left(l.expires_at, now)),
          h("td", {title: fmt.time(l.created_at)}, fmt.ago(l.created_at, now)),
          h("td", {title: fmt.time(l.renewed_at)}, l.renewed_at ? fmt.ago(l.renewed_at, now) : ""));
      }));
      if (!shown.length) rows.append(h("tr", null, h("td", {colspan: 6, class: "note"}, filter ? "No lease matches." : "No active lease.")));
    }

    function note(text, c) {
      recent.unshift(h("li", {"data-revision": c.revision, class: c.type},
        h("span", null, `revision ${c.revision} · `, text), " ", h("time", {datetime: c.ts}, fmt.time(c.ts))));
      recent.length = Math.min(recent.length, RECENT);
      fill(log, recent);
    }

    function apply(c) {
      const known = leases.get(c.key);
      if (known && known.revision >= c.revision) return;
      if (c.type === "put") {
        const before = known && known.value;
        leases.set(c.key, {value: c.value, revision: c.revision});
        if (!before || before.lease_id !== c.value.lease_id) note(`${c.value.holder} acquired ${c.key} (token ${c.value.fencing_token})`, c);
        else note(`${c.value.holder} renewed ${c.key}`, c);
      } else {
        leases.delete(c.key);
        note(`${c.key} ${c.type === "expire" ? "expired" : "released"}${known ? ` by ${known.value.holder}` : ""}`, c);
      }
    }

    async function load() {
      try {
        const {revision} = await ctx.api("/v1/revision");
        leases.clear();
        for (const prefix of prefixes) {
          let cursor = null;
          do { // every active lease, page by page
            const page = await ctx.api(`/v1/kv/${LEASES}`, {query: {limit: 1000, cursor, prefix}});
            for (const e of page.entries) leases.set(e.key, {value: e.value, revision: e.mod_revision});
            cursor = page.next_cursor;
          } while (cursor);
        }
        draw();
        if (!ctx.can("watch")) { fill(live, "not live: this key has no watch scope"); return; }
        streams = prefixes.map((prefix) => ctx.stream("/v1/watch", {namespace: LEASES, prefix, from: revision + 1}, {
          onEvent: (ev) => {
            if (ev.event === "change") { ev.data.changes.forEach(apply); draw(); rows.dataset.revision = ev.data.revision; }
            else if (ev.event === "compacted") { streams.forEach((s) => s.close()); load(); }
          },
          onStatus: (state, err) => {
            live.dataset.state = state;
            fill(live, state === "live" ? "● live" : state, state === "error" && err ? `: ${err.message}` : "");
          },
        }));
      } catch (err) {
        fill(rows, h("tr", null, h("td", {colspan: 6, class: "error"}, err.message)));
      }
    }

    load();
    const timer = setInterval(() => { // time left ticks; a lease past its expiry shows "expired" until its event
      for (const td of rows.querySelectorAll("td.ttl")) td.textContent = fmt.left(Number(td.dataset.expires));
    }, 1000);
    return () => { clearInterval(timer); streams.forEach((s) => s.close()); };
  },
};
