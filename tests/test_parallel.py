"""Several devices: DDP on CPU (gloo) through train.py as a user runs it, in runs and sweeps;
mixed precision; the SLURM launcher config."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import ROOT, SHRINK, compose_config, run_script
from dcgan.errors import UsageError
from probes import ScalerProbe
from train import train

# The gpu tests (tests/conftest.py): fp16 autocast with its grad scaler, and SyncBatchNorm, run on GPUs.


def train_py(cwd: Path, digits_root: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    """python train.py [-m] <overrides>, shrunk, with tests/ importable by every rank (RankProbe)."""
    command = [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), *SHRINK,
               "experiment=digits", f"data.root={digits_root}", *overrides]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def probe(dirpath: Path) -> str:
    return f"+callbacks.probe={{_target_: probes.RankProbe, dirpath: '{dirpath}'}}"


def event_files(run: Path) -> list[Path]:
    return sorted(run.rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_the_ranks_on_a_machine_share_one_host_copy_of_the_cache(tmp_path: Path, digits_root: Path):
    train_py(tmp_path, digits_root, "trainer=ddp_sim", "data.cache=host", f"data.cache_dir={tmp_path / 'cache'}",
             f"+callbacks.cache_probe={{_target_: probes.CacheProbe, dirpath: '{tmp_path / 'probe'}'}}")
    ranks = [json.loads((tmp_path / "probe" / f"cache{r}.json").read_text()) for r in (0, 1)]
    (array,) = (tmp_path / "cache").glob("*.u8")
    assert ranks[0] == ranks[1] == {"tier": "host", "mapped": [str(array)]}  # one file, mapped by both: one copy


@pytest.mark.slow
def test_two_cpu_ranks_train_one_run(tmp_path: Path, digits_root: Path):
    train_py(tmp_path, digits_root, "trainer=ddp_sim", "callbacks.checkpoints.every_n_epochs=1", probe(tmp_path / "probe"))
    (run,) = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]  # one run directory
    assert not (tmp_path / "multirun").exists()
    assert len(event_files(run)) == 1  # only rank 0 writes events, grids and checkpoints
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "epoch=001.ckpt", "last.ckpt"]

    ranks = [json.loads((tmp_path / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert all(r["wrapped"] == ["DistributedDataParallel"] * 2 for r in ranks)  # G and D, separately
    assert ranks[0]["weights"] == ranks[1]["weights"]  # G and D stayed in step: gradients were all-reduced
    assert ranks[0]["fixed_noise"] == ranks[1]["fixed_noise"]  # the same grid latents everywhere
    assert ranks[0]["latents"] != ranks[1]["latents"]  # but each rank its own fake batches
    assert set(ranks[0]["images"]).isdisjoint(ranks[1]["images"])  # each rank its own data shard
    assert all(shape == [16, 1, 16, 16] for r in ranks for shape in r["shapes"])  # batch_size per device


@pytest.mark.slow
def test_a_sweep_of_two_rank_jobs_leaves_one_directory_per_job(tmp_path: Path, digits_root: Path):
    train_py(tmp_path, digits_root, "trainer.devices=2", "model.lr=1e-4,2e-4", multirun=True)
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [job.name for job in jobs] == ["0_model.lr=0.0001", "1_model.lr=0.0002"]
    assert [len(event_files(job)) for job in jobs] == [1, 1]
    assert not (tmp_path / "outputs").exists()  # no rank re-ran the sweep as single runs


def test_sync_batchnorm_on_cpu_is_refused_before_any_rank_starts(run_config, tmp_path: Path):
    with pytest.raises(UsageError, match="trainer.sync_batchnorm=true needs GPUs"):
        train(run_config("trainer.devices=2", "trainer.sync_batchnorm=true"))
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))


def test_bf16_mixed_on_cpu_trains_with_finite_losses(run_config):
    metrics = train(run_config("trainer.precision=bf16-mixed", "~callbacks.quality", "~callbacks.figures"))
    assert all(math.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g"))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_on_gpu_trains_with_finite_losses(run_config, precision: str):
    metrics = train(run_config(f"trainer.precision={precision}", "trainer.accelerator=gpu"))
    assert all(math.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g"))


@pytest.mark.gpu
def test_grad_scaler_state_survives_resume(run_config, tmp_path: Path):
    train(run_config("trainer.precision=16-mixed", "trainer.accelerator=gpu"))
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    scaler = next(state for key, state in saved.items() if "MixedPrecision" in key)
    assert scaler["_growth_tracker"] > 0  # 8 optimizer steps counted towards the next growth

    train(run_config("trainer.precision=16-mixed", "trainer.accelerator=gpu", "trainer.max_epochs=2",
                     f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                     f"paths.output_dir={tmp_path / 'resumed'}", "+callbacks.probe={_target_: probes.ScalerProbe}"))
    assert ScalerProbe.seen == scaler


@pytest.mark.gpu
def test_sync_batchnorm_converts_and_trains_on_gpu(tmp_path: Path, digits_root: Path):
    train_py(tmp_path, digits_root, "trainer.accelerator=gpu", "trainer.devices=1", "trainer.strategy=ddp",
             "trainer.sync_batchnorm=true", probe(tmp_path / "probe"))
    report = json.loads((tmp_path / "probe" / "rank0.json").read_text())
    assert report["norms"] == ["SyncBatchNorm"]


@pytest.mark.slow
def test_a_sweep_of_two_rank_jobs_runs_through_submitits_local_executor(tmp_path: Path, digits_root: Path):
    """hydra/launcher=local checks a sweep before it is queued: each job a process of its own,
    started from a pickle, whose extra rank Lightning starts as train.py (not submitit's script)."""
    result = train_py(tmp_path, digits_root, "hydra/launcher=local", "trainer.devices=2", "model.lr=1e-4,2e-4",
                      probe("${hydra:runtime.output_dir}/probe"), multirun=True)
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    assert (sweep / ".submitit").is_dir()  # the jobs went through submitit
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name != ".submitit")
    assert [job.name for job in jobs] == ["0_model.lr=0.0001", "1_model.lr=0.0002"]  # the swept keys only
    assert [len(event_files(job)) for job in jobs] == [1, 1]
    for job in jobs:
        ranks = [json.loads((job / "probe" / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert all(r["wrapped"] == ["DistributedDataParallel"] * 2 for r in ranks)  # the GAN-aware DDP
        assert sorted(p.name for p in job.glob("*.log")) == ["train.log", "train_rank1.log"]
    logs = "\n".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "Tip: For seamless cloud logging" not in logs  # the quiet console, in a job started from a pickle
    assert "follow it with: tail -f" in result.stdout and (sweep / "summary.csv").read_text().count(",done,") == 2


@pytest.mark.parametrize(("accelerator", "gpus"), [("cpu", None), ("gpu", 4), ("auto", 4)])
def test_the_slurm_launcher_asks_for_gpus_only_off_the_cpu_and_a_cpu_per_worker(accelerator: str, gpus):
    config = compose_config(["hydra/launcher=slurm", f"trainer.accelerator={accelerator}", "trainer.devices=4",
                             "trainer.num_nodes=2", "data.num_workers=3"], return_hydra_config=True)
    launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert (launcher["gpus_per_node"], launcher["tasks_per_node"], launcher["nodes"]) == (gpus, 4, 2)
    assert launcher["cpus_per_task"] == 4 and launcher["mem_gb"] is None  # 3 workers and the training process


def test_a_requeued_slurm_job_goes_on_from_its_checkpoint_and_a_first_start_never_overwrites_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dcgan.launch.job import restart_checkpoint, run_name

    for name, value in {"SLURM_NTASKS": "2", "SLURM_JOB_ID": "41", "SLURM_JOB_NAME": "train", "SLURM_PROCID": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert run_name("%Y-%m-%d/%H-%M-%S") == "slurm-41"  # every rank, and the job after a requeue
    checkpoints = {"dirpath": str(tmp_path / "checkpoints")}
    assert restart_checkpoint(tmp_path, checkpoints) == (None, "")  # a first start, nothing there yet
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(UsageError, match="this SLURM job has trained into .* before; resume it with ckpt_path="):
        restart_checkpoint(tmp_path, checkpoints)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert restart_checkpoint(tmp_path, checkpoints) == (tmp_path / "checkpoints" / "last.ckpt",
                                                         "SLURM requeued job 41")
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # srun --pty bash: processes started by hand, not SLURM's tasks
    assert restart_checkpoint(tmp_path, checkpoints) == (None, "")


def test_the_submitit_launchers_without_the_slurm_extra_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_submitit_launcher", None)  # as if not installed
    monkeypatch.chdir(tmp_path)
    said = run_script("train.py", "-m", "hydra/launcher=slurm", "model.lr=1e-4,2e-4")
    assert said == ('error: hydra/launcher=slurm needs the slurm extra (submitit), which is not '
                    'installed: pip install -e ".[slurm]"')  # python train.py exits with this line alone
    assert not (tmp_path / "multirun").exists()
