// The export page: stream every row with EventSource, count them live, cancel and resume by row id.
// Row data is written with textContent only: it is never parsed as HTML.
const root = document.querySelector(".export");
const endpoint = root.dataset.endpoint;
const { stream } = await import(root.dataset.helper);  // the URL {% static %} gave the helper
const $ = (id) => document.getElementById(id);
const [startButton, cancelButton, resumeButton] = [$("export-start"), $("export-cancel"), $("export-resume")];

let handle = null;
let rows = 0;
let lastId = "";     // the id of the last row received: where a resume continues
let lastRow = null;
let rate = { since: 0, rows: 0, value: null };
let frame = 0;

// The counter is drawn once per animation frame, not once per row: rows arrive far faster than frames.
function draw() {
  frame = 0;
  const now = performance.now();
  if (now - rate.since >= 500) {
    rate = { since: now, rows, value: rate.since ? ((rows - rate.rows) * 1000) / (now - rate.since) : null };
  }
  $("export-rows").textContent = rows.toLocaleString();
  $("export-progress").value = rows;
  $("export-rate").textContent = rate.value === null ? "–" : Math.round(rate.value).toLocaleString();
  $("export-last").textContent = lastRow === null ? "–" : `#${lastRow.id} ${lastRow.sensor} ${lastRow.taken_at} ${lastRow.value}`;
}
const redraw = () => { if (!frame) frame = requestAnimationFrame(draw); };

function setState(text, { running }) {
  $("export-state").textContent = text;
  startButton.disabled = running;
  cancelButton.disabled = !running;
  resumeButton.disabled = running || !lastId;
}

function run(fromId) {
  rate = { since: 0, rows, value: null };
  setState("connecting", { running: true });
  handle = stream(endpoint, {
    mode: "sse",
    lastEventId: fromId || undefined,
    onItem(row, event) {
      rows += 1;
      lastRow = row;
      lastId = event.lastEventId;
      redraw();
    },
    onState(state) { if (state !== "closed") setState(state, { running: true }); },
    onDone() { lastId = ""; setState("complete", { running: false }); draw(); },
    onError(error) { setState(`failed: ${error.message}`, { running: false }); draw(); },
  });
}

startButton.addEventListener("click", () => {
  rows = 0;
  lastId = "";
  lastRow = null;
  run("");
});
cancelButton.addEventListener("click", () => {
  handle.close();  // the connection closes: the server cancels produce() and closes its cursor
  setState(`cancelled after row #${lastId || "–"}`, { running: false });
  draw();
});
resumeButton.addEventListener("click", () => run(lastId));
