// The official `openai` npm SDK against the demo's OpenAI-compatible endpoints (project/demo/llm.py),
// unmodified: base URL and key are all it is given.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { baseURL, within } from "./live.js";

const MODEL = "dualstream-demo";
const MESSAGES = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "How do rivers carve canyons through solid rock?" },
];

// No retries: a failure must surface at once, not after the SDK's backoff.
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0, timeout: 10_000 });

test("models.list() names the demo model", async () => {
  const ids = [];
  for await (const model of await within(10_000, client.models.list(), "the model list")) ids.push(model.id);
  assert.deepEqual(ids, [MODEL]);
});

test("a completion, streamed and not, is the same reply", async () => {
  const whole = await within(10_000, client.chat.completions.create({ model: MODEL, messages: MESSAGES }), "the reply");
  assert.equal(whole.object, "chat.completion");
  assert.equal(whole.model, MODEL);
  assert.equal(whole.choices.length, 1);
  const { message, finish_reason: finishReason } = whole.choices[0];
  assert.equal(message.role, "assistant");
  assert.equal(finishReason, "stop");
  assert.match(message.content, /rivers/, "the demo model's reply is about the prompt's words");

  const streamed = client.chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
  const stream = await within(10_000, streamed, "the stream to start");
  const chunks = [];
  await within(20_000, (async () => { for await (const chunk of stream) chunks.push(chunk); })(), "the stream to end");
  assert.ok(chunks.length > 3, `only ${chunks.length} chunks: the reply was not streamed token by token`);
  for (const chunk of chunks) {
    assert.equal(chunk.object, "chat.completion.chunk");
    assert.equal(chunk.model, MODEL);
  }
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, "every chunk carries the completion's id");
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), message.content);
  assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
});

test("an unknown model is the SDK's NotFoundError", async () => {
  const request = client.chat.completions.create({ model: "no-such-model", messages: MESSAGES, stream: true });
  await assert.rejects(within(10_000, request, "the error"), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.status, 404);
    return true;
  });
});
