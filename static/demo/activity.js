// The activity page: publish with fetch() (Django's CSRF token in a header), read everyone's events
// with the dualstream helper. Event data is written with textContent only: never parsed as HTML.
const form = document.getElementById("activity-form");
const { stream } = await import(form.dataset.helper);
const root = document.getElementById("activity");
const el = (sel) => root.querySelector(sel);
const log = el(".log");
let count = 0;

const who = form.elements.who;
who.value = sessionStorage.getItem("activity-who") || `tab-${Math.random().toString(36).slice(2, 6)}`;
sessionStorage.setItem("activity-who", who.value);

function line(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  log.append(li);
  while (log.children.length > 200) log.firstElementChild.remove();  // a long-lived tab stays light
  log.scrollTop = log.scrollHeight;
}

stream(form.dataset.feed, {
  mode: "sse",
  onState(state) { el(".state").textContent = state; root.dataset.state = state; },
  onItem(item, event) {
    count += 1;
    el(".count").textContent = String(count);
    if (event && event.lastEventId) el(".last-id").textContent = event.lastEventId;
    const time = new Date(item.at).toLocaleTimeString();
    line(`${time}  ${item.who}: ${item.text}`, item.who === who.value ? "mine" : "");
  },
  onEvent: {
    reset() { line("(missed too much while away: live from here)", "error"); },
  },
  onError(error) { line(error.message, "error"); },
});

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function publish(text) {
  sessionStorage.setItem("activity-who", who.value);
  const response = await fetch(form.dataset.publish, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify({ who: who.value, text }),
  });
  if (!response.ok) line(`publish failed: HTTP ${response.status}`, "error");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  publish(form.elements.text.value);
});
document.getElementById("activity-burst").addEventListener("click", async () => {
  for (let i = 1; i <= 20; i += 1) await publish(`${form.elements.text.value} #${i}`);
});
