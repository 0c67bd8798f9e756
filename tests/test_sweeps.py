"""Sweeps as a user runs them: job directories, TensorBoard runs and HParams, the summary table,
Optuna, the presets, and what TensorBoard's own server shows over a finished sweep."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, SHRINK, compose_config
from train import train

SCALARS = {"train/loss_d", "train/loss_g", "train/d_x", "train/d_g_z1", "train/d_g_z2"}


def sweep(cwd: Path, digits_root: Path, *overrides: str, check: bool = True) -> tuple[Path, str]:
    """python train.py -m <overrides>, shrunk, with tests/probes.py importable by the jobs;
    returns its sweep directory and what it printed to stderr."""
    command = [sys.executable, str(ROOT / "train.py"), "-m", *SHRINK, "experiment=digits", f"data.root={digits_root}", *overrides]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (cwd / "multirun").glob("*/*")
    return sweep_dir, result.stderr


def jobs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def summary(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory, digits_root: Path) -> Path:
    """The README's sweep: python train.py -m model.lr=1e-4,2e-4 model.beta1=0.5,0.9"""
    return sweep(tmp_path_factory.mktemp("grid"), digits_root, "model.lr=1e-4,2e-4", "model.beta1=0.5,0.9")[0]


@pytest.mark.slow
def test_a_grid_sweep_gives_one_named_directory_per_job(grid: Path):
    names = [job.name for job in jobs(grid)]
    assert len(names) == 4
    assert all("model.lr=" in name and "model.beta1=" in name for name in names)  # told apart by overrides
    assert {name.split("_", 1)[0] for name in names} == {"0", "1", "2", "3"}
    for job in jobs(grid):
        assert (job / "config.yaml").exists()  # the resolved config
        assert len(list(job.rglob("events.out.tfevents.*"))) == 1  # one TensorBoard run


@pytest.mark.slow
def test_every_run_logs_hyperparameters_with_its_final_metrics(grid: Path):
    for job in jobs(grid):
        (events,) = job.rglob("events.out.tfevents.*")
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        plugin = accumulator.PluginTagToContent("hparams")
        assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(plugin)
        experiment = plugin["_hparams_/experiment"].decode(errors="ignore")
        assert "model/lr" in experiment and "model/beta1" in experiment and "train/loss_g" in experiment


@pytest.mark.slow
def test_the_summary_ranks_jobs_by_the_objective(grid: Path):
    rows = summary(grid)
    assert len(rows) == 4 and all(row["status"] == "done" for row in rows)
    fids = [float(row["val/fid"]) for row in rows]
    assert fids == sorted(fids)  # the digits preset's objective, val/fid, minimised: best first
    assert all("model.lr=" in row["overrides"] for row in rows)
    markdown = (grid / "summary.md").read_text()
    assert markdown.count("| done |") == 4


@pytest.mark.slow
def test_a_failed_job_gets_a_row_and_keeps_the_others(tmp_path: Path, digits_root: Path):
    sweep_dir, _ = sweep(tmp_path, digits_root, "data.image_size=16,48", check=False)
    rows = {row["overrides"].split("data.image_size=")[1].split()[0]: row for row in summary(sweep_dir)}
    assert rows["16"]["status"] == "done" and float(rows["16"]["train/loss_g"]) > 0
    assert rows["48"]["status"] == "failed"
    assert "it follows data.image_size" in rows["48"]["error"]
    assert list(summary(sweep_dir)[-1].values())[1] == "failed"  # failures rank last


