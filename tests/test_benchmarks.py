"""Every benchmark runs, at its smallest setting, so that none breaks unnoticed until someone wants
to reproduce a README table. Nothing here times anything: speed goes in the benchmarks' output."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

TINY_TRAIN = ["model.nz=16", "model.ngf=4", "model.ndf=4", "data.image_size=16"]
SMALLEST = {  # each benchmark's own options at their smallest
    "throughput.py": ["--width", "4", "--image-size", "16", "--batch-size", "8", "--iterations", "3", "--warmup", "1",
                      "--repeats", "1"],
    "baselines.py": ["--seconds", "1", "--seeds", "1", "--samples", "50", "--setups", "sngan_resnet + ADA"],
    "celeba_epoch.py": ["--accelerator", "cpu", "--epoch-images", "64", "--tutorial-images", "512", "--width", "4",
                        "--workers", "0", "--runs", "32,0,,1"],
    "cifar10.py": ["--smoke", "--setups", "sngan"],  # both suites' SN-GAN: conditional (StudioGAN's) and not
    "conditional.py": ["--iterations", "2", "--seeds", "1", "--every", "1", "--diagnose"],
    "data_pipeline.py": ["--images", "16", "--workers", "0", "--batch-size", "8", "--epochs", "1"],
    "dead_time.py": ["--epochs", "1", "--batches", "2", "--runs", "1", *TINY_TRAIN, "~callbacks.quality"],
    "data_scale.py": ["--sizes", "40", "--image-size", "16", "--batch-size", "8", "--workers", "0",
                      "--epoch-images", "16", "--sources", "zip", "--tiers", "disk"],
    "ddp_overhead.py": ["--iterations", "4", "--warmup", "1", "--repeats", "1", *TINY_TRAIN, "data.batch_size=8"],
    "gan_variants.py": ["--iterations", "2", "--seconds", "1", "--seeds", "1", "--preset-seeds", "1", "--samples", "50",
                        "--setups", "seed loop (tutorial)", "wgan_gp"],  # the loop, and a preset with n_critic
    "quality.py": ["--iterations", "2", "--samples", "50"],
    "small_data.py": ["--seeds", "1", "--epochs", "1", "--subset-iterations", "2"],
    "whole_run.py": ["--epochs", "1", "2", "--pairs", "1", "--images", "48", "--image-size", "16", "--width", "4",
                     "--batch-size", "16", "--workers", "0"],
}
HELPERS = {"tutorial_loop.py"}  # imported by the benchmarks, not run on its own


def test_every_benchmark_is_run_here():
    assert {path.name for path in (ROOT / "benchmarks").glob("*.py")} == SMALLEST.keys() | HELPERS


@pytest.fixture(scope="module")
def benchmarks_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every benchmark run once (by tests/benchmark_runner.py: one process, a fork for each)."""
    out = tmp_path_factory.mktemp("benchmarks")
    subprocess.run([sys.executable, str(Path(__file__).with_name("benchmark_runner.py")), str(out),
                    json.dumps(SMALLEST)], check=True, timeout=1200)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_the_benchmark_runs_and_reports(script: str, benchmarks_run: Path):
    status, printed = (benchmarks_run / f"{script}.rc").read_text(), (benchmarks_run / f"{script}.out").read_text()
    assert status == "0", (benchmarks_run / f"{script}.err").read_text()[-3000:]
    assert "failed" not in printed, printed[-3000:]  # a benchmark that reports a failed setting goes on
    assert any(character.isdigit() for character in printed.splitlines()[-1])  # it ended on its numbers


@pytest.mark.slow
def test_the_gpu_script_runs_every_step_and_says_how_each_ended():
    """benchmarks/gpu.sh as its header tries it on a CPU: the GPU tests are selected (and skipped
    here, with the reason) and every benchmark step runs, each closed by its seconds line."""
    env = {**os.environ, "ACCELERATOR": "cpu", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    printed = done.stdout + done.stderr
    assert done.returncode == 0 and "!!" not in printed, printed[-4000:]
    assert re.findall(r"^== (.+): \d+ s$", printed, re.MULTILINE) == [
        "GPU tests", "training step: dcgan against the tutorial's loop, data in memory",
        "a CelebA-sized epoch against the tutorial's pipeline", "data pipeline: decoding and the cache",
        "dead time around a short run of the digits"]
    assert re.search(r"^\d+ skipped", printed, re.MULTILINE) and "needs a CUDA GPU" in printed, printed[-4000:]
    assert "outside the loop, imports apart" in printed  # the last step ended on its figures
