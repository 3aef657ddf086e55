#!/usr/bin/env bash
# Runs every test. Real data is read from ../shared/data (or $R2UNET_DATA); tests that need it
# print SKIPPED when it is absent. Release mode: burn's kernels are unusably slow unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools"
cargo --version
rustc --version

echo "== native tests (core, training, CLI)"
cargo test --release --workspace --no-fail-fast 2>&1 | tee /tmp/r2unet-native-tests.log
if grep -q "SKIPPED" /tmp/r2unet-native-tests.log; then
  echo "note: some tests were skipped (see SKIPPED lines above)"
fi
