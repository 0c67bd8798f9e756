"""A disk that fills up at any checkpoint write (last.ckpt at an epoch's end, a periodic one, the
best one, the one a signal asks for before a requeue) ends the run in one line naming the disk and
the last good checkpoint, which then resumes. Each on a real, small tmpfs (mounting needs root)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import ROOT, SHRINK, run_script
from train import train

pytestmark = pytest.mark.slow  # two tiny runs each, one of them in a process of its own


def fill(disk: Path, inodes_left: int | None = None) -> None:
    """Fill `disk`: its bytes (inodes_left None), or all its inodes but `inodes_left` (empty files)."""
    filler = disk / "filler"
    filler.mkdir(exist_ok=True)  # removed to free the disk again
    if inodes_left is None:
        with open(filler / "bytes", "wb", buffering=0) as file:  # unbuffered: every write reaches the disk
            try:
                while True:
                    file.write(bytes(4096))
            except OSError:  # ENOSPC
                pass
        return
    made = []
    try:
        while True:
            (filler / str(len(made))).touch()
            made.append(filler / str(len(made)))
    except OSError:  # ENOSPC: no inode left
        pass
    for path in made[:inodes_left]:
        path.unlink()


class FillAtEpochEnd(pl.Callback):
    """Fills the disk as epoch `epoch` ends, before the checkpoint callback (which runs last). With
    `reading`, first opens that file and keeps it open, as a backup tool copying the previous
    last.ckpt would: replacing it then frees no inode. Logs a falling `probe/down` from epoch 2 on,
    which best.ckpt can follow without FID."""

    def __init__(self, disk: str, epoch: int, inodes_left: int | None = None, reading: str | None = None):
        self.disk, self.epoch, self.inodes_left, self.reading = Path(disk), epoch, inodes_left, reading
        self.held = None

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch:
            pl_module.log("probe/down", -float(trainer.current_epoch))
        if trainer.current_epoch == self.epoch:
            self.held = open(self.reading, "rb") if self.reading else None  # noqa: SIM115 (held past this hook)
            fill(self.disk, self.inodes_left)


class FillThenSignal(pl.Callback):
    """Fills the disk's bytes once iteration `after` is done, then sends this process `signal`."""

    def __init__(self, disk: str, after: int, signal: str):
        self.disk, self.after, self.signal = Path(disk), after, signal

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step // 2 - 1 == self.after:
            fill(self.disk)
            os.kill(os.getpid(), getattr(signal, f"SIG{self.signal}"))


def run_until_full(digits_root: Path, run: Path, checkpoints: Path, *options: str) -> str:
    said = run_script("train.py", *SHRINK, "experiment=digits", f"data.root={digits_root}", "~callbacks.quality",
                      "~callbacks.figures", f"hydra.run.dir={run}", f"callbacks.checkpoints.dirpath={checkpoints}",
                      *options)
    assert isinstance(said, str), said  # one line, as SystemExit carries it
    return said


def assert_one_line_then_resumes(said: str, capfd: pytest.CaptureFixture, disk: Path, checkpoints: Path,
                                 iteration: int, run_config, *options: str) -> None:
    assert "Traceback" not in capfd.readouterr().err
    last = checkpoints / "last.ckpt"
    assert said.startswith(f"error: the disk holding {checkpoints} (mounted at {disk}) is full: No space left "
                           f"on device while writing checkpoints; the last good checkpoint is {last} (after "
                           f"iteration {iteration}): free some space, then resume with: python train.py ")
    assert said.endswith(f" ckpt_path={last}") and "\n" not in said
    assert not [path for path in checkpoints.iterdir() if ".partial" in path.name]  # no debris
    done = torch.load(last, weights_only=True)["global_step"]
    assert done == 2 * (iteration + 1)
    subprocess.run(["rm", "-rf", str(disk / "filler")], check=True)
    train(run_config(*options, "~callbacks.quality", "~callbacks.figures", "trainer.max_epochs=3",
                     f"callbacks.checkpoints.dirpath={checkpoints}", f"ckpt_path={last}"))
    assert torch.load(last, weights_only=True)["global_step"] == 24  # on to the end of epoch 3


def test_last_ckpt_at_an_epoch_end_with_the_whole_run_on_the_full_disk(small_disk: Path, digits_root: Path,
                                                                     capfd: pytest.CaptureFixture, run_config):
    """As a user meets it, in a process of its own: TensorBoard's events share the disk, its writer
    thread fails too and its last flush with it, and neither may bury the line in a traceback."""
    run = small_disk / "run"
    (small_disk / "filler").mkdir()
    fills = f"+callbacks.fill={{_target_: probes.FillDisk, path: '{small_disk / 'filler' / 'bytes'}', epoch: 1, writer_lag: 0.5}}"
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *SHRINK, "experiment=digits",
                           f"data.root={digits_root}", "~callbacks.quality", "trainer.max_epochs=2",
                           f"hydra.run.dir={run}", fills],
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tests")}, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    said = done.stderr.strip().splitlines()[-1]
    assert_one_line_then_resumes(said, capfd, small_disk, run / "checkpoints", 3, run_config)


def test_a_periodic_checkpoint(small_disk: Path, digits_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture,
                               run_config):
    """last.ckpt of epoch 2 takes the last inode; its hard link epoch=002.ckpt finds none."""
    checkpoints = small_disk / "checkpoints"
    options = ["callbacks.checkpoints.every_n_epochs=2", "callbacks.checkpoints.monitor=null"]
    said = run_until_full(digits_root, tmp_path / "run", checkpoints, "trainer.max_epochs=2", *options,
                          f"+callbacks.fill={{_target_: test_full_disk.FillAtEpochEnd, disk: '{small_disk}', "
                          f"epoch: 1, inodes_left: 1, reading: '{checkpoints / 'last.ckpt'}'}}")
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last.ckpt"]
    assert_one_line_then_resumes(said, capfd, small_disk, checkpoints, 7, run_config, *options)


def test_the_best_checkpoint(small_disk: Path, digits_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture,
                             run_config):
    """The first best.ckpt, at epoch 2, finds no inode left after last.ckpt took the last one."""
    checkpoints = small_disk / "checkpoints"
    probe = (f"+callbacks.fill={{_target_: test_full_disk.FillAtEpochEnd, disk: '{small_disk}', epoch: 1, "
             f"inodes_left: 1, reading: '{checkpoints / 'last.ckpt'}'}}")
    options = ["callbacks.checkpoints.every_n_epochs=0", "callbacks.checkpoints.monitor=probe/down"]
    said = run_until_full(digits_root, tmp_path / "run", checkpoints, "trainer.max_epochs=2", *options, probe)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last.ckpt"]
    assert_one_line_then_resumes(said, capfd, small_disk, checkpoints, 7, run_config, *options)


def test_the_checkpoint_a_signal_asks_for_before_a_requeue(small_disk: Path, digits_root: Path, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture, run_config):
    """SIGTERM, and SLURM's USR1/USR2 warnings, which send it (src/dcgan/launch/slurm.py): the
    checkpoint written between two iterations of epoch 2 finds the disk full."""
    checkpoints = small_disk / "checkpoints"
    said = run_until_full(digits_root, tmp_path / "run", checkpoints, "trainer.max_epochs=2",
                          f"+callbacks.fill={{_target_: test_full_disk.FillThenSignal, disk: '{small_disk}', "
                          "after: 5, signal: TERM}")
    assert_one_line_then_resumes(said, capfd, small_disk, checkpoints, 3, run_config)
