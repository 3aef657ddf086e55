#!/usr/bin/env bash
# Where a wgpu training step's GPU time goes: runs `r2unet bench --backend wgpu --images 0` with
# cubecl's kernel profiler on and sums its log per kernel (launches, total time, share).
#
#   scripts/gpu-profile.sh                       # a GPU, 3 timed steps of batch 32
#   STEPS=1 BATCH=8 scripts/gpu-profile.sh       # smaller
#   SOFTWARE=1 scripts/gpu-profile.sh            # no GPU: SwiftShader's Vulkan (Chromium's)
#   R2UNET_GPU_OPS=burn scripts/gpu-profile.sh   # burn's own conv/batch norm (default: lowered)
#
# On SwiftShader the GPU is emulated on the CPU: its launch counts are the GPU's, its times are
# not (compare shares, and only between runs of this script on the same machine). Every launch
# of the run is counted, the bench's 2 warm-up steps included; kernels that the profiler timed
# while the first launch also compiled them are counted as they come.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEPS="${STEPS:-3}"
BATCH="${BATCH:-32}"
CLI="${R2UNET_CLI:-${CARGO_TARGET_DIR:-$ROOT/target}/release/r2unet}"
DRIVE="${DRIVE:-${R2UNET_DATA:-../shared/data}/DRIVE}"
# One set of GPU ops, so that the bench does not time both first (backend.rs, gpu_seconds).
export R2UNET_GPU_OPS="${R2UNET_GPU_OPS:-lowered}"
[[ -n "${R2UNET_CLI:-}" ]] || cargo build --release -p r2unet-cli --quiet

if [[ "${SOFTWARE:-0}" == 1 ]]; then
  icd=/usr/lib/chromium/vk_swiftshader_icd.json
  [[ -f "$icd" ]] || { echo "error: no SwiftShader Vulkan driver manifest at $icd (scripts/install-tools.sh)" >&2; exit 1; }
  export VK_ICD_FILENAMES="$icd" R2UNET_ALLOW_CPU_ADAPTER=1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
out="$(mktemp)"
trap 'rm -f "$log" "$out"' EXIT
rc=0
CUBECL_DEBUG_LOG="$log" CUBECL_DEBUG_OPTION=profile "$CLI" bench --backend wgpu --data "$DRIVE" \
  --steps "$STEPS" --batch "$BATCH" --images 0 | tee "$out" || rc=$?
# With the profiler on, the process was seen to crash at exit on SwiftShader (status 139) after
# the bench had printed its table; the log is complete then. Without the table it failed.
if [[ $rc -ne 0 ]]; then
  grep -q '^| wgpu ' "$out" || { echo "error: r2unet bench failed (status $rc)" >&2; exit 1; }
  echo "warning: r2unet bench exited with status $rc after its table (the profiler's teardown)" >&2
fi

python3 - "$log" "$((STEPS + 2))" "$R2UNET_GPU_OPS" <<'EOF'
import re, sys, collections
path, steps, ops = sys.argv[1], int(sys.argv[2]), sys.argv[3]
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
count, total = collections.Counter(), collections.Counter()
# "| 1.93ms | KernelBinop | SubOp_a9296f44": the time, then the kernel's name and its generic
# arguments; kernels are summed by name.
time_re = re.compile(r"^([0-9.]+)(ns|µs|us|ms|s)$")
for line in open(path, encoding="utf-8", errors="replace"):
    fields = [f.strip() for f in line.split("|")]
    if not line.startswith("| ") or len(fields) < 3:
        continue
    m = time_re.match(fields[1])
    if m:
        name = re.sub(r"_[0-9a-f]{8}$", "", fields[2])
        count[name] += 1
        total[name] += float(m.group(1)) * unit[m.group(2)]
launches, seconds = sum(count.values()), sum(total.values())
if launches == 0:
    sys.exit("error: the profiler logged no kernel launches")
print(f"\nGPU ops: {ops}; {launches} launches in {steps} training steps "
      f"({launches / steps:.0f} per step), {seconds:.2f} s of kernel time")
print("| kernel | launches | per step | time (s) | share |")
print("|---|---:|---:|---:|---:|")
for name, t in total.most_common(12):
    print(f"| {name} | {count[name]} | {count[name] / steps:.0f} | {t:.3f} | {100 * t / seconds:.1f} % |")
rest = total.most_common()[12:]
if rest:
    print(f"| {len(rest)} others | {sum(count[n] for n, _ in rest)} | | "
          f"{sum(t for _, t in rest):.3f} | {100 * sum(t for _, t in rest) / seconds:.1f} % |")
EOF
