// Bundle crmgraph's GraphiQL page into OUTDIR (argv[2]): graphiql.js and
// graphiql.css (the page and every style it imports, Monaco's codicon font
// inlined), and Monaco's three web workers (editor, json, graphql), which a
// browser must load as separate files.
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const outdir = process.argv[2];
if (!outdir) {
  console.error("usage: node build.mjs OUTDIR");
  process.exit(2);
}
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  target: ["es2022"],
  define: { "process.env.NODE_ENV": '"production"' },
};

await build({
  ...common,
  entryPoints: { graphiql: "src/main.jsx" },
  outdir,
  format: "iife",
  jsx: "automatic",
  loader: { ".ttf": "dataurl", ".woff": "dataurl", ".woff2": "dataurl", ".svg": "dataurl" },
});

const workers = {
  editor: "monaco-editor/esm/vs/editor/editor.worker.js",
  json: "monaco-editor/esm/vs/language/json/json.worker.js",
  graphql: "monaco-graphql/esm/graphql.worker.js",
};
for (const [name, entry] of Object.entries(workers)) {
  await build({ ...common, entryPoints: [entry], outfile: join(outdir, `${name}.worker.js`), format: "iife" });
}
