#!/usr/bin/env bash
# Builds {{name}}.wasm (a WebAssembly component) next to this script, where
# `crisis plugin test {{name}}.wasm` finds cases/ beside it.
# Environment: CARGO_TARGET_DIR (default: target/ here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
echo "wrote $PWD/{{name}}.wasm"
