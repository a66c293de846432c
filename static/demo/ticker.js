// The ticker page: the same endpoint fetched as JSON and streamed with EventSource.
// Event data is written with textContent only: it is never parsed as HTML.
const panels = document.querySelector(".panels");
const endpoint = panels.dataset.endpoint;
const form = document.getElementById("ticker-form");
let source = null;

function panel(id) {
  const root = document.getElementById(id);
  const el = (sel) => root.querySelector(sel);
  return {
    reset() { el("progress").value = 0; el(".first").textContent = "…"; el(".total").textContent = "…"; el(".log").replaceChildren(); },
    item(item) { el("progress").value = item.done; this.line(`${item.n} (${item.done}%)`); },
    line(text, cls) {
      const li = document.createElement("li");
      li.textContent = text;
      if (cls) li.className = cls;
      el(".log").append(li);
      li.scrollIntoView({ block: "nearest" });
    },
    time(which, ms) { el(which === "first" ? ".first" : ".total").textContent = `${ms.toFixed(0)} ms`; },
  };
}

async function runBatch(query) {
  const view = panel("batch");
  view.reset();
  const t0 = performance.now();
  const response = await fetch(`${endpoint}?${query}`, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) { view.line(body.error.message, "error"); return; }
  view.time("first", performance.now() - t0);
  body.items.forEach((item) => view.item(item));
  view.time("total", performance.now() - t0);
  view.line("complete", "done");
}

function runStream(query) {
  const view = panel("stream");
  view.reset();
  if (source) source.close();
  const t0 = performance.now();
  let first = true;
  source = new EventSource(`${endpoint}?stream=1&${query}`);
  source.onmessage = (event) => {
    if (first) { view.time("first", performance.now() - t0); first = false; }
    view.item(JSON.parse(event.data));
  };
  source.addEventListener("done", () => {
    source.close();
    view.time("total", performance.now() - t0);
    view.line("complete", "done");
  });
  source.addEventListener("error", (event) => {
    if (event.data) { view.line(JSON.parse(event.data).error.message, "error"); source.close(); }
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form)).toString();
  runBatch(query);
  runStream(query);
});
form.requestSubmit();
