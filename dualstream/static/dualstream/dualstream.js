/**
 * dualstream.js: the browser side of a dualstream view. One dependency-free ES module, no build
 * step; TypeScript declarations in dualstream.d.ts beside it.
 *
 * A dualstream URL answers either a batch JSON document `{"items": [...]}` or a Server-Sent
 * Events stream (`?stream=1`). This module reads either one through the same callbacks:
 *
 * - `stream(url, options)`: GET with `EventSource`; with `headers`, `body` or `method`, over
 *   `fetch()` instead (reconnects with `Last-Event-ID`, backs off on 5xx and network errors,
 *   stops on `done`, 204 and 4xx); `mode: "batch"` reads the batch JSON once.
 *   `shared: true`: one server stream for every tab of the origin that reads the same URL.
 * - `postStream(url, body, options)`: `stream()` with a POST body, e.g. an OpenAI-style stream.
 * - `createSSEParser(onEvent)`: the incremental `text/event-stream` parser of the fetch transport.
 * - `csrfToken()`: Django's CSRF token, read the way Django's documentation says.
 *
 * The wire, as a dualstream view speaks it:
 * - unnamed (`message`) events carry items: JSON text, or plain text for string items;
 * - named events are the view's own (`Event(..., event="progress")`), delivered to `onEvent[name]`;
 * - `event: done` ends a completed stream: the helper closes, so the browser does not reconnect;
 * - `event: error` with `{"error": {"status", "message"}}` reports a failure after the stream began;
 * - a stream that ends without `done` was cut: the helper reconnects and resumes after the last id.
 *
 * The module never writes to the DOM: use `textContent`, never `innerHTML`, for server text.
 *
 * ```html
 * <ul id="log"></ul>
 * <script type="module">
 *   import { stream } from "/static/dualstream/dualstream.js";  // in a template: {% static 'dualstream/dualstream.js' %}
 *
 *   const log = document.getElementById("log");
 *   const handle = stream("/countdown/", {
 *     onItem(item) {                      // each item, in SSE and batch mode alike
 *       const li = document.createElement("li");
 *       li.textContent = JSON.stringify(item);
 *       log.append(li);
 *     },
 *     onEvent: { progress(text) { document.title = text; } },   // named events
 *     onDone() { console.log("complete"); },
 *     onError(err) { console.error(err.kind, err.status, err.message); },
 *     onState(state) { console.log(state); }  // connecting, open, reconnecting, paused, closed
 *   });
 *   // handle.close() stops it; await handle.finished -> "done" | "error" | "closed"
 * </script>
 * ```
 *
 * POST, e.g. an OpenAI-compatible chat completion (the `X-CSRFToken` header is added for you):
 *
 * ```js
 * import { postStream } from "/static/dualstream/dualstream.js";
 * const out = document.getElementById("out");  // e.g. <pre id="out"></pre>
 * postStream("/v1/chat/completions", { model: "demo", stream: true, messages: [{ role: "user", content: "Hi" }] }, {
 *   doneData: "[DONE]",                   // OpenAI streams end with `data: [DONE]`
 *   onItem(chunk) { out.textContent += chunk.choices[0]?.delta?.content ?? ""; },
 *   onError(err) { console.error(err); }
 * });
 * ```
 *
 * @module dualstream
 */

/**
 * What went wrong, whichever way the stream was read.
 *
 * `kind` is one of:
 * - `"server"`: the server reported a failure: an `error` event, or an error JSON body;
 * - `"http"`: the response had an error status (`status` is set; EventSource cannot tell it);
 * - `"network"`: the connection failed or ended before the stream was complete;
 * - `"protocol"`: the response was not what a dualstream URL answers (wrong type, bad JSON);
 * - `"unsupported"`: `mode: "sse"` in a browser without `EventSource`.
 */
