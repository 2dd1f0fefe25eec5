// Claims: the tenant's claims (newest first, by subject as the route filters, by status on what is loaded), a
// claim's evidence and its verification runs with every item's result (failures stand out), "Verify now" for a
// key with write; live from the claims' mirror keys (_claims/<id>, docs/claims.md).

const CLAIMS = "_claims";
const PAGE = 100;
const STATUSES = ["pending", "verified", "failed"];

function badge(h, status) {
  return h("span", {class: `badge ${status}`}, status);
}

export default {
  id: "claims", title: "Claims", hotkey: "a", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const selected = params.id || null;
    let claims = new Map(); // id -> summary, in list order (newest first)
    let cursor = null, stream = null;

    const link = (changes) => {
      const q = new URLSearchParams({...params, ...changes});
      for (const [k, v] of [...q]) if (!v) q.delete(k);
      return `#/claims?${q}`;
    };
    const subjectType = h("input", {type: "search", "data-filter": true, name: "subject_type", value: params.subject_type || "",
                                    placeholder: "subject type  (/)", "aria-label": "Subject type (exact)"});
    const subjectId = h("input", {type: "search", name: "subject_id", value: params.subject_id || "",
                                  placeholder: "subject id", "aria-label": "Subject id (exact)"});
    const status = h("select", {id: "claim-status", "aria-label": "Status",
                                onchange: () => ctx.go(link({status: status.value, id: selected}))},
      h("option", {value: ""}, "any status"),
      STATUSES.map((s) => h("option", {value: s, selected: params.status === s}, s)));
    const filters = h("form", {class: "bar", onsubmit: (e) => {
      e.preventDefault();
      ctx.go(link({subject_type: subjectType.value.trim(), subject_id: subjectId.value.trim(), id: ""}));
    }}, subjectType, subjectId, status, h("button", {type: "submit"}, "Filter"));
    const live = h("span", {class: "live", "data-state": "idle"});
    const rows = h("tbody", {id: "claims"});
    const more = h("p");
    const detail = h("div", {class: "detail", id: "claim", "aria-live": "polite"});
    fill(el, h("div", {class: "columns halves"},
      h("div", {class: "pane"},
        h("div", {class: "bar"}, h("h2", null, "Claims"), live), filters,
        h("table", {class: "grid"},
          h("thead", null, h("tr", null, ["status", "subject", "statement", "updated"]
            .map((t) => h("th", {scope: "col", class: t === "status" ? "narrow" : t === "statement" ? "wide" : null}, t)))),
          rows), more),
      detail));

    function shown(c) {
      return (!params.status || c.status === params.status) && (!params.subject_type || c.subject_type === params.subject_type) &&
        (!params.subject_id || c.subject_id === params.subject_id);
    }

    function drawList() {
      const list = [...claims.values()].filter(shown);
      fill(rows, list.map((c) => h("tr", {"data-claim": c.id, "data-status": c.status, class: c.status,
                                          "aria-selected": c.id === selected ? "true" : null},
        h("td", null, badge(h, c.status)),
        h("td", {title: `${c.subject_type}/${c.subject_id}`}, `${c.subject_type}/${c.subject_id}`),
        h("td", null, h("a", {href: link({id: c.id})}, c.statement)),
        h("td", {title: fmt.time(c.updated_at)}, fmt.ago(c.updated_at)))));
      if (!list.length) rows.append(h("tr", null, h("td", {colspan: 4, class: "note"}, claims.size ? "No loaded claim has this status." : "No claims.")));
      fill(more, cursor ? h("button", {type: "button", id: "more-claims", onclick: page}, "Load more") : "");
    }

    async function page() {
      try {
        const got = await ctx.api("/v1/claims", {query: {limit: PAGE, cursor, subject_type: params.subject_type,
                                                         subject_id: params.subject_id}});
        for (const c of got.claims) claims.set(c.id, c);
        cursor = got.next_cursor;
        drawList();
      } catch (err) {
        fill(rows, h("tr", null, h("td", {colspan: 4, class: "error"}, err.message)));
      }
    }

    function evidenceRow(e) {
      const checks = e.kind === "text_hash" ? `sha256 ${e.hash}` :
        [e.hash ? `sha256 ${e.hash}` : null, e.json_path ? `${e.json_path} = ${fmt.short(e.expected_value, 120)}` : null]
          .filter(Boolean).join(" · ");
      return h("tr", {"data-evidence": e.id, "data-kind": e.kind},
        h("td", null, h("code", null, e.kind)), h("td", {title: e.source}, e.source), h("td", {title: checks}, checks),
        h("td", {class: "value", title: e.data === null ? "" : fmt.short(e.data, 2000)}, e.data === null ? "" : fmt.short(e.data)));
    }

    function runItem(r, evidence) {
      const failed = r.results.filter((x) => !x.passed).length;
      return h("li", {"data-run": r.id, "data-status": r.status, class: r.status},
        h("div", null, badge(h, r.status), " ",
          failed ? h("strong", {class: "error"}, `${failed} of ${r.results.length} failed`) : `all ${r.results.length} passed`,
          " · ", h("time", {datetime: r.created_at, title: fmt.time(r.created_at)}, fmt.ago(r.created_at))),
        h("ul", {class: "results"}, r.results.map((x) => h("li", {"data-evidence": x.evidence_id, "data-passed": String(x.passed),
                                                              class: x.passed ? "passed" : "failed"},
          h("span", {class: "mark", "aria-label": x.passed ? "passed" : "failed"}, x.passed ? "✓" : "✗"), " ",
          h("code", null, evidence.get(x.evidence_id)?.kind || x.kind), " ", x.source, ": ", h("span", {class: "message"}, x.message)))));
    }

    async function drawDetail() {
      if (!selected) { fill(detail); return; }
      try {
        const [claim, {runs}] = await Promise.all([ctx.api(`/v1/claims/${encodeURIComponent(selected)}`),
                                                   ctx.api(`/v1/claims/${encodeURIComponent(selected)}/runs`, {query: {limit: 100}})]);
        const evidence = new Map(claim.evidence.map((e) => [e.id, e]));
        const verify = ctx.can("write") ? h("button", {type: "button", id: "verify", onclick: async () => {
          verify.disabled = true;
          try {
            const run = await ctx.api(`/v1/claims/${encodeURIComponent(selected)}/verify`, {method: "POST"});
            ctx.status(`Verified now: ${run.status}.`);
          } catch (err) {
            ctx.status(err.message);
          }
          drawDetail();
        }}, "Verify now") : h("span", {class: "note"}, "Verifying needs a key with write.");
        fill(detail,
          h("div", {class: "bar"}, h("h2", null, claim.statement), badge(h, claim.status), verify),
          h("p", {class: "note"}, `${claim.subject_type}/${claim.subject_id} · created ${fmt.time(claim.created_at)} · `,
            h("code", null, claim.id)),
          h("h3", null, `Evidence (${claim.evidence.length})`),
          h("table", {class: "grid"},
            h("thead", null, h("tr", null, ["kind", "source", "checks", "data"].map((t) => h("th", {scope: "col"}, t)))),
            h("tbody", {id: "evidence"}, claim.evidence.map(evidenceRow))),
          h("h3", null, `Verification runs (${runs.length}${runs.length === 100 ? "+" : ""}), newest first`),
          runs.length ? h("ol", {class: "timeline runs", id: "runs"}, runs.map((r) => runItem(r, evidence))) :
            h("p", {class: "note", id: "runs"}, "Never verified."));
        const known = claims.get(claim.id);
        if (known) { claims.set(claim.id, {...known, status: claim.status, updated_at: claim.updated_at}); drawList(); }
      } catch (err) {
        fill(detail, h("p", {class: "error"}, err.status === 404 ? "No such claim." : err.message));
      }
    }

    function apply(c) { // a mirror key: {id, subject_type, subject_id, statement, status, created_at, updated_at} in ms
      if (c.type !== "put") return;
      const doc = c.value, summary = {...doc, created_at: doc.created_at / 1000, updated_at: doc.updated_at / 1000};
      if (claims.has(doc.id)) claims.set(doc.id, {...claims.get(doc.id), status: doc.status, updated_at: summary.updated_at});
      else if ((!params.subject_type || doc.subject_type === params.subject_type) && (!params.subject_id || doc.subject_id === params.subject_id))
        claims = new Map([[doc.id, summary], ...claims]); // a new claim is the newest
      if (doc.id === selected) drawDetail();
    }

    async function load() {
      try {
        const {revision} = await ctx.api("/v1/revision");
        await page();
        drawDetail();
        if (!ctx.can("watch")) { fill(live, "not live: this key has no watch scope"); return; }
        stream = ctx.stream("/v1/watch", {namespace: CLAIMS, from: revision + 1}, {
          onEvent: (ev) => {
            if (ev.event === "change") { ev.data.changes.forEach(apply); drawList(); }
            else if (ev.event === "compacted") { stream.close(); claims = new Map(); cursor = null; load(); }
          },
          onStatus: (state, err) => {
            live.dataset.state = state;
            fill(live, state === "live" ? "● live" : state, state === "error" && err ? `: ${err.message}` : "");
          },
        });
      } catch (err) {
        fill(rows, h("tr", null, h("td", {colspan: 4, class: "error"}, err.message)));
      }
    }

    load();
    return () => { if (stream) stream.close(); };
  },
};
