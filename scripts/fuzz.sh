#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through libfuzzer-sys, on the nightly toolchain) of every
# entry point of r2unet that takes outside bytes; the targets are in fuzz/ (fuzz/src/lib.rs says
# what each one does):
#
#   decode         image_io::decode, every format (PNG, JPEG, TIFF, GIF, BMP, PPM/PGM)
#   weights        weights::read_bundle / from_bytes: the burnpack container, its metadata (the
#                  model and preprocessing configs, int8 scales), the model built from them
#   preprocess     preprocess::prepare for every task, on images of any size (1x1 up) and content
#   segment_input  Segmenter.segment's input path: file bytes or {width, height, data} RGBA, the
#                  options, preprocessing, the tiled forward pass on the CPU, the mask
#
#   scripts/fuzz.sh [--runs N | --seconds S] [--sanitizer address|none] [TARGET...]
#
# --sanitizer none builds without AddressSanitizer (cargo fuzz's `-s none`): about 4x the inputs per
# second (decode: 915/s against 224/s), for the long runs. r2unet and its decoders are safe Rust apart from a few audited
# unsafe blocks in dependencies, so what the long run looks for (panics, overflows, hangs,
# runaway allocations) is caught either way; the short runs of `.ci/run` keep AddressSanitizer.
#
# Default: 1,000,000 inputs per target (-runs), all targets, one after the other. Prints per
# target the inputs executed, the wall time and the result, and exits 1 if any target crashed,
# hung (-timeout, 10 s an input) or ran out of memory (-rss_limit_mb 4096 / -malloc_limit_mb 2048).
# A crashing input is kept under $R2UNET_FUZZ_DIR/artifacts/TARGET/; reproduce it with
# `$bin/TARGET FILE`, and once fixed commit it under
# crates/r2unet-core/tests/fuzz-regressions/TARGET/ (the native tests replay every such file).
#
# Nothing here touches the project's build: the instrumented build (sanitizer coverage,
# AddressSanitizer, debug assertions and overflow checks, as cargo-fuzz builds) has its own
# target dir, $R2UNET_FUZZ_TARGET_DIR (default ~/.cache/r2unet/fuzz-target), and the corpora
# live in $R2UNET_FUZZ_DIR (default ~/.cache/r2unet/fuzz): seeds/ is rebuilt on every run by
# `make-corpus` from the real files in $R2UNET_DATA (default ../shared/data) and the shipped
# models, corpus/ keeps what the fuzzer found between runs. No data is copied into the
# repository. No tool beyond the nightly toolchain is installed (cargo-fuzz is not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/r2unet"
work="${R2UNET_FUZZ_DIR:-$cache/fuzz}"
export R2UNET_DATA="${R2UNET_DATA:-$ROOT/../shared/data}"
toolchain="${R2UNET_FUZZ_TOOLCHAIN:-nightly}"
triple="x86_64-unknown-linux-gnu"
all_targets=(decode weights preprocess segment_input)

runs=1000000
seconds=""
sanitizer=address
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; seconds=""; shift 2 ;;
    --seconds) seconds="$2"; runs=""; shift 2 ;;
    --sanitizer)
      [[ "$2" == address || "$2" == none ]] || { echo "fuzz.sh: --sanitizer takes address or none, got $2" >&2; exit 2; }
      sanitizer="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *)
      [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "fuzz.sh: unknown target $1 (${all_targets[*]})" >&2; exit 2; }
      targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
# One build folder per sanitizer: switching does not rebuild the other.
default_dir="$cache/fuzz-target"
[[ $sanitizer == none ]] && default_dir="$cache/fuzz-target-nosan"
export CARGO_TARGET_DIR="${R2UNET_FUZZ_TARGET_DIR:-$default_dir}"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: SKIPPED: no $toolchain toolchain (rustup toolchain install $toolchain --profile minimal)"
  exit 0
fi

