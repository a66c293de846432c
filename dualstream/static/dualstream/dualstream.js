/**
 * dualstream.js: the browser side of a dualstream view. One dependency-free ES module, no build step.
 *
 * A dualstream URL answers either a batch JSON document `{"items": [...]}` or a Server-Sent
 * Events stream (`?stream=1`). This module reads either one through the same callbacks:
 *
 * - `stream(url, options)`: GET with `EventSource` (automatic reconnection with Last-Event-ID),
 *   or, where there is no `EventSource` or with `mode: "batch"`, one fetch of the batch JSON.
 * - `postStream(url, body, options)`: POST (or any method) read as SSE with `fetch()`,
 *   for what `EventSource` cannot do: a request body, custom headers, OpenAI-style streams.
 * - `createSSEParser(onEvent)`: the incremental `text/event-stream` parser that `postStream`
 *   uses, on its own (WHATWG HTML "Server-sent events" parsing rules).
 *
 * The wire, as a dualstream view speaks it:
 * - unnamed (`message`) events carry items: JSON text, or plain text for string items;
 * - named events are the view's own (`Event(..., event="progress")`), delivered to `onEvent[name]`;
 * - `event: done` ends a completed stream: the helper closes, so the browser does not reconnect;
 * - `event: error` with `{"error": {"status", "message"}}` reports a failure after the stream began;
 * - a stream that ends without `done` was cut: `EventSource` reconnects and resumes by itself.
 *
 * The module never writes to the DOM: what you do with event data is up to your callbacks
 * (use `textContent`, never `innerHTML`, for text that came from the server).
 *
 * Usage (copy-paste):
 *
 * In a Django template, import from `{% static 'dualstream/dualstream.js' %}` instead of the path below.
 *
 * ```html
 * <ul id="log"></ul>
 * <script type="module">
 *   import { stream } from "/static/dualstream/dualstream.js";
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
 *     onState(state) { console.log(state); }  // connecting, open, reconnecting, closed
 *   });
 *   // handle.close() stops it; await handle.finished -> "done" | "error" | "closed"
 * </script>
 * ```
 *
 * POST, e.g. an OpenAI-compatible chat completion (Django wants its CSRF token on a POST):
 *
 * ```js
 * import { postStream } from "/static/dualstream/dualstream.js";
 * const out = document.getElementById("out");  // e.g. <pre id="out"></pre>
 * const csrf = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/)?.[1] ?? "";
 * const abort = new AbortController();
 * postStream("/v1/chat/completions", { model: "demo", stream: true, messages: [{ role: "user", content: "Hi" }] }, {
 *   headers: { "X-CSRFToken": decodeURIComponent(csrf) },
 *   doneData: "[DONE]",                   // OpenAI streams end with `data: [DONE]`
 *   signal: abort.signal,                 // abort.abort() cancels the request
 *   onItem(chunk) { out.textContent += chunk.choices[0]?.delta?.content ?? ""; },
 *   onDone() {}, onError(err) { console.error(err); }
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
 * @param {(event: SSEEvent) => void} onEvent  Called once per dispatched event.
 * @param {{onRetry?: (ms: number) => void}} [options]  `onRetry` is told each valid `retry` field.
 * @returns {{feed(chunk: string | BufferSource): void, end(): void,
 *           readonly lastEventId: string, readonly retry: number | null}}
 */