export class StreamError extends Error {
  /**
   * @param {string} message
   * @param {{kind: string, status?: number, detail?: any, lastEventId?: string, cause?: any}} info
   */
  constructor(message, { kind, status, detail, lastEventId = "", cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "StreamError";
    /** @type {string} */
    this.kind = kind;
    /** @type {number | undefined} HTTP status, from the response or the server's error body. */
    this.status = status;
    /** @type {any} The server's `error` object (`{status, message, ...}`), when there was one. */
    this.detail = detail;
    /** @type {string} The id as of the last event delivered: send it as `Last-Event-ID` to resume. */
    this.lastEventId = lastEventId;
  }
}

/**
 * @typedef {object} SSEEvent
 * @property {string} type         The event name: `"message"` unless an `event:` field named it.
 * @property {string} data         The `data:` lines joined with "\n".
 * @property {string} lastEventId  The last `id:` as of this event (ids persist across events).
 */

/**
 * An incremental `text/event-stream` parser, following the WHATWG HTML rules exactly: lines end
 * at CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the next are one
 * line break); `data` lines are joined with "\n"; one space after the colon is dropped; lines
 * starting with ":" are comments; an `id` containing NUL is ignored; `retry` must be all ASCII
 * digits; a blank line dispatches the event, unless no `data` line was seen; whatever follows
 * the last blank line when the stream ends is discarded.
 *
 * `lastEventId` is the resume point: the id as of the last blank line, not the last `id:` line
 * parsed, so an event cut before its blank line (never delivered) is not skipped on resume. A
 * block with an `id` but no `data` moves it too: it dispatches nothing, but its id counts.
 *
 * `feed()` takes text, or bytes (`Uint8Array`, `ArrayBuffer`) decoded as UTF-8 with a streaming
 * decoder, so a character split across chunks is decoded whole. One leading byte order mark is
 * dropped either way. Feed one kind per parser.
 *
 * ```js
 * const parser = createSSEParser((ev) => console.log(ev.type, ev.data, ev.lastEventId));
 * const reader = response.body.getReader();
 * for (;;) { const { done, value } = await reader.read(); if (done) break; parser.feed(value); }
 * parser.end();
 * ```
 *
 * An event (or a line) that grows past `maxEventSize` characters before it is dispatched makes
 * `feed()` throw a `StreamError` of kind `"protocol"`: a bound on memory, whatever the server sends.
 *
 * @param {(event: SSEEvent) => void} onEvent  Called once per dispatched event.
 * @param {{onRetry?: (ms: number) => void, maxEventSize?: number, lastEventId?: string}} [options]
 *   `onRetry` is told each valid `retry` field; `maxEventSize` defaults to 4 MiB of text;
 *   `lastEventId` is the id a resumed stream starts from.
 * @returns {{feed(chunk: string | BufferSource): void, end(): void,
 *           readonly lastEventId: string, readonly retry: number | null}}
 */
export function createSSEParser(onEvent, { onRetry, maxEventSize = MAX_EVENT_SIZE, lastEventId = "" } = {}) {
  const lineBreak = /[\r\n]/g;
  let decoder = null;       // created on the first chunk of bytes
  let bomPending = true;    // text input: one leading U+FEFF is still to be dropped
  let partial = "";         // the text of an unfinished line
  let afterCR = false;      // the last chunk ended with CR: an LF starting the next one belongs to it
  let data = "";
  let sawData = false;
  let eventType = "";
  let idBuffer = lastEventId;  // the spec's "last event ID buffer": set by each `id` field as it is parsed
  let lastId = lastEventId;    // the spec's "last event ID string": the buffer as of the last blank line
  let retry = null;

  function dispatch() {
    lastId = idBuffer;      // the spec does this before it looks at the data: an id-only block counts
    if (!sawData) {         // the spec's "data buffer is empty": not dispatched
      eventType = "";
      return;
    }
    const event = {
      type: eventType || "message",
      data: data.endsWith("\n") ? data.slice(0, -1) : data,
      lastEventId: lastId,
    };
    data = "";
    sawData = false;
    eventType = "";
    onEvent(event);
  }

  function line(text) {
    if (text === "") return dispatch();
    const colon = text.indexOf(":");
    if (colon === 0) return;  // a comment
    let field = text;
    let value = "";
    if (colon > 0) {
      field = text.slice(0, colon);
      value = text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        eventType = value;
        break;
      case "data":
        data += value + "\n";
        if (data.length > maxEventSize) {
          throw new StreamError(`An event is larger than ${maxEventSize} characters`, { kind: "protocol", lastEventId: lastId });
        }
        sawData = true;
        break;
      case "id":
        if (!value.includes("\0")) idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) {
          retry = parseInt(value, 10);
          if (onRetry) onRetry(retry);
        }
        break;
      default:                // unknown fields are ignored
    }
  }

