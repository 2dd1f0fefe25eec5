// The console's only way to the server: JSON calls and SSE streams, both carrying the key in the Authorization
// header (never in a URL) and to this server only (the CSP's connect-src 'self').

/** An Error with the server's message, HTTP status and error code. */
export class ApiError extends Error {
  constructor(message, status, code, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function failure(response) {
  let error = {};
  try { error = (await response.json()).error || {}; } catch { /* not our error shape */ }
  return new ApiError(error.message || `${response.status} ${response.statusText}`, response.status, error.code,
                      error.details);
}

const BACKOFF_MIN = 500, BACKOFF_MAX = 10000;

/** The text/event-stream format, fed chunk by chunk: push(text) -> the frames completed, {id?, event?, data?}. */
export class EventParser {
  constructor() { this.buffer = ""; this.frame = {}; }

  push(text) {
    const out = [];
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (end === this.buffer.length - 1 && this.buffer[end] === "\r") break; // a CRLF cut between two chunks
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + (this.buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (Object.keys(this.frame).length) out.push(this.frame);
        this.frame = {};
        continue;
      }
      if (line.startsWith(":")) continue; // a comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? "" : line.slice(colon + 1);
      if (v.startsWith(" ")) v = v.slice(1);
      if (field === "id") this.frame.id = v;
      else if (field === "event") this.frame.event = v;
      else if (field === "data") this.frame.data = this.frame.data === undefined ? v : `${this.frame.data}\n${v}`;
    }
    return out;
  }
}

/** The client of one signed-in key; `onUnauthorized` runs when the server no longer takes it. */
export function client(key, onUnauthorized) {
  const auth = key ? {Authorization: `Bearer ${key}`} : {}; // no key: a server in open mode (loopback only)

  // `keyHeader` sends the key in that header instead of Authorization (Statewave reads X-API-Key only);
  // `headers` adds request headers (X-Tenant-ID) but never a credential: the key stays in this module.
  async function api(path, {method = "GET", body, query, headers: extra, keyHeader} = {}) {
    const headers = {...extra, ...(keyHeader && key ? {[keyHeader]: key} : auth)};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url(path, query), {method, headers, cache: "no-store",
                                                    body: body === undefined ? undefined : JSON.stringify(body)});
    if (!response.ok) {
      if (response.status === 401) onUnauthorized();
      throw await failure(response);
    }
    return response.status === 204 ? null : response.json();
  }

  // An SSE reader over fetch (EventSource cannot send headers). It keeps the last event id, progress ids of
  // keep-alives included, and reconnects with Last-Event-ID after a drop, so no event is lost or repeated.
  function stream(path, query, {onEvent = () => {}, onStatus = () => {}} = {}) {
    let lastId = null, closed = false, controller = null, timer = null, backoff = BACKOFF_MIN;

    function dispatch(frame) {
      if (frame.id !== undefined) lastId = frame.id;
      if (frame.data === undefined) return; // a keep-alive: only its progress id counts
      let data = frame.data;
      try { data = JSON.parse(frame.data); } catch { /* not JSON: hand the text over */ }
      onEvent({id: frame.id ?? lastId, event: frame.event || "message", data});
    }

    async function read(body) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventParser();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return;
        parser.push(value).forEach(dispatch);
      }
    }

    async function connect() {
      if (closed) return;
      controller = new AbortController();
      const headers = {...auth, Accept: "text/event-stream"};
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      onStatus(lastId === null ? "connecting" : "reconnecting");
      try {
        const response = await fetch(url(path, query), {headers, signal: controller.signal, cache: "no-store"});
        if (!response.ok) {
          const error = await failure(response);
          if (response.status === 401) onUnauthorized();
          if (response.status < 500 && response.status !== 429) { // the same request would fail again
            closed = true;
            onStatus("error", error);
            return;
          }
          throw error;
        }
        onStatus("live");
        backoff = BACKOFF_MIN;
        await read(response.body);
        if (!closed) onStatus("reconnecting"); // the server ended the stream (a restart): resume after lastId
      } catch (error) {
        if (closed) return;
        onStatus("reconnecting", error);
      }
      if (closed) return;
      timer = setTimeout(connect, backoff);
      backoff = Math.min(BACKOFF_MAX, backoff * 2);
    }

    connect();
    return {
      close() {
        closed = true;
        clearTimeout(timer);
        if (controller) controller.abort();
        onStatus("closed");
      },
      get lastId() { return lastId; },
    };
  }

  return {api, stream};
}
