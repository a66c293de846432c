// The errors page: one failing producer read as batch JSON and as SSE, and what the helper reports.
// Event data and error messages are written with textContent only: they are never parsed as HTML.
const panels = document.querySelector(".panels");
const endpoint = panels.dataset.endpoint;
const { stream } = await import(panels.dataset.helper);  // the URL {% static %} gave the helper
const form = document.getElementById("errors-form");
const handles = {};

function panel(id) {
  const root = document.getElementById(id);
  const el = (sel) => root.querySelector(sel);
  let count = 0;
  return {
    reset() {
      count = 0;
      el(".count").textContent = "0";
      el(".log").replaceChildren();
      el(".failure").hidden = true;
    },
    state(text) { el(".state").textContent = text; root.dataset.state = text; },
    item(item) {
      count += 1;
      el(".count").textContent = String(count);
      const li = document.createElement("li");
      li.textContent = typeof item === "object" && item !== null ? `#${item.i} ${item.text}` : String(item);
      el(".log").append(li);
    },
    failed(error) {
      el(".kind").textContent = error.kind;
      el(".status").textContent = error.status === undefined ? "– (not available)" : String(error.status);
      el(".message").textContent = error.message;
      el(".detail").textContent = error.detail === undefined
        ? "no error body: EventSource does not expose an error response"
        : JSON.stringify({ error: error.detail }, null, 2);
      el(".failure").hidden = false;
      if (count === 0) {
        const li = document.createElement("li");
        li.className = "empty";
        li.textContent = "no items reached the page";
        el(".log").append(li);
      }
    },
  };
}

function run(id, mode, query) {
  const view = panel(id);
  if (handles[id]) handles[id].close();
  view.reset();
  handles[id] = stream(`${endpoint}?${query}`, {
    mode,
    onState(state) { view.state(state); },
    onItem(item) { view.item(item); },
    onDone() { view.state("complete"); },  // never, with this producer
    onError(error) {
      view.failed(error);
      view.state(error.kind === "server" ? "error event" : `failed (${error.kind})`);
    },
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form)).toString();
  run("batch", "batch", query);
  run("stream", "sse", query);
});