# scripts/test.sh builds the workspace with stable clippy-driver as the rustc wrapper; the nightly
# build here must not inherit it.
unset RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# The flags cargo-fuzz passes (cargo fuzz build, default options), so that no extra tool is needed.
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cdebug-assertions \
-Coverflow_checks -Cforce-frame-pointers"
# build SANITIZER DIR CARGO-ARGS...
build() {
  local san="$1" dir="$2"; shift 2
  local rf="$flags"
  [[ $san == address ]] && rf="$rf -Zsanitizer=address"
  (cd fuzz && RUSTFLAGS="$rf" CARGO_TARGET_DIR="$dir" \
    cargo "+$toolchain" build --release --locked --quiet --target "$triple" "$@")
}
echo "fuzz.sh: $(rustup run "$toolchain" rustc --version); sanitizer $sanitizer; build folder $CARGO_TARGET_DIR"
t0=$SECONDS
bin="$CARGO_TARGET_DIR/$triple/release"
if [[ $sanitizer == address ]]; then
  build address "$CARGO_TARGET_DIR" --bins
  corpus_tool="$bin/make-corpus"
else
  # make-corpus is a plain program: without AddressSanitizer's runtime nothing defines the
  # coverage hooks its instrumented dependencies call (only libFuzzer does, in the targets), so
  # it does not link here; the AddressSanitizer build's copy makes the seeds (built if missing).
  bins=()
  for t in "${targets[@]}"; do bins+=(--bin "$t"); done
  build none "$CARGO_TARGET_DIR" "${bins[@]}"
  build address "$cache/fuzz-target" --bin make-corpus
  corpus_tool="$cache/fuzz-target/$triple/release/make-corpus"
fi
echo "fuzz.sh: built in $((SECONDS - t0)) s"

"$corpus_tool" "$work/seeds"

# Largest input per target: the biggest seed (the shipped model's int8 copy for weights, a 256 x
# 256 RGBA image for segment_input), not much more.
max_len() {
  case "$1" in
    decode) echo 131072 ;;
    weights) echo 1310720 ;;
    preprocess) echo 69632 ;;
    segment_input) echo 262400 ;;
  esac
}

# AddressSanitizer: Rust panics abort through libFuzzer's death callback; leaks are not bugs here
# (thread-local models live for the process), the RSS limit catches growth. The RSS limit is the
# process's, read once a second: libFuzzer's corpus and the allocator's retained pages reach
# 0.5-0.9 GB in a long run, and a legal image at the pixel limit decodes into about 1 GB, so 4 GB;
# one allocation over 2 GB (-malloc_limit_mb, AddressSanitizer builds) fails the input at once.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}"

summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  limit=(-runs="$runs")
  [[ -n "$seconds" ]] && limit=(-max_total_time="$seconds")
  echo "fuzz.sh: $t (${limit[*]}), log $log"
  start=$SECONDS
  rc=0
  "$bin/$t" "$work/corpus/$t" "$work/seeds/$t" "${limit[@]}" -max_len="$(max_len "$t")" \
    -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t/" > "$log" 2>&1 || rc=$?
  took=$((SECONDS - start))
  execs=$(awk '/stat::number_of_executed_units:/ {n = $2} END {print n + 0}' "$log")
  corpus=$(find "$work/corpus/$t" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    result="no crash, no hang, no OOM"
  else
    failed=1
    artifact=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
    reason=$(grep -m1 -E "^==[0-9]+== ERROR|panicked at|ERROR: libFuzzer" "$log" | cut -c1-160 || true)
    result="FAILED (exit $rc): ${reason:-see the log}; input: ${artifact:-none}"
    tail -40 "$log" | sed 's/^/   /'
  fi
  line=$(printf '%-14s %10s inputs in %2d:%02d:%02d (%s/s), corpus %s files: %s' "$t" "$execs" \
    $((took / 3600)) $((took % 3600 / 60)) $((took % 60)) $((execs / (took > 0 ? took : 1))) "$corpus" "$result")
  echo "fuzz.sh: $line"
  summary+=("$line")
done

echo "== fuzz summary ($(date +%F\ %T))"
printf '   %s\n' "${summary[@]}"
exit $failed
