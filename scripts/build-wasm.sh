#!/usr/bin/env bash
# Builds the npm package r2unet-wasm in pkg/ and copies it into the page (web/pkg/).
#
#   scripts/build-wasm.sh               # both builds (CPU and WebGPU), int8 weights
#   R2UNET_WASM_BUILDS=cpu scripts/build-wasm.sh     # the CPU build only (quick; the page falls back to it)
#   R2UNET_WASM_PRECISION=f16 scripts/build-wasm.sh  # ship f16 (or f32: the files as they are)
#
# pkg/ holds two builds of crates/r2unet-wasm made with `wasm-pack build --target web`:
#   pkg/cpu/     features flex,simd         (burn-flex with wasm SIMD128)
#   pkg/webgpu/  features webgpu,flex,simd  (fetched by pkg/index.js only when a WebGPU adapter exists)
# plus pkg/models/<task>.bpk for every models/<task>.bpk in the repository (through
# `r2unet export --int8`: convolution kernels as int8 with a scale per output channel, a quarter
# of the f32 size; DRIVE test metrics equal to 3 decimals, README) and pkg/models/index.js listing them: the list
# of shipped tasks is the contents of models/, nothing else.
#
# pkg/index.d.ts is generated from the JSDoc types of pkg/index.js (tsc, pkg/package.json's dev
# dependency, installed by `npm ci` on the first build).
#
# Tools (scripts/install-tools.sh installs them): wasm-pack, wasm-bindgen-cli at the version of the
# wasm-bindgen crate in Cargo.lock, the wasm32-unknown-unknown target.
# wasm-pack's wasm-opt step is off (Cargo.toml metadata): Debian's wasm-opt 108 breaks the module
# after wasm-bindgen. With WASM_OPT=/path/to/wasm-opt (version >= 116) the outputs are optimised
# with -Oz after wasm-bindgen.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CRATE="$ROOT/crates/r2unet-wasm"
PKG="$ROOT/pkg"
BUILDS="${R2UNET_WASM_BUILDS:-cpu webgpu}"
# The environment of the wasm builds only (the native `r2unet export` below must not see it).
wasm_env=(
  # The native builds' target dir: RUSTFLAGS apply to the wasm32 units only (wasm-pack passes
  # --target), so the two share the host-side build scripts and proc-macros and rebuild nothing.
  CARGO_TARGET_DIR="${R2UNET_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
  # SIMD128 for burn-flex's element-wise kernels (the `simd` feature covers its gemm).
  RUSTFLAGS="-C target-feature=+simd128"
)
# Optional size profile for the wasm builds (R2UNET_WASM_SIZE=1: opt-level s, fat LTO, one codegen
# unit). Off by default so that the package and `wasm-pack test --release` share one build of burn.
if [[ -n "${R2UNET_WASM_SIZE:-}" ]]; then
  wasm_env+=(
    CARGO_PROFILE_RELEASE_OPT_LEVEL="${R2UNET_WASM_OPT_LEVEL:-s}"
    CARGO_PROFILE_RELEASE_LTO=true
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
    CARGO_PROFILE_RELEASE_PANIC=abort
  )
fi

die() { echo "build-wasm: $*" >&2; exit 1; }

want_bindgen="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
command -v wasm-pack >/dev/null || die "wasm-pack is missing: cargo install --locked wasm-pack (or run scripts/test-browser.sh, which installs it)"
command -v wasm-bindgen >/dev/null || die "wasm-bindgen is missing: cargo install wasm-bindgen-cli@$want_bindgen"
have_bindgen="$(wasm-bindgen --version | awk '{print $2}')"
[[ "$have_bindgen" == "$want_bindgen" ]] || die "wasm-bindgen $have_bindgen is installed but Cargo.lock has $want_bindgen: cargo install wasm-bindgen-cli@$want_bindgen"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

features_of() {
  case "$1" in
    cpu) echo "flex,simd" ;;
    webgpu) echo "webgpu,flex,simd" ;;
    *) die "unknown build '$1' (expected cpu or webgpu)" ;;
  esac
}

for build in $BUILDS; do
  out="$PKG/$build"
  echo "== wasm-pack: $build build (features $(features_of "$build"); ${wasm_env[*]})"
  start=$SECONDS
  # wasm-pack looks for its own update online and warns when it cannot; that is harmless.
  env "${wasm_env[@]}" wasm-pack --quiet build --target web --release --no-pack --out-dir "$out" --out-name r2unet_wasm \
    "$CRATE" --no-default-features -F "$(features_of "$build")"
  rm -f "$out/.gitignore" "$out/package.json" "$out/README.md"
  if [[ -n "${WASM_OPT:-}" ]]; then
    "$WASM_OPT" -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$out/r2unet_wasm_bg.wasm" -o "$out/r2unet_wasm_bg.wasm"
  fi
  # The function-name section is for debugging only: 0.38 MB raw, 0.09 MB gzipped of the CPU build.
  node "$ROOT/scripts/strip-wasm-names.mjs" "$out/r2unet_wasm_bg.wasm"
  echo "   $build build: $((SECONDS - start)) s"
done
for build in cpu webgpu; do
  [[ -f "$PKG/$build/r2unet_wasm_bg.wasm" ]] || echo "build-wasm: note: pkg/$build is not built (R2UNET_WASM_BUILDS=\"$BUILDS\")" >&2
