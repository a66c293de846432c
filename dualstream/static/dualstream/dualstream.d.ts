// TypeScript declarations for dualstream.js, the browser side of a dualstream view.
// No build step: TypeScript finds this file beside the module (`import { stream } from ".../dualstream.js"`).

/** What went wrong, whichever way the stream was read. */
export declare class StreamError extends Error {
  constructor(
    message: string,
    info?: { kind: StreamErrorKind; status?: number; detail?: unknown; lastEventId?: string; cause?: unknown },
  );
  readonly name: "StreamError";
  /**
   * `"server"`: an `error` event or an error JSON body; `"http"`: an error status (`status` is set);
   * `"network"`: the connection failed, or ended before the stream was complete; `"protocol"`: not
   * what a dualstream URL answers (wrong type, bad JSON, an event over `maxEventSize`);
   * `"unsupported"`: `mode: "sse"` without EventSource.
   */
  kind: StreamErrorKind;
  /** HTTP status, from the response or the server's error body. */
  status: number | undefined;
  /** The server's `error` object (`{status, message, ...}`), when there was one. */
  detail: unknown;
  /** The id as of the last event delivered: the point to resume from. */
  lastEventId: string;
}

export type StreamErrorKind = "server" | "http" | "network" | "protocol" | "unsupported";

/** One dispatched event. */
export interface SSEEvent {
  /** The event name: `"message"` unless an `event:` field named it. */
  type: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last `id:` as of this event (ids persist across events). */
  lastEventId: string;
}

export type StreamState = "connecting" | "open" | "reconnecting" | "paused" | "closed";
export type StreamRole = "solo" | "leader" | "follower";
export type Outcome = "done" | "error" | "closed";

export interface StreamOptions<Item = any> {
  /** Each item, in SSE and batch mode alike (`event` is undefined for a batch item). */
  onItem?: (item: Item, event?: SSEEvent) => void;
  /** Handlers for named events, by name (`message`, `done` and `error` are reserved). */
  onEvent?: Record<string, (data: any, event: SSEEvent) => void>;
  /** The stream completed (`done`, a 204, or the batch was delivered), and its response has ended. */
  onDone?: () => void;
  /** It failed: nothing follows. */
  onError?: (error: StreamError) => void;
  onState?: (state: StreamState) => void;
  /** With `shared`: this tab became the one that reads the server's stream, or a follower. */
  onRole?: (role: StreamRole) => void;

  /** `auto`: SSE, or batch JSON where there is no EventSource (and no fetch option). */
  mode?: "auto" | "sse" | "batch";
  /** `auto`: EventSource, unless `method`, `body` or `headers` need fetch(). */
  transport?: "auto" | "eventsource" | "fetch";
  /** `JSON.parse` event data, keeping the text if it is not JSON. Default true. */
  parseJSON?: boolean;
  /** Resume after this id (`?lastEventId=` with EventSource, a `Last-Event-ID` header with fetch). */
  lastEventId?: string;
  /** Send cookies cross-origin. */
  withCredentials?: boolean;
  /** Aborting it is `close()`. */
  signal?: AbortSignal;
  /** Read the items of a batch document that is not `{"items": [...]}`. */
  items?: (document: any) => Item[];

  /** One server stream for every tab of this origin that reads the same URL (GET only). */
  shared?: boolean;
  /** Shared: how many recent events each tab keeps for a tab that comes back (default 500). */
  sharedHistory?: number;
  /** Shared: ms between a follower's checks that the leader still answers (default 2000). */
  watchdog?: number;
  /** Close the stream while the page is hidden; resume after the last id when it is visible. */
  pauseWhenHidden?: boolean;

  // The fetch transport (chosen by any of method, body, headers, or transport: "fetch"):
  method?: string;
  /** A plain object is sent as JSON; a string, FormData, Blob, URLSearchParams or bytes as they are. */
  body?: unknown;
  headers?: HeadersInit;
  /** Send Django's CSRF token (`X-CSRFToken`) on a same-origin POST, PUT, PATCH, DELETE. Default true. */
  csrf?: boolean;
  /** Django's `CSRF_COOKIE_NAME`, when it is not `csrftoken`. */
  csrfCookieName?: string;
  credentials?: RequestCredentials;
  /** Message data that ends the stream, e.g. `"[DONE]"` for OpenAI. */
  doneData?: string;
  /** Reconnect and retry (default true; a non-GET request only before its first event or after an id). */
  reconnect?: boolean;
  /** The first delay before a retry, in ms (default 1000; the server's `retry:` replaces it). */
  retryDelay?: number;
  /** The longest delay between retries of a 5xx or a network error, in ms (default 30000). */
  maxRetryDelay?: number;
  /** How many retries in a row of a 5xx or a network error before `onError` (default: no limit). */
  maxRetries?: number;
  /** The parser's bound on one event, in characters (default 4 MiB). */
  maxEventSize?: number;
}

export interface StreamHandle {
  /** Stop now: no reconnection and no further callbacks but `onState("closed")`. */
  close(): void;
  readonly state: StreamState;
  readonly role: StreamRole;
  /** Settles once, never rejects. */
  readonly finished: Promise<Outcome>;
}

/** Read a dualstream URL as SSE (EventSource or fetch) or as one batch JSON document. */
export declare function stream<Item = any>(url: string | URL, options?: StreamOptions<Item>): StreamHandle;

/** `stream()` with a request body, POST unless `options.method` says otherwise; the URL is used as given. */
export declare function postStream<Item = any>(
  url: string | URL,
  body: unknown,
  options?: Omit<StreamOptions<Item>, "body" | "shared">,
): StreamHandle;

/** Django's CSRF token: the `csrftoken` cookie, else the `csrfmiddlewaretoken` field; "" if neither. */
export declare function csrfToken(cookieName?: string): string;

export interface SSEParser {
  /** Parse the next chunk: a string, or bytes of UTF-8. Throws a StreamError over `maxEventSize`. */
  feed(chunk: string | BufferSource): void;
  /** The stream ended: an event not yet dispatched is discarded, as the spec says. */
  end(): void;
  readonly lastEventId: string;
  readonly retry: number | null;
}

/** The incremental `text/event-stream` parser (WHATWG HTML rules). */
export declare function createSSEParser(
  onEvent: (event: SSEEvent) => void,
  options?: { onRetry?: (ms: number) => void; maxEventSize?: number; lastEventId?: string },
): SSEParser;
