#!/usr/bin/env bash
# The main job in the browser: builds the npm package and the page (scripts/build-wasm.sh), then
# serves web/ on localhost and prints the URL (scripts/serve.sh). Open it, drop a fundus photo.
#
#   scripts/web.sh                          # http://127.0.0.1:8080/
#   PORT=9000 scripts/web.sh
#   R2UNET_WASM_BUILDS=cpu scripts/web.sh   # quicker first build: the CPU build only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build-wasm.sh"
exec "$ROOT/scripts/serve.sh"
