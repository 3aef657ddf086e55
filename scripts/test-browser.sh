#!/usr/bin/env bash
# Browser tests: installs what it needs (skipping what is there at the right version), then
#   1. the native reference for the browser fixture        (cargo test -p r2unet-wasm)
#   2. wasm-pack test --headless --chrome --release          (CPU vs WebGPU vs native, DRIVE Dice, bad input)
#   3. scripts/build-wasm.sh                                 (pkg/ and web/)
#   4. Playwright end-to-end tests of the page               (tests/e2e: page, long use)
#   5. npm pack + a Vite consumer app in Chromium, its code  (tests/consumer)
#      type-checked against the installed package's types (tsc, strict)
#   5b. the packed package installed into plain Node.js       (tests/node)
#   6. native training through wgpu on SwiftShader's Vulkan  (the GPU code path of r2unet train)
# Real Chromium (Debian's), real SwiftShader WebGPU, real DRIVE images from ../shared/data (or
# $R2UNET_DATA). Tests that need the data say SKIPPED when it is absent; this script repeats those
# lines at the end. Any failure fails the script.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export R2UNET_DATA="${R2UNET_DATA:-$ROOT/../shared/data}"
log="$(mktemp)"
# Runs a command with its output in the log; a failure stops the script with the step's name.
# Each step runs in a subshell with errexit on, outside any `if` or `||`: there bash ignores
# errexit, and a step function would be judged by its last command alone.
check() {
  local name="$1"; shift
  set +e
  (set -e; "$@") 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc -ne 0 ]]; then echo "FAILED: $name (exit $rc)"; exit 1; fi
}
# Stage times, one "name<TAB>seconds" line each, for scripts/test.sh's table (when it asks).
stage_file="${R2UNET_STAGE_FILE:-/dev/null}"
stage_name=""; stage_start=$SECONDS
step() {
  [[ -n "$stage_name" ]] && printf '%s\t%d\n' "$stage_name" $((SECONDS - stage_start)) >> "$stage_file"
  stage_name="$*"; stage_start=$SECONDS
  echo "== $* ($(date +%T))"
}

step "tools"
check "scripts/install-tools.sh" scripts/install-tools.sh
[[ -d "$R2UNET_DATA/DRIVE" ]] || echo "SKIPPED: DRIVE data not found at $R2UNET_DATA/DRIVE: the Dice tests in the browser do not run" | tee -a "$log"

step "1. native reference of the browser fixture"
if [[ -n "${R2UNET_NATIVE_DONE:-}" ]]; then
  echo "   (ran with the workspace's native tests)"
else
  check "native tests of r2unet-wasm" cargo test --release -p r2unet-wasm
fi

step "2. wasm-pack test --headless --chrome --release (CPU, WebGPU on SwiftShader, DRIVE, bad input)"
# Same target dir, features and RUSTFLAGS as scripts/build-wasm.sh's WebGPU build, so the two share
# one build of burn.
wasm_tests() {
  cd crates/r2unet-wasm
  export CARGO_TARGET_DIR="${R2UNET_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}" RUSTFLAGS="-C target-feature=+simd128"
  # wasm-bindgen-test's own bound on the whole browser run (seconds); WebGPU on SwiftShader is slow.
  export WASM_BINDGEN_TEST_TIMEOUT=900
  timeout 3600 wasm-pack test --headless --chrome --release . --no-default-features -F webgpu,flex,simd
}
check "wasm-pack test" wasm_tests
if [[ ! -d "$R2UNET_DATA/DRIVE" ]]; then
  echo "SKIPPED: wasm-pack test drive_test_image_matches_its_label (no DRIVE data; cfg(drive_data) unset)" | tee -a "$log"
fi
if [[ ! -f "$R2UNET_DATA/CHASE_DB1/Image_11L.jpg" ]]; then
  echo "SKIPPED: wasm-pack test a_photo_from_another_camera_is_resampled_to_the_models_scale (no CHASE_DB1 data; cfg(chase_data) unset)" | tee -a "$log"
fi

step "3. build the package and the page"
check "scripts/build-wasm.sh" scripts/build-wasm.sh

step "4. Playwright: the page end to end"
page_tests() {
  cd tests/e2e
  npm ci --no-audit --no-fund --loglevel=error
  timeout 1800 node --test --test-concurrency=1 page.test.mjs
  # Long use (200 calls, memory bounds), a dying worker, A then B, storage and console (~1.5 min).
  timeout 900 node --test --test-concurrency=1 long-use.test.mjs
}
check "Playwright tests of the page" page_tests

step "5. npm pack + a Vite consumer app"
consumer_tests() {
  local tarballs
  tarballs="$(mktemp -d)"
  (cd pkg && npm pack --pack-destination "$tarballs" --loglevel=error)
  node tests/consumer/pack-check.mjs "$tarballs"/r2unet-wasm-*.tgz
  cd tests/consumer
  # `npm install`, not `npm ci`: npm 11's ci refuses vite 8's lock file (its Windows-only optional
  # dependency napi-windows-process-start-time is not in the lock, "Missing: ... from lock file").
  npm install --no-audit --no-fund --loglevel=error
  npm install --no-save --no-audit --no-fund --loglevel=error "$tarballs"/r2unet-wasm-*.tgz
  rm -rf dist "$tarballs"
  # The consumer's code against the installed package's generated types (strict).
  npx tsc -p tsconfig.json
  npx vite build --logLevel warn
  ls -la dist/assets | sed 's/^/  /'
  timeout 900 node --test --test-concurrency=1 consumer.test.mjs
}
check "npm pack + Vite consumer app" consumer_tests