export function createSSEParser(onEvent, { onRetry } = {}) {
  const lineBreak = /[\r\n]/g;
  let decoder = null;       // created on the first chunk of bytes
  let bomPending = true;    // text input: one leading U+FEFF is still to be dropped
  let partial = "";         // the text of an unfinished line
  let afterCR = false;      // the last chunk ended with CR: an LF starting the next one belongs to it
  let data = "";
  let sawData = false;
  let eventType = "";
  let idBuffer = "";        // the spec's "last event ID buffer": set by each `id` field as it is parsed
  let lastId = "";          // the spec's "last event ID string": the buffer as of the last blank line
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
 * The state machine and callbacks common to every way of reading: each callback fires at most
 * once after the end, and `finished` settles once.
 */
function session(options) {
  let state = "connecting";
  let over = false;
  let resolve;
  const finished = new Promise((r) => { resolve = r; });
  const cleanups = [];
  const s = {
    get state() { return state; },
    get over() { return over; },
    finished,
    setState(next) {
      if (over || next === state) return;
      state = next;
      call(options.onState, next);
    },
    onCleanup(fn) { cleanups.push(fn); },
    end(outcome, error) {
      if (over) return;
      over = true;
      for (const fn of cleanups) fn();
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
    /** `"connecting"`, `"open"`, `"reconnecting"` or `"closed"`. */
    get state() { return s.state; },
    /** Settles once, never rejects: `"done"`, `"error"` or `"closed"` (by `close()` or the signal). */
    finished: s.finished,
  };
}

/** An item (`message`) or a named event, a `MessageEvent` or a parsed `SSEEvent`, to its callback. */
function deliverEvent(ev, options, decode) {
  const named = options.onEvent || {};
  const handler = ev.type === "message" ? options.onItem : Object.hasOwn(named, ev.type) && named[ev.type];
  if (handler) call(handler, decode(ev.data), ev);
}

/** A batch document's items to `onItem`, then the end: `done`, or the error the document is instead. */
async function deliverBatch(s, response, options) {
  let body;
  try {
    body = await response.json();
  } catch (err) {
    if (!s.over) {
      s.end("error", new StreamError("The response is not JSON",
        { kind: "protocol", status: response.status, cause: err }));
    }
    return;
  }
  if (s.over) return;
  if (!body || !Array.isArray(body.items)) {
    s.end("error", serverError(body, "server", response.status, "") ||
      new StreamError('The response has no "items" list', { kind: "protocol", status: response.status }));
    return;
  }
  for (const item of body.items) {
    if (s.over) return;  // closed from a callback
    call(options.onItem, item, undefined);
  }
  s.end("done");
}

/**
 * `fetch()`, with a network failure or an error status ending the session: the response, or null.
 */
async function fetchOrEnd(s, target, init) {
  let response;
  try {
    response = await fetch(target, init);
  } catch (err) {
    if (!s.over) s.end("error", new StreamError("The request failed", { kind: "network", cause: err }));
    return null;
  }
  if (s.over) return null;
  if (!response.ok) {
    const err = await httpError(response, "");
    if (!s.over) s.end("error", err);
    return null;
  }
  return response;
}

// --- batch ------------------------------------------------------------------------------------

function runBatch(target, options, s) {
  const controller = new AbortController();
  s.onCleanup(() => controller.abort());
  (async () => {
    const response = await fetchOrEnd(s, target, {
      headers: { Accept: "application/json" },
      credentials: options.withCredentials ? "include" : "same-origin",
      signal: controller.signal,
    });
    if (!response) return;
    s.setState("open");
    await deliverBatch(s, response, options);
  })();
}

// --- EventSource -------------------------------------------------------------------------------

function runEventSource(target, options, s) {
  const es = new EventSource(target, { withCredentials: !!options.withCredentials });
  s.onCleanup(() => es.close());
  const decode = decodeWith(options.parseJSON !== false);
  let lastId = options.lastEventId || "";
  const seen = (e) => { if (e.lastEventId) lastId = e.lastEventId; };

  const onMessage = (e) => {
    if (s.over || s.finishing) return;
    seen(e);
    deliverEvent(e, options, decode);
  };
  es.addEventListener("open", () => s.setState("open"));
  for (const name of ["message", ...Object.keys(options.onEvent || {})]) es.addEventListener(name, onMessage);
  // The server ends the response right after `done` (or `error`): wait for that end, then close
  // before the browser reconnects. Closing at the event itself would cancel a response whose last
  // chunk is still in flight, which the browser reports as a failed (aborted) request.
  const finish = (outcome, error) => {
    if (s.over || s.finishing) return;
    s.finishing = true;
    const timer = setTimeout(() => s.end(outcome, error), END_GRACE_MS);
    s.onCleanup(() => clearTimeout(timer));
    s.endAtClose = () => s.end(outcome, error);
  };
  es.addEventListener("done", () => finish("done"));
  es.addEventListener("error", (e) => {
    if (s.over) return;
    if (s.finishing) {
      if (!(e instanceof MessageEvent)) s.endAtClose();  // the response ended: close before the retry
    } else if (typeof MessageEvent !== "undefined" && e instanceof MessageEvent) {
      // A named `error` event from the server: it carries data, a connection error does not.
      seen(e);
      finish("error", errorEventError(e.data, lastId));
    } else if (es.readyState === EventSource.CLOSED) {
      // The browser gave up: an HTTP error status, a 204, or a response that is not an event stream.
      s.end("error", new StreamError(
        "The event stream could not be opened (HTTP error, 204, or not text/event-stream)",
        { kind: "network", lastEventId: lastId }));
    } else {
      s.setState("reconnecting");  // a cut: EventSource retries with Last-Event-ID by itself
    }
  });
}

/**
 * Read a dualstream URL: as SSE with `EventSource`, or as one batch JSON request where streaming
 * is unavailable or `mode` is `"batch"`. The same callbacks serve both.
 *
 * @param {string | URL} url  The view's URL; `stream`/`format` query parameters are set here.
 * @param {object} [options]
 * @param {(data: any, event?: MessageEvent) => void} [options.onItem]  Each item (`event` is undefined in batch mode).
 * @param {Object<string, (data: any, event: MessageEvent) => void>} [options.onEvent]
 *   Handlers for named events, by name (SSE only; `message`, `done` and `error` are reserved).
 * @param {() => void} [options.onDone]  The stream completed (`done` event, or the batch was delivered).
 * @param {(error: StreamError) => void} [options.onError]  It failed: nothing follows.
 * @param {(state: string) => void} [options.onState]  `connecting`, `open`, `reconnecting`, `closed`.
 * @param {"auto" | "sse" | "batch"} [options.mode="auto"]  `auto`: SSE if the browser has EventSource.
 * @param {boolean} [options.parseJSON=true]  `JSON.parse` event data, keeping the text if it is not JSON.
 *   A string item that looks like JSON (`"42"`) then arrives parsed: set `false` to get raw text.
 * @param {string} [options.lastEventId]  Resume after this id (sent as `?lastEventId=`).
 * @param {boolean} [options.withCredentials=false]  Send cookies cross-origin.
 * @param {AbortSignal} [options.signal]  Aborting it is `close()`.
 * @returns {{close(): void, readonly state: string, finished: Promise<"done" | "error" | "closed">}}
 */
export function stream(url, options = {}) {
  checkHandlers(options.onEvent);
  const mode = options.mode || "auto";
  if (!["auto", "sse", "batch"].includes(mode)) throw new TypeError(`dualstream: unknown mode ${mode}`);
  const hasEventSource = typeof globalThis.EventSource === "function";
  const batch = mode === "batch" || (mode === "auto" && !hasEventSource);
  const sseParams = options.lastEventId ? { stream: "1", lastEventId: options.lastEventId } : { stream: "1" };
  const target = batch
    ? withParams(url, { format: "json" }, ["stream", "format"])
    : withParams(url, sseParams, ["stream", "format"]);  // a bad URL throws here, before any callback
  const s = session(options);
  if (s.abortedAtStart) {
    // nothing to start: the session closes itself
  } else if (batch) {
    runBatch(target, options, s);
  } else if (!hasEventSource) {
    queueMicrotask(() => s.end("error", new StreamError("This browser has no EventSource", { kind: "unsupported" })));
  } else {
    runEventSource(target, options, s);
  }
  return handleOf(s);
}

// --- fetch-based SSE (POST) ---------------------------------------------------------------------

function isBodyInit(body) {
  return typeof body === "string" ||
    (typeof FormData !== "undefined" && body instanceof FormData) ||
    (typeof URLSearchParams !== "undefined" && body instanceof URLSearchParams) ||
    (typeof Blob !== "undefined" && body instanceof Blob) ||
    (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) ||
    body instanceof ArrayBuffer || ArrayBuffer.isView(body);
}

/**
 * Send a request with a body and read the answer as SSE with `fetch()`: what EventSource cannot do.
 * A plain object `body` is sent as JSON (`Content-Type: application/json`); a string, `FormData`,
 * `Blob`, `URLSearchParams` or bytes as they are. The request asks for `Accept: text/event-stream`.
 *
 * Unlike EventSource there is no reconnection: a stream cut before its end (no `done` event, no
 * `doneData`) is an `onError` of kind `"network"` whose `lastEventId` lets you resume it yourself
 * (send it as a `Last-Event-ID` header). A JSON answer is accepted too: `{"items": [...]}` is
 * delivered item by item, `{"error": ...}` is reported.
 *
 * @param {string | URL} url
 * @param {any} body
 * @param {object} [options]  The callbacks of `stream()` (`onItem`, `onEvent`, `onDone`, `onError`,
 *   `onState`), `parseJSON`, `signal`, and:
 * @param {Object<string, string>} [options.headers]  Extra request headers (e.g. `X-CSRFToken`).
 * @param {string} [options.method="POST"]
 * @param {string} [options.doneData]  Message data that ends the stream, e.g. `"[DONE]"` for OpenAI.
 * @param {RequestCredentials} [options.credentials="same-origin"]
 * @returns {{close(): void, readonly state: string, finished: Promise<"done" | "error" | "closed">}}
 */
export function postStream(url, body, options = {}) {
  checkHandlers(options.onEvent);
  const decode = decodeWith(options.parseJSON !== false);
  const headers = new Headers(options.headers || {});
  if (!headers.has("Accept")) headers.set("Accept", "text/event-stream");
  let payload = body;
  if (body !== undefined && body !== null && !isBodyInit(body)) {
    payload = JSON.stringify(body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  const target = resolveURL(url).href;
  // Everything above may throw (a bad URL or header, a body JSON cannot encode): before any callback.
  const s = session(options);
  if (s.abortedAtStart) return handleOf(s);
  const controller = new AbortController();
  s.onCleanup(() => controller.abort());

  (async () => {
    const response = await fetchOrEnd(s, target, {
      method: options.method || "POST",
      headers,
      body: payload === null ? undefined : payload,
      credentials: options.credentials || "same-origin",
      cache: "no-store",
      signal: controller.signal,
    });
    if (!response) return;
    if (response.status === 204) {   // nothing (more) to stream: the server's way to say "complete"
      s.end("done");
      return;
    }
    s.setState("open");
    const type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") {
      await deliverBatch(s, response, options);
      return;
    }
    if (type !== "text/event-stream") {
      s.end("error", new StreamError(`Expected text/event-stream, got ${type || "no Content-Type"}`,
        { kind: "protocol", status: response.status }));
      return;
    }
    // The end (`done`, `doneData` or `error`) is reported once the server has ended the response,
    // which it does right after: cancelling the body at the event itself would abort a response
    // whose last chunk is still in flight. A server that keeps it open is cut after END_GRACE_MS.
    let ending = null;
    let timer;
    const parser = createSSEParser((ev) => {
      if (s.over || ending) return;
      if (ev.type === "done" || (ev.type === "message" && options.doneData != null && ev.data === options.doneData)) {
        ending = ["done"];
      } else if (ev.type === "error") {
        ending = ["error", errorEventError(ev.data, ev.lastEventId)];
      } else {
        deliverEvent(ev, options, decode);
      }
      if (ending) {
        timer = setTimeout(() => s.end(...ending), END_GRACE_MS);
        s.onCleanup(() => clearTimeout(timer));
      }
    });
    const reader = response.body ? response.body.getReader() : null;
    try {
      while (reader && !s.over) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!ending) parser.feed(value);
      }
      parser.end();
    } catch (err) {
      if (ending) {
        if (!s.over) s.end(...ending);
        return;
      }
      if (!s.over) {
        s.end("error", new StreamError("The connection was lost",
          { kind: "network", lastEventId: parser.lastEventId, cause: err }));
      }
      return;
    } finally {
      if (reader && s.over) reader.cancel().catch(() => {});
    }
    if (ending) {
      if (!s.over) s.end(...ending);
      return;
    }
    if (!s.over) {
      s.end("error", new StreamError("The stream ended before it was complete",
        { kind: "network", lastEventId: parser.lastEventId }));
    }
  })();
  return handleOf(s);
}
