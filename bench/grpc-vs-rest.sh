#!/usr/bin/env bash
# REST vs gRPC on one server (docs/performance.md, "REST vs gRPC"): /predict (batch size 1) against
# esm2.v1.Esm2/Embed (mean of the last layer), concurrency 1 and 32, 12 s each, back to back.
# MODEL: a checkpoint directory (default /tmp/grpc-t6ckpt: `node bin/esm2.js init-random --preset
# esm2_t6_8M_UR50D --out /tmp/grpc-t6ckpt --seed 1`); OUT: where the JSON and tables go. After `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/grpc-cmp}"
mkdir -p "$OUT"
MODEL_NAME=${MODEL:-/tmp/grpc-t6ckpt} DEVICES=cpu PORT=18411 GRPC_PORT=18412 HOST=127.0.0.1 LOG_LEVEL=warn node bin/esm2.js serve &
pid=$!
trap 'kill $pid' EXIT
for i in $(seq 1 120); do curl -sf localhost:18411/ready >/dev/null && break; sleep 0.5; done
for c in 1 32; do
  for p in http grpc; do
    node dist/bench/benchmark.js --url http://127.0.0.1:18411 --protocol $p --grpc 127.0.0.1:18412 --batch-sizes 1 \
      --concurrency $c --duration 12 --warmup $((c * 4)) --lengths fixed:100 --output $OUT/${TAG:-}$p-c$c.json > $OUT/${TAG:-}$p-c$c.txt
    tail -n 3 $OUT/${TAG:-}$p-c$c.txt
  done
done
