#!/usr/bin/env bash
# What issue 24 asks to measure on a GPU, as one run that fits a device loan (about 6 minutes of
# commands when each bench takes half a minute): r2unet training on the GPU with each set of GPU
# ops (R2UNET_GPU_OPS), in the default build and in the `autotune` build (burn's kernel autotuner
# on), against flex on 2 threads (the brief's 2-core CPU) and on all cores; the DRIVE image; what
# `--backend auto` picks; and where the GPU time goes (scripts/gpu-profile.sh).
#
#   scripts/gpu-bench.sh --pack                     # here: build both CLIs into gpu-carry/
#   scripts/gpu-bench.sh                            # there: run the CLIs in gpu-carry/
#   SOFTWARE=1 STEPS=1 BATCH=4 scripts/gpu-bench.sh # a rehearsal on SwiftShader's Vulkan
#
# The device tool copies the working tree but not target/, and carries at most 64 MiB: --pack
# writes the two stripped CLIs in xz (about 23 MB each) and this machine's Vulkan loader
# (libvulkan.so.1, which the device machine may lack; its NVIDIA driver brings the ICD) to
# gpu-carry/ (ignored by git). On the device: command "scripts/gpu-bench.sh", carry
# ["gpu-carry"]; OUT defaults to $OUT there, so the reports come back.
#
# Nothing is asserted. Every figure goes to $OUT/report.md beside the command that printed it,
# the most wanted first, so that a run cut short still has them. A step that fails or passes its
# time limit is reported as such and the rest go on.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARRY="$ROOT/gpu-carry"

if [[ "${1:-}" == "--pack" ]]; then
  set -e
  target="${CARGO_TARGET_DIR:-$ROOT/target}"
  mkdir -p "$CARRY"
  for build in default autotune; do
    features=()
    [[ $build == autotune ]] && features=(--features autotune)
    cargo build --release -p r2unet-cli "${features[@]}"
    strip -o "$CARRY/r2unet-$build" "$target/release/r2unet"
    xz -T0 -f "$CARRY/r2unet-$build"
  done
  loader="$(ldconfig -p | awk '/libvulkan\.so\.1 / {print $NF; exit}')"
  [[ -n "$loader" ]] || { echo "error: no libvulkan.so.1 here to carry (apt-get install libvulkan1)" >&2; exit 1; }
  cp -L "$loader" "$CARRY/libvulkan.so.1"
  git rev-parse --short HEAD > "$CARRY/commit"
  du -sh "$CARRY"
  exit 0
fi

OUT="${OUT:-$ROOT/bench/out/gpu}"
mkdir -p "$OUT"
DRIVE="${DRIVE:-${R2UNET_DATA:-../shared/data}/DRIVE}"
STEPS="${STEPS:-10}"
BATCH="${BATCH:-32}"
adapter="a GPU"
if [[ "${SOFTWARE:-0}" == 1 ]]; then
  icd=/usr/lib/chromium/vk_swiftshader_icd.json
  [[ -f "$icd" ]] || { echo "error: no SwiftShader Vulkan driver manifest at $icd (scripts/install-tools.sh)" >&2; exit 1; }
  export VK_ICD_FILENAMES="$icd" R2UNET_ALLOW_CPU_ADAPTER=1 SOFTWARE
  adapter="SwiftShader's Vulkan on the CPU: its times are not a GPU's"
fi

# The CLIs: gpu-carry/'s, else this checkout's default build.
declare -A CLI
bin="$(mktemp -d)"
for build in default autotune; do
  if [[ -f "$CARRY/r2unet-$build.xz" ]]; then
    # A bare machine may lack xz; Python's lzma reads the same file.
    if command -v xz >/dev/null; then
      xz -dc "$CARRY/r2unet-$build.xz" > "$bin/r2unet-$build"
    else
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$CARRY/r2unet-$build.xz" "$bin/r2unet-$build"
    fi || { echo "error: $CARRY/r2unet-$build.xz: cannot unpack" >&2; exit 1; }
    chmod +x "$bin/r2unet-$build"
    CLI[$build]="$bin/r2unet-$build"
  fi