done

echo "== models"
rm -rf "$PKG/models"
mkdir -p "$PKG/models"
shopt -s nullglob
models=("$ROOT"/models/*.bpk)
[[ ${#models[@]} -gt 0 ]] || echo "build-wasm: note: no models/*.bpk: the package ships no weights" >&2
{
  echo "// Generated by scripts/build-wasm.sh from models/*.bpk; do not edit."
  echo "// Static new URL(..., import.meta.url) per file, so bundlers (Vite) find and copy them."
  echo "export const MODELS = {"
} > "$PKG/models/index.js"
for src in "${models[@]}"; do
  task="$(basename "$src" .bpk)"
  case "$task" in retina|skin|lung) ;; *) echo "build-wasm: skipping models/$task.bpk (not a task name)" >&2; continue ;; esac
  dst="$PKG/models/$task.bpk"
  precision="${R2UNET_WASM_PRECISION:-int8}"
  case "$precision" in
    f32) cp "$src" "$dst" ;;
    f16|int8)
      # The CLI's own export. R2UNET_CLI: a CLI binary already built (scripts/test.sh passes the
      # one its tests built).
      if [[ -n "${R2UNET_CLI:-}" ]]; then
        "$R2UNET_CLI" export --weights "$src" --out "$dst" "--$precision" >/dev/null
      else
        cargo run --quiet --release -p r2unet-cli -- export --weights "$src" --out "$dst" "--$precision" >/dev/null
      fi ;;
    *) die "R2UNET_WASM_PRECISION must be f32, f16 or int8, not '$precision'" ;;
  esac
  bytes=$(stat -c %s "$dst")
  sha=$(sha256sum "$dst" | cut -c1-64)
  echo "  $task: { url: new URL('./$task.bpk', import.meta.url), bytes: $bytes, sha256: '$sha', precision: '$precision' }," >> "$PKG/models/index.js"
done
echo "};" >> "$PKG/models/index.js"

echo "== types: pkg/index.d.ts from pkg/index.js's JSDoc (tsc)"
# TypeScript is the package's one dev dependency (pkg/package.json, pinned by its lock file).
[[ -x "$PKG/node_modules/.bin/tsc" ]] || npm ci --prefix "$PKG" --no-audit --no-fund --loglevel=error
"$PKG/node_modules/.bin/tsc" -p "$PKG/tsconfig.json"

echo "== sizes (gzip -9)"
size_line() {
  local f="$1" raw gz
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  printf '  %-32s raw %10d B (%6.2f MB)   gzip %10d B (%6.2f MB)\n' "${f#"$ROOT"/}" "$raw" "$(echo "$raw/1000000" | bc -l)" "$gz" "$(echo "$gz/1000000" | bc -l)"
  echo "$gz" > "$f.gzsize"
}
for f in "$PKG"/cpu/r2unet_wasm_bg.wasm "$PKG"/webgpu/r2unet_wasm_bg.wasm "$PKG"/models/*.bpk; do
  [[ -f "$f" ]] && size_line "$f"
done
if [[ -f "$PKG/cpu/r2unet_wasm_bg.wasm.gzsize" ]]; then
  for m in "$PKG"/models/*.bpk; do
    total=$(( $(cat "$PKG/cpu/r2unet_wasm_bg.wasm.gzsize") + $(cat "$m.gzsize") ))
    printf '  CPU wasm + %-20s gzip %10d B (%6.2f MB; goal <= 3 MB)\n' "$(basename "$m")" "$total" "$(echo "$total/1000000" | bc -l)"
  done
fi
rm -f "$PKG"/*/*.gzsize

echo "== the page: web/pkg/ (a copy of the package) and web/samples/"
rm -rf "$ROOT/web/pkg"
mkdir -p "$ROOT/web/pkg"
cp -r "$PKG"/index.js "$PKG"/pool-worker.js "$PKG"/index.d.ts "$PKG"/package.json "$PKG"/models "$ROOT/web/pkg/"
for build in cpu webgpu; do
  [[ -d "$PKG/$build" ]] && cp -r "$PKG/$build" "$ROOT/web/pkg/"
done
# Samples come from the data sets at build time; the data is never copied into the repository.
DATA="${R2UNET_DATA:-$ROOT/../shared/data}"
mkdir -p "$ROOT/web/samples"
copy_sample() {
  if [[ -f "$1" ]]; then cp "$1" "$ROOT/web/samples/$2"; chmod u+w "$ROOT/web/samples/$2"; echo "  web/samples/$2"
  else echo "build-wasm: note: sample source $1 not found; its button will say so" >&2; fi
}
copy_sample "$DATA/DRIVE/test/images/01_test.tif" drive_01_test.tif
copy_sample "$DATA/ISIC2017/ISIC-2017_Validation_Data/ISIC_0001769.jpg" isic_0001769.jpg
# A slice of the lung model's test split (seeded 80/10/10; crates/r2unet-train/src/datasets/lung.rs).
copy_sample "$DATA/LUNG/2d_images/ID_0151_Z_0140.tif" lung_ID_0151_Z_0140.tif
echo "done: pkg/ (npm package r2unet-wasm) and web/ (serve with scripts/serve.sh)"
