// dualstream.d.ts: it compiles under `tsc --strict` with the uses in types/usage.ts (and refuses the
// misuses marked there), and it declares every export of dualstream.js.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as helperModule from "./load-helper.js";

const here = dirname(fileURLToPath(import.meta.url));

test("dualstream.d.ts type-checks the documented uses", () => {
  const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
  const args = ["--noEmit", "--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext",
    "--lib", "es2022,dom", "--skipLibCheck", join(here, "types", "usage.ts")];
  try {
    execFileSync(process.execPath, [tsc, ...args], { encoding: "utf8" });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});

test("dualstream.d.ts declares every export of the module", () => {
  const declarations = readFileSync(helperModule.helperPath.replace(/\.js$/, ".d.ts"), "utf8");
  const declared = [...declarations.matchAll(/^export declare (?:function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(helperModule.helper).sort());
});
