#!/usr/bin/env bash
# Builds {{name}}.wasm (a WebAssembly component) from plugin.js with
# componentize-js, next to this script. Copies the crisis JS SDK into sdk/.
# Environment:
#   CRISIS_REPO               the crisis repository (default: the one this project was created from)
#   CRISIS_JS_NODE_MODULES    a node_modules holding @bytecodealliance/componentize-js (default: the one
#                             examples/build.sh installs, $CRISIS_REPO/examples/js-notifier/node_modules)
#   NODE                      node (default: node)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CRISIS_REPO="${CRISIS_REPO:-{{repo}}}"
CRISIS_JS_NODE_MODULES="${CRISIS_JS_NODE_MODULES:-$CRISIS_REPO/examples/js-notifier/node_modules}"
if [[ ! -d "$CRISIS_JS_NODE_MODULES/@bytecodealliance/componentize-js" ]]; then
  echo "build.sh: no componentize-js in $CRISIS_JS_NODE_MODULES: run examples/build.sh js in $CRISIS_REPO, or set CRISIS_JS_NODE_MODULES" >&2
  exit 1
fi
mkdir -p sdk
cp "$CRISIS_REPO/plugins/sdk-js/crisis_plugin.js" sdk/crisis_plugin.js
"${NODE:-node}" build.mjs {{name}}.wasm "$CRISIS_REPO/plugins/wit/crisis-plugin@0.1.0" "$CRISIS_JS_NODE_MODULES"
echo "wrote $PWD/{{name}}.wasm"
