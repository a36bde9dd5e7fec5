#!/usr/bin/env bash
# Builds the example plugins written in other languages into components:
#
#   target/examples/python_notifier.wasm   examples/python-notifier (componentize-py)
#   target/examples/js_notifier.wasm       examples/js-notifier     (componentize-js)
#
# Each component is rebuilt only when its inputs changed: the sha256 of its
# source files, its SDK (plugins/sdk-python or plugins/sdk-js), the WIT package
# and the toolchain pin is kept next to the
# component (`NAME.wasm.stamp`), so `make test` with nothing changed costs a
# few hashes. Needs only Python 3.11+ with venv/pip and Node 20+ with npm,
# plus network access to PyPI and npm on the first run; the tools are
# installed under target/examples/ (a venv and examples/js-notifier/node_modules),
# never system-wide.
#
# Usage: examples/build.sh [python|js]...   (default: both)
#        FORCE=1 examples/build.sh          rebuild even if up to date
# Environment: PYTHON (default python3), NODE (node), NPM (npm), CRISIS_EXAMPLES_OUT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${CRISIS_EXAMPLES_OUT:-$ROOT/target/examples}"
WIT="$ROOT/plugins/wit/crisis-plugin@0.1.0"
PYTHON="${PYTHON:-python3}"
NODE="${NODE:-node}"
NPM="${NPM:-npm}"
COMPONENTIZE_PY_VERSION="0.25.1"

log() { printf 'examples/build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

sha256_of() { # FILE...: one line per file, sorted by path, then one digest
  (cd "$ROOT" && for f in "$@"; do printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"; done) | sha256sum | cut -d' ' -f1
}

# Source files of an SDK directory (FILE names matching PATTERN), relative to $ROOT.
sdk_files() { (cd "$ROOT" && find "$1" -type f -name "$2" | LC_ALL=C sort); }

# All regular files of the WIT package, as paths relative to $ROOT.
wit_files() { (cd "$ROOT" && find "plugins/wit/crisis-plugin@0.1.0" -type f -name '*.wit' | LC_ALL=C sort); }

# up_to_date OUT_WASM STAMP_VALUE
up_to_date() {
  [[ -z "${FORCE:-}" && -s "$1" && -f "$1.stamp" && "$(cat "$1.stamp")" == "$2" ]]
}

build_python() {
  local src="examples/python-notifier" out="$OUT/python_notifier.wasm"
  local inputs=("$src/app.py")
  mapfile -t -O "${#inputs[@]}" inputs < <(sdk_files plugins/sdk-python '*.py')
  mapfile -t -O "${#inputs[@]}" inputs < <(wit_files)
  local stamp
  stamp="componentize-py==$COMPONENTIZE_PY_VERSION $(sha256_of "${inputs[@]}")"
  if up_to_date "$out" "$stamp"; then
    log "python_notifier.wasm is up to date"
    return
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11+ (with venv) or set PYTHON"
  local venv="$OUT/py-venv"
  local cpy="$venv/bin/componentize-py"
  if [[ ! -x "$cpy" ]] || [[ "$("$cpy" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
    log "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" || die "could not create a venv with $PYTHON (on Debian/Ubuntu: apt install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" \
      || die "pip could not install componentize-py==$COMPONENTIZE_PY_VERSION (network access to PyPI?)"
  fi
  log "building python_notifier.wasm (componentize-py, ~10-50 s)"
  mkdir -p "$OUT"
  local tmp="$out.tmp.$$"
  (cd "$ROOT" && "$cpy" -d "$WIT" -w notifier componentize app -p "$src" -p plugins/sdk-python -o "$tmp" >&2) \
    || { rm -f "$tmp"; die "componentize-py failed for $src"; }
  mv -f "$tmp" "$out"
  printf '%s\n' "$stamp" >"$out.stamp"
  log "wrote $out ($(stat -c %s "$out") bytes)"
}

build_js() {
  local src="examples/js-notifier" out="$OUT/js_notifier.wasm"
  local inputs=("$src/notifier.js" "$src/build.mjs" "$src/package.json" "$src/package-lock.json")
  mapfile -t -O "${#inputs[@]}" inputs < <(sdk_files plugins/sdk-js '*.js')
  mapfile -t -O "${#inputs[@]}" inputs < <(wit_files)
  local stamp
  stamp="$(sha256_of "${inputs[@]}")"
  if up_to_date "$out" "$stamp"; then
    log "js_notifier.wasm is up to date"
    return
  fi
  command -v "$NODE" >/dev/null || die "$NODE not found; install Node.js 20+ or set NODE"
  command -v "$NPM" >/dev/null || die "$NPM not found; install npm or set NPM"
  # node_modules is reinstalled only when the lock file changed.
  local lock_sum deps_stamp="$ROOT/$src/node_modules/.crisis-lock.sha256"
  lock_sum="$(sha256_of "$src/package-lock.json")"
  if [[ ! -f "$deps_stamp" || "$(cat "$deps_stamp")" != "$lock_sum" ]]; then
    log "installing componentize-js (npm ci in $src)"
    (cd "$ROOT/$src" && "$NPM" ci --no-audit --no-fund --loglevel=error >&2) \
      || die "npm ci failed in $src (network access to the npm registry?)"
    printf '%s\n' "$lock_sum" >"$deps_stamp"
  fi
  log "building js_notifier.wasm (componentize-js, ~10-60 s)"
  mkdir -p "$OUT"
  local tmp="$out.tmp.$$"
  (cd "$ROOT/$src" && "$NODE" build.mjs "$tmp" "$WIT" >&2) || { rm -f "$tmp"; die "componentize-js failed for $src"; }
  mv -f "$tmp" "$out"
  printf '%s\n' "$stamp" >"$out.stamp"
  log "wrote $out ($(stat -c %s "$out") bytes)"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(python js)
for t in "${targets[@]}"; do
  case "$t" in
    python) build_python ;;
    js) build_js ;;
    *) die "unknown example \`$t\`: use python or js" ;;
  esac
done
