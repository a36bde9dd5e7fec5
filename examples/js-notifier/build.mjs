// Builds notifier.js (with the SDK it imports from plugins/sdk-js) into a WebAssembly component with the componentize-js
// library API. (The `jco componentize` CLI fails on Node 20 with "failed to
// get path metadata"; the library works with absolute paths.)
//
// Usage: node build.mjs [OUT.wasm] [WIT_DIR]
//   defaults: ../../target/examples/js_notifier.wasm, ../../plugins/wit/crisis-plugin@0.1.0
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? resolve(here, '../../target/examples/js_notifier.wasm'));
const witPath = resolve(process.argv[3] ?? resolve(here, '../../plugins/wit/crisis-plugin@0.1.0'));

// componentize-js resolves relative imports inside the current directory
// only; from the repository root the example can import plugins/sdk-js.
process.chdir(resolve(here, '../..'));
const { component } = await componentize({
  sourcePath: resolve(here, 'notifier.js'),
  witPath,
  worldName: 'notifier',
  // The notifier world exports only `meta` and `notify`; never add an
  // incoming-handler export.
  disableFeatures: ['fetch-event'],
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);