@pytest.mark.slow
def test_an_objective_that_was_not_logged_is_said_after_a_run_and_leaves_sweep_jobs_unranked(tmp_path: Path,
                                                                                           digits_root: Path):
    command = [sys.executable, str(ROOT / "train.py"), *SHRINK, "experiment=digits", f"data.root={digits_root}", "objective=val/nothing",
               f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0  # the run is done and saved
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("warning: objective=val/nothing was not logged, so this run is not ranked; logged:")

    # Offline, FID's features cannot be built: every job says so in one line, and the summary too
    unavailable = "callbacks.quality.features={_target_: probes.unavailable_features, _partial_: true}"
    sweep_dir, stderr = sweep(tmp_path, digits_root, unavailable, "model.lr=1e-4,2e-4")
    reason = "objective=val/fid was not logged (these features need weights this machine does not have)"
    assert stderr.count(f"warning: {reason}") == 2
    rows = summary(sweep_dir)
    assert [row["status"] for row in rows] == ["unranked", "unranked"]
    assert all(row["error"].startswith(reason) and float(row["train/loss_g"]) > 0 for row in rows)
    assert "2 not ranked, their val/fid was not logged" in (sweep_dir / "summary.md").read_text()


@pytest.mark.slow
def test_a_sweep_over_the_loss_ranks_its_jobs_by_the_objective(tmp_path: Path, digits_root: Path):
    sweep_dir, _ = sweep(tmp_path, digits_root, "model.loss=ns,hinge,wasserstein")
    rows = summary(sweep_dir)
    assert sorted(row["job"] for row in rows) == ["0_model.loss=ns", "1_model.loss=hinge", "2_model.loss=wasserstein"]
    assert all(row["status"] == "done" for row in rows)
    fids = [float(row["val/fid"]) for row in rows]
    assert fids == sorted(fids)


@pytest.mark.slow
def test_an_optuna_search_over_the_loss_and_its_rates_minimises_the_objective(tmp_path: Path, digits_root: Path):
    sweep_dir, _ = sweep(tmp_path, digits_root, "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                         "trainer.limit_train_batches=2")
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"model.loss", "model.lr_g", "model.lr_d", "model.beta1"}
    rows = summary(sweep_dir)
    assert len(rows) == 2 and all(row["status"] == "done" for row in rows)
    # train.py returned each job's objective (val/fid here) to Optuna, which kept the lowest
    assert results["best_value"] == pytest.approx(min(float(row["val/fid"]) for row in rows))


@pytest.mark.parametrize("preset", ["celeba64", "cifar32", "digits"])
def test_every_preset_composes_and_trains_a_couple_of_batches(preset: str, tmp_path: Path, digits_root: Path):
    root = digits_root
    if preset != "digits":  # the presets that read a user's folder of RGB images
        root = tmp_path / "images"
        root.mkdir()
        rng = np.random.default_rng(0)
        for i in range(32):
            Image.fromarray(rng.integers(0, 256, (70, 60, 3), dtype=np.uint8)).save(root / f"{i}.jpg")
    cfg = compose_config([f"experiment={preset}", f"data.root={root}", f"paths.output_dir={tmp_path / 'run'}",
                          "data.batch_size=8", "trainer.limit_train_batches=2", "trainer.max_epochs=1",
                          "trainer.accelerator=cpu", "callbacks.progress_bar.refresh_rate=0",
                          *[item for item in SHRINK if item.startswith("callbacks.quality")]], shrink=False)
    metrics = train(cfg)
    assert SCALARS <= set(metrics)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, data: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


@pytest.mark.slow
def test_tensorboard_serves_the_sweep(grid: Path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(grid), "--host", "127.0.0.1",
         "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        runs: list[str] = []
        while time.time() < deadline and len(runs) < 4:
            try:
                runs = json.loads(get(f"{base}/data/runs"))
            except OSError:
                pass
            time.sleep(1)
        assert len(runs) == 4 and all("model.lr=" in run for run in runs)

        images = json.loads(get(f"{base}/data/plugin/images/tags"))
        run = runs[0]
        assert {"samples/fixed_noise", "samples/real"} <= set(images[run])
        query = urllib.parse.urlencode({"run": run, "tag": "samples/fixed_noise", "sample": 0})
        entries = json.loads(get(f"{base}/data/plugin/images/images?{query}"))
        png = get(f"{base}/data/plugin/images/individualImage?{entries[-1]['query']}")
        assert png[:8] == b"\x89PNG\r\n\x1a\n"  # the grid itself, as the page shows it

        scalars = json.loads(get(f"{base}/data/plugin/scalars/tags"))
        assert SCALARS <= set(scalars[run])
        series = json.loads(get(f"{base}/data/plugin/scalars/scalars?run={urllib.parse.quote(run)}&tag=train/loss_g"))
        assert len(series) >= 1

        experiment = json.loads(get(f"{base}/data/plugin/hparams/experiment", b'{"experimentName": ""}'))
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert {"model/lr", "model/beta1", "data/batch_size"} <= names
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert "train/loss_g" in metrics
        groups = json.loads(get(f"{base}/data/plugin/hparams/session_groups",
                                json.dumps({"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
                                            "colParams": [], "startIndex": 0, "sliceSize": 100}).encode()))
        assert groups["totalSize"] == 4
    finally:
        server.terminate()
        server.wait(timeout=30)
