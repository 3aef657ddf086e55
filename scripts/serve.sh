#!/usr/bin/env bash
# Serves the static page in web/ on localhost with Python's http.server.
#
#   scripts/serve.sh              # http://localhost:8080/
#   PORT=9000 scripts/serve.sh
#
# The page expects the npm package r2unet-wasm at web/pkg/ (with its weights under web/pkg/models/)
# and samples at web/samples/: scripts/build-wasm.sh puts them there (scripts/web.sh does both).
# localhost counts as a secure context, so WebGPU and the Cache API work without HTTPS.
# Python >= 3.11 serves .wasm as application/wasm, which WebAssembly.instantiateStreaming needs.
# No cross-origin isolation headers: the CPU's threads (a pool of workers) do not need them. A host
# that sends COOP/COEP anyway must send COEP with the worker scripts too (web/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PORT:-8080}"
WEB="$ROOT/web"

if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "warning: $(python3 --version 2>&1) may not serve .wasm as application/wasm; use Python >= 3.11" >&2
fi
if [[ ! -f "$WEB/pkg/cpu/r2unet_wasm.js" ]]; then
    echo "note: $WEB/pkg/ is not built; run scripts/build-wasm.sh (or scripts/web.sh, which builds and serves)" >&2
fi

echo "Serving $WEB"
echo "Open http://127.0.0.1:$PORT/ (localhost only; Ctrl+C to stop)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$WEB"
