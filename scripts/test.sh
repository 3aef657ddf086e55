#!/usr/bin/env bash
# Runs every test. Real data is read from ../shared/data (or $R2UNET_DATA); tests that need it
# print SKIPPED when it is absent, and this script repeats those lines at the end.
# Release mode throughout: burn's kernels are unusably slow unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)

echo "== tools"
cargo --version
rustc --version
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

echo "== the core crate builds for wasm32-unknown-unknown (CPU backend, SIMD)"
cargo check --release -p r2unet-core --target wasm32-unknown-unknown --no-default-features --features flex,simd

echo "== native tests: core, training, CLI end to end"
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log"

# The browser half (wasm-pack tests in Chromium, the page with Playwright, the npm package in a
# Vite app) has not yet run end to end inside CI's 90-minute budget (its wasm builds alone took
# 25 minutes each on a shared 2-core machine), so it is opt-in until it has: say so loudly.
if [[ "${R2UNET_BROWSER_TESTS:-0}" == 1 ]]; then
  scripts/test-browser.sh
else
  echo "SKIPPED: browser tests (scripts/test-browser.sh; R2UNET_BROWSER_TESTS=1 scripts/test.sh runs them too)" | tee -a "$log"
fi

if grep -q "SKIPPED" "$log"; then
  echo "== skipped:"
  grep "SKIPPED" "$log" | sort | uniq -c
fi
