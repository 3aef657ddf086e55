#!/usr/bin/env bash
# Native speed benchmark: r2unet (burn, flex CPU backend) against PyTorch on the CPU, same
# R2U-Net (16-32-64-128, t = 2), same thread count. See bench/README.md.
#
#   scripts/bench.sh                 # 2 threads, 10 timed training steps, 3 rounds
#   THREADS=4 STEPS=20 ROUNDS=5 scripts/bench.sh
#   DRIVE=/path/to/DRIVE scripts/bench.sh
#   ISA=avx2 scripts/bench.sh        # both sides capped at AVX2 on an AVX-512 CPU (below)
#
# Each round runs r2unet and then PyTorch; the report has every round and the medians, whose
# ratios are the result: on a shared VM one run of either side moves by 20 % from one minute to
# the next, so one pair of runs says little. Writes bench/out/r2unet-N.json, bench/out/pytorch-N.json
# and bench/out/report.md, and prints the report. Fails when the two parameter counts differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TORCH_VERSION=2.15.0          # newest torch on PyPI for Python 3.11 when this was pinned
EXPECTED_PARAMS=1043313
THREADS="${THREADS:-2}"
STEPS="${STEPS:-10}"
ROUNDS="${ROUNDS:-3}"
DRIVE="${DRIVE:-../shared/data/DRIVE}"
# ISA caps both sides' CPU code paths, so that one machine measures what a CPU with less runs:
# r2unet's kernels through R2UNET_MAX_CPU_ISA; PyTorch's through ATEN_CPU_CAPABILITY (its own
# kernels), ONEDNN_MAX_CPU_ISA (convolutions) and MKL_ENABLE_INSTRUCTIONS (matrix products).
# Libraries under either side that pick their own (the `gemm` crate, burn-flex's element-wise
# ops) are not capped. Each side's JSON and the report say what it ran.
ISA="${ISA:-}"
case "$ISA" in
    "") ;;
    avx2) export R2UNET_MAX_CPU_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
    *) echo "error: ISA=$ISA: expected avx2 (or unset for everything the CPU has)" >&2; exit 2 ;;
esac
VENV=bench/.venv
OUT=bench/out
PY="$VENV/bin/python"

mkdir -p "$OUT"

# --- PyTorch environment -----------------------------------------------------------------
if [[ ! -x "$PY" ]]; then
    echo "== creating $VENV"
    python3 -m venv "$VENV"
fi

installed_torch() {
    "$PY" -c 'import importlib.metadata as m; print(m.version("torch").split("+")[0])' 2>/dev/null || true
}

if [[ "$(installed_torch)" != "$TORCH_VERSION" ]]; then
    # The CPU-only wheels (about 200 MB) live on PyTorch's own index; where only PyPI is
    # reachable, PyPI's torch (CUDA build, several GB with its nvidia-* dependencies) runs on
    # the CPU just the same.
    if "$PY" -c 'import urllib.request as u; u.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=10)' 2>/dev/null; then
        echo "== installing torch $TORCH_VERSION (CPU build) from download.pytorch.org"
        "$PY" -m pip install --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH_VERSION"
    else
        echo "== installing torch $TORCH_VERSION from PyPI"
        "$PY" -m pip install "torch==$TORCH_VERSION"
    fi
fi
if ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then
    echo "== installing numpy and pillow"
    "$PY" -m pip install numpy pillow
fi

# --- Rust side ---------------------------------------------------------------------------
echo "== building r2unet (release)"
cargo build --release -p r2unet-cli

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS: r2unet bench (flex, RAYON_NUM_THREADS=$THREADS)"
    RAYON_NUM_THREADS="$THREADS" target/release/r2unet bench --backend flex --data "$DRIVE" \
        --steps "$STEPS" --json "$OUT/r2unet-$round.json"

    echo "== round $round of $ROUNDS: PyTorch bench (OMP_NUM_THREADS=$THREADS, torch.set_num_threads($THREADS))"
    OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" "$PY" bench/torch_r2unet.py \
        --threads "$THREADS" --steps "$STEPS" --drive "$DRIVE" \
        --expect-params "$EXPECTED_PARAMS" --json "$OUT/pytorch-$round.json"
done

# --- Report ------------------------------------------------------------------------------
CPU_MODEL="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
NPROC="$(nproc)"
DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
TORCH_INSTALLED="$(installed_torch)"

python3 - "$OUT" "$ROUNDS" "$OUT/report.md" \
    "${CPU_MODEL:-unknown}" "$NPROC" "$DATE" "$THREADS" "$STEPS" "$TORCH_INSTALLED" <<'EOF'
import json
import statistics
import sys

out, rounds, report_path, cpu, nproc, date, threads, steps, torch_version = sys.argv[1:]
rounds = int(rounds)


def load(path):
    r = json.load(open(path))
    if isinstance(r, list):  # several backends: keep flex
        r = next(x for x in r if x["backend"] == "flex")
    return r


rust = [load(f"{out}/r2unet-{i}.json") for i in range(1, rounds + 1)]
torch = [load(f"{out}/pytorch-{i}.json") for i in range(1, rounds + 1)]
if rust[0]["params"] != torch[0]["params"]:
    sys.exit(f"error: parameter counts differ: r2unet {rust[0]['params']}, PyTorch {torch[0]['params']}")


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


KEYS = ("train_patches_per_s", "infer_drive_image_s", "peak_rss_mib")


def row(name, r):
    return (f"| {name} | {r['train_patches_per_s']:.1f} | {r['infer_drive_image_s']:.3f} "
            f"| {r['peak_rss_mib']:.0f} |")


def ratio_row(name, a, b):
    return (f"| {name} | "
            f"{ratio(a['train_patches_per_s'], b['train_patches_per_s'])} (r2unet/PyTorch) | "
            f"{ratio(b['infer_drive_image_s'], a['infer_drive_image_s'])} (PyTorch/r2unet) | "
            f"{ratio(a['peak_rss_mib'], b['peak_rss_mib'])} (r2unet/PyTorch) |")


lines = [
    f"Machine: {cpu}, nproc {nproc}; {date}. Both sides on {threads} threads; "
    f"{steps} timed training steps; {rust[0]['params']:,} trainable parameters; torch {torch_version}; "
    f"{rounds} rounds (r2unet, then PyTorch, each round). Instruction sets: r2unet's kernels "
    f"{rust[0].get('cpu_isa', '?')}, PyTorch {torch[0].get('cpu_isa', '?')}.",
    "",
    "| | training (patches/s) | DRIVE image (s, best of 3) | peak RSS (MiB) |",
    "|---|---:|---:|---:|",
]
if rounds > 1:
    for i, (a, b) in enumerate(zip(rust, torch), 1):
        lines += [row(f"round {i}: r2unet", a), row(f"round {i}: PyTorch", b),
                  ratio_row(f"round {i}: ratio", a, b)]
med_rust = {k: statistics.median(r[k] for r in rust) for k in KEYS}
med_torch = {k: statistics.median(r[k] for r in torch) for k in KEYS}
label = "median " if rounds > 1 else ""
lines += [row(f"{label}r2unet ({rust[0]['backend']})", med_rust), row(f"{label}PyTorch", med_torch),
          ratio_row(f"**{label}ratio**", med_rust, med_torch)]
lines += ["", "Ratios above 1 mean r2unet is faster (first two columns) or uses more memory (last)."]
text = "\n".join(lines) + "\n"
open(report_path, "w").write(text)
print()
print(text, end="")
EOF
