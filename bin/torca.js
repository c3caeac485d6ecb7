#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript under dist/.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "dist", "submitter", "cli.js");
if (!existsSync(entry)) {
  process.stderr.write("torca: not built yet; run `npm run build` (or `npm run up`) in " + root + "\n");
  process.exit(1);
}
await import(pathToFileURL(entry).href);
