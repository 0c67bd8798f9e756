#!/usr/bin/env bash
# Everything README's Performance section measures on a GPU, in one go, after `pip install -e ".[test]"`:
# the GPU-only tests, training throughput against the tutorial loop, and a CelebA-sized epoch,
# each speed with cuDNN autotuning (trainer.benchmark) off and on.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -m pytest -q -p no:cacheprovider -k "gpu or mixed or sync_batchnorm or scaler" tests
python benchmarks/throughput.py --accelerator gpu --precision 32-true bf16-mixed --cudnn-benchmark 0 1
python benchmarks/celeba_epoch.py --runs 128,0,,1 512,0,,2,0 512,0,,2,1 512,1,,2,1
