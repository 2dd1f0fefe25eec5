// A structural diff of two JSON values: the paths (JSON Pointer, RFC 6901) added, removed or changed.
// Objects are compared member by member, arrays index by index; anything else by value.

function pointer(path) {
  return path.length ? "/" + path.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/") : "";
}

function kind(v) {
  if (v === null) return "null";
  return Array.isArray(v) ? "array" : typeof v;
}

/** [{path, op: "added"|"removed"|"changed", from?, to?}] turning `a` into `b`, in document order. */
export function diff(a, b, path = [], out = []) {
  const ka = kind(a), kb = kind(b);
  if (ka !== kb || (ka !== "object" && ka !== "array")) {
    if (ka !== kb || a !== b) out.push({path: pointer(path), op: "changed", from: a, to: b});
    return out;
  }
  if (ka === "array") {
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      if (i >= b.length) out.push({path: pointer([...path, i]), op: "removed", from: a[i]});
      else if (i >= a.length) out.push({path: pointer([...path, i]), op: "added", to: b[i]});
      else diff(a[i], b[i], [...path, i], out);
    }
    return out;
  }
  for (const k of Object.keys(a)) {
    if (!Object.hasOwn(b, k)) out.push({path: pointer([...path, k]), op: "removed", from: a[k]});
    else diff(a[k], b[k], [...path, k], out);
  }
  for (const k of Object.keys(b)) if (!Object.hasOwn(a, k)) out.push({path: pointer([...path, k]), op: "added", to: b[k]});
  return out;
}