  function feedText(text) {
    if (bomPending && text !== "") {
      bomPending = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    if (afterCR && text !== "") {
      afterCR = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    lineBreak.lastIndex = start;
    let match;
    while ((match = lineBreak.exec(text)) !== null) {
      const end = match.index;
      const text_ = partial + text.slice(start, end);
      partial = "";
      start = end + 1;
      if (text.charCodeAt(end) === 13) {
        if (start < text.length) {
          if (text.charCodeAt(start) === 10) start += 1;
        } else {
          afterCR = true;
        }
      }
      lineBreak.lastIndex = start;
      line(text_);
    }
    partial += text.slice(start);
    if (partial.length + data.length > maxEventSize) {
      throw new StreamError(`An event is larger than ${maxEventSize} characters`, { kind: "protocol", lastEventId: lastId });
    }
  }

  return {
    /** Parse the next chunk: a string, or bytes of UTF-8. */
    feed(chunk) {
      if (typeof chunk === "string") return feedText(chunk);
      if (decoder === null) {
        decoder = new TextDecoder("utf-8");  // drops one leading BOM itself
        bomPending = false;
      }
      feedText(decoder.decode(chunk, { stream: true }));
    },
    /** The stream ended: an event not yet dispatched is discarded, as the spec says. */
    end() {
      if (decoder !== null) decoder.decode();  // reset the decoder; a half character is dropped
      partial = "";
      afterCR = false;
      data = "";
      sawData = false;
      eventType = "";
      idBuffer = lastId;    // the cut event's id goes with it
    },
    get lastEventId() { return lastId; },
    get retry() { return retry; },
  };
}

// --- shared plumbing -------------------------------------------------------------------------

const RESERVED = new Set(["message", "done", "error"]);
/** How long after its final event a response may stay open before the helper closes it. */
const END_GRACE_MS = 1000;
/** The parser's default bound on one event, in characters (the fetch transport's; EventSource has its own). */
const MAX_EVENT_SIZE = 4 * 1024 * 1024;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

function decodeWith(parseJSON) {
  if (!parseJSON) return (text) => text;
  return (text) => {
    try {
      return JSON.parse(text);
    } catch {
      return text;          // a string item is sent as plain text
    }
  };
}

/** Run a user callback; an exception is reported as an uncaught one, not mistaken for a stream failure. */
function call(fn, ...args) {
  if (typeof fn !== "function") return;
  try {
    fn(...args);
  } catch (err) {
    if (typeof globalThis.reportError === "function") globalThis.reportError(err);
    else setTimeout(() => { throw err; });
  }
}

function checkHandlers(onEvent) {
  for (const name of Object.keys(onEvent || {})) {
    if (RESERVED.has(name)) {
      throw new TypeError(`dualstream: onEvent.${name} is reserved; use onItem, onDone or onError`);
    }
  }
}

/** The server's `{"error": {...}}` as a StreamError, or null when `body` is not one. */
function serverError(body, kind, status, lastEventId) {
  if (body === null || typeof body !== "object" || body.error === undefined) return null;
  const detail = body.error;
  const message = (detail && typeof detail === "object" && typeof detail.message === "string")
    ? detail.message : (typeof detail === "string" ? detail : "The server reported an error");
  const code = detail && typeof detail === "object" && Number.isInteger(detail.status) ? detail.status : status;
  return new StreamError(message, { kind, status: code, detail, lastEventId });
}

/** The server's named `error` event as a StreamError: its `{"error": {...}}` JSON, or its text. */
function errorEventError(data, lastEventId) {
  let body = null;
  try { body = JSON.parse(data); } catch { /* plain text */ }
  return serverError(body, "server", undefined, lastEventId) ||
    new StreamError(data || "The server reported an error", { kind: "server", lastEventId });
}

async function httpError(response, lastEventId) {
  let body = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    // not JSON: the status says enough
  }
  return serverError(body, "http", response.status, lastEventId) ||
    new StreamError(`HTTP ${response.status} ${response.statusText}`.trim(),
      { kind: "http", status: response.status, lastEventId });
}

/** `url` resolved against the page's base URL (a bad URL throws). */
function resolveURL(url) {
  const base = typeof document !== "undefined" ? document.baseURI : globalThis.location?.href;
  return new URL(url, base);
}

function withParams(url, set, remove) {
  const u = resolveURL(url);
  for (const name of remove) u.searchParams.delete(name);
  for (const [name, value] of Object.entries(set)) u.searchParams.set(name, value);
  return u.href;
}

/**
 * Django's CSRF token, as Django's documentation reads it: the `csrftoken` cookie (or the name
 * given, for a custom `CSRF_COOKIE_NAME`), else the `csrfmiddlewaretoken` field that
 * `{% csrf_token %}` renders (with `CSRF_USE_SESSIONS` or `CSRF_COOKIE_HTTPONLY`). "" if neither.
 * @param {string} [cookieName="csrftoken"]
 * @returns {string}
 */
export function csrfToken(cookieName = "csrftoken") {
  if (typeof document === "undefined") return "";
  for (const pair of document.cookie ? document.cookie.split(";") : []) {
    const [name, ...rest] = pair.trim().split("=");
    if (name === cookieName) return decodeURIComponent(rest.join("="));
  }
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

/**
 * The state machine and callbacks common to every way of reading: each callback fires at most
 * once after the end, and `finished` settles once.
 */
function session(options) {
  let state = "connecting";
  let role = "solo";
  let over = false;
  let resolve;
  const finished = new Promise((r) => { resolve = r; });
  const cleanups = [];
  const s = {
    get state() { return state; },
    get role() { return role; },
    get over() { return over; },
    finished,
    setState(next) {
      if (over || next === state) return;
      state = next;
      call(options.onState, next);
    },
    setRole(next) {
      if (over || next === role) return;
      role = next;
      queueMicrotask(() => call(options.onRole, next));  // never before the caller has its handle
    },
    onCleanup(fn) { cleanups.push(fn); },
    end(outcome, error) {
      if (over) return;
      over = true;
      for (const fn of cleanups.splice(0).reverse()) fn();
      if (state !== "closed") {
        state = "closed";
        call(options.onState, "closed");
      }
      if (outcome === "done") call(options.onDone);
      if (outcome === "error") call(options.onError, error);
      resolve(outcome);
    },
  };
  // Announce "connecting" after the caller has its handle; a signal aborted already ends it there.
  s.abortedAtStart = !!(options.signal && options.signal.aborted);
  queueMicrotask(() => {
    if (s.abortedAtStart) s.end("closed");
    else if (!over && state === "connecting") call(options.onState, "connecting");
  });
  if (options.signal && !s.abortedAtStart) {
    const onAbort = () => s.end("closed");
    options.signal.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => options.signal.removeEventListener("abort", onAbort));
  }
  return s;
}

function handleOf(s) {
  return {
    /** Stop now: no reconnection and no further callbacks but `onState("closed")`. */
    close() { s.end("closed"); },
    /** `"connecting"`, `"open"`, `"reconnecting"`, `"paused"` or `"closed"`. */
    get state() { return s.state; },
    /** `"solo"` (a stream of its own), or with `shared`: `"leader"` or `"follower"`. */
    get role() { return s.role; },
    /** Settles once, never rejects: `"done"`, `"error"` or `"closed"` (by `close()` or the signal). */
    finished: s.finished,
  };
}

/** An item (`message`) or a named event to its callback; `parsed` items come from a batch document. */
function deliverEvent(ev, options, decode) {
  const named = options.onEvent || {};
  const handler = ev.type === "message" ? options.onItem : Object.hasOwn(named, ev.type) && named[ev.type];
  if (handler) call(handler, ev.parsed ? ev.data : decode(ev.data), ev.parsed ? undefined : ev);
}

/** A batch document's items, by `options.items(document)` or its `items` list; throws a StreamError. */
function batchItems(body, options, status) {
  const items = options.items ? options.items(body) : body && body.items;
  if (Array.isArray(items)) return items;
  throw serverError(body, "server", status, "") ||
    new StreamError('The response has no "items" list', { kind: "protocol", status });
}

async function readJSON(response) {
  try {
    return await response.json();
  } catch (err) {
    throw new StreamError("The response is not JSON", { kind: "protocol", status: response.status, cause: err });
  }
}

// --- transports: each one opens one connection (and its own reconnections) for a sink ----------
//
// A sink is {open(), state(name), event({type, data, lastEventId, parsed?}), end(outcome, error?)};
// a transport returns {close(), listen(names)}. `end` comes once, after the response has ended.

function batchTransport(target, options, sink) {
  const controller = new AbortController();
  (async () => {
    try {
      const response = await fetch(target, {
        headers: { Accept: "application/json" },
        credentials: options.withCredentials ? "include" : "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) throw await httpError(response, "");
      sink.open();
      for (const item of batchItems(await readJSON(response), options, response.status)) {
        sink.event({ type: "message", data: item, lastEventId: "", parsed: true });
      }
      sink.end("done");
    } catch (err) {
      if (controller.signal.aborted) return;
      sink.end("error", err instanceof StreamError ? err
        : new StreamError("The request failed", { kind: "network", cause: err }));
    }
  })();
  return { close: () => controller.abort(), listen() {} };
}

function eventSourceTransport(target, options, lastId, sink) {
  // A new EventSource cannot send Last-Event-ID: the view reads `?lastEventId=` instead.
  const url = lastId ? withParams(target, { lastEventId: lastId }, []) : target;
  const es = new EventSource(url, { withCredentials: !!options.withCredentials });
  const listened = new Set();
  let ending = null;
  let timer;
  // A new EventSource knows no id until the server sends one: till then, the id it resumed after.
  const onMessage = (e) => {
    if (!ending) sink.event({ type: e.type, data: e.data, lastEventId: e.lastEventId || lastId });
  };
  const listen = (names) => {
    for (const name of names) {
      if (!listened.has(name) && name !== "done" && name !== "error") es.addEventListener(name, onMessage);
      listened.add(name);
    }
  };
  const close = () => { clearTimeout(timer); es.close(); };
  // The server ends the response right after `done` (or `error`): wait for that end, then close
  // before the browser reconnects. Closing at the event itself would cancel a response whose last
  // chunk is still in flight, which the browser reports as a failed (aborted) request.
  const finish = (...outcome) => {
    ending = outcome;
    timer = setTimeout(() => { close(); sink.end(...outcome); }, END_GRACE_MS);
  };
  listen(["message", ...Object.keys(options.onEvent || {})]);
  es.addEventListener("open", () => sink.open());
  es.addEventListener("done", () => { if (!ending) finish("done"); });
  es.addEventListener("error", (e) => {
    if (ending) {
      if (!(e instanceof MessageEvent)) { close(); sink.end(...ending); }  // the response ended
    } else if (e instanceof MessageEvent) {
      finish("error", errorEventError(e.data, e.lastEventId));  // the server's `event: error`
    } else if (es.readyState === EventSource.CLOSED) {
      // The browser gave up: an HTTP error status, a 204, or a response that is not an event stream.
      sink.end("error", new StreamError(
        "The event stream could not be opened (HTTP error, 204, or not text/event-stream)",
        { kind: "network", lastEventId: lastId }));
    } else {
      sink.state("reconnecting");  // a cut: EventSource retries with Last-Event-ID by itself
    }
  });
  return { close, listen };
}

/**
 * SSE over `fetch()`: any method, body and headers. Reconnects after a cut with `Last-Event-ID`,
 * retries 5xx, 408, 429 and network errors with exponential backoff, and stops on `done`, 204 and
 * any other 4xx. A request other than GET is sent again only where it cannot repeat what the page
 * has seen: before the first event, or once the server has sent an id to resume after.
 */
function fetchTransport(request, options, lastId, sink) {
  let closed = false;
  let controller = null;
  let timer;
  let delay = options.retryDelay ?? 1000;   // the server's `retry:` replaces it
  let failures = 0;
  let delivered = false;      // an event reached the page: a request sent again must not repeat it
  const maxDelay = options.maxRetryDelay ?? 30_000;
  const decodeJSON = (response) => readJSON(response).then((body) => batchItems(body, options, response.status));
  const replayable = !(typeof ReadableStream !== "undefined" && request.body instanceof ReadableStream);

  const end = (...outcome) => {
    if (closed) return;
    closed = true;
    sink.end(...outcome);
  };
  const retry = (error, backoff) => {
    if (closed) return;
    if (!replayable || options.reconnect === false || (request.method !== "GET" && delivered && !lastId) ||
        (backoff && failures >= (options.maxRetries ?? Infinity))) {
      end("error", error);
      return;
    }
    const wait = backoff ? Math.min(maxDelay, delay * 2 ** failures) * (0.5 + Math.random() / 2) : delay;
    if (backoff) failures += 1;
    sink.state("reconnecting");
    timer = setTimeout(attempt, wait);
  };

  async function attempt() {
    controller = new AbortController();
    const headers = new Headers(request.headers);
    if (lastId) headers.set("Last-Event-ID", lastId);
    let response;
    try {
      response = await fetch(request.url, {
        method: request.method, headers, body: request.body, credentials: request.credentials,
        cache: "no-store", signal: controller.signal,
      });
    } catch (err) {
      retry(new StreamError("The request failed", { kind: "network", cause: err, lastEventId: lastId }), true);
      return;
    }
    if (closed) return;
    if (response.status === 204) return end("done");  // nothing (more) to stream: the server says complete
    if (!response.ok) {
      const error = await httpError(response, lastId);
      const transient = response.status >= 500 || response.status === 408 || response.status === 429;
      if (transient) retry(error, true);
      else end("error", error);  // 401, 403, 404...: asking again would get the same answer
      return;
    }
    sink.open();
    const type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") {
      try {
        for (const item of await decodeJSON(response)) {
          sink.event({ type: "message", data: item, lastEventId: lastId, parsed: true });
        }
        end("done");
      } catch (err) {
        end("error", err);
      }
      return;
    }
    if (type !== "text/event-stream") {
      controller.abort();
      return end("error", new StreamError(`Expected text/event-stream, got ${type || "no Content-Type"}`,
        { kind: "protocol", status: response.status }));
    }
    // The end (`done`, `doneData` or `error`) is reported once the server has ended the response,
    // which it does right after: cancelling the body at the event itself would abort a response
    // whose last chunk is still in flight. A server that keeps it open is cut after END_GRACE_MS.
    let ending = null;
    const parser = createSSEParser((ev) => {
      if (ending || closed) return;
      failures = 0;
      lastId = ev.lastEventId;
      if (ev.type === "done" || (ev.type === "message" && options.doneData != null && ev.data === options.doneData)) {
        ending = ["done"];
      } else if (ev.type === "error") {
        ending = ["error", errorEventError(ev.data, ev.lastEventId)];
      } else {
        delivered = true;
        sink.event(ev);
      }
      if (ending) timer = setTimeout(() => controller.abort(), END_GRACE_MS);
    }, { onRetry: (ms) => { delay = ms; }, maxEventSize: options.maxEventSize, lastEventId: lastId });
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || closed) break;
        if (!ending) parser.feed(value);
      }
    } catch (err) {
      if (err instanceof StreamError) {   // the parser's size cap
        controller.abort();
        return end("error", err);
      }
      // otherwise the connection broke: a cut, unless the end was in already
    }
    clearTimeout(timer);
    if (closed) return;
    if (ending) return end(...ending);
    parser.end();
    lastId = parser.lastEventId;
    retry(new StreamError("The stream ended before it was complete", { kind: "network", lastEventId: lastId }), false);
  }

  attempt();
  return {
    close() { closed = true; clearTimeout(timer); controller?.abort(); },
    listen() {},
  };
}

