// Health: the server's readiness checks (/readyz), the tenant's revision (/v1/revision) and, sampled while the
// view is open, the database's answer time and the tenant's write rate (revisions per second) as charts; for the
// server's admin key also the server-wide figures (GET /v1/admin/metrics): request rate, latency p50/p99 over
// each sampling interval, watchers, job queue depth and webhook backlog.

const SAMPLE_MS = 2000;
const KEEP = 150; // samples per chart: five minutes at SAMPLE_MS

// The q-quantile of the requests between two cumulative bucket samples, interpolated inside its bucket as
// Prometheus' histogram_quantile does; null when no request came in between.
export function quantile(q, bounds, before, after) {
  const counts = after.map((n, i) => n - (before[i] || 0));
  const total = counts[counts.length - 1];
  if (total <= 0) return null;
  const rank = q * total;
  const i = counts.findIndex((n) => n >= rank);
  if (i >= bounds.length) return bounds[bounds.length - 1]; // in +Inf: the highest bound is all we know
  const lo = i === 0 ? 0 : bounds[i - 1], below = i === 0 ? 0 : counts[i - 1];
  return lo + (bounds[i] - lo) * ((rank - below) / Math.max(1, counts[i] - below));
}

// A chart's top: the highest point, at least `floor` (an all-zero series would otherwise span -1..1).
const top = (series, floor) => Math.max(floor, ...series.flatMap((x) => x.points.map((p) => p[1])));

function draw(ctx, el, series, label, floor = 1) {
  const clock = (x) => new Date(x * 1000).toLocaleTimeString(undefined, {hour12: false});
  ctx.chart.line(el, series, {min: 0, max: top(series, floor), formatX: clock, label});
}

export default {
  id: "health", title: "Health", hotkey: "h", scopes: ["read"],
  mount(el, ctx) {
    const {h, fill, fmt} = ctx;
    const latency = [], rate = [];
    const server = {requests: [], p50: [], p99: [], watchers: [], jobs: [], webhooks: []};
    let last = null, lastServer = null, serverAllowed = true, timer = null, closed = false;

    const status = h("p", {id: "ready", class: "ready"});
    const checks = h("tbody", {id: "checks"});
    const revision = h("dl", {id: "revision", class: "facts"});
    const latencyChart = h("div", {class: "chart-box", id: "latency-chart"});
    const rateChart = h("div", {class: "chart-box", id: "rate-chart"});
    const sampled = h("p", {class: "note", id: "samples"});
    const serverPane = h("div", {class: "pane", id: "server"}, h("p", {class: "note"}, "reading the server's figures…"));
    fill(el, h("div", {class: "stack"}, serverPane, h("div", {class: "columns two"},
      h("div", {class: "pane"},
        h("h2", null, "Database answer time (ms)"), latencyChart,
        h("h2", null, "Writes (revisions per second)"), rateChart, sampled),
      h("div", {class: "pane"},
        h("h2", null, "Readiness"), status,
        h("table", {class: "grid"}, h("thead", null, h("tr", null, ["check", "status", "detail"].map((t) => h("th", {scope: "col"}, t)))), checks),
        h("h2", null, "This tenant"), revision))));

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
        draw(ctx, latencyChart, [{name: "database ms", points: latency}], "database answer time", 0.1);
        draw(ctx, rateChart, [{name: "revisions/s", points: rate}], "writes per second");
        latencyChart.dataset.points = String(latency.length);
        rateChart.dataset.points = String(rate.length);
        fill(sampled, `${latency.length} samples, one every ${SAMPLE_MS / 1000} s while this view is open.`);
      } catch (err) {
        fill(status, h("span", {class: "error", role: "alert"}, err.message));
      }
      if (serverAllowed) await sampleServer();
      if (!closed) timer = setTimeout(sample, SAMPLE_MS);
    }

    const charts = {
      requests: h("div", {class: "chart-box", id: "requests-chart"}), latency: h("div", {class: "chart-box", id: "p99-chart"}),
      backlog: h("div", {class: "chart-box", id: "backlog-chart"})};
    const current = h("p", {class: "note", id: "server-now"});

    async function sampleServer() {
      let m;
      try {
        m = await ctx.api("/v1/admin/metrics");
      } catch (err) {
        if (err.status !== 403) { fill(serverPane, h("p", {class: "error", role: "alert"}, err.message)); return; }
        serverAllowed = false; // not the server's admin key: say so once, stop asking
        fill(serverPane, h("h2", null, "Server"), h("p", {class: "note", id: "server-note"},
          "The server-wide figures (request rate, latency, watchers, job and webhook backlogs) need the server's ",
          "admin key (an unrestricted admin key of the tenant default)."));
        return;
      }
      if (lastServer) {
        const dt = Math.max(1e-3, m.at - lastServer.at);
        push(server.requests, [m.at, Math.max(0, m.requests - lastServer.requests) / dt]);
        for (const [q, series] of [[0.5, server.p50], [0.99, server.p99]]) {
          const v = quantile(q, m.latency.buckets, lastServer.latency.counts, m.latency.counts);
          if (v !== null) push(series, [m.at, v * 1000]);
        }
      }
      push(server.watchers, [m.at, m.watchers]);
      push(server.jobs, [m.at, m.job_queue_depth]);
      push(server.webhooks, [m.at, m.webhook_backlog]);
      lastServer = m;
      if (!serverPane.contains(charts.requests)) {
        fill(serverPane, h("div", {class: "charts"},
          h("div", null, h("h2", null, "Server: requests per second"), charts.requests),
          h("div", null, h("h2", null, "Server: latency p50 (lower) and p99, ms"), charts.latency),
          h("div", null, h("h2", null, "Server: watchers, queued jobs, webhook backlog"), charts.backlog)), current);
      }
      draw(ctx, charts.requests, [{name: "requests/s", points: server.requests}], "requests per second");
      draw(ctx, charts.latency, [{name: "p50 ms", points: server.p50}, {name: "p99 ms", points: server.p99}], "latency p50 and p99", 0.1);
      draw(ctx, charts.backlog, [{name: "watchers", points: server.watchers}, {name: "queued jobs", points: server.jobs},
                                 {name: "webhook backlog", points: server.webhooks}], "watchers and backlogs");
      fill(current, `now: ${m.watchers} watchers · ${m.job_queue_depth} queued jobs · ${m.webhook_backlog} webhook events waiting · `,
        `${m.requests} requests since the server started`);
      charts.requests.dataset.points = String(server.requests.length);
      serverPane.dataset.watchers = String(m.watchers);
    }

    sample();
    return () => { closed = true; clearTimeout(timer); };
  },
};
