// Small hand-written SVG charts (ctx.chart). No inline style: colours come from console.css classes.

import {svg, fill} from "./dom.js";

const W = 560, H = 160, PAD = {left: 48, right: 12, top: 10, bottom: 22};

function bounds(values, min, max) {
  let lo = min ?? Math.min(...values), hi = max ?? Math.max(...values);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) { lo -= 1; hi += 1; }
  return [lo, hi];
}

/**
 * line(el, series, opts): draw `series` ([{name, points: [[x, y], ...]}], x numbers such as epoch seconds)
 * into `el`, replacing what it held. opts: {width, height, min, max, format(y), formatX(x), label, spark}
 * (`spark`: no axes, a sparkline). Returns the <svg>. Series take the classes series-0, series-1, ...
 */
export function line(el, series, opts = {}) {
  const width = opts.width ?? (opts.spark ? 120 : W), height = opts.height ?? (opts.spark ? 28 : H);
  const pad = opts.spark ? {left: 1, right: 1, top: 2, bottom: 2} : PAD;
  const format = opts.format ?? ((v) => String(Math.round(v * 100) / 100));
  const formatX = opts.formatX ?? ((x) => String(x));
  const points = series.flatMap((s) => s.points);
  const [x0, x1] = bounds(points.map((p) => p[0]));
  const [y0, y1] = bounds(points.map((p) => p[1]), opts.min, opts.max);
  const sx = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const root = svg("svg", {viewBox: `0 0 ${width} ${height}`, width, height, class: opts.spark ? "chart spark" : "chart",
                           role: "img", "aria-label": opts.label || series.map((s) => s.name).join(", ")});
  if (!opts.spark && points.length) {
    root.append(
      svg("line", {x1: pad.left, y1: sy(y0), x2: width - pad.right, y2: sy(y0), class: "axis"}),
      svg("line", {x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom, class: "axis"}),
      svg("text", {x: pad.left - 4, y: sy(y1) + 4, "text-anchor": "end", class: "tick"}, format(y1)),
      svg("text", {x: pad.left - 4, y: sy(y0), "text-anchor": "end", class: "tick"}, format(y0)),
      svg("text", {x: pad.left, y: height - 6, class: "tick"}, formatX(x0)),
      svg("text", {x: width - pad.right, y: height - 6, "text-anchor": "end", class: "tick"}, formatX(x1)));
  }
  series.forEach((s, i) => {
    const g = svg("g", {class: `series series-${i % 6}`}, svg("title", null, s.name));
    if (s.points.length === 1) g.append(svg("circle", {cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 2.5}));
    else g.append(svg("polyline", {points: s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}));
    root.append(g);
  });
  if (!points.length && !opts.spark) root.append(svg("text", {x: width / 2, y: height / 2, "text-anchor": "middle", class: "tick"}, "no data"));
  fill(el, root);
  return root;
}
