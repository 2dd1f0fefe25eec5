// Health: the server's readiness checks (/readyz), the tenant's revision (/v1/revision) and, sampled while the
// view is open, the database's answer time and the tenant's write rate (revisions per second) as charts.

const SAMPLE_MS = 2000;
const KEEP = 150; // samples per chart: five minutes at SAMPLE_MS

export default {
  id: "health", title: "Health", hotkey: "h", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt} = ctx;
    const latency = [], rate = [];
    let last = null, timer = null, closed = false;

    const status = h("p", {id: "ready", class: "ready"});
    const checks = h("tbody", {id: "checks"});
    const revision = h("dl", {id: "revision", class: "facts"});
    const latencyChart = h("div", {class: "chart-box", id: "latency-chart"});
    const rateChart = h("div", {class: "chart-box", id: "rate-chart"});
    const sampled = h("p", {class: "note", id: "samples"});
    fill(el, h("div", {class: "columns two"},
      h("div", {class: "pane"},
        h("h2", null, "Database answer time (ms)"), latencyChart,
        h("h2", null, "Writes (revisions per second)"), rateChart, sampled),
      h("div", {class: "pane"},
        h("h2", null, "Readiness"), status,
        h("table", {class: "grid"}, h("thead", null, h("tr", null, ["check", "status", "detail"].map((t) => h("th", {scope: "col"}, t)))), checks),
        h("h2", null, "This tenant"), revision)));

    // /readyz answers 503 with the same body when not ready: read it whatever the status.
    async function ready() {
      const response = await fetch("/readyz", {cache: "no-store"});
      return response.json();
    }

    function push(series, point) {
      series.push(point);
      if (series.length > KEEP) series.shift();
    }

    async function sample() {
      const now = Date.now() / 1000;
      try {
        const [r, rev] = await Promise.all([ready(), ctx.api("/v1/revision")]);
        status.dataset.status = r.status;
        fill(status, h("span", {class: `badge ${r.status === "ready" ? "ok" : "bad"}`}, r.status), ` at ${fmt.time(now)}`);
        fill(checks, r.checks.map((c) => h("tr", {"data-check": c.name, "data-status": c.status},
          h("td", null, c.name), h("td", null, c.status),
          h("td", null, c.latency_ms !== undefined ? `${c.latency_ms} ms` : c.detail || ""))));
        fill(revision, h("dt", null, "revision"), h("dd", {class: "num", id: "rev"}, String(rev.revision)),
          h("dt", null, "compacted below"), h("dd", {class: "num"}, String(rev.compacted_revision)));
        const db = r.checks.find((c) => c.name === "database");
        if (db && db.latency_ms !== undefined) push(latency, [now, db.latency_ms]);
        if (last) push(rate, [now, Math.max(0, rev.revision - last.revision) / (now - last.at)]);
        last = {at: now, revision: rev.revision};
        const clock = (x) => new Date(x * 1000).toLocaleTimeString(undefined, {hour12: false});
        ctx.chart.line(latencyChart, [{name: "database ms", points: latency}], {min: 0, formatX: clock, label: "database answer time"});
        ctx.chart.line(rateChart, [{name: "revisions/s", points: rate}], {min: 0, formatX: clock, label: "writes per second"});
        latencyChart.dataset.points = String(latency.length);
        rateChart.dataset.points = String(rate.length);
        fill(sampled, `${latency.length} samples, one every ${SAMPLE_MS / 1000} s while this view is open.`);
      } catch (err) {
        fill(status, h("span", {class: "error", role: "alert"}, err.message));
      }
      if (!closed) timer = setTimeout(sample, SAMPLE_MS);
    }

    sample();
    return () => { closed = true; clearTimeout(timer); };
  },
};
