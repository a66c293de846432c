// createSSEParser (dualstream.js) against eventsource-parser, on the WHATWG spec's examples and on
// thousands of random chunkings of generated streams: the events and the resume point must agree.
//
// eventsource-parser reports each event block's own `id` through `onId` (called at every blank line
// that ends a block with an id, with or without data) and ignores an `id` holding NUL: following it
// gives the spec's "last event ID string" as of each dispatch, which is what the helper must report.
//
// DUALSTREAM_FUZZ_SEED reproduces a run (its seed is in every failure message);
// DUALSTREAM_FUZZ_STREAMS sets how many streams are generated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createParser } from "eventsource-parser";
import { helper, helperPath } from "./load-helper.js";

const SEED = Number(process.env.DUALSTREAM_FUZZ_SEED ?? 20240514);
const STREAMS = Number(process.env.DUALSTREAM_FUZZ_STREAMS ?? 3000);
const CHUNKINGS_PER_STREAM = 4;

/** What a parser made of a whole stream. */
function result(events, lastEventId, retry) {
  return { events, lastEventId, retry };
}

/** The helper's parser over `chunks` (strings, or Uint8Arrays it decodes itself), ended. */
function ours(chunks) {
  const events = [];
  const parser = helper.createSSEParser((ev) => events.push({ ...ev }));
  for (const chunk of chunks) parser.feed(chunk);
  parser.end();
  return result(events, parser.lastEventId, parser.retry);
}

/**
 * eventsource-parser over the same chunks. Bytes go through a streaming TextDecoder that keeps the
 * BOM, so that eventsource-parser strips exactly one, as the spec does (the helper's decoder strips it).
 */
function reference(chunks) {
  const events = [];
  let lastEventId = "";
  let retry = null;
  const parser = createParser({
    onId(id) { lastEventId = id; },
    onEvent(ev) { events.push({ type: ev.event ?? "message", data: ev.data, lastEventId }); },
    onRetry(ms) { retry = ms; },
  });
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  for (const chunk of chunks) parser.feed(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
  parser.feed(decoder.decode());  // a cut character: part of an unfinished line, which is discarded
  return result(events, lastEventId, retry);
}

const encode = (text) => new TextEncoder().encode(text);

// --- the spec's examples (HTML, "Server-sent events", "Interpreting an event stream") -----------------

const SPEC_EXAMPLES = [
  {
    name: "three data lines make one message",
    stream: "data: YHOO\ndata: +2\ndata: 10\n\n",
    events: [{ type: "message", data: "YHOO\n+2\n10", lastEventId: "" }],
    lastEventId: "",
  },
  {
    name: "a comment, an id, and an empty id that resets it",
    stream: ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
    events: [
      { type: "message", data: "first event", lastEventId: "1" },
      { type: "message", data: "second event", lastEventId: "" },
      { type: "message", data: " third event", lastEventId: "" },
    ],
    lastEventId: "",
  },
  {
    name: "empty data lines, and a last block with no blank line is discarded",
    stream: "data\n\ndata\ndata\n\ndata:",
    events: [
      { type: "message", data: "", lastEventId: "" },
      { type: "message", data: "\n", lastEventId: "" },
    ],
    lastEventId: "",
  },
  {
    name: "the space after the colon is optional",
    stream: "data:test\n\ndata: test\n\n",
    events: [
      { type: "message", data: "test", lastEventId: "" },
      { type: "message", data: "test", lastEventId: "" },
    ],
    lastEventId: "",
  },
  {
    name: "an event cut before its blank line leaves the resume point (issue 14)",
    stream: "id: 1\ndata: a\n\nid: 2\ndata: b",
    events: [{ type: "message", data: "a", lastEventId: "1" }],
    lastEventId: "1",
  },
  {
    name: "an id in a block without data counts at its blank line",
    stream: "id: 1\ndata: a\n\nid: 2\n\ndata: b\n\nid: 3\n",
    events: [
      { type: "message", data: "a", lastEventId: "1" },
      { type: "message", data: "b", lastEventId: "2" },
    ],
    lastEventId: "2",
  },
  {
    name: "an id holding NUL is ignored, not a reset",
    stream: "id: 1\ndata: a\n\nid: 2\0\ndata: b\n\nid: 3\nid: 4\0\n\n",
    events: [
      { type: "message", data: "a", lastEventId: "1" },
      { type: "message", data: "b", lastEventId: "1" },
    ],
    lastEventId: "3",
  },
];

for (const example of SPEC_EXAMPLES) {
  test(`spec example: ${example.name}`, () => {
    const expected = result(example.events, example.lastEventId, null);
    assert.deepEqual(reference([example.stream]), expected, "eventsource-parser disagrees with the spec");
    assert.deepEqual(ours([example.stream]), expected, "as text");
    assert.deepEqual(ours([encode(example.stream)]), expected, "as bytes");
  });
}

// --- generated streams, randomly chunked ----------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that a failing case reproduces from its seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters of 1 to 4 UTF-8 bytes, spaces, colons, NUL, and JSON as a dualstream item is sent.
const PIECES = ["a", "Z", "7", " ", ":", "\0", "\u00e9", "\u20ac", "\u4e2d", "\u{1f600}", '{"n": 1}', "[DONE]"];
const ENDINGS = ["\n", "\r", "\r\n"];

function generate(random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const text = (max) => Array.from({ length: Math.floor(random() * (max + 1)) }, () => pick(PIECES)).join("");
  let nextId = 1;
  const lines = [
    () => `data: ${text(4)}`,
    () => `data: ${text(4)}`,
    () => `data: ${text(4)}`,
    () => `data:${text(3)}`,
    () => "data",
    () => `id: ${nextId++}`,
    () => `id: ${nextId++}`,
    () => `id:${text(2)}`,          // may hold NUL (ignored), or be empty (a reset)
    () => "id",
    () => `event: ${pick(["progress", "done", "error", "", "x y"])}`,
    () => "event",
    () => `retry: ${pick(["0", "15", "2500", "1x", "", " 5", "\u0661"])}`,
    () => `: ${text(2)}`,
    () => ":",
    () => `bogus: ${text(2)}`,
    () => `Data: ${text(1)}`,
    () => "",                       // a blank line: the block ends
    () => "",
    () => "",
  ];
  const boms = pick([0, 0, 0, 0, 1, 1, 2]);
  let stream = "\ufeff".repeat(boms);
  const count = Math.floor(random() * 24);
  for (let i = 0; i < count; i++) stream += pick(lines)() + pick(ENDINGS);
  if (random() < 0.3) stream += pick(lines)();  // an unfinished last line
  return stream;
}

/** Where a split lands inside something: CRLF, a UTF-8 sequence (the BOM is one), a surrogate pair. */
function insidePositions(input) {
  const inside = [];
  for (let i = 1; i < input.length; i++) {
    const unit = typeof input === "string" ? input.charCodeAt(i) : input[i];
    const before = typeof input === "string" ? input.charCodeAt(i - 1) : input[i - 1];
    const inCRLF = before === 13 && unit === 10;
    const inCharacter = typeof input === "string" ? unit >= 0xdc00 && unit <= 0xdfff : (unit & 0xc0) === 0x80;
    if (inCRLF || inCharacter) inside.push(i);
  }
  return inside;
}

/** Sorted cut points in 0..length: none, every one, or a few, most of them inside something. */
function cutPoints(random, input) {
  const style = random();
  if (style < 0.1) return [];
  if (style < 0.2) return Array.from({ length: Math.max(0, input.length - 1) }, (_, i) => i + 1);
  const inside = insidePositions(input);
  const cuts = new Set();
  const n = 1 + Math.floor(random() * 8);
  for (let i = 0; i < n; i++) {
    if (inside.length && random() < 0.6) cuts.add(inside[Math.floor(random() * inside.length)]);
    else cuts.add(Math.floor(random() * (input.length + 1)));
  }
  return [...cuts].sort((a, b) => a - b);
}

function split(input, cuts) {
  const chunks = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    chunks.push(input.slice(at, cut));
    at = cut;
  }
  return chunks;
}

