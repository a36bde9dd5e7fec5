#!/usr/bin/env bash
# Builds {{name}}.wasm (a WebAssembly component) from app.py with
# componentize-py, bundling the crisis Python SDK, next to this script.
# Environment:
#   CRISIS_REPO      the crisis repository (default: the one this project was created from)
#   COMPONENTIZE_PY  componentize-py 0.25.1 (default: the venv examples/build.sh installs,
#                    $CRISIS_REPO/target/examples/py-venv/bin/componentize-py)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CRISIS_REPO="${CRISIS_REPO:-{{repo}}}"
COMPONENTIZE_PY="${COMPONENTIZE_PY:-$CRISIS_REPO/target/examples/py-venv/bin/componentize-py}"
if [[ ! -x "$COMPONENTIZE_PY" ]]; then
  echo "build.sh: $COMPONENTIZE_PY not found: run examples/build.sh python in $CRISIS_REPO, or set COMPONENTIZE_PY" >&2
  exit 1
fi
"$COMPONENTIZE_PY" -d "$CRISIS_REPO/plugins/wit/crisis-plugin@0.1.0" -w notifier \
  componentize app -p . -p "$CRISIS_REPO/plugins/sdk-python" -o {{name}}.wasm
echo "wrote $PWD/{{name}}.wasm"
