"""How a run ends: the figures are drawn from the run's TensorBoard events as TensorBoard reads them,
and reach TensorBoard as the files are; a failed run's TensorBoard writer is stopped before its error
line; `python train.py` exits at once (no module teardown) with everything a normal exit does still done."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, SHRINK
from dcgan.callbacks.events import logged_between
from dcgan.callbacks.sinks import finish
from dcgan.launch.process import runs_as_program
from train import train

TRAIN = str(ROOT / "train.py")


def test_the_figures_reach_tensorboard_byte_for_byte(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=2", "trainer.limit_train_batches=2"))
    run = tmp_path / "run"
    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*"))),
                              size_guidance={"images": 0})
    events.Reload()
    for name in ("loss_curves", "real_vs_fake"):
        (image,) = events.Images(f"figures/{name}")
        assert image.encoded_image_string == (run / f"{name}.png").read_bytes()  # not decoded and encoded again
        assert image.width > 100 and image.height > 100


def test_the_events_read_back_are_tensorboards_and_a_torn_file_ends_where_it_tears(run_config, tmp_path: Path):
    train(run_config("trainer.max_epochs=2", "trainer.limit_train_batches=3", "~callbacks.figures"))
    (events,) = (tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    images, scalars = logged_between(str(events.parent), 0, float("inf"))
    assert images.keys() == set(accumulator.Tags()["images"]) and "samples/fixed_noise" in images
    assert scalars.keys() == set(accumulator.Tags()["scalars"]) and "train/loss_d" in scalars
    for tag, logged in images.items():
        assert [(e.step, e.value) for e in logged] == [(e.step, e.encoded_image_string) for e in accumulator.Images(tag)]
    for tag, logged in scalars.items():
        assert [(e.step, e.value) for e in logged] == [(e.step, e.value) for e in accumulator.Scalars(tag)]
    assert logged_between(str(events.parent), 2, 4)[1]["train/loss_d"] == [e for e in scalars["train/loss_d"]
                                                                          if 2 <= e.step < 4]
    data = events.read_bytes()
    events.write_bytes(data[: len(data) // 2])  # a run killed while writing a record
    torn_images, torn_scalars = logged_between(str(events.parent), 0, float("inf"))
    kept = sum(len(v) for v in torn_images.values()) + sum(len(v) for v in torn_scalars.values())
    assert 0 < kept < sum(len(v) for v in images.values()) + sum(len(v) for v in scalars.values())


def test_a_failed_runs_tensorboard_writer_thread_is_stopped_by_finish(tmp_path: Path):
    """After a failed run, Lightning's last flush can raise (a full disk) before it closes
    TensorBoard's writer, whose thread would then fail after the run's error line, or at exit with
    a traceback; finish(failed=True) stops it first (the whole run: tests/test_full_disk.py)."""
    before = set(threading.enumerate())
    logger = TensorBoardLogger(tmp_path)
    logger.log_metrics({"train/loss_d": 1.0}, step=0)
    writers = [thread for thread in set(threading.enumerate()) - before if thread.is_alive()]
    assert writers  # TensorBoard's writer thread, started by the first event
    finish([logger], failed=True)
    assert not [thread for thread in writers if thread.is_alive()]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["python", TRAIN, "model.nz=8"], True),  # as a user starts it
        (["python", "-u", TRAIN], True),  # as torchrun starts each rank
        (["python", "-X", "importtime", "-W", "ignore", TRAIN], True),  # options that take a value
        (["python", "-m", "pytest", TRAIN], False),  # another program that runs it in its own process
        (["python", "-m", "pdb", TRAIN], False),
        (["python", "-c", "import runpy", TRAIN], False),
        (["python", str(ROOT / "evaluate.py")], False),  # another script
        (["python"], False),
    ],
)
def test_only_a_process_started_for_the_script_exits_at_once(monkeypatch: pytest.MonkeyPatch, command: list[str],
                                                             expected: bool):
    monkeypatch.setattr(sys, "orig_argv", command)
    assert runs_as_program(TRAIN) is expected


def test_under_pytest_the_script_returns_instead_of_exiting():
    assert not runs_as_program(TRAIN)  # or every test that runs train.py in this process would end pytest


@pytest.mark.slow
def test_train_py_exits_at_once_with_its_output_flushed_and_exit_handlers_run(tmp_path: Path, digits_root: Path):
    marker = tmp_path / "atexit.txt"
    command = [sys.executable, TRAIN, *SHRINK, "~callbacks.quality", f"data.root={digits_root}",
               f"paths.output_dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
               f"+callbacks.at_exit={{_target_: probes.AtExit, path: '{marker}'}}"]
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as by default
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**environment, "PYTHONPATH": str(ROOT / "tests")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.read_text() == "ran"  # atexit handlers ran (loggers, logging, multiprocessing rely on them)
    assert done.stdout.splitlines()[-2:][0].startswith("dcgan: done"), done.stdout
    assert done.stdout.splitlines()[-1] == "the exit handler ran"  # and then the standard streams were flushed
    run = tmp_path / "run"
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "progress.gif").exists()
