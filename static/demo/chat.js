// The chat page: POST /v1/chat/completions, streamed with postStream() (fetch + the helper's SSE
// parser), or answered as one JSON completion. Text is written with textContent only, never as HTML.
const form = document.getElementById("chat-form");
const { postStream } = await import(form.dataset.helper);
const log = document.getElementById("chat-log");
const field = (name) => document.querySelector(`.timings .${name}`);
let current = null;
// The page sets Django's csrftoken cookie: a POST that carries cookies must send the token back.
const csrf = { "X-CSRFToken": decodeURIComponent(document.cookie.match(/(?:^|; )csrftoken=([^;]*)/)?.[1] ?? "") };

function bubble(role, text) {
  const p = document.createElement("p");
  p.className = `bubble ${role}`;
  p.textContent = text;
  log.append(p);
  p.scrollIntoView({ block: "nearest" });
  return p;
}

function fail(reply, message) {
  reply.classList.add("error");
  reply.textContent = message;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  current?.close();
  const prompt = form.elements.prompt.value;
  const stream = form.elements.stream.checked;
  bubble("user", prompt);
  const reply = bubble("assistant", "");
  const t0 = performance.now();
  const ms = () => `${(performance.now() - t0).toFixed(0)} ms`;
  let tokens = 0;
  const show = (text, count) => {
    if (tokens === 0) field("first").textContent = ms();
    tokens += count;
    reply.textContent += text;
    field("count").textContent = String(tokens);
  };
  for (const name of ["first", "total"]) field(name).textContent = "…";
  field("count").textContent = "0";
  const body = { model: "dualstream-demo", stream, messages: [{ role: "user", content: prompt }] };

  if (!stream) {  // one chat.completion document
    field("state").textContent = "waiting";
    const response = await fetch(form.dataset.endpoint, {
      method: "POST", headers: { "Content-Type": "application/json", ...csrf }, body: JSON.stringify(body),
    });
    const completion = await response.json();
    if (!response.ok) fail(reply, completion.error.message);
    else show(completion.choices[0].message.content, completion.usage.completion_tokens);
    field("total").textContent = ms();
    field("state").textContent = response.ok ? "complete" : "failed (http)";
    return;
  }
  current = postStream(form.dataset.endpoint, body, {
    doneData: "[DONE]",
    headers: csrf,
    onItem(chunk) {
      if (chunk.error) fail(reply, chunk.error.message);
      else if (chunk.choices?.[0]?.delta?.content) show(chunk.choices[0].delta.content, 1);
    },
    onDone() {  // after onState("closed"): as on the other pages, a finished reply reads "complete"
      field("total").textContent = ms();
      field("state").textContent = "complete";
    },
    onError(err) { if (!reply.classList.contains("error")) fail(reply, err.message); },
    onState(state) { field("state").textContent = state; },
  });
});

document.getElementById("chat-stop").addEventListener("click", () => current?.close());
