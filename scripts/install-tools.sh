#!/usr/bin/env bash
# Installs what the browser tests and the package build need, skipping what is there at the right
# version: Chromium and ChromeDriver, Node.js, bc, the Vulkan loader (Debian packages); wasm-pack
# and wasm-bindgen-cli (at the version of the wasm-bindgen crate in Cargo.lock), compiled from
# crates.io; the wasm32-unknown-unknown target.
#
# scripts/test.sh starts it in the background at once, so that the two tool compilations share
# the cores with the lint lane and the native tests instead of running before them.
#
# The tools are compiled at opt-level 1: that makes their compilation much shorter and they only
# post-process the wasm files (a few seconds either way). R2UNET_TOOLS_OPT_LEVEL=3 for a fully
# optimised build. Their shared build folder is R2UNET_TOOLS_TARGET_DIR (default: beside the
# project's shared target dir, see scripts/test.sh), so the dependencies they have in common are
# built once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"

apt_pkgs=()
command -v chromium >/dev/null || apt_pkgs+=(chromium)
command -v chromedriver >/dev/null || apt_pkgs+=(chromium-driver)
command -v node >/dev/null || apt_pkgs+=(nodejs npm)
command -v bc >/dev/null || apt_pkgs+=(bc)
# The Vulkan loader, for native training through wgpu on SwiftShader's Vulkan driver.
ldconfig -p | grep -q 'libvulkan\.so\.1 ' || apt_pkgs+=(libvulkan1)
if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
  echo "install-tools: apt-get install ${apt_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

tools_env=(
  CARGO_PROFILE_RELEASE_OPT_LEVEL="${R2UNET_TOOLS_OPT_LEVEL:-1}"
  CARGO_TARGET_DIR="${R2UNET_TOOLS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/r2unet/tools-target}"
)
if ! command -v wasm-pack >/dev/null; then
  echo "install-tools: cargo install wasm-pack"
  env "${tools_env[@]}" cargo install --quiet --locked wasm-pack
fi
want_bindgen="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want_bindgen" ]]; then
  echo "install-tools: cargo install wasm-bindgen-cli@$want_bindgen"
  # Without --locked: the CLI's lock file pins a webpki-roots the registry mirror lacks (TOOLCHAIN.md).
  env "${tools_env[@]}" cargo install --quiet --force "wasm-bindgen-cli@$want_bindgen"
fi

chromium --version 2>/dev/null | head -1
chromedriver --version | head -1
echo "wasm-pack $(wasm-pack --version | awk '{print $2}'), $(wasm-bindgen --version), node $(node --version)"
