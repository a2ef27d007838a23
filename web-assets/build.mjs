// Copy uPlot's built files (and its licence) into the Python package's static folder.
// Run with `npm ci && npm run build`; the copies are committed, so neither Tocsin
// nor its tests need npm.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "node_modules", "uplot");
const target = join(here, "..", "src", "tocsin", "web", "static", "vendor");
mkdirSync(target, { recursive: true });

const version = JSON.parse(readFileSync(join(source, "package.json"), "utf8")).version;
for (const [from, to] of [
  ["dist/uPlot.iife.min.js", "uplot.min.js"],
  ["dist/uPlot.min.css", "uplot.min.css"],
  ["LICENSE", "uplot.LICENSE"],
]) {
  copyFileSync(join(source, from), join(target, to));
}
writeFileSync(join(target, "VERSIONS"), `uplot ${version}\n`);
console.log(`vendored uPlot ${version} into ${target}`);
