// dist/app.js + dist/index.html for a browser, dist/smoke.js for Node
// (npm run smoke). Type checking is tsc's job (npm run typecheck): esbuild
// only strips the types.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
const common = { bundle: true, logLevel: "warning", target: "es2022" };
await build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js", format: "iife", minify: true });
copyFileSync("index.html", "dist/index.html");
await build({
  ...common,
  entryPoints: ["src/smoke.ts"],
  outfile: "dist/smoke.js",
  platform: "node",
  format: "esm",
  // ws's optional native speed-ups; it runs without them
  external: ["bufferutil", "utf-8-validate"],
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
});