// --- page lifecycle: pagehide/pageshow (bfcache), freeze/resume, and optionally hidden tabs -----

/** Calls `suspend()` when the page goes away (or hides, with `pauseWhenHidden`) and `resume()` when it is back. */
function watchPage(s, options, suspend, resume) {
  if (typeof window === "undefined" || typeof document === "undefined") return false;
  const reasons = new Set();
  const set = (reason, on) => {
    const was = reasons.size > 0;
    if (on) reasons.add(reason); else reasons.delete(reason);
    if (!s.over && was !== reasons.size > 0) (was ? resume : suspend)();
  };
  const listeners = [
    [window, "pagehide", () => set("page", true)],           // leaving, or going into the bfcache
    [window, "pageshow", (e) => { if (e.persisted) set("page", false); }],
    [document, "freeze", () => set("frozen", true)],          // a background tab about to be frozen
    [document, "resume", () => set("frozen", false)],
  ];
  if (options.pauseWhenHidden) {
    listeners.push([document, "visibilitychange", () => set("hidden", document.visibilityState === "hidden")]);
    if (document.visibilityState === "hidden") reasons.add("hidden");
  }
  for (const [target, name, fn] of listeners) target.addEventListener(name, fn);
  s.onCleanup(() => { for (const [target, name, fn] of listeners) target.removeEventListener(name, fn); });
  return reasons.size > 0;
}

