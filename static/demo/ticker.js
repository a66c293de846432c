// The ticker page: one endpoint read twice through the dualstream helper, as batch JSON and as SSE.
// Event data is written with textContent only: it is never parsed as HTML.
const panels = document.querySelector(".panels");
const endpoint = panels.dataset.endpoint;
const { stream } = await import(panels.dataset.helper);  // the URL {% static %} gave the helper
const form = document.getElementById("ticker-form");
const handles = {};

function panel(id) {
  const root = document.getElementById(id);
  const el = (sel) => root.querySelector(sel);
  const log = el(".log");
  let count = 0;
  return {
    reset() {
      count = 0;
      el("progress").value = 0;
      for (const sel of [".first", ".total"]) el(sel).textContent = "…";
      el(".count").textContent = "0";
      log.replaceChildren();
    },
    state(text) { el(".state").textContent = text; root.dataset.state = text; },
    item(item) {
      count += 1;
      el(".count").textContent = String(count);
      el("progress").value = Number(item.done) || 0;
      this.line(`${item.n} left · ${item.done}%`);
    },
    line(text, cls) {
      const li = document.createElement("li");
      li.textContent = text;
      if (cls) li.className = cls;
      log.append(li);
      log.scrollTop = log.scrollHeight;  // follow the newest line without scrolling the page
    },
    time(which, ms) { el(`.${which}`).textContent = `${Math.round(ms).toLocaleString()} ms`; },
  };
}

function run(id, mode, query) {
  const view = panel(id);
  if (handles[id]) handles[id].close();
  view.reset();
  const t0 = performance.now();
  let first = true;
  handles[id] = stream(`${endpoint}?${query}`, {
    mode,
    onState(state) { view.state(state); },
    onItem(item) {
      if (first) { view.time("first", performance.now() - t0); first = false; }
      view.item(item);
    },
    onDone() {
      view.time("total", performance.now() - t0);
      view.line("complete", "done");
      view.state("complete");
    },
    onError(error) {
      view.line(error.message, "error");
      view.state(`failed (${error.kind})`);
    },
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form)).toString();
  run("batch", "batch", query);
  run("stream", "sse", query);
});
document.getElementById("ticker-stop").addEventListener("click", () => {
  for (const handle of Object.values(handles)) handle.close();  // "closed": the server stops producing
});
form.requestSubmit();
