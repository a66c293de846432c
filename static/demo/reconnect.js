// The reconnect page: a stream with ids, cut by the server (the browser resumes with Last-Event-ID)
// or dropped by the page (it resumes with ?lastEventId=). Every id received is shown and checked.
// Event data is written with textContent only: it is never parsed as HTML.
const root = document.querySelector(".reconnect");
const endpoint = root.dataset.endpoint;
const { stream } = await import(root.dataset.helper);  // the URL {% static %} gave the helper
const $ = (id) => document.getElementById(id);
const form = $("feed-form");
const dropButton = $("feed-drop");

let handle = null;
let lastId = "";          // the id of the last event received: where a resume continues
let expected = 0;         // how many events the feed has (from the events themselves)
let seen = new Map();     // id -> times received
let connections = [];
let current = null;       // the connection being received
let awaitingReconnect = false;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function describe(conn) {
  const ids = conn.ids.length ? `ids ${conn.ids[0]}–${conn.ids[conn.ids.length - 1]} (${conn.ids.length})` : "no events";
  const server = conn.server ? `; the server resumed after #${conn.server.after} (read from ${conn.server.via === "header" ? "the Last-Event-ID header" : "?lastEventId="})` : "";
  return `${conn.how}${server}; ${ids}; ${conn.end || "open"}`;
}

function drawConnection(conn) {
  conn.node.replaceChildren(el("strong", `Connection ${conn.number}`), document.createTextNode(` · ${describe(conn)}`));
}

function openConnection(how) {
  current = { number: connections.length + 1, how, ids: [], server: null, end: "", node: el("li") };
  current.node.className = `c${current.number % 2}`;
  connections.push(current);
  $("feed-log").append(current.node);
  $("feed-connections").textContent = String(connections.length);
  drawConnection(current);
}

function endConnection(text) {
  if (!current || current.end) return;
  current.end = text;
  drawConnection(current);
}

function check(final) {
  const missing = [];
  const duplicated = [];
  const top = final ? expected : Math.max(0, ...seen.keys());
  for (let n = 1; n <= top; n++) {
    const times = seen.get(n) || 0;
    if (times === 0) missing.push(n);
    if (times > 1) duplicated.push(n);
  }
  const verdict = $("feed-verdict");
  if (missing.length || duplicated.length) {
    verdict.textContent = `missing: ${missing.join(", ") || "none"}; duplicated: ${duplicated.join(", ") || "none"}`;
    verdict.dataset.ok = "false";
  } else {
    const count = [...seen.values()].reduce((a, b) => a + b, 0);
    verdict.textContent = final
      ? `all ${count} ids, each exactly once: no gap, no duplicate`
      : `${count} ids so far, in order: no gap, no duplicate`;
    verdict.dataset.ok = "true";
  }
}

function receive(item, event) {
  const n = Number(event.lastEventId);
  expected = item.of;
  if (!current.server && item.after) current.server = { after: item.after, via: item.via };
  const top = Math.max(0, ...seen.keys());
  for (let gap = top + 1; gap < n; gap++) {
    $("feed-ids").append(el("li", String(gap), "missing"));  // never expected to happen
  }
  const times = (seen.get(n) || 0) + 1;
  seen.set(n, times);
  const box = el("li", String(n), `c${current.number % 2}${times > 1 ? " duplicate" : ""}`);
  box.title = `connection ${current.number}`;
  $("feed-ids").append(box);
  lastId = event.lastEventId;
  current.ids.push(n);
  drawConnection(current);
  $("feed-received").textContent = String([...seen.values()].reduce((a, b) => a + b, 0));
  check(false);
}

function setState(text, running) {
  $("feed-state").textContent = text;
  root.dataset.state = text;
  dropButton.disabled = !running;
}

function connect(fromId, how) {
  const query = new URLSearchParams(new FormData(form)).toString();
  openConnection(how);
  handle = stream(`${endpoint}?${query}`, {
    mode: "sse",
    lastEventId: fromId || undefined,
    onState(state) {
      if (state === "reconnecting") {
        endConnection("ended without done: the browser reconnects");
        awaitingReconnect = true;
      } else if (state === "open" && awaitingReconnect) {
        awaitingReconnect = false;
        openConnection(`browser reconnect after #${lastId}`);
      }
      if (state !== "closed") setState(state, true);
    },
    onItem: receive,
    onDone() {
      endConnection("done");
      setState("complete", false);
      check(true);
    },
    onError(error) {
      endConnection(`failed: ${error.message}`);
      setState(`failed (${error.kind})`, false);
    },
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (handle) handle.close();
  lastId = "";
  expected = 0;
  seen = new Map();
  connections = [];
  current = null;
  awaitingReconnect = false;
  $("feed-ids").replaceChildren();
  $("feed-log").replaceChildren();
  $("feed-verdict").textContent = "–";
  delete $("feed-verdict").dataset.ok;
  $("feed-received").textContent = "0";
  connect("", "fresh start");
});

dropButton.addEventListener("click", () => {
  handle.close();  // the server sees the disconnect and cancels produce()
  endConnection("dropped by the page");
  awaitingReconnect = false;
  connect(lastId, lastId ? `page reconnect after #${lastId}` : "page reconnect from the start");
});