// --- one stream per tab ---------------------------------------------------------------------------

function solo(s, options, open, lastId) {
  const decode = decodeWith(options.parseJSON !== false);
  let conn = null;
  const sink = {
    open: () => s.setState("open"),
    state: (name) => s.setState(name),
    event(ev) {
      if (s.over || conn === null) return;
      if (!ev.parsed) lastId = ev.lastEventId;
      deliverEvent(ev, options, decode);
    },
    end: (outcome, error) => { conn = null; s.end(outcome, error); },
  };
  const start = () => { s.setState("connecting"); conn = open(lastId, sink); };
  const stop = () => { conn?.close(); conn = null; };
  s.onCleanup(stop);
  const paused = watchPage(s, options, () => { stop(); s.setState("paused"); }, start);
  s.setRole("solo");
  if (paused) s.setState("paused");
  else conn = open(lastId, sink);
}

// --- one stream per browser: a leader tab reads, the others follow ---------------------------------

/** Ids of the recent events, for dropping the ones a handover delivers twice. */
function recentKeys(size) {
  const keys = new Set();
  return {
    add(key) {
      if (keys.has(key)) return false;
      keys.add(key);
      if (keys.size > size) keys.delete(keys.values().next().value);
      return true;
    },
  };
}

/**
 * Every tab that reads `name` asks for the Web Lock `name`; the one holding it (the leader) reads
 * the server stream and posts each event on the BroadcastChannel `name`; the others (followers)
 * deliver what it posts. When the leader goes (closed, navigated, hidden into the bfcache, frozen:
 * it releases the lock on pagehide and freeze; a tab that dies releases it too), the next tab in
 * the lock's queue leads and resumes after the last id it saw. A handover may deliver an event
 * twice at the server's side; each tab drops what it has already delivered, by event id and
 * position after it. A leader that stops answering for two watchdog periods (paused by a
 * debugger, a frozen tab that got no `freeze` event) has its lock stolen.
 */
