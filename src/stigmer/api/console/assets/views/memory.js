// Memory: the memory subjects (docs/memory.md) with their episodes, compiled memories and health, and the context
// the server assembles for a task the user types, each packed record with its provenance. It reads the Statewave
// routes (specs/statewave.md §5.7–5.12) with the signed-in key in X-API-Key, inside an optional Statewave tenant
// (X-Tenant-ID; empty: unscoped, every Statewave tenant of this Stigmer tenant).

const PAGE = 200; // subjects per request (the route's maximum)
const SW = {keyHeader: "X-API-Key"};

export default {
  id: "memory", title: "Memory", hotkey: "m", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt, params} = ctx;
    const tenantId = params.tenant || "";
    const subjectId = params.subject || "";
    const call = (path, opts = {}) => ctx.api(path, {...SW, ...opts, headers: tenantId ? {"X-Tenant-ID": tenantId} : {}});
    const link = (subject, tenant = tenantId) =>
      `#/memory?${new URLSearchParams({...(tenant ? {tenant} : {}), ...(subject ? {subject} : {})})}`;
    let subjects = [], filter = "";

    const filterBox = h("input", {type: "search", "data-filter": true, placeholder: "filter subjects  (/)",
                                  "aria-label": "Filter subjects", oninput: () => { filter = filterBox.value; drawList(); }});
    const tenantBox = h("input", {type: "text", id: "sw-tenant", value: tenantId, placeholder: "all (unscoped)",
                                  "aria-label": "Statewave tenant (X-Tenant-ID)"});
    const tenantForm = h("form", {class: "inline", onsubmit: (e) => { e.preventDefault(); ctx.go(link("", tenantBox.value.trim())); }},
      h("label", {for: "sw-tenant"}, "Statewave tenant "), tenantBox, h("button", {type: "submit"}, "Show"));
    const list = h("ul", {class: "list", id: "subjects"});
    const total = h("span", {class: "count", id: "subject-total"});
    const detail = h("div", {class: "detail", id: "subject"});
    fill(el, h("div", {class: "columns list-detail"},
      h("div", {class: "pane"}, h("div", {class: "bar"}, h("h2", null, "Subjects"), total), tenantForm, filterBox, list),
      detail));

    function drawList() {
      const shown = subjects.filter((s) => !filter || s.subject_id.includes(filter));
      fill(list, shown.map((s) => h("li", null, h("a", {href: link(s.subject_id), "data-subject": s.subject_id,
                                                         "aria-current": s.subject_id === subjectId ? "page" : null},
        s.subject_id, " ", h("span", {class: "count", title: "episodes · memories"}, `${s.episode_count} · ${s.memory_count}`)))));
      if (!shown.length) list.append(h("li", {class: "note"}, filter ? "No subject matches." : "No subject yet: episodes sent to POST /v1/episodes appear here."));
    }

    async function loadList() {
      try {
        subjects = [];
        let offset = 0, page;
        do { // every subject, page by page
          page = await call("/v1/subjects", {query: {limit: PAGE, offset}});
          subjects.push(...page.subjects);
          offset += PAGE;
        } while (offset < page.total);
        fill(total, `${page.total}`);
        drawList();
      } catch (err) {
        fill(list, h("li", {class: "error", role: "alert"}, err.message));
      }
    }

    function healthPane(hl) {
      return h("section", {class: "health", id: "health", "data-state": hl.state},
        h("h3", null, "Health ", h("span", {class: `badge ${hl.state === "healthy" ? "ok" : "bad"}`}, hl.state), " ",
          h("span", {class: "num", id: "health-score"}, `score ${hl.score}`)),
        hl.factors.length
          ? h("ul", null, hl.factors.map((f) => h("li", {"data-signal": f.signal}, h("code", null, f.signal), ` ${f.impact} · ${f.detail}`)))
          : h("p", {class: "note"}, "No factor lowers the score."));
    }

    function memoriesPane(memories) {
      return h("section", null, h("h3", null, `Memories (${memories.length})`),
        h("table", {class: "grid wrap", id: "memories"},
          h("thead", null, h("tr", null, ["kind", "content", "confidence", "status", "from episodes"].map((t) => h("th", {scope: "col"}, t)))),
          h("tbody", null, memories.length ? memories.map((m) => h("tr", {"data-memory": m.id, "data-kind": m.kind},
            h("td", null, m.kind), h("td", {class: "value"}, m.content), h("td", {class: "num"}, m.confidence.toFixed(2)),
            h("td", null, m.status), h("td", {class: "note"}, m.source_episode_ids.map((id) => id.slice(0, 8)).join(", "))))
            : h("tr", null, h("td", {colspan: 5, class: "note"}, "Nothing compiled yet (POST /v1/memories/compile).")))));
    }

    function episodesPane(episodes, more) {
      return h("section", null, h("h3", null, `Episodes (${episodes.length}${more ? "+, newest first" : ", newest first"})`),
        h("ol", {class: "timeline", id: "episodes"}, episodes.map((e) => h("li", {"data-episode": e.id},
          h("time", {datetime: e.created_at, title: fmt.time(e.created_at)}, fmt.ago(e.created_at)), " ",
          h("code", null, `${e.source}/${e.type}`), e.session_id ? ` · session ${e.session_id}` : "", " ",
          h("span", {class: "value"}, fmt.short(e.payload, 160))))));
    }

    // The packed records of a context, in its sections' order, each with where it came from.
    function contextRows(b) {
      const memoryRow = (section) => (m) => h("tr", {"data-source": m.id, "data-section": section},
        h("td", null, section), h("td", {class: "value"}, m.content),
        h("td", {class: "provenance"}, `memory ${m.id.slice(0, 8)} (${m.kind})`,
          m.source_episode_ids.length ? ` ← episodes ${m.source_episode_ids.map((id) => id.slice(0, 8)).join(", ")}` : ""));
      const episodeRow = (e) => h("tr", {"data-source": e.id, "data-section": "episodes"},
        h("td", null, "episodes"), h("td", {class: "value"}, fmt.short(e.payload, 160)),
        h("td", {class: "provenance"}, `episode ${e.id.slice(0, 8)} (${e.source}/${e.type}, ${fmt.time(e.created_at)})`));
      return [...b.facts.map(memoryRow("facts")), ...b.procedures.map(memoryRow("procedures")), ...b.episodes.map(episodeRow)];
    }

    function contextPane() {
      const task = h("input", {type: "text", id: "task", placeholder: "a task, e.g. “answer the billing question”",
                               "aria-label": "Task for the assembled context", required: true});
      const out = h("div", {id: "context"});
      const form = h("form", {class: "inline", id: "context-form", onsubmit: async (e) => {
        e.preventDefault();
        fill(out, h("p", {class: "note"}, "assembling…"));
        try {
          const b = await call("/v1/context", {method: "POST", body: {subject_id: subjectId, task: task.value}});
          fill(out,
            h("p", {class: "note", id: "token-estimate"}, `${b.token_estimate} tokens · ${b.facts.length} facts · `,
              `${b.procedures.length} procedures · ${b.episodes.length} episodes`),
            h("table", {class: "grid wrap", id: "context-lines"},
              h("thead", null, h("tr", null, ["section", "line", "provenance"].map((t) => h("th", {scope: "col"}, t)))),
              h("tbody", null, contextRows(b))),
            h("h3", null, "As the agent receives it"), h("pre", {class: "json", id: "assembled"}, b.assembled_context));
        } catch (err) {
          fill(out, h("p", {class: "error", role: "alert"}, err.message));
        }
      }}, h("label", {for: "task"}, "Context for a task "), task, h("button", {type: "submit"}, "Assemble"));
      return h("section", null, h("h3", null, "Assembled context"), form, out);
    }

    async function loadSubject() {
      if (!subjectId) { fill(detail, h("p", {class: "note"}, "Pick a subject to see its episodes, memories, health and context.")); return; }
      fill(detail, h("p", {class: "note"}, "loading…"));
      try {
        const enc = encodeURIComponent(subjectId);
        const [timeline, hl] = await Promise.all([
          call("/v1/timeline", {query: {subject_id: subjectId, limit: 200, newest_first: true}}),
          call(`/v1/subjects/${enc}/health`)]);
        fill(detail, h("h2", {id: "subject-id"}, subjectId), healthPane(hl), contextPane(),
          memoriesPane(timeline.memories), episodesPane(timeline.episodes, timeline.episodes_has_more));
      } catch (err) {
        fill(detail, h("p", {class: "error", role: "alert"}, err.message));
      }
    }

    loadList();
    loadSubject();
    return () => {};
  },
};
