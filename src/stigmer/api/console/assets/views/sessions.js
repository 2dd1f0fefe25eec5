// Sessions: the tenant's semantic sessions (docs/semantic-sessions.md), newest first, with turns, live memories,
// phase and last drift; a session's drift over its stored turns as a chart. Sessions have no change stream, so
// the open view re-reads every few seconds (GET /v1/semantic-sessions[/{id}], docs/api.md#semantic-sessions).

const REFRESH_MS = 5000;
const PAGE = 200;

export default {
  id: "sessions", title: "Sessions", hotkey: "s", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const selected = params.id || "";
    let sessions = [], filter = "", next = null, closed = false;

    const filterBox = h("input", {type: "search", "data-filter": true, placeholder: "filter sessions  (/)",
                                  "aria-label": "Filter sessions by id", oninput: () => { filter = filterBox.value; drawList(); }});
    const rows = h("tbody", {id: "sessions"});
    const more = h("button", {type: "button", id: "more", hidden: true, onclick: () => loadList(true)}, "More");
    const detail = h("div", {class: "detail", id: "session"});
    fill(el, h("div", {class: "stack"},
      h("div", {class: "pane"},
        h("div", {class: "bar"}, h("h2", null, "Semantic sessions"), filterBox),
        h("table", {class: "grid"},
          h("thead", null, h("tr", null, ["session", "turns", "memories", "phase", "drift", "created"]
            .map((t) => h("th", {scope: "col", class: t === "session" ? "wide" : null}, t)))), rows), more),
      detail));

    const drift = (d) => (d === null || d === undefined ? "" : d.toFixed(3));

    function drawList() {
      const shown = sessions.filter((s) => !filter || s.session_id.includes(filter));
      fill(rows, shown.map((s) => h("tr", {"data-session": s.session_id, "aria-selected": s.session_id === selected ? "true" : null},
        h("td", null, h("a", {href: `#/sessions?id=${encodeURIComponent(s.session_id)}`}, s.session_id)),
        h("td", {class: "num"}, String(s.turns)), h("td", {class: "num"}, String(s.memories)), h("td", null, s.phase),
        h("td", {class: "num"}, drift(s.drift)), h("td", {title: fmt.time(s.created_at)}, fmt.ago(s.created_at)))));
      if (!shown.length) rows.append(h("tr", null, h("td", {colspan: 6, class: "note"},
        filter ? "No session matches." : "No session yet: POST /v1/run or /v1/session/create makes one.")));
      more.hidden = next === null;
    }

    async function loadList(append = false) {
      try {
        const page = await ctx.api("/v1/semantic-sessions", {query: {limit: PAGE, cursor: append ? next : null}});
        sessions = append ? [...sessions, ...page.sessions] : page.sessions;
        next = page.next_cursor;
        drawList();
      } catch (err) {
        fill(rows, h("tr", null, h("td", {colspan: 6, class: "error"}, err.message)));
      }
    }

    const chartBox = h("div", {class: "chart-box", id: "drift-chart"});
    const points = h("tbody", {id: "drift-points"});
    const summary = h("p", {class: "note", id: "session-summary"});
    if (selected) {
      fill(detail, h("h2", null, selected), summary, h("h3", null, "Drift per stored turn"), chartBox,
        h("table", {class: "grid"}, h("thead", null, h("tr", null, ["turn", "drift", "similarity", "phase"]
          .map((t) => h("th", {scope: "col"}, t)))), points));
    } else {
      fill(detail, h("p", {class: "note"}, "Pick a session to chart its drift over time."));
    }

    async function loadSession() {
      if (!selected) return;
      try {
        const d = await ctx.api(`/v1/semantic-sessions/${encodeURIComponent(selected)}`);
        const s = d.session;
        fill(summary, `${s.turns} turns · ${s.memories} live memories · phase ${s.phase} · created ${fmt.time(s.created_at)}`);
        ctx.chart.line(chartBox, [{name: "drift", points: d.drift.map((p) => [p.turn, p.drift])}],
                       {min: 0, label: `drift of ${selected} per turn`, formatX: (x) => `turn ${x}`});
        chartBox.dataset.points = String(d.drift.length);
        fill(points, [...d.drift].reverse().map((p) => h("tr", {"data-turn": p.turn},
          h("td", {class: "num"}, String(p.turn)), h("td", {class: "num"}, drift(p.drift)),
          h("td", {class: "num"}, p.similarity.toFixed(3)), h("td", null, p.phase))));
      } catch (err) {
        fill(detail, h("p", {class: "error", role: "alert"}, err.message));
        gone = true; // a 404 (deleted, or never this tenant's) would stay one: stop asking
      }
    }

    let gone = false, timer = null;
    async function refresh() { // the first page again, unless the user paged further (then what they loaded stays)
      await Promise.all([sessions.length <= PAGE ? loadList() : null, gone ? null : loadSession()]);
      if (!closed) timer = setTimeout(refresh, REFRESH_MS);
    }
    refresh();
    return () => { closed = true; clearTimeout(timer); };
  },
};