function shared(s, options, open, lastId, name) {
  const decode = decodeWith(options.parseJSON !== false);
  const me = Math.random().toString(36).slice(2);
  const names = Object.keys(options.onEvent || {});
  const history = [];            // the last events, for a tab that comes back from the bfcache or a freeze
  const historySize = options.sharedHistory ?? 500;
  const seen = recentKeys(historySize * 2);
  const watchdogMs = options.watchdog ?? 2000;
  let channel = null;
  let conn = null;               // the server stream, while this tab leads
  let release = null;            // lets go of the lock, while this tab leads
  let abortLock = null;          // withdraws the lock request, while this tab waits for it
  let pending = null;            // events that came before the leader's answer to "hello"
  let hello = null;              // this tab's "hello", until a leader answers it
  // An event's key: its id, and its position after the event that set that id (0). A new leader
  // resumes after the last id, at position 1, as every leader before it counted.
  let prev = lastId;
  let index = 0;
  let heard = true;
  let pinged = false;
  let timer;
  let fellBack = false;

  const post = (message) => { try { channel.postMessage(message); } catch { /* closed */ } };
  const keyOf = (ev) => {
    if (ev.lastEventId !== prev) { prev = ev.lastEventId; index = 0; } else index += 1;
    return `${prev}\n${index}`;
  };
  // Each event is delivered once in each tab, whichever leader it came through.
  const deliver = (ev, key) => {
    if (s.over || !seen.add(key)) return;
    history.push({ ev, key });     // every tab keeps it: any of them may lead next
    if (history.length > historySize) history.shift();
    lastId = ev.lastEventId;
    if (s.state !== "open") s.setState("open");
    deliverEvent(ev, options, decode);
  };
  const sink = {
    open() { s.setState("open"); post({ t: "state", state: "open" }); },
    state(state) { s.setState(state); post({ t: "state", state }); },
    event(ev) {
      if (s.over || conn === null) return;
      const key = keyOf(ev);
      post({ t: "ev", ev, key });
      deliver(ev, key);
    },
    end(outcome, error) {
      conn = null;
      post({ t: "end", outcome, error: error && { message: error.message, kind: error.kind, status: error.status, detail: error.detail, lastEventId: error.lastEventId } });
      s.end(outcome, error);
    },
  };

  function lead() {
    s.setRole("leader");
    if (pending) { for (const [ev, key] of pending) deliver(ev, key); pending = null; }
    hello = null;
    post({ t: "lead" });
    prev = lastId;
    index = 0;
    s.setState("connecting");
    conn = open(lastId, sink);
  }

  function requestLock(steal) {
    abortLock = new AbortController();
    const lockOptions = steal ? { steal: true } : { signal: abortLock.signal };
    navigator.locks.request(name, lockOptions, () => new Promise((resolve) => {
      abortLock = null;
      release = () => { release = null; resolve(); };
      if (s.over || channel === null) release();
      else lead();
    })).catch(() => {
      // Withdrawn by this tab (abortLock), or stolen from a leader that stopped answering: if it
      // still runs, it steps down and queues again as a follower.
      if (release && !s.over && channel !== null) {
        release = null;
        conn?.close();
        conn = null;
        s.setRole("follower");
        requestLock(false);
      }
    });
  }

  function onMessage({ data: m }) {
    if (s.over) return;
    if (m.t !== "hello" && m.t !== "ping") { heard = true; pinged = false; }
    if (m.t === "ev") {
      if (pending) pending.push([m.ev, m.key]);
      else deliver(m.ev, m.key);
    } else if (m.t === "end") {
      const e = m.error;
      s.end(m.outcome, e && new StreamError(e.message, e));
    } else if (m.t === "state" && !release) {
      s.setState(m.state);
    } else if (m.t === "hello" && release) {
      conn?.listen(m.names);
      // A tab back from the bfcache gets what it missed; a new tab starts from now.
      let replay = [];
      if (!m.fresh && m.lastId !== lastId) {
        const at = history.findLastIndex((h) => h.ev.lastEventId === m.lastId);
        replay = at < 0 ? null : history.slice(at + 1);
      }
      post({ t: "sync", to: m.from, lastId, replay, state: s.state });
    } else if (m.t === "sync" && m.to === me && pending) {
      hello = null;
      if (m.replay === null) return fallBack();   // too much missed: read it from the server alone
      if (!lastId) { lastId = m.lastId; prev = lastId; }
      for (const { ev, key } of m.replay) deliver(ev, key);
      for (const [ev, key] of pending) deliver(ev, key);
      pending = null;
      s.setState(m.state);
    } else if (m.t === "lead" && !release) {
      post({ t: "names", names });
      // A "hello" sent while no tab led (tabs opening together) was answered by nobody: ask this one.
      if (pending && hello) post(hello);
    } else if (m.t === "names" && release) {
      conn?.listen(m.names);
    } else if (m.t === "ping" && release) {
      post({ t: "pong" });
    }
  }

  function join(fresh) {
    channel = new BroadcastChannel(name);
    channel.onmessage = onMessage;
    pending = [];
    s.setRole("follower");
    s.setState("connecting");
    hello = { t: "hello", from: me, lastId, fresh, names };
    post(hello);
    requestLock(false);
    heard = true;
    pinged = false;
    timer = setInterval(() => {
      if (release || s.over) return;
      if (pinged && !heard) { abortLock?.abort(); requestLock(true); return; }  // the leader is gone: take over
      if (!heard) { post({ t: "ping" }); pinged = true; }
      heard = false;
    }, watchdogMs);
  }

  function leave() {
    clearInterval(timer);
    conn?.close();
    conn = null;
    abortLock?.abort();
    abortLock = null;
    release?.();
    channel?.close();
    channel = null;
    pending = null;
  }

  function fallBack() {
    leave();
    fellBack = true;
    solo(s, options, open, lastId);
  }

  s.onCleanup(() => { if (!fellBack) leave(); });
  const paused = watchPage(s, options, () => { if (!fellBack) { leave(); s.setState("paused"); } },
    () => { if (!fellBack) join(!lastId); });
  if (paused) s.setState("paused");
  else join(!lastId);
}

