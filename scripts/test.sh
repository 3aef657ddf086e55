#!/usr/bin/env bash
# Runs every test (what .ci/run runs), fast lanes first, and prints how long each stage took:
#
#   tools    scripts/install-tools.sh: Chromium, ChromeDriver, wasm-pack, wasm-bindgen-cli, the wasm32
#            target, when missing. Started in the background at once; the browser stage waits for it.
#   lint     cargo fmt --check; tsc over pkg/ and web/ (the JS contract); cargo doc -D warnings
#            (intra-doc links). Seconds on a machine that has built before.
#   build    cargo test --release --workspace --no-run, then the wasm32 build of the browser tests,
#            both with clippy -D warnings on the workspace's crates (clippy-driver as the rustc
#            wrapper: one build for the lints, the tests and the CLI). On a machine that has built
#            before, a lint fails within minutes; all lints run before any long test.
#   native   cargo test --release --workspace: core, training, the CLI end to end on real data, the
#            browser crate's native reference; then the CPU kernels' tests again with their
#            instruction set held to AVX2 and to the baseline (R2UNET_MAX_CPU_ISA; no build).
#   kills    scripts/kill-resume.sh, short: 6-12 SIGKILLs of a 10-epoch training, resumed each time
#            (about 1.5 min).
#   fuzz     scripts/fuzz.sh --seconds 20: each libFuzzer target (fuzz/) for 20 s on the nightly
#            toolchain, in its own build folder (~/.cache/r2unet/fuzz-target); any crash, hang or
#            runaway allocation fails the run. SKIPPED without a nightly toolchain.
#   browser  scripts/test-browser.sh: wasm-pack test in Chromium, the package and page build,
#            Playwright on the page, the packed package in a Vite app, training through wgpu.
#
# Builds are shared: every cargo command here (native and wasm32, tests, the CLI, the package)
# uses one target dir per machine, $R2UNET_TARGET_DIR (default ~/.cache/r2unet/target), so a new
# clone on a machine that has built the project before compiles only the workspace's own crates,
# not burn. R2UNET_TARGET_DIR=target keeps the build inside the clone. A fresh machine starts
# from nothing and fills it. Disk use: 4.4 GB after a full run (tests/README.md).
#
# Real data is read from ../shared/data (or $R2UNET_DATA); tests that need it print SKIPPED when it
# is absent, and this script repeats those lines at the end.
# Release mode throughout: burn's kernels are unusably slow unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/r2unet"
target="${R2UNET_TARGET_DIR:-$cache/target}"
[[ "$target" = /* ]] || target="$ROOT/$target"
mkdir -p "$target"
export CARGO_TARGET_DIR="$target" R2UNET_WASM_TARGET_DIR="$target"
# Set once for every stage: the wasm crate's build script reads it (to embed test images), so a
# stage that saw another value would rebuild that crate.
export R2UNET_DATA="${R2UNET_DATA:-$ROOT/../shared/data}"
export R2UNET_TOOLS_TARGET_DIR="${R2UNET_TOOLS_TARGET_DIR:-$cache/tools-target}"
log=$(mktemp)
stages=$(mktemp)
tools_log=$(mktemp)

start=$SECONDS
stage_name=""; stage_start=$SECONDS
stage() {
  [[ -n "$stage_name" ]] && printf '%s\t%d\n' "$stage_name" $((SECONDS - stage_start)) >> "$stages"
  stage_name="$1"; stage_start=$SECONDS
  [[ -n "$1" ]] && echo "== $1 ($(date +%T), $(( (SECONDS - start) / 60 )) min in)"
  return 0
}
table() {
  stage ""
  echo "== stage times (wall clock; tools ran in the background from the start)"
  awk -F'\t' '{ printf "   %-100s %3d:%02d\n", substr($1, 1, 100), $2 / 60, $2 % 60 }' "$stages"
  printf '   %-100s %3d:%02d\n' "total" $(( (SECONDS - start) / 60 )) $(( (SECONDS - start) % 60 ))
}

echo "== tools ($(date +%T)): cargo target dir $CARGO_TARGET_DIR"
cargo --version
rustc --version
tools_time=$(mktemp)
# Its own duration goes to $tools_time (the wait below may come long after it finished).
( t0=$SECONDS; rc=0; scripts/install-tools.sh > "$tools_log" 2>&1 || rc=$?; echo $((SECONDS - t0)) > "$tools_time"; exit $rc ) &
tools_pid=$!

fail() {
  table
  echo "== FAILED: $1 after $(( (SECONDS - start) / 60 )) min"
  kill "$tools_pid" 2>/dev/null || true
  exit 1
}

stage "lint: cargo fmt --check"
cargo fmt --all --check || fail "cargo fmt --check (run cargo fmt --all)"

stage "lint: tsc --noEmit over pkg/ (strict) and web/ (the package's JSDoc contract)"
# TypeScript is pkg/package.json's one dev dependency (pinned by pkg/package-lock.json).
if [[ ! -x pkg/node_modules/.bin/tsc ]]; then
  npm ci --prefix pkg --no-audit --no-fund --loglevel=error 2>&1 | tee -a "$log" || fail "npm ci --prefix pkg (TypeScript)"
fi
pkg/node_modules/.bin/tsc -p pkg --noEmit --emitDeclarationOnly false 2>&1 | tee -a "$log" || fail "tsc -p pkg"
pkg/node_modules/.bin/tsc -p web 2>&1 | tee -a "$log" || fail "tsc -p web"

stage "lint: licences and sources of every crate (scripts/check-licenses.mjs)"
cargo metadata --format-version 1 --locked --quiet 2>>"$log" | node scripts/check-licenses.mjs | tail -1 | tee -a "$log" ||
  fail "licence/source check"

stage "lint: banned crates in the build, duplicates counted (scripts/check-bans.mjs)"
cargo tree --workspace --target all -e normal,build --prefix none --locked 2>>"$log" |
  node scripts/check-bans.mjs | tee -a "$log" || fail "bans check"

stage "lint: cargo doc --workspace --no-deps, RUSTDOCFLAGS=-D warnings (broken intra-doc links)"
# Its own check-mode build of the dependencies (rustdoc cannot use the release build's); about
# 4.5 minutes once per machine, seconds after that.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet 2>&1 | tee -a "$log" || fail "cargo doc -D warnings"

# clippy runs inside the builds below rather than as a build of its own: clippy-driver as the
# workspace's rustc wrapper (what `cargo clippy` does, minus its check-only build of every
# dependency) lints each workspace crate while compiling it, so lints and tests share one build
# and the machine compiles burn once per target, not twice. CLIPPY_ARGS is how cargo-clippy hands
# its `-- -D warnings` to the driver; the driver declares it, so changing it rebuilds what it linted.
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" ||
  fail "clippy-driver not found (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

stage "native build + clippy -D warnings: cargo test --release --workspace --no-run"
cargo test --release --workspace --no-run --quiet 2>&1 | tee -a "$log" || fail "the native build or clippy"

stage "wasm32 build + clippy -D warnings of the browser tests (reused by wasm-pack test)"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# Exactly what scripts/test-browser.sh's `wasm-pack test --release` builds (same features,
# RUSTFLAGS and target dir), so it finds this build done.
(cd crates/r2unet-wasm && RUSTFLAGS="-C target-feature=+simd128" cargo build --tests --release --quiet \
  --target wasm32-unknown-unknown --no-default-features -F webgpu,flex,simd) 2>&1 | tee -a "$log" ||
  fail "the wasm32 build or clippy of crates/r2unet-wasm"

stage "native tests: core, training, CLI end to end, the browser crate's native reference"
native=0
cargo test --release --workspace --no-fail-fast 2>&1 | tee -a "$log" || native=$?

stage "native tests: the CPU kernels' tests again, held to AVX2 and to the baseline (R2UNET_MAX_CPU_ISA)"
# The same test binaries (no build): on an AVX-512 machine the run above takes the AVX-512 paths,
# and these take the paths of CPUs without them, each checked against im2col and burn's ops.
isa_log=$(mktemp)
for isa in avx2 baseline; do
  rc=0
  R2UNET_MAX_CPU_ISA=$isa cargo test --release --workspace --lib --no-fail-fast -- ops:: \
    > "$isa_log" 2>&1 || rc=$?
  cat "$isa_log" >> "$log"
  echo "   R2UNET_MAX_CPU_ISA=$isa: exit $rc"
  grep -E '^test result: ok. [1-9]|FAILED|panicked' "$isa_log" || true
  [[ $rc -eq 0 ]] || native=1
done

stage "kill/resume: r2unet train SIGKILLed 6-12 times (most aimed at checkpoint writes), resumed, metrics bit-identical"
# The short form of scripts/kill-resume.sh (RELIABILITY.md has the long run: 33 kills, and the
# full disk, which the CLI test above covers on one size).
kills=0
if [[ -d "$R2UNET_DATA/DRIVE" ]]; then
  EPOCHS=10 PATCHES=32 MIN_KILLS=6 MAX_KILLS=12 DISK=0 scripts/kill-resume.sh 2>&1 | tee -a "$log" || kills=1
else
  echo "kill/resume: SKIPPED: $R2UNET_DATA/DRIVE not found (set R2UNET_DATA)" | tee -a "$log"
fi

stage "fuzz: every fuzz target for 20 s (scripts/fuzz.sh; nightly, instrumented, own build folder)"
fuzz=0
rustfmt --edition 2024 --check fuzz/src/lib.rs fuzz/src/bin/*.rs fuzz/fuzz_targets/*.rs 2>&1 | tee -a "$log" || fuzz=1
scripts/fuzz.sh --seconds "${R2UNET_FUZZ_SECONDS:-20}" 2>&1 | tee -a "$log" || fuzz=1

stage "tools: waiting for scripts/install-tools.sh"
tools=0
wait "$tools_pid" || tools=$?
sed 's/^/   /' "$tools_log"
tools_secs=$(cat "$tools_time" 2>/dev/null || echo 0)
echo "   scripts/install-tools.sh took $((tools_secs / 60)) min $((tools_secs % 60)) s in the background"
printf '%s\t%d\n' "   (scripts/install-tools.sh, in the background from the start, alongside the stages above)" "$tools_secs" >> "$stages"
if [[ $tools -ne 0 ]]; then
  table
  echo "== FAILED: scripts/install-tools.sh exit $tools (native tests exit $native, kill/resume $kills, fuzz $fuzz)"
  exit 1
fi

# The browser half reuses what the native tests built: their CLI (to export the int8 weights) and
# their run of the browser crate's native reference. Its wasm builds share the target dir.
stage ""
browser=0
R2UNET_NATIVE_DONE=1 R2UNET_CLI="$CARGO_TARGET_DIR/release/r2unet" R2UNET_STAGE_FILE="$stages" \
  scripts/test-browser.sh 2>&1 | tee -a "$log" || browser=$?

table
if grep -q "SKIPPED" "$log"; then
  echo "== skipped:"
  grep "SKIPPED" "$log" | sort | uniq -c
fi
if [[ $native -ne 0 || $kills -ne 0 || $fuzz -ne 0 || $browser -ne 0 ]]; then
  echo "== FAILED after $(( (SECONDS - start) / 60 )) min: native tests exit $native, kill/resume $kills, fuzz $fuzz, browser tests exit $browser"
  exit 1
fi
echo "== all tests passed in $(( (SECONDS - start) / 60 )) min ($(date +%T))"
