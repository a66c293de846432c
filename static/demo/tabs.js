// The tabs page: every tab reads the clock feed through one shared stream, and shows whether it leads
// (reads the server's stream) or follows (gets the leader's events), and that no id is missed or repeated.
const root = document.getElementById("tabs");
const { stream } = await import(root.dataset.helper);
const el = (sel) => root.querySelector(sel);
const params = new URLSearchParams(location.search);
const shared = params.get("shared") !== "0";
const interval = params.get("interval") || "500";
const ROLES = { leader: "leader: reads the server's stream", follower: "follower", solo: "a stream of its own" };
let first = null;
let last = null;
let count = 0;
let gaps = 0;
let duplicates = 0;

function line(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  el(".log").prepend(li);
  while (el(".log").children.length > 50) el(".log").lastElementChild.remove();
}

function showRole(role) {
  el(".role").textContent = ROLES[role];
  root.dataset.role = role;
  if (role === "leader") root.dataset.leaderSince = String(Date.now());
  document.title = `${role === "leader" ? "★ leader" : role} · Tabs · dualstream demo`;
  line(`now ${ROLES[role]}`, role === "leader" ? "done" : "");
}

const handle = stream(`${root.dataset.feed}?interval=${encodeURIComponent(interval)}`, {
  mode: "sse",
  shared,
  onRole: showRole,  // with shared: "follower" at first, "leader" when this tab takes over
  onState(state) { el(".state").textContent = state; root.dataset.state = state; },
  onItem(item) {
    count += 1;
    if (last !== null && item.n > last + 1) gaps += item.n - last - 1;
    if (last !== null && item.n <= last) duplicates += 1;
    else last = item.n;
    first ??= item.n;
    el(".count").textContent = String(count);
    el(".ids").textContent = `${first}–${last}`;
    el(".gaps").textContent = String(gaps);
    el(".duplicates").textContent = String(duplicates);
    el(".streams").textContent = String(item.streams);
    Object.assign(root.dataset, { count, first, last });
    line(`#${item.n}`);
  },
  onError(error) { line(error.message, "error"); },
});
if (handle.role === "solo") showRole("solo");
