// Formatting helpers (ctx.fmt). Times are ISO strings or epoch seconds.

function seconds(ts) {
  if (ts === null || ts === undefined || ts === "") return null;
  return typeof ts === "number" ? ts : Date.parse(ts) / 1000;
}

/** "3 s", "4 min", "2 h", "5 d" for a duration in seconds (negative: 0). */
export function duration(s) {
  s = Math.max(0, s);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

/** "12 s ago" */
export function ago(ts, now = Date.now() / 1000) {
  const t = seconds(ts);
  return t === null ? "" : `${duration(now - t)} ago`;
}

/** The time left until `ts` ("25 s"), "expired" when past, "" without an expiry. */
export function left(ts, now = Date.now() / 1000) {
  const t = seconds(ts);
  if (t === null) return "";
  return t <= now ? "expired" : duration(t - now);
}

/** Local date and time, to the second. */
export function time(ts) {
  const t = seconds(ts);
  return t === null ? "" : new Date(t * 1000).toLocaleString(undefined, {hour12: false});
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** Pretty JSON (two spaces). */
export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** One-line JSON cut at `max` characters. */
export function short(value, max = 80) {
  const text = JSON.stringify(value);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
