// Compiled (never run) by types.test.js with `tsc --noEmit --strict`: dualstream.d.ts must accept
// what the docs show, and refuse what the module does not take.
import { createSSEParser, csrfToken, postStream, stream, StreamError } from "../../../dualstream/static/dualstream/dualstream.js";
import type { StreamHandle, StreamState } from "../../../dualstream/static/dualstream/dualstream.js";

interface Tick { n: number; streams: number }

const handle: StreamHandle = stream<Tick>("/api/clock/", {
  shared: true,
  pauseWhenHidden: true,
  onItem(item, event) { const n: number = item.n; console.log(n, event?.lastEventId); },
  onEvent: { progress(data, event) { console.log(data, event.type); } },
  onDone() {},
  onError(error) { const kind: "server" | "http" | "network" | "protocol" | "unsupported" = error.kind; console.log(kind, error.status); },
  onState(state: StreamState) { console.log(state); },
  onRole(role) { if (role === "leader") console.log("leading"); },
  items: (document: { results: Tick[] }) => document.results,
});
handle.finished.then((outcome) => { if (outcome === "done") handle.close(); });
console.log(handle.role, handle.state);

postStream("/v1/chat/completions", { model: "demo", stream: true }, {
  doneData: "[DONE]",
  headers: { Authorization: "Bearer t", "X-CSRFToken": csrfToken() },
  maxRetries: 3,
  signal: new AbortController().signal,
});
stream("/feed/", { method: "POST", body: new FormData(), retryDelay: 500, maxEventSize: 1 << 20 });

const parser = createSSEParser((ev) => console.log(ev.type, ev.data, ev.lastEventId), { onRetry: (ms) => console.log(ms) });
parser.feed(new Uint8Array([100, 97, 116, 97, 58, 10, 10]));
parser.end();
const error = new StreamError("x", { kind: "http", status: 403 });
console.log(error.lastEventId.length, parser.lastEventId, parser.retry);

// @ts-expect-error: not a mode
stream("/x/", { mode: "websocket" });
// @ts-expect-error: the state is read-only
handle.state = "open";
// @ts-expect-error: a shared stream is a GET: postStream takes no `shared`
postStream("/x/", {}, { shared: true });
