// npm `eventsource` (the WHATWG EventSource for node) against the demo's live streams: the items
// arrive, `done` ends a stream for good (the reconnect after it is a 204), a cut stream resumes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { baseURL, within } from "./live.js";

/**
 * An EventSource on `path` that records every request (its Last-Event-ID, its answer's status)
 * and every event, and settles when the connection is closed for good or `done` arrives.
 */
function watch(path, { closeOnDone }) {
  const requests = [];
  const events = [];
  const recordingFetch = async (url, init) => {
    const request = { lastEventId: new Headers(init.headers).get("Last-Event-ID"), status: null };
    requests.push(request);
    const response = await fetch(url, init);
    request.status = response.status;
    return response;
  };
  const es = new EventSource(new URL(path, baseURL), { fetch: recordingFetch });
  const ended = new Promise((resolve) => {
    es.addEventListener("message", (e) => events.push({ type: e.type, id: e.lastEventId, data: JSON.parse(e.data) }));
    es.addEventListener("done", (e) => {
      events.push({ type: e.type, id: e.lastEventId, data: e.data });
      if (closeOnDone) {
        es.close();
        resolve("done");
      }
    });
    es.addEventListener("error", (e) => {
      if (es.readyState === EventSource.CLOSED) resolve(`closed: ${e.code} ${e.message}`);
    });
  });
  return { es, requests, events, ended };
}

test("ticker: the items arrive in order with their ids, then done", async () => {
  const { es, requests, events, ended } = watch("/api/ticker/?from=3&interval=0", { closeOnDone: true });
  try {
    assert.equal(await within(10_000, ended, "the done event"), "done");
  } finally {
    es.close();
  }
  assert.deepEqual(events.map((e) => [e.type, e.id, e.data.n ?? e.data]), [
    ["message", "3", 3], ["message", "2", 2], ["message", "1", 1], ["message", "0", 0],
    ["done", "dualstream-completed", ""],
  ]);
  assert.deepEqual(events[0].data, { n: 3, total: 3, done: 0 });
  assert.deepEqual(requests, [{ lastEventId: null, status: 200 }]);
});

test("feed: a stream cut every 2 events resumes with Last-Event-ID; the reconnect after done is a 204", async () => {
  // retry=20: the reconnection delay the server sets, so the client reconnects at once.
  const { es, requests, events, ended } = watch("/api/feed/?count=5&interval=0&cut_every=2&retry=20", {
    closeOnDone: false,
  });
  try {
    const outcome = await within(15_000, ended, "the connection to close");
    assert.equal(outcome, "closed: 204 Server sent HTTP 204, not reconnecting");
  } finally {
    es.close();
  }
  assert.deepEqual(events.filter((e) => e.type === "message").map((e) => [e.id, e.data]), [
    ["1", { n: 1, of: 5, after: 0, via: null }],
    ["2", { n: 2, of: 5, after: 0, via: null }],
    ["3", { n: 3, of: 5, after: 2, via: "header" }],
    ["4", { n: 4, of: 5, after: 2, via: "header" }],
    ["5", { n: 5, of: 5, after: 4, via: "header" }],
  ]);
  assert.deepEqual(events.filter((e) => e.type === "done").length, 1, "done once: the stream was not replayed");
  assert.deepEqual(requests, [
    { lastEventId: null, status: 200 },
    { lastEventId: "2", status: 200 },
    { lastEventId: "4", status: 200 },
    { lastEventId: "dualstream-completed", status: 204 },
  ]);
});
