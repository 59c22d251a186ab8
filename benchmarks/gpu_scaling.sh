#!/usr/bin/env bash
# Data-parallel scaling on one GPU machine: aigc's default MNIST diffusion recipe trained for MINUTES by 1, 2, 4
# ... up to all visible GPUs (torchrun, NCCL), global batch BATCH split over the GPUs. Prints and writes
# benchmarks/results/gpu_scaling.json: images/s per GPU count, speed-up and efficiency against one GPU.
#
#   AIGC_DATA_DIR=../shared/data bash benchmarks/gpu_scaling.sh [MINUTES=2] [BATCH=512]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-2}
batch=${2:-512}
data_dir=${AIGC_DATA_DIR:-../shared/data}
python=${PYTHON:-.venv/bin/python}
gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())')
if [ "$gpus" -lt 1 ]; then
  echo "error: no CUDA GPU visible to torch; run this on a GPU machine" >&2
  exit 2
fi
counts=()
for n in 1 2 4 8 16; do [ "$n" -le "$gpus" ] && counts+=("$n"); done
for n in "${counts[@]}"; do
  "$python" -m torch.distributed.run --standalone --nproc-per-node "$n" -m aigc train diffusion \
    --data mnist --data-dir "$data_dir" --batch "$batch" --minutes "$minutes" \
    --out "runs/bench-gpu-$n" --overwrite --no-progress
done
"$python" - "$minutes" "$batch" "${counts[@]}" <<'PY'
import json, sys
import torch

minutes, batch, counts = float(sys.argv[1]), int(sys.argv[2]), [int(n) for n in sys.argv[3:]]
rows = []
for n in counts:
    last = json.loads(open(f"runs/bench-gpu-{n}/metrics.jsonl").read().splitlines()[-1])
    rows.append({"gpus": n, "kimg": last["kimg"], "img_per_s": round(last["kimg"] * 1000 / last["train_seconds"], 1)})
for row in rows:
    row["speedup"] = round(row["img_per_s"] / rows[0]["img_per_s"], 2)
    row["efficiency"] = round(row["speedup"] / row["gpus"], 2)
    print(row)
result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "minutes": minutes, "batch": batch, "rows": rows}
with open("benchmarks/results/gpu_scaling.json", "w") as f:
    f.write(json.dumps(result, indent=2) + "\n")
PY
