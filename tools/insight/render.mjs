// Renders the DOT source on stdin to SVG on stdout with Graphviz compiled to WebAssembly
// (@hpcc-js/wasm-graphviz, pinned in package.json and installed by `npm ci`). tools/insight/diagram.py
// runs it when no `dot` binary is installed (this is how CI and the development machine render).
// With --version it prints the Graphviz version instead.
import { Graphviz } from "@hpcc-js/wasm-graphviz";

const graphviz = await Graphviz.load();
if (process.argv.includes("--version")) {
  process.stdout.write(`${graphviz.version()}\n`);
} else {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  process.stdout.write(graphviz.dot(Buffer.concat(chunks).toString("utf8"), "svg"));
}
