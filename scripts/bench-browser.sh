#!/usr/bin/env bash
# Browser benchmark of the page in headless Chromium (prints a markdown table; see README "Browser"):
# cold load to first mask, one DRIVE image on the CPU build and on WebGPU, package sizes.
#   scripts/bench-browser.sh                             # WebGPU on a 128x128 piece (SwiftShader is slow)
#   R2UNET_BENCH_WEBGPU_FULL=1 scripts/bench-browser.sh  # the whole image on WebGPU too
# Needs the package built (scripts/build-wasm.sh) and the tools of scripts/test-browser.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$ROOT/web/pkg/cpu/r2unet_wasm.js" ]] || "$ROOT/scripts/build-wasm.sh"
cd "$ROOT/tests/e2e"
[[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund --loglevel=error
exec node bench.mjs
