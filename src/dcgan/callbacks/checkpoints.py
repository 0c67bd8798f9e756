"""Checkpoints in the run directory: last.ckpt after every epoch and when the run is stopped by a
signal, the newest few periodic ones, the best by val/fid; never a partial file, never NaN weights,
and a full disk is one line naming it and the checkpoint that is still good."""

import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException

from dcgan.callbacks.console import resume_command
from dcgan.errors import TrainingDiverged, UsageError
from dcgan.files import copy_atomically, link_atomically, replaced_atomically

FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, disk quota exceeded


class BesideTarget(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing each file into a partial file beside its target and
    renaming it into place (files.replaced_atomically). Lightning's own serialises the whole
    checkpoint in memory and writes it into the system temp directory first (fsspec's
    transaction), which fails on a cluster node whose /tmp is small and copies it once more when
    the run directory is on another filesystem."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as partial, open(partial, "wb") as file:
            torch.save(checkpoint, file)


class RunCheckpoints(Checkpoint):
    """dirpath/last.ckpt after every epoch; dirpath/epoch=NNN.ckpt (N epochs done) every N epochs,
    the newest `keep_periodic` of them kept (null: all); dirpath/best.ckpt whenever `monitor` (lower
    is better, e.g. val/fid) reaches a new low.

    Preemption: on SIGTERM (a cluster scheduler) Lightning finishes the iteration and stops; this
    then writes last.ckpt, which ckpt_path= resumes exactly. Ctrl-C does the same (a second
    Ctrl-C stops at once, without a checkpoint).

    Files are replaced atomically (a crash mid-write leaves the previous one loadable), and
    weights that are no longer finite are never written. The periodic and the best checkpoint
    are hard links to the last.ckpt they were (no copy, no space), as every last.ckpt is a new
    file, so pruning a periodic one removes a name, never what last.ckpt or best.ckpt hold; only
    files this run wrote are pruned (their names are in its checkpoints, so a requeued or restarted
    run that goes on in the same folder prunes those of its earlier attempts too). A full disk ends
    the run with one line naming it and the checkpoint still good.
    Subclassing Checkpoint makes Lightning run this after the other callbacks (so the epoch's
    val/fid is there) and skip its own.
    """

    def __init__(self, dirpath: str, every_n_epochs: int = 10, keep_periodic: int | None = 3,
                 monitor: str | None = "val/fid"):
        if keep_periodic is not None and keep_periodic < 1:
            raise UsageError(f"keep_periodic={keep_periodic} must be at least 1 (null keeps all; every_n_epochs=0 "
                             "writes none)")
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.keep_periodic = keep_periodic
        self.monitor = monitor
        self.best: float | None = None
        self.periodic: list[str] = []  # the periodic checkpoints kept, oldest first
        self._previous_sigint = None
        self._saved: int | None = None  # the iteration the last good last.ckpt was written after

    @property
    def last(self) -> Path:
        return self.dirpath / "last.ckpt"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not one a user chose
            trainer.strategy.checkpoint_io = BesideTarget()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_ctrl_c)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _on_ctrl_c(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: stop at once
        rank_zero_info("\nCtrl-C: stopping after this iteration, with a checkpoint (Ctrl-C again: stop now)")
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's SIGTERM path: stop between iterations

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and not trainer.fast_dev_run:  # between iterations: whole
            with self.disk_full_said():
                self.save(trainer)
            rank_zero_info(f"Stopped by a signal after iteration {pl_module.iteration - 1}: saved {self.last}; "
                           f"resume with: {resume_command(self.last)}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        score = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        improved = score is not None and (self.best is None or float(score) < self.best)
        if improved:
            self.best = float(score)  # before saving, so that last.ckpt knows the best so far
        epochs = trainer.current_epoch + 1
        periodic = self.dirpath / f"epoch={epochs:03d}.ckpt"
        due = self.every_n_epochs > 0 and epochs % self.every_n_epochs == 0
        if due:  # before saving, so that last.ckpt knows which to prune after it
            self.periodic = [*(name for name in self.periodic if name != str(periodic)), str(periodic)]
        with self.disk_full_said():
            self.save(trainer)
            if not trainer.is_global_zero:
                return
            # a hard link is safe when every last.ckpt is a new file, as BesideTarget writes them
            keep = link_atomically if isinstance(trainer.strategy.checkpoint_io, BesideTarget) else copy_atomically
            if due:
                keep(self.last, periodic)
                self._prune()
            if improved:
                keep(self.last, self.dirpath / "best.ckpt")

    def _prune(self) -> None:
        """Remove the oldest periodic checkpoints beyond keep_periodic (names only: see the class)."""
        if self.keep_periodic is None:
            return
        for old in self.periodic[:-self.keep_periodic]:
            Path(old).unlink(missing_ok=True)
        self.periodic = self.periodic[-self.keep_periodic:]

    @contextmanager
    def disk_full_said(self, where: Path | None = None) -> Iterator[None]:
        """A full disk as one line (disk_full): while writing checkpoints, or, given `where` (the run
        directory), any file of the run (a logger's, metrics.json). In a writer's thread
        (TensorBoard's), one warning line instead of the thread's traceback: the writer raises it
        again in this thread when flushed, where it ends the run with that line. train.py holds
        this around the fit and the loggers' last flush, after which no writer thread is left."""
        previous = threading.excepthook

        def thread_failed(args: threading.ExceptHookArgs) -> None:
            if isinstance(args.exc_value, OSError) and args.exc_value.errno in FULL:
                print(f"warning: a writer thread ({args.thread.name}) stopped: {args.exc_value}", file=sys.stderr,
                      flush=True)
            else:
                previous(args)

        threading.excepthook = thread_failed
        try:
            yield
        except OSError as error:
            if error.errno not in FULL:
                raise
            if isinstance(error.__context__, UsageError):  # a logger failing to flush after the line was made
                raise error.__context__ from None
            what = "checkpoints" if where is None else error.filename or "the run's logs"
            raise self.disk_full(error, where if where is None or not error.filename
                                 else Path(error.filename).parent, what) from None
        finally:
            threading.excepthook = previous

    def disk_full(self, error: OSError, where: Path | None, what: str) -> UsageError:
        """The one line a full disk ends the run with: which disk (the one holding `where`, by default
        the checkpoints'), and which checkpoint is still good (the newest whole last.ckpt: a write
        that fails leaves the previous one as it was)."""
        where = where or self.dirpath
        mount = where.resolve()
        while not os.path.ismount(mount):
            mount = mount.parent
        when = f" (after iteration {self._saved})" if self._saved is not None else ""
        good = (f"the last good checkpoint is {self.last}{when}: free some space, then resume with: "
                f"{resume_command(self.last)}") if self.last.is_file() else "no checkpoint was kept"
        return UsageError(f"the disk holding {where} (mounted at {mount}) is full: "
                          f"{os.strerror(error.errno)} while writing {what}; {good}")

    def save(self, trainer: pl.Trainer) -> None:
        """Write last.ckpt; every rank must call it (Lightning gathers state, rank 0 writes).
        Not under fast_dev_run, which is for trying code, not keeping results."""
        if trainer.fast_dev_run:
            return
        weights = [p.detach() for p in trainer.lightning_module.parameters()]
        if not torch.stack([w.isfinite().all() for w in weights]).all():  # one sync per checkpoint
            raise TrainingDiverged(
                f"weights became inf or NaN by iteration {trainer.lightning_module.iteration - 1}; "
                f"{self.last} is kept as it was. A lower model.lr or another seed may help"
            )
        trainer.save_checkpoint(self.last, weights_only=False)  # rank 0 writes, beside it first (BesideTarget)
        self._saved = trainer.lightning_module.iteration - 1

    def state_dict(self) -> dict:
        return {"best": self.best, "periodic": self.periodic}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]
        # those of an earlier run in another folder are its record, not this run's to prune
        self.periodic = [name for name in state_dict.get("periodic", []) if Path(name).parent == self.dirpath]

