// The Stigmer API reference: renders every surface's OpenAPI document (/docs/openapi/<surface>.json).
// The API key lives only in the key field of this tab: never stored, never put in a URL, never logged.
"use strict";

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function resolve(doc, schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 32) {
    const path = schema.$ref.replace(/^#\//, "").split("/");
    schema = path.reduce((o, p) => (o ? o[p] : undefined), doc);
  }
  return schema || {};
}

// A short reading of a schema: `{ name: type, … }`, followed into $refs a few levels deep.
function describe(doc, schema, depth) {
  const s = resolve(doc, schema);
  const name = schema && schema.$ref ? schema.$ref.split("/").pop() + " " : "";
  if (depth > 3) return name || "…";
  if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map((x) => describe(doc, x, depth + 1)).join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === "array") return "[" + describe(doc, s.items || {}, depth + 1) + "]";
  if (s.type === "object" || s.properties) {
    const props = Object.entries(s.properties || {});
    if (!props.length) return name + "object";
    const required = new Set(s.required || []);
    const pad = "  ".repeat(depth + 1);
    const lines = props.map(([k, v]) => pad + k + (required.has(k) ? "" : "?") + ": " + describe(doc, v, depth + 1));
    return name + "{\n" + lines.join(",\n") + "\n" + "  ".repeat(depth) + "}";
  }
  const type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  return name + (type || "any");
}

function example(doc, schema, depth) {
  const s = resolve(doc, schema);
  if (depth > 4) return null;
  if (s.examples && s.examples.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.anyOf || s.oneOf) return example(doc, (s.anyOf || s.oneOf)[0], depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === "array") return [example(doc, s.items || {}, depth + 1)];
  if (type === "object" || s.properties) {
    const out = {};
    const required = new Set(s.required || []);
    for (const [k, v] of Object.entries(s.properties || {})) {
      if (required.has(k) || depth < 1) out[k] = example(doc, v, depth + 1);
    }
    return out;
  }
  return { string: "string", integer: 1, number: 1, boolean: true, null: null }[type] ?? {};
}

function parameters(doc, op) {
  return (op.parameters || []).map((p) => resolve(doc, p));
}

function credential(doc) {
  const scheme = ((doc.components || {}).securitySchemes || {}).apiKey;
  if (!scheme) return null;
  if (scheme.type === "apiKey" && scheme.in === "header") return { header: scheme.name, prefix: "" };
  return { header: "Authorization", prefix: "Bearer " };
}

function tryForm(doc, path, method, op) {
  const form = el("form", { class: "try" });
  const fields = [];
  for (const p of parameters(doc, op).filter((p) => p.in === "path" || p.in === "query" || p.in === "header")) {
    const input = el("input", { name: p.name, "data-in": p.in, autocomplete: "off" });
    fields.push(input);
    form.append(el("label", {}, `${p.name} (${p.in}${p.required ? ", required" : ""}) `, input));
  }
  let body = null;
  const media = op.requestBody && Object.keys(op.requestBody.content || {})[0];
  if (media) {
    body = el("textarea", { name: "body", spellcheck: "false" });
    const schema = op.requestBody.content[media].schema;
    body.value = JSON.stringify(example(doc, schema, 0), null, 2);
    form.append(el("label", { text: `Body (${media})` }), body);
  }
  const answer = el("pre", { class: "answer", hidden: "" });
  const status = el("div", { class: "answer-status" });
  form.append(el("button", { type: "submit", text: "Send" }), status, answer);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const f of fields) {
      if (f.dataset.in === "path") url = url.replace("{" + f.name + "}", encodeURIComponent(f.value));
      else if (f.value !== "" && f.dataset.in === "query") query.append(f.name, f.value);
      else if (f.value !== "") headers[f.name] = f.value;
    }
    const key = document.getElementById("api-key").value.trim();
    const cred = credential(doc);
    if (key && cred) headers[cred.header] = cred.prefix + key;
    const init = { method: method.toUpperCase(), headers, credentials: "omit", cache: "no-store" };
    if (body) {
      headers["Content-Type"] = media;
      init.body = body.value;
    }
    if (query.toString()) url += "?" + query;
    status.textContent = "Sending " + init.method + " " + url + " …";
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: as it came */ }
      status.textContent = response.status + " " + response.statusText;
      status.dataset.status = String(response.status);
      answer.textContent = shown;
    } catch (e) {
      status.textContent = "The request failed: " + e.message;
      status.dataset.status = "error";
      answer.textContent = "";
    }
    answer.hidden = false;
  });
  return form;
}

