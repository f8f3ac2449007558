#!/usr/bin/env bash
# npm run device:pack [-- OUTDIR]: everything bench/device/check.sh needs on a bare x86-64 Linux
# box with no Node and no network (the device machine), in OUTDIR (default ./device-pack, ignored):
#   node.tar.xz  this Node binary;
#   app.tar.xz   the built project (dist/, bin/) with its production dependencies, onnxruntime-node's
#                linux-x64 native library among them (CPU and WebGPU EPs built in);
#   gl/*.deb     the Vulkan loader and GL dispatch libraries WebGPU needs (Debian amd64), when apt can fetch them.
# The pack and the working tree travel together to the device, 64 MiB in all: the sizes are printed
# and the pack refused when the sum is over.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$root/device-pack}")
# For the test (test/device-check.test.ts), which packs fast: DEVICE_PACK_XZ_LEVEL (default 6),
# DEVICE_PACK_LIMIT_MIB (default 64), DEVICE_PACK_NO_BUILD=1 (dist/ is built), DEVICE_PACK_NO_GL=1 (no apt).
level=${DEVICE_PACK_XZ_LEVEL:-6}
limit=$((${DEVICE_PACK_LIMIT_MIB:-64} * 1024 * 1024))
cd "$root"

node_bin=$(command -v node)
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 24 ] || { echo "device:pack: node $("$node_bin" --version) is older than package.json engines (>=24)" >&2; exit 1; }
[ -n "${DEVICE_PACK_NO_BUILD:-}" ] || npm run build --silent

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/app"
cp -r dist bin proto package.json package-lock.json "$stage/app/"
# Production dependencies only, from the lock file; no install scripts (onnxruntime-node's native
# library is in its package), then only the linux-x64 binaries of onnxruntime-node.
(cd "$stage/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
# The one devDependency the check's scripts import (bench/http-benchmark.ts: undici, no dependencies of its own).
cp -r node_modules/undici "$stage/app/node_modules/"
find "$stage/app/node_modules/onnxruntime-node/bin" -mindepth 3 -maxdepth 3 -type d ! -path '*/linux/x64' -exec rm -rf {} +

rm -rf "$out"
mkdir -p "$out/gl"
tar -C "$(dirname "$(dirname "$node_bin")")" -cf - bin/node | xz "-$level" -T0 >"$out/node.tar.xz"
tar -C "$stage" -cf - app | xz "-$level" -T0 >"$out/app.tar.xz"
# The device README's recipe: amd64 debs downloaded, unpacked there with dpkg -x.
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$stage/apt-lists" -oDir::Cache="$stage/apt-cache" -qq)
mkdir -p "$stage/apt-lists/partial" "$stage/apt-cache/archives/partial"
if [ -n "${DEVICE_PACK_NO_GL:-}" ]; then
  echo "device:pack: no Vulkan loader debs (DEVICE_PACK_NO_GL)"
elif apt-get "${apt_opts[@]}" update >/dev/null 2>&1 &&
  (cd "$out/gl" && apt-get "${apt_opts[@]}" download libvulkan1 libegl1 libglvnd0 libgl1 libglx0 >/dev/null 2>&1); then
  echo "device:pack: Vulkan loader debs: $(ls "$out/gl" | tr '\n' ' ')"
else
  echo "device:pack: WARNING: apt could not fetch the Vulkan loader debs; webgpu then needs libvulkan on the device" >&2
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size() { du -cb "$@" | tail -1 | cut -f1; }
pack=$(size "$out")
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" { t += $1 } END { print t + 0 }')
echo "device:pack: $out — node $(mib "$(size "$out/node.tar.xz")"), app $(mib "$(size "$out/app.tar.xz")"), gl $(mib "$(size "$out/gl")"): $(mib "$pack"); with the working tree ($(mib "$tree")): $(mib $((pack + tree))) of $((limit / 1048576)) MiB"
if [ $((pack + tree)) -gt "$limit" ]; then
  echo "device:pack: the pack and the working tree exceed $((limit / 1048576)) MiB: they cannot travel to the device" >&2
  exit 1
fi
