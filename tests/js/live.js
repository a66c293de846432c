// The live server that tests/e2e/test_js.py starts: uvicorn serving tests.support.urls (the demo site at the root).
import assert from "node:assert/strict";

export const baseURL = process.env.DUALSTREAM_BASE_URL;
assert.ok(baseURL, "DUALSTREAM_BASE_URL is not set: run these tests through pytest tests/e2e/test_js.py");

/** `promise`, or a rejection after `ms` milliseconds: a test that waits on the network never hangs. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