step "5b. the packed package in plain Node.js (no bundler, no browser)"
node_tests() {
  local dir
  dir="$(mktemp -d)"
  (cd pkg && npm pack --pack-destination "$dir" --loglevel=error)
  cd "$dir"
  echo '{ "name": "r2unet-node-consumer", "private": true, "type": "module" }' > package.json
  npm install --no-save --no-audit --no-fund --loglevel=error ./r2unet-wasm-*.tgz
  cp "$ROOT/tests/node/node.test.mjs" .
  timeout 600 node --test node.test.mjs
  cd "$ROOT" && rm -rf "$dir"
}
check "the packed package in plain Node.js" node_tests

step "6. r2unet train --backend wgpu on SwiftShader's Vulkan driver (Chromium's), weights read back"
# The GPU code path of training (burn's wgpu runtime, autodiff on it, this project's fallbacks
# for its CPU kernels) on a software Vulkan device: slow, so a tiny model and one short epoch.
wgpu_training() {
  local cli="${R2UNET_CLI:-}"
  if [[ -z "$cli" ]]; then
    cargo build --release -p r2unet-cli
    cli="${CARGO_TARGET_DIR:-$ROOT/target}/release/r2unet"
  fi
  local icd=/usr/lib/chromium/vk_swiftshader_icd.json
  [[ -f "$icd" ]] || { echo "no SwiftShader Vulkan driver manifest at $icd"; return 1; }
  local run; run="$(mktemp -d)"
  # burn's own GPU ops: the lowered ones are checked by wgpu_matches_flex below, and on
  # SwiftShader (a GPU emulated on the CPU) their matmul makes a step about 9x slower.
  VK_ICD_FILENAMES="$icd" R2UNET_ALLOW_CPU_ADAPTER=1 R2UNET_GPU_OPS=burn timeout 900 "$cli" train --dataset drive \
    --data "$R2UNET_DATA/DRIVE" --out "$run/r" --backend wgpu --widths 8,16 --patches 96 \
    --batch 16 --epochs 1 2>&1 | tee "$run/out"
  grep -q "^backend: wgpu" "$run/out"
  grep -q "^backend: GPU ops: burn (R2UNET_GPU_OPS)" "$run/out"
  # No false alarm from the Vulkan drivers where XDG_RUNTIME_DIR is unset (as in CI): a run
  # that succeeds prints no "error:" line.
  if grep "^error:" "$run/out"; then echo "a successful run printed error lines"; return 1; fi
  # One epoch logged, with a finite loss; the weights load on the CPU.
  [[ $(wc -l < "$run/r/log.csv") -eq 2 ]]
  awk -F, 'NR == 2 && ($3 + 0 > 0) && ($3 + 0 < 10) { ok = 1 } END { exit !ok }' "$run/r/log.csv"
  "$cli" info "$run/r/best.bpk"

  # --backend auto times a training step on both (on wgpu with each set of GPU ops) and keeps the
  # faster: whichever it picks, the line must give both times and the pick must be the smaller
  # (speed itself is not asserted).
  VK_ICD_FILENAMES="$icd" R2UNET_ALLOW_CPU_ADAPTER=1 timeout 600 "$cli" train --dataset drive \
    --data "$R2UNET_DATA/DRIVE" --out "$run/auto" --backend auto --widths 8,16 --patches 32 \
    --batch 16 --epochs 1 2>&1 | tee "$run/auto.out"
  local line; line="$(grep "^backend: auto chose" "$run/auto.out")"
  echo "$line" | awk '{
      for (i = 1; i <= NF; i++) if ($i == "s" && $(i+1) == "on") t[$(i+2)] = $(i-1)
      pick = $4; sub(":", "", pick)
      other = pick == "wgpu" ? "flex" : "wgpu"
      ok = (pick in t) && (other in t) && (t[pick] + 0 <= t[other] + 0)
    } END { exit !ok }' || { echo "the auto pick is not the faster of the two timings"; return 1; }
  grep -q "^backend: $(echo "$line" | awk '{ sub(":", "", $4); print $4 }')\$" "$run/auto.out"
  if grep "^error:" "$run/auto.out"; then echo "a successful run printed error lines"; return 1; fi
  rm -rf "$run"
}

# The GPU lowerings against the CPU kernels: a training step of every architecture, outputs and
# every parameter's gradient, on SwiftShader's Vulkan.
wgpu_matches_flex() {
  local icd=/usr/lib/chromium/vk_swiftshader_icd.json
  [[ -f "$icd" ]] || { echo "no SwiftShader Vulkan driver manifest at $icd"; return 1; }
  # The test opens its own Vulkan instance, whose Wayland support prints a false "error:
  # XDG_RUNTIME_DIR is invalid" where that is unset (as in CI); the CLI hides it, a test cannot.
  local xdg="${XDG_RUNTIME_DIR:-}"
  [[ -n "$xdg" ]] || xdg="$(mktemp -d)"
  XDG_RUNTIME_DIR="$xdg" VK_ICD_FILENAMES="$icd" timeout 900 cargo test --release --workspace \
    --test wgpu_matches_flex -- --ignored --nocapture
}
if [[ -d "$R2UNET_DATA/DRIVE" ]]; then
  check "native training through wgpu (SwiftShader), and --backend auto's timed pick" wgpu_training
else
  echo "SKIPPED: native wgpu training (no DRIVE data)" | tee -a "$log"
fi

check "a training step on wgpu matches flex: outputs and gradients (SwiftShader)" wgpu_matches_flex

step "done"
if grep -q "SKIPPED" "$log"; then
  echo "== skipped:"
  grep -o "SKIPPED.*" "$log" | sort | uniq -c
fi
echo "== browser tests passed ($(date +%T))"