/** What kind of place each cut of `input` falls in, counted into `splits`. */
function countSplits(splits, input, cuts) {
  const text = typeof input === "string";
  const unit = (i) => (text ? input.charCodeAt(i) : input[i]);
  const bom = text ? 0 : unit(0) === 0xef && unit(1) === 0xbb && unit(2) === 0xbf;
  for (const cut of cuts) {
    if (unit(cut - 1) === 13 && unit(cut) === 10) splits.crlf++;
    else if (bom && cut > 0 && cut < 3) splits.bom++;
    else if (text && unit(cut) >= 0xdc00 && unit(cut) <= 0xdfff) splits.surrogate++;
    else if (!text && (unit(cut) & 0xc0) === 0x80) splits.utf8++;
  }
}

test(`${STREAMS} streams, ${CHUNKINGS_PER_STREAM} random chunkings each, agree with eventsource-parser`, (t) => {
  const random = prng(SEED);
  const splits = { crlf: 0, utf8: 0, bom: 0, surrogate: 0 };
  let events = 0;
  let cutInsideAnId = 0;  // streams whose resume point is not their last id: what issue 14 was about
  for (let n = 0; n < STREAMS; n++) {
    const stream = generate(random);
    const bytes = encode(stream);
    if (reference([stream]).lastEventId !== reference([stream + "\n\n"]).lastEventId) cutInsideAnId++;
    for (let c = 0; c < CHUNKINGS_PER_STREAM; c++) {
      // One chunking in four feeds text (cut at UTF-16 units), the others bytes, as postStream does.
      const input = c === 0 ? stream : bytes;
      const cuts = cutPoints(random, input);
      const chunks = split(input, cuts);
      const expected = reference(chunks);
      assert.deepEqual(ours(chunks), expected,
        `seed ${SEED}, stream #${n}, ${input === stream ? "text" : "bytes"} cut at ${JSON.stringify(cuts)} ` +
        `(helper ${helperPath}):\n${JSON.stringify(stream)}`);
      events += expected.events.length;
      countSplits(splits, input, cuts);
    }
  }
  t.diagnostic(`seed ${SEED}: ${events} events; ${cutInsideAnId} streams cut inside a block with an id; ` +
    `splits inside ${JSON.stringify(splits)}`);
  // The generator must keep reaching the cases it exists for.
  for (const [kind, seen] of Object.entries(splits)) assert.ok(seen >= 50, `only ${seen} splits inside ${kind}`);
  assert.ok(cutInsideAnId >= 50, `only ${cutInsideAnId} streams cut inside a block with an id`);
  assert.ok(events >= STREAMS, `only ${events} events in ${STREAMS} streams`);
});
