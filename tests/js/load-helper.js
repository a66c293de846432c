// Imports dualstream.js, the browser helper, into node.
//
// The helper is an ES module in a `.js` file with no package.json above it, which node would load as
// CommonJS: a copy named `.mjs` is imported instead. DUALSTREAM_JS points at another copy of the helper
// (e.g. an older one, to check that these tests catch its bugs).
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const helperPath = process.env.DUALSTREAM_JS
  ? resolve(process.env.DUALSTREAM_JS)
  : join(here, "..", "..", "dualstream", "static", "dualstream", "dualstream.js");

const dir = mkdtempSync(join(tmpdir(), "dualstream-js-"));
const copy = join(dir, "dualstream.mjs");
copyFileSync(helperPath, copy);

export const helper = await import(pathToFileURL(copy).href);
rmSync(dir, { recursive: true });  // loaded: the copy is no longer needed
