#!/usr/bin/env bash
# Browser benchmark of the page in headless Chromium (prints markdown tables; see README "Browser"):
# cold load to first mask, one DRIVE image on the CPU build (1 and 2 threads) and on WebGPU, package sizes; and, in
# the same run, the same network under onnxruntime-web (wasm and WebGPU execution providers) on
# the same tiles, with ratios ours / ort for time and download size.
#   scripts/bench-browser.sh                             # WebGPU on a 128x128 piece (SwiftShader is slow)
#   R2UNET_BENCH_WEBGPU_FULL=1 scripts/bench-browser.sh  # the whole image on WebGPU too (both sides)
#   R2UNET_BENCH_REPS=7 scripts/bench-browser.sh         # timed CPU rounds per side (medians; default 5)
#   R2UNET_BENCH_CPU_ONLY=1 scripts/bench-browser.sh     # the CPU rows only: 1 and 2 threads, both sides
#   R2UNET_ONNX=path/in/repo.onnx scripts/bench-browser.sh   # use this ONNX model, do not export
# Needs the package built (scripts/build-wasm.sh) and the tools of scripts/test-browser.sh. The ONNX
# model is exported here from bench/torch_r2unet.py's R2UNet (random weights: speed only) with the
# Python of bench/.venv (torch, onnx, onnxscript; see bench/README.md) into bench/out/ (ignored by
# git); without that venv the onnxruntime-web half is skipped with a note.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$SECONDS
[[ -f "$ROOT/web/pkg/cpu/r2unet_wasm.js" ]] || "$ROOT/scripts/build-wasm.sh"

if [[ -z "${R2UNET_ONNX:-}" ]]; then
  export R2UNET_ONNX="$ROOT/bench/out/r2unet.onnx"
  PY="${R2UNET_BENCH_PYTHON:-$ROOT/bench/.venv/bin/python}"
  rm -f "$R2UNET_ONNX"
  if [[ -x "$PY" ]]; then
    mkdir -p "$ROOT/bench/out"
    log="$ROOT/bench/out/onnx-export.log"
    echo "== exporting the PyTorch twin to ONNX (random weights) -> ${R2UNET_ONNX#"$ROOT"/} (log: ${log#"$ROOT"/})"
    t=$SECONDS
    # Only the model and its export (no training or timing): torch_r2unet.py reads its arguments
    # when imported, so it is imported with a plain argument list.
    if "$PY" - "$ROOT/bench" "$R2UNET_ONNX" >"$log" 2>&1 <<'EOF'
import sys
from pathlib import Path
bench, out = sys.argv[1], Path(sys.argv[2])
sys.argv = [sys.argv[0], "--threads", "1"]
sys.path.insert(0, bench)
import torch_r2unet as t  # noqa: E402
import torch  # noqa: E402
torch.manual_seed(0)
model = t.R2UNet()
print(f"torch {torch.__version__}, trainable parameters {t.trainable_params(model)}")
t.export_onnx(model, out)
EOF
    then
      echo "   exported in $((SECONDS - t)) s"
    else
      echo "bench-browser: the ONNX export failed (see ${log#"$ROOT"/}); the onnxruntime-web half is skipped" >&2
    fi
  else
    echo "bench-browser: no $PY (scripts/bench.sh creates it; then bench/.venv/bin/pip install onnx onnxscript); the onnxruntime-web half is skipped" >&2
  fi
fi

cd "$ROOT/tests/e2e"
[[ -d node_modules/playwright-core && -d node_modules/onnxruntime-web ]] || npm ci --no-audit --no-fund --loglevel=error
node bench.mjs
echo "(scripts/bench-browser.sh: $((SECONDS - start)) s in all)"