// --- the public entry points ---------------------------------------------------------------------

function isBodyInit(body) {
  return typeof body === "string" ||
    (typeof FormData !== "undefined" && body instanceof FormData) ||
    (typeof URLSearchParams !== "undefined" && body instanceof URLSearchParams) ||
    (typeof Blob !== "undefined" && body instanceof Blob) ||
    (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) ||
    body instanceof ArrayBuffer || ArrayBuffer.isView(body);
}

/** The fetch request: headers, JSON body, and Django's CSRF token on an unsafe same-origin request. */
function fetchRequest(url, options) {
  const method = (options.method || (options.body != null ? "POST" : "GET")).toUpperCase();
  const headers = new Headers(options.headers || {});
  if (!headers.has("Accept")) headers.set("Accept", "text/event-stream");
  let body = options.body ?? undefined;
  if (body !== undefined && !isBodyInit(body)) {
    body = JSON.stringify(body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  const sameOrigin = typeof location === "undefined" || new URL(url).origin === location.origin;
  if (!SAFE_METHODS.has(method) && sameOrigin && options.csrf !== false && !headers.has("X-CSRFToken")) {
    const token = csrfToken(options.csrfCookieName);
    if (token) headers.set("X-CSRFToken", token);
  }
  const credentials = options.credentials || (options.withCredentials ? "include" : "same-origin");
  return { url, method, headers, body, credentials };
}

/**
 * Read a dualstream URL: as SSE (with `EventSource`, or over `fetch()` when the request needs
 * headers, a body or another method), or as one batch JSON request with `mode: "batch"` or where
 * the browser has no EventSource. The same callbacks serve every way.
 *
 * @param {string | URL} url  The view's URL; `stream`/`format` query parameters are set here.
 * @param {object} [options]  The callbacks and options, each described in dualstream.d.ts.
 * @returns {{close(): void, readonly state: string, readonly role: string,
 *            finished: Promise<"done" | "error" | "closed">}}
 */
export function stream(url, options = {}) {
  return start(url, options, false);
}

/**
 * `stream()` with a request body, POST unless `options.method` says otherwise. A plain object is
 * sent as JSON; a string, `FormData`, `Blob`, `URLSearchParams` or bytes as they are. The URL is
 * used as given (the request asks for `Accept: text/event-stream`); Django's CSRF token is sent.
 */
export function postStream(url, body, options = {}) {
  return start(url, { method: "POST", ...options, body }, true);
}

function start(url, options, asIs) {
  checkHandlers(options.onEvent);
  const mode = options.mode || "auto";
  if (!["auto", "sse", "batch"].includes(mode)) throw new TypeError(`dualstream: unknown mode ${mode}`);
  const hasEventSource = typeof globalThis.EventSource === "function";
  const viaFetch = asIs || options.transport === "fetch" ||
    options.headers !== undefined || options.body !== undefined || options.method !== undefined;
  const batch = !asIs && (mode === "batch" || (mode === "auto" && !hasEventSource && !viaFetch));
  // A bad URL, header or body throws here, before any callback.
  const target = asIs ? resolveURL(url).href
    : withParams(url, batch ? { format: "json" } : { stream: "1" }, ["stream", "format", "lastEventId"]);
  let open;
  let method = "GET";
  if (batch) {
    open = (lastId, sink) => batchTransport(target, options, sink);
  } else if (viaFetch) {
    const request = fetchRequest(target, options);
    method = request.method;
    open = (lastId, sink) => fetchTransport(request, options, lastId, sink);
  } else if (hasEventSource) {
    open = (lastId, sink) => eventSourceTransport(target, options, lastId, sink);
  }
  const s = session(options);
  if (s.abortedAtStart) return handleOf(s);
  if (!open) {
    queueMicrotask(() => s.end("error", new StreamError("This browser has no EventSource", { kind: "unsupported" })));
    return handleOf(s);
  }
  const lastId = options.lastEventId || "";
  const canShare = typeof BroadcastChannel === "function" && typeof navigator !== "undefined" && !!navigator.locks;
  // Shared by URL: only a GET reads the same thing wherever it is sent from.
  if (options.shared && !batch && method === "GET" && canShare) shared(s, options, open, lastId, `dualstream ${target}`);
  else solo(s, options, open, lastId);
  return handleOf(s);
}
