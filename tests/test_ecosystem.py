"""Habits from lightning-hydra-template and Lightning: trainer, debug and logger presets, a quiet console with a line at each end of a run, HParams in order, and data.root alone."""

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, SHRINK, compose_config
from dcgan.callbacks import console
from dcgan.errors import UsageError
from test_parallel import probe
from train import folder_unless_chosen, train

def train_py(cwd: Path, *arguments: str, launcher: tuple[str, ...] = (), check: bool = True) -> str:
    """python train.py <arguments> (or under launcher, e.g. torchrun) in cwd: what it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}
    result = subprocess.run([*(launcher or (sys.executable,)), str(ROOT / "train.py"), *arguments],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def digits(root: Path) -> list[str]:
    """The shrunk options on the built-in digits at root."""
    return [*SHRINK, "experiment=digits", f"data.root={root}"]


def only_run(directory: Path) -> Path:
    (run,) = [p for p in directory.glob("*/*") if p.is_dir()]
    return run


# Trainer presets ------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["cpu", "gpu", "ddp", "ddp_sim"])
def test_trainer_presets_are_thin_files_over_the_default(preset: str):
    trainer = compose_config([f"trainer={preset}"], shrink=False).trainer
    expected = {"cpu": ("cpu", 1, "auto"), "gpu": ("gpu", 1, "auto"), "ddp": ("gpu", -1, "ddp"),
                "ddp_sim": ("cpu", 2, "ddp")}[preset]
    assert (trainer.accelerator, trainer.devices, trainer.strategy) == expected
    assert trainer.benchmark is True and trainer.use_distributed_sampler is False  # default.yaml's


def test_trainer_cpu_trains_two_batches(run_config):
    metrics = train(run_config("trainer=cpu", "trainer.limit_train_batches=2", "~callbacks.figures"))
    assert "train/loss_g" in metrics


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["gpu", "ddp"])
def test_gpu_trainer_presets_train_two_batches(tmp_path: Path, digits_root: Path, preset: str):
    train_py(tmp_path, *[s for s in digits(digits_root) if "accelerator" not in s], f"trainer={preset}",
             "trainer.devices=1", "trainer.limit_train_batches=2")


# Debug presets ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_fast_dev_run_takes_one_whole_iteration_and_writes_apart(tmp_path: Path, digits_root: Path):
    counter = f"+callbacks.steps={{_target_: probes.StepCounter, path: '{tmp_path / 'steps.json'}'}}"
    printed = train_py(tmp_path, *digits(digits_root), "debug=fdr", counter)
    steps = json.loads((tmp_path / "steps.json").read_text())
    assert steps == {"batches": 1, "optimizer_steps": ["d", "g"]}  # one batch; D's update, then G's
    assert not (tmp_path / "outputs").exists()
    run = only_run(tmp_path / "debug")
    assert f"into {run}" in printed and not (run / "checkpoints").exists()  # fast_dev_run keeps nothing


def test_overfit_repeats_the_same_batches_every_epoch(tmp_path: Path, digits_root: Path):
    shrink = [item for item in SHRINK if not item.startswith("callbacks.quality")]  # the preset has no FID
    train(compose_config([*shrink, "debug=overfit", "trainer.max_epochs=2", f"data.root={digits_root}",
                          f"paths.output_dir={tmp_path / 'run'}", probe(tmp_path / "probe")], shrink=False))
    seen = json.loads((tmp_path / "probe" / "rank0.json").read_text())["images"]
    assert len(seen) == 2 * 3 * 16 and seen[: 3 * 16] == seen[3 * 16:]  # 3 batches of 16, twice


@pytest.mark.parametrize("preset", ["fdr", "overfit", "limit", "profiler"])
def test_debug_presets_write_apart_from_real_runs(preset: str):
    config = compose_config([f"debug={preset}"], shrink=False, return_hydra_config=True)
    assert config.hydra.run.dir.startswith("debug/") and config.hydra.sweep.dir.startswith("debug/multirun/")
    assert (config.trainer.accelerator, config.trainer.devices, config.data.num_workers) == ("cpu", 1, 0)


def test_limit_trains_3_epochs_of_5_batches_with_everything_a_run_keeps(tmp_path: Path, digits_root: Path):
    shrink = [item for item in SHRINK if not item.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    metrics = train(compose_config([*shrink, "debug=limit", f"data.root={digits_root}",
                                    f"paths.output_dir={tmp_path / 'run'}"], shrink=False))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * 5 * 2)  # 3 epochs, 5 iterations each, D and G
    assert "val/fid" in metrics and (tmp_path / "run" / "progress.gif").exists()


def test_profiler_writes_where_time_went(run_config, tmp_path: Path):
    train(run_config("debug=profiler", "trainer.limit_train_batches=2"))
    assert "run_training_epoch" in (tmp_path / "run" / "fit-profile.txt").read_text()


# Loggers ---------------------------------------------------------------------------------------

def test_csv_logger_keeps_the_scalars_and_the_hyperparameters(run_config, tmp_path: Path):
    train(run_config("logger=csv", "~callbacks.figures"))
    metrics = (tmp_path / "run" / "csv" / "metrics.csv").read_text()
    assert "train/loss_g" in metrics.splitlines()[0] and len(metrics.splitlines()) > 2
    assert yaml.safe_load((tmp_path / "run" / "csv" / "hparams.yaml").read_text())["model/lr"] == 2e-4


def test_wandb_offline_holds_the_grids_figures_scalars_and_hyperparameters(run_config, tmp_path: Path,
                                                                           monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(run_config("logger=[tensorboard,wandb]", "logger.wandb.offline=true"))
    import wandb

    wandb.teardown()  # its service writes the run file in its own time; this waits until it has (or at exit)
    (run,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    media = {path.name.rsplit("_", 2)[0] for path in (run / "files" / "media" / "images").rglob("*.png")}
    assert {"fixed_noise", "real", "interpolation", "loss_curves", "real_vs_fake"} <= media
    (log,) = run.glob("run-*.wandb")  # W&B's own record of the run, synced later with `wandb sync`
    assert b"train/loss_g" in log.read_bytes() and b"model/lr" in log.read_bytes()


@pytest.mark.slow  # MLflow's SQLite store is created and migrated: seconds
def test_mlflow_store_holds_the_grids_figures_scalars_and_hyperparameters(run_config, tmp_path: Path,
                                                                          monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # mlflow.db and mlruns/ where train.py is launched
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    train(run_config("logger=many"))
    client = MlflowClient("sqlite:///mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "dcgan-lightning"]
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    assert len(client.get_metric_history(mlflow_run.info.run_id, "train/loss_g")) == 4
    assert mlflow_run.data.params["model/lr"] == "0.0002"
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"samples", "figures"} <= artifacts
    grids = client.list_artifacts(mlflow_run.info.run_id, "samples/fixed_noise")
    assert [Path(a.path).name for a in grids] == ["0000000.png", "0000001.png", "0000003.png"]
    assert (tmp_path / "run" / "csv" / "metrics.csv").exists()
    assert list((tmp_path / "run" / "tensorboard").iterdir())


def test_no_logger_trains_and_says_so(run_config, tmp_path: Path, capsys):
    with pytest.warns(UserWarning, match="add tensorboard to the loggers"):
        train(run_config("~logger"))
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert not (tmp_path / "run" / "progress.gif").exists()
    printed = capsys.readouterr().out
    assert f"into {tmp_path / 'run'}; nothing is logged" in printed and ", logs in" in printed


@pytest.mark.parametrize("logger, extra", [("wandb", "wandb"), ("many", "mlflow")])
def test_a_logger_whose_library_is_missing_is_one_line_before_any_work(run_config, tmp_path: Path,
                                                                        monkeypatch, logger: str, extra: str):
    monkeypatch.setitem(sys.modules, extra, None)  # as if not installed: importing it raises ImportError
    expected = (rf'^logger {extra} needs the {extra} package, which is not installed: '
                rf'pip install -e "\.\[{extra}\]"$')
    with pytest.raises(UsageError, match=expected):
        train(run_config(f"logger={logger}"))
    assert not (tmp_path / "run").exists()


# The console -----------------------------------------------------------------------------------

NOISE = ["litlogger", "LeafSpec", "was configured so 100%", "broadcast_buffers", "No path found after",
         "It is recommended to use"]


@pytest.mark.slow
def test_the_console_says_where_the_run_goes_and_what_came_of_it_and_little_else(tmp_path: Path,
                                                                                 digits_root: Path):
    printed = train_py(tmp_path, *digits(digits_root), "trainer.devices=2")  # two ranks: twice the noise
    assert not [line for line in printed.splitlines() if any(noise in line for noise in NOISE)]
    run = only_run(tmp_path / "outputs")
    assert (f"dcgan: training on {digits_root} at 16x16, greyscale, 1,797 images cached on the device (0.4 MB) "
            "(experiment=digits, model=dcgan, logger=tensorboard) "
            f"into {run}; watch it with: tensorboard --logdir {run}") in printed
    fid = json.loads((run / "metrics.json").read_text())["val/fid"]
    (end,) = [line for line in printed.splitlines() if line.startswith("dcgan: done")]
    assert end.startswith(f"dcgan: done, val/fid {fid:.2f}; checkpoints in {run / 'checkpoints'}, "
                          f"figures and logs in {run}; go on with: python train.py ")
    options = end.split("go on with: python train.py ", 1)[1].split()
    assert options[-2:] == [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
    assert "trainer.devices=2" in options and "trainer.max_epochs=1" not in options  # the run's own, changed


def test_the_templates_warnings_are_one_line_and_others_keep_their_form():
    console.our_warnings_in_one_line()  # as train.py does when it is imported
    ours = warnings.formatwarning("a warning", UserWarning, str(console.PACKAGE / "data" / "folder.py"), 12, "warn(x)")
    theirs = warnings.formatwarning("theirs", UserWarning, "/usr/lib/python3/x.py", 3, "warn(y)")
    assert ours == "warning: a warning\n"
    assert theirs.startswith("/usr/lib/python3/x.py:3: UserWarning: theirs")


def test_hparams_list_the_model_first_and_val_fid_first(run_config, tmp_path: Path):
    train(run_config("~callbacks.figures"))
    (events,) = (tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    names = [info.name for info in experiment.hparam_infos]
    first_data = names.index(next(n for n in names if n.startswith("data/")))
    assert first_data > 0 and all(n.startswith("model/") for n in names[:first_data])
    assert [info.name.tag for info in experiment.metric_infos][:2] == ["val/fid", "val/kid"]


# data.root alone --------------------------------------------------------------------------------

@pytest.mark.slow
def test_data_root_alone_trains_on_that_folder_with_the_folder_defaults(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
    printed = train_py(tmp_path, f"data.root={photos}", "data.batch_size=8", "data.image_size=16",
                       "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                       "callbacks.progress_bar.refresh_rate=0", "model.ngf=8",
                       "model.ndf=8", "callbacks.quality.num_fake=32", "callbacks.quality.num_real=32",
                       "callbacks.quality.kid_subset_size=16")
    config = yaml.safe_load((only_run(tmp_path / "outputs") / "config.yaml").read_text())
    data = config["data"]
    assert (data["_target_"], data["channels"]) == ("dcgan.data.folder.ImageFolderDataModule", 3)
    assert re.search(f"dcgan: training on {re.escape(str(photos))} at 16x16, RGB, [0-9]+ images cached on the device "
                     r"\([0-9.]+ MB\) \(experiment=folder", printed)


def test_data_root_with_the_folder_data_takes_the_folder_defaults_and_with_digits_the_digits():
    folder = compose_config(folder_unless_chosen(["t.py", "data=folder", "data.root=/p"])[1:], shrink=False)
    assert (folder.model.ngf, folder.data.image_size) == (64, 64)  # not the digits experiment's 32, 32
    assert folder.callbacks.quality.features._target_ == "dcgan.metrics.features.inception"
    digits = compose_config(folder_unless_chosen(["t.py", "data=digits", "data.root=/p"])[1:], shrink=False)
    assert (digits.model.ngf, digits.data.image_size) == (32, 32)
