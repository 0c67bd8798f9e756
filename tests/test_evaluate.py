"""evaluate.py: a checkpoint or a folder of samples scored against a data preset, offline, with the
protocol beside the numbers, the real side's features kept per dataset, and one-line errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compose_config, evaluate_config
from dcgan.data.images import find_images
from dcgan.errors import UsageError
from evaluate import evaluate
from train import train

EVERY = {"fid", "kid", "is", "precision", "recall", "density", "coverage"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> Path:
    """A class-conditional digits run of one short epoch, in the digit classifier's features."""
    out = tmp_path_factory.mktemp("run")
    train(compose_config([f"paths.output_dir={out}", f"data.root={digits_root}", "data.labels=true", "data.image_size=32",
                          "callbacks.quality.features.root=" + str(digits_root), "~callbacks.figures",
                          "~callbacks.image_grids"]))
    return out / "checkpoints" / "last.ckpt"


def test_a_checkpoint_is_scored_against_its_runs_data_in_its_runs_features(checkpoint: Path, tmp_path: Path):
    cache = tmp_path / "reference"
    result = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false"))
    assert set(result["metrics"]) == EVERY | {"intra_fid"}  # a class-conditional checkpoint: intra-class FID too
    protocol = result["protocol"]
    assert (protocol["features"], protocol["resize"], protocol["num_fake"], protocol["num_real"]) == \
        ("digit_classifier", "torch-fidelity", 200, 1797)
    assert protocol["reference_features"].startswith("computed and kept in")
    written = json.loads(checkpoint.with_suffix(".scores.json").read_text())
    assert written == json.loads(json.dumps(result))
    again = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false"))
    assert again["protocol"]["reference_features"].startswith("read from") and again["metrics"] == result["metrics"]
    other = evaluate(evaluate_config(f"ckpt_path={checkpoint}", "num_fake=200", f"cache_dir={cache}", "progress=false",
                                     "resize=clean-fid", "metrics=[fid]", f"output={tmp_path / 'clean.json'}"))
    assert other["protocol"]["resize"] == "clean-fid" and other["metrics"]["fid"] != result["metrics"]["fid"]
    assert len(list(cache.iterdir())) == 2  # one file of real features per protocol


def test_real_images_scored_as_samples_are_on_the_real_manifold(digits_root: Path, tmp_path: Path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for index, path in enumerate(find_images(digits_root)):  # the real digits themselves, in one folder
        shutil.copy(path, samples / f"{index:04d}.png")
    result = evaluate(evaluate_config(f"samples={samples}", "data=digits", f"data.root={digits_root}", "features=digits",
                                      f"features.root={digits_root}", "cache_dir=null", "progress=false"))
    metrics = result["metrics"]
    assert abs(metrics["fid"]) < 1e-3 and metrics["precision"] == metrics["recall"] == metrics["coverage"] == 1
    assert "fewer than num_fake=50,000" in result["protocol"]["generated"]
    assert (tmp_path / "samples.scores.json").exists()


@pytest.mark.parametrize("overrides, message", [
    (["ckpt_path={ckpt}", "samples=x"], "give either ckpt_path=<a .ckpt> \\(its generator is sampled\\) or samples="),
    (["samples=x", "resize=bilinear"], "resize=bilinear is not a protocol: torch-fidelity or clean-fid"),
    (["samples=x"], "which real images\\? choose them with data=<preset> data.root=..."),
    (["ckpt_path={ckpt}", "metrics=[fd]"], "metrics: fd is not a metric"),
    (["ckpt_path={ckpt}", "data=digits", "data.root={digits}", "data.image_size=16"],
     "the checkpoint makes 32x32 images with 1 channels, the data is 16x16 with 1: set data.image_size"),
])
def test_bad_input_is_one_line(checkpoint: Path, digits_root: Path, overrides: list[str], message: str):
    given = [override.format(ckpt=checkpoint, digits=digits_root) for override in overrides]
    with pytest.raises(UsageError, match=message):
        evaluate(evaluate_config(*given, "num_fake=10", "cache_dir=null", "progress=false"))


def test_the_command_shows_progress_and_the_protocol(checkpoint: Path, tmp_path: Path):
    done = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), f"ckpt_path={checkpoint}", "num_fake=100",
                           "metrics=[fid,is]", f"output={tmp_path / 'out.json'}", f"cache_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "sampling and features: 100%" in done.stderr and "real images' features: 100%" in done.stderr
    assert "100 samples of" in done.stdout and "features: digit_classifier, resize: torch-fidelity" in done.stdout
    failed = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "samples=nowhere", "ckpt_path=x"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert failed.returncode == 1 and failed.stderr.strip() == \
        "error: give either ckpt_path=<a .ckpt> (its generator is sampled) or samples=<a folder of images>"