function operation(doc, surface, path, method, op) {
  const id = `${surface}-${method}-${path}`.replace(/[^A-Za-z0-9_-]+/g, "-");
  const card = el("article", { class: "op", id, "data-surface": surface, "data-method": method, "data-path": path });
  card.append(el("h3", {}, el("span", { class: "method " + method, text: method.toUpperCase() }), path));
  if (op.summary) card.append(el("p", { text: op.summary }));
  const params = parameters(doc, op);
  if (params.length) {
    const table = el("table", {}, el("tr", {}, ...["Parameter", "In", "Type", "Description"].map((h) => el("th", { text: h }))));
    for (const p of params) {
      table.append(el("tr", {}, el("td", { text: p.name + (p.required ? " *" : "") }), el("td", { text: p.in }),
        el("td", { text: describe(doc, p.schema || {}, 0) }), el("td", { text: p.description || "" })));
    }
    card.append(el("h4", { text: "Parameters" }), table);
  }
  if (op.requestBody) {
    for (const [media, c] of Object.entries(op.requestBody.content || {})) {
      card.append(el("h4", { text: "Request body (" + media + ")" }), el("pre", { text: describe(doc, c.schema || {}, 0) }));
    }
  }
  const responses = el("details", {}, el("summary", { text: "Responses" }));
  for (const [code, r] of Object.entries(op.responses || {})) {
    const rr = resolve(doc, r);
    responses.append(el("p", {}, el("b", { text: code }), " " + (rr.description || "")));
    for (const [media, c] of Object.entries(rr.content || {})) {
      responses.append(el("pre", { text: media + "\n" + describe(doc, c.schema || {}, 0) }));
    }
  }
  card.append(responses);
  const ex = el("details", {}, el("summary", { text: "Example" }));
  let curl = `curl -X ${method.toUpperCase()} '${location.origin}${path}'`;
  const cred = credential(doc);
  if (cred) curl += ` -H '${cred.header}: ${cred.prefix}$KEY'`;
  if (op.requestBody) {
    const media = Object.keys(op.requestBody.content)[0];
    curl += ` -H 'Content-Type: ${media}' -d '${JSON.stringify(example(doc, op.requestBody.content[media].schema, 0))}'`;
  }
  ex.append(el("pre", { text: curl }));
  card.append(ex);
  card.append(el("details", {}, el("summary", { text: "Try it" }), tryForm(doc, path, method, op)));
  return card;
}

async function load() {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const index = await (await fetch("/docs/openapi/index.json", { cache: "no-cache" })).json();
  const docs = await Promise.all(index.map(async (s) => [s, await (await fetch(s.url, { cache: "no-cache" })).json()]));
  main.replaceChildren();
  for (const [s, doc] of docs) {
    const section = el("section", { class: "surface", id: "surface-" + s.name, "data-surface": s.name });
    section.append(el("h2", { text: `${doc.info.title} ${doc.info.version}` }));
    if (doc.info.description) section.append(el("p", { text: doc.info.description }));
    section.append(el("p", {}, "OpenAPI document: ", el("a", { href: s.url, text: s.url })));
    const links = el("div", {});
    nav.append(el("h2", {}, el("a", { href: "#surface-" + s.name, text: s.title })), links);
    for (const [path, ops] of Object.entries(doc.paths || {})) {
      for (const method of METHODS.filter((m) => ops[m])) {
        const card = operation(doc, s.name, path, method, ops[method]);
        section.append(card);
        links.append(el("a", { href: "#" + card.id, text: method.toUpperCase() + " " + path }));
      }
    }
    main.append(section);
  }
  document.body.dataset.loaded = String(docs.length);
}

load().catch((e) => {
  document.getElementById("status").textContent = "Could not load the OpenAPI documents: " + e.message;
  document.body.dataset.loaded = "error";
});
