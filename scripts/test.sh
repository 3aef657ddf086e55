#!/usr/bin/env bash
# Runs every test. Real data is read from ../shared/data (or $R2UNET_DATA); tests that need it
# print SKIPPED when it is absent, and this script repeats those lines at the end.
# Release mode throughout: burn's kernels are unusably slow unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)

start=$SECONDS
echo "== tools ($(date +%T))"
cargo --version
rustc --version

echo "== native tests: core, training, CLI end to end, the browser crate's native reference ($(date +%T))"
native=0
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log" || native=$?
echo "   native tests: $(( (SECONDS - start) / 60 )) min so far"

# The browser half: wasm-pack test in Chromium (CPU, WebGPU on SwiftShader, a DRIVE image, bad
# input), the package and page build, Playwright on the page, the packed package in a Vite app.
# It reuses what the native tests built: their CLI (to export the int8 weights) and their run of
# the browser crate's native reference. Its wasm builds also compile the core crate for wasm32.
browser=0
R2UNET_NATIVE_DONE=1 R2UNET_CLI="$PWD/target/release/r2unet" scripts/test-browser.sh 2>&1 | tee -a "$log" || browser=$?

if grep -q "SKIPPED" "$log"; then
  echo "== skipped:"
  grep "SKIPPED" "$log" | sort | uniq -c
fi
if [[ $native -ne 0 || $browser -ne 0 ]]; then
  echo "== FAILED after $(( (SECONDS - start) / 60 )) min: native tests exit $native, browser tests exit $browser"
  exit 1
fi
echo "== all tests passed in $(( (SECONDS - start) / 60 )) min ($(date +%T))"