done
if [[ ${#CLI[@]} -eq 0 ]]; then
  cargo build --release -p r2unet-cli --quiet || exit 1
  CLI[default]="${CARGO_TARGET_DIR:-$ROOT/target}/release/r2unet"
fi
builds=(default)
[[ -n "${CLI[autotune]:-}" ]] && builds+=(autotune)
if [[ -f "$CARRY/libvulkan.so.1" ]] && ! ldconfig -p | grep -q 'libvulkan\.so\.1 '; then
  export LD_LIBRARY_PATH="$CARRY${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

report="$OUT/report.md"
{
  echo "# scripts/gpu-bench.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), nproc $(nproc)"
  echo "- adapter: $adapter"
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none')"
  echo "- CLIs: ${builds[*]} (commit $(cat "$CARRY/commit" 2>/dev/null || git rev-parse --short HEAD))"
  echo
  echo "| step | command | result |"
  echo "|---|---|---|"
} > "$report"

# run NAME BUILD LIMIT ENV... -- ARGS...: one bench, its JSON to $OUT/NAME.json, log to NAME.log.
run() {
  local name="$1" build="$2" limit="$3"; shift 3
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  echo "== $name: ${envs[*]} r2unet ($build build) $* ($(date +%T))"
  local rc=0
  env "${envs[@]}" timeout "$limit" "${CLI[$build]}" "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 || rc=$?
  tail -5 "$OUT/$name.log"
  local result
  if [[ $rc -eq 0 ]]; then
    result="$(python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else [r]
print("; ".join("%s: %.1f patches/s%s" % (x["backend"], x["train_patches_per_s"],
  "" if x.get("infer_drive_image_s") is None else ", DRIVE image %.3f s" % x["infer_drive_image_s"]) for x in r))' "$OUT/$name.json")"
  elif [[ $rc -eq 124 ]]; then
    result="timed out after $limit s"
  else
    result="failed (status $rc): $(grep -m1 '^error' "$OUT/$name.log")"
  fi
  echo "| $name | \`${envs[*]} r2unet $*\` ($build build) | $result |" >> "$report"
}

args=(--data "$DRIVE" --steps "$STEPS")
run flex-2-threads default 120 RAYON_NUM_THREADS=2 -- bench --backend flex "${args[@]}" --batch "$BATCH" --images 1
for build in "${builds[@]}"; do
  for ops in lowered burn; do
    run "$build-wgpu-$ops" "$build" 150 R2UNET_GPU_OPS=$ops -- bench --backend wgpu "${args[@]}" --batch "$BATCH" --images 3
  done
done
for build in "${builds[@]}"; do
  for ops in lowered burn; do
    run "$build-wgpu-$ops-batch$((BATCH * 4))" "$build" 150 R2UNET_GPU_OPS=$ops -- bench --backend wgpu "${args[@]}" --batch $((BATCH * 4)) --images 0
  done
done
[[ "$(nproc)" == 2 ]] || run "flex-$(nproc)-threads" default 120 RAYON_NUM_THREADS="$(nproc)" -- bench --backend flex "${args[@]}" --batch "$BATCH" --images 1
for build in "${builds[@]}"; do
  run "$build-auto" "$build" 150 RAYON_NUM_THREADS=2 -- bench --backend auto "${args[@]}" --batch "$BATCH" --images 0
  echo "$build build, auto: $(grep -m1 -E 'auto chose|no wgpu adapter|timing probe' "$OUT/$build-auto.log" || echo 'no choice printed')" >> "$report"
done
for build in "${builds[@]}"; do
  echo "== profile, $build build, lowered ops ($(date +%T))"
  R2UNET_CLI="${CLI[$build]}" R2UNET_GPU_OPS=lowered STEPS=3 BATCH="$BATCH" DRIVE="$DRIVE" timeout 120 \
    scripts/gpu-profile.sh > "$OUT/profile-$build.txt" 2>&1 \
    || echo "(gpu-profile.sh, $build build: status $?)" >> "$OUT/profile-$build.txt"
  tail -25 "$OUT/profile-$build.txt"
done

echo
cat "$report"
