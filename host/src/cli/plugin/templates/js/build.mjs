// Builds plugin.js into a WebAssembly component with the componentize-js
// library (the `jco componentize` CLI fails on Node 20).
//
// Usage: node build.mjs OUT.wasm WIT_DIR NODE_MODULES
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [out, witPath, nodeModules] = process.argv.slice(2).map((p) => resolve(p));
// componentize-js is loaded from the node_modules examples/build.sh installs, not from here.
const pkgDir = join(nodeModules, '@bytecodealliance', 'componentize-js');
const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
const { componentize } = await import(pathToFileURL(join(pkgDir, pkg.exports.import)).href);

// componentize-js resolves relative imports only below the current directory.
process.chdir(here);
const { component } = await componentize({
  sourcePath: resolve(here, 'plugin.js'),
  witPath,
  worldName: 'notifier',
  // The notifier world exports only `meta` and `notify`; never add an incoming-handler export.
  disableFeatures: ['fetch-event'],
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
