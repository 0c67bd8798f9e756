#!/usr/bin/env bash
# What README's Performance section measures on a GPU, in one go within 8 minutes, after
# `pip install -e ".[test]"`: the GPU tests (`pytest -m gpu`, each cut at 90 s), the training step
# against the tutorial's loop (ms per iteration, fp32 and bf16), a CelebA-sized epoch against the
# tutorial's pipeline with 16 loader workers, the data pipeline, and the dead time around a short run.
# Each step has its own time limit and prints its figures as they come, so a cut run still reports;
# a failing or cut step is said in one line ("!! ...") and the next one runs.
#
#   benchmarks/gpu.sh 2>&1 | tee gpu.log
#   ACCELERATOR=cpu benchmarks/gpu.sh     # every step at its smallest on a CPU: tries the script
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
ACCELERATOR=${ACCELERATOR:-gpu}
status=0

step() {  # step SECONDS TITLE COMMAND...: COMMAND, cut after SECONDS (its whole process group)
    local limit=$1 title=$2 started=$SECONDS rc
    shift 2
    echo "== $title (limit ${limit} s)"
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "!! $title: cut at ${limit} s"
    elif ((rc)); then
        echo "!! $title: exit status $rc"
    fi
    ((rc)) && status=1
    echo "== $title: $((SECONDS - started)) s"
}

python - <<'EOF'
import platform, pytorch_lightning, torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA GPU"
print(f"{gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}), Lightning {pytorch_lightning.__version__}, "
      f"Python {platform.python_version()}, {torch.get_num_threads()} CPU threads")
EOF

if [[ $ACCELERATOR == cpu ]]; then  # each benchmark at about its smallest (tests/test_benchmarks.py)
    throughput=(--accelerator cpu --width 4 --image-size 16 --batch-size 8 --iterations 3 --warmup 1 --repeats 1)
    epoch=(--accelerator cpu --epoch-images 64 --tutorial-images 512 --width 4 --workers 0 --runs 32,0,,1)
    pipeline=(--device cpu --images 16 --workers 0 --batch-size 8 --epochs 1)
    dead=(--accelerator cpu --epochs 1 --batches 2 --runs 1 model.ngf=4 model.ndf=4 data.image_size=16 "~callbacks.quality")
else
    throughput=(--accelerator gpu --precision 32-true bf16-mixed --cudnn-benchmark 1)
    epoch=(--accelerator gpu --workers 16 --runs 128,0,,1)
    pipeline=(--device cuda --workers 16 --images 4000 --epochs 1)
    dead=(--accelerator gpu --epochs 3 --runs 3)
fi

# -m gpu selects exactly the tests that need the GPU, slow ones included; -n 2: two at a time. A test
# file that cannot be imported (an optional extra missing) is reported, and the others still run.
step 150 "GPU tests" python -m pytest -m gpu -n 2 --timeout 90 --continue-on-collection-errors -p no:cacheprovider \
    -q -rfEs tests
step 90 "training step: dcgan against the tutorial's loop, data in memory" \
    python benchmarks/throughput.py "${throughput[@]}"
step 100 "a CelebA-sized epoch against the tutorial's pipeline" python benchmarks/celeba_epoch.py "${epoch[@]}"
step 60 "data pipeline: decoding and the cache" python benchmarks/data_pipeline.py "${pipeline[@]}"
step 60 "dead time around a short run of the digits" python benchmarks/dead_time.py "${dead[@]}"
exit $status
