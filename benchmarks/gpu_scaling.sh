#!/usr/bin/env bash
# Data-parallel scaling on one GPU machine: aigc's default MNIST diffusion recipe trained for MINUTES by 1, 2, 4
# ... up to all visible GPUs (torchrun, NCCL), global batch BATCH split over the GPUs; images/s, speed-up and
# efficiency per GPU count in benchmarks/results/gpu_scaling.json (see benchmarks/data_parallel.py).
#
#   AIGC_DATA_DIR=../shared/data bash benchmarks/gpu_scaling.sh [MINUTES=2] [BATCH=512]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" benchmarks/data_parallel.py --minutes "${1:-2}" --batch "${2:-512}"
