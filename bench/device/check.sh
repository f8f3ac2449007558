#!/usr/bin/env bash
# bench/device/check.sh [--cpu]: the device check in one command (docs/performance.md, "GPU").
# Unpacks the device pack (npm run device:pack; DEVICE_PACK, default ./device-pack), then:
#   GPU mode (nvidia-smi answers, no --cpu): nvidia-smi, the Vulkan loaders, random checkpoints of
#   the t30 and t33 shapes; ours on DEVICES=webgpu in fp32 and fp16 (parity against the cpu on the
#   golden fixture, bench:engine throughput, the server under `npm run benchmark` at concurrency 1
#   and 32); HF transformers on CUDA in fp16 and bf16 on the same checkpoints and batches; our fp16
#   graph through Python onnxruntime's CUDA provider where it has one.
#   CPU mode: the same steps on the cpu with the tiny shape and a small workload, peers skipped
#   when their Python packages are absent — the whole path, tested without a device.
# Results: results.md, results.json and check.log in $OUT (the device tool's folder) or
# ./scratch/device-check. Every step has its own time limit; a failed step is a row, not the end.
# CHECK_PRESETS, CHECK_SEQUENCES, CHECK_REPEATS and CHECK_WORK override the defaults.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pack=${DEVICE_PACK:-$root/device-pack}
out=${OUT:-$root/scratch/device-check}
work=${CHECK_WORK:-/tmp/esm2-device-check}
mode=gpu
[ "${1:-}" = "--cpu" ] && mode=cpu
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || mode=cpu
mkdir -p "$out"
exec > >(tee "$out/check.log") 2>&1
started=$(date +%s)
step() { echo; echo "== $* ($(($(date +%s) - started)) s)"; }

step "unpack $pack ($mode mode)"
rm -rf "$work" && mkdir -p "$work/results" "$work/cache/checkpoints"
for f in node app; do xz -dc "$pack/$f.tar.xz" | tar -C "$work" -xf - || { echo "cannot unpack $pack/$f.tar.xz (run npm run device:pack)"; exit 1; }; done
export PATH="$work/bin:$PATH"
app=$work/app
results=$work/results
cache=$work/cache
node --version

if [ "$mode" = gpu ]; then
  step "nvidia-smi"
  nvidia-smi
  step "Vulkan loaders"
  if ! ldconfig -p | grep -q libvulkan; then
    for f in "$pack"/gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
    ldconfig
  fi
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -e "$icd" ] && export VK_DRIVER_FILES=$icd && break
  done
  [ -e /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  ldconfig -p | grep libvulkan || echo "no libvulkan"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  device=webgpu
  presets=${CHECK_PRESETS:-esm2_t30_150M_UR50D,esm2_t33_650M_UR50D}
  sequences=${CHECK_SEQUENCES:-64}
  repeats=${CHECK_REPEATS:-3}
  precisions=fp32,fp16
  peer_device=cuda
else
  device=cpu
  presets=${CHECK_PRESETS:-tiny}
  sequences=${CHECK_SEQUENCES:-8}
  repeats=${CHECK_REPEATS:-1}
  precisions=fp32
  peer_device=cpu
fi
gpu=$( [ "$mode" = gpu ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1 || echo none)
node -e "require('fs').writeFileSync(process.argv[1], JSON.stringify({mode: process.argv[2], date: new Date().toISOString(), node: process.version, gpu: process.argv[3], device: process.argv[4], presets: process.argv[5], sequences: Number(process.argv[6]), repeats: Number(process.argv[7]), python: process.argv[8]}))" \
  "$results/context.json" "$mode" "$gpu" "$device" "$presets" "$sequences" "$repeats" "$(python3 --version 2>&1 || echo none)"

step "random checkpoints ($presets)"
for p in ${presets//,/ }; do
  timeout 300 node "$app/bin/esm2.js" init-random --preset "$p" --out "$cache/checkpoints/$p" --seed 1 | tail -1
done
step "compile (fp32, fp16) and the workload"
timeout 400 node "$app/dist/bench/device/prepare.js" --cache "$cache" --presets "$presets" --sequences "$sequences" --out "$work/prepared.json"
prepared() { node -p "JSON.parse(require('fs').readFileSync('$work/prepared.json', 'utf8'))['$1'].$2"; }

step "parity on $device against the cpu (golden fixture)"
timeout 180 node "$app/dist/bench/device/parity.js" --device "$device" --precisions "$precisions" --fixture "$root/test/fixtures/golden/esm2_tiny/model" --cache "$cache/compiled" --out "$results/parity.json"

step "ours on $device: bench:engine ($precisions, fused attention, $sequences sequences, median of $repeats)"
timeout 420 node "$app/dist/bench/engine.js" --device "$device" --presets "$presets" --precisions "$precisions" --attention fused \
  --sequences "$sequences" --repeats "$repeats" --cache "$cache" --output "$results/engine-$device.json" | tail -8

step "HF transformers ($peer_device) and our fp16 graph through Python onnxruntime's CUDA provider"
for p in ${presets//,/ }; do
  timeout 300 python3 "$root/bench/device/hf_peer.py" --model "$cache/checkpoints/$p" --workload "$(prepared "$p" workload)" --dtypes fp16,bf16 \
    --repeats "$repeats" --device "$peer_device" --out "$results/hf-$p.json" || echo "{\"skipped\": \"hf_peer.py failed (exit $?)\", \"rows\": []}" >"$results/hf-$p.json"
  timeout 300 python3 "$root/bench/device/ort_cuda.py" --onnx "$(prepared "$p" graphs.fp16)" --workload "$(prepared "$p" workload)" \
    --repeats "$repeats" --out "$results/ort-$p.json" || echo "{\"skipped\": \"ort_cuda.py failed (exit $?)\", \"rows\": []}" >"$results/ort-$p.json"
done

first=${presets%%,*}
server_precision=$([ "$mode" = gpu ] && echo fp16 || echo fp32)
step "the server on $device ($server_precision, $first) under npm run benchmark, concurrency 1 and 32"
port=18123
DEVICES=$device PRECISION=$server_precision MODEL_NAME="$cache/checkpoints/$first" HOST=127.0.0.1 PORT=$port ALLOW_CPU_FALLBACK=false \
  LOG_LEVEL=warn ESM2_COMPILE_CACHE="$cache/compiled" node "$app/bin/esm2.js" serve >"$work/server.log" 2>&1 &
server=$!
if node -e "
  const deadline = Date.now() + 240000;
  (async () => { for (;;) { try { if ((await fetch('http://127.0.0.1:$port/ready')).ok) return; } catch {} if (Date.now() > deadline) process.exit(1); await new Promise((r) => setTimeout(r, 1000)); } })();"; then
  for c in 1 32; do
    timeout 240 node "$app/dist/bench/benchmark.js" --url "http://127.0.0.1:$port" --batch-sizes 1 --concurrency "$c" --requests $((c == 1 ? 64 : 512)) \
      --no-server-metrics --output "$results/server-c$c.json" | tail -4
  done
else
  echo "{\"error\": \"the server was not ready within 240 s: $(tail -3 "$work/server.log" | tr '\n"' ' ' )\"}" >"$results/server-c1.json"
fi
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null

step "report"
node "$app/dist/bench/device/report.js" --results "$results" --out "$out" --title "Device check ($mode mode, $(date -u +%Y-%m-%d))"
echo "done in $(($(date +%s) - started)) s: $out/results.md"
