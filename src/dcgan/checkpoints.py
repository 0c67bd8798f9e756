"""Checkpoints in the run directory: last.ckpt after every epoch, and periodic ones kept."""

import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint


class RunCheckpoints(Checkpoint):
    """dirpath/last.ckpt after every epoch; dirpath/epoch=NNN.ckpt (N epochs done) every N epochs;
    dirpath/best.ckpt whenever `monitor` (lower is better, e.g. val/fid) reaches a new low.

    Files are replaced atomically: a crash mid-write leaves the previous one loadable.
    Subclassing Checkpoint makes Lightning run this after the other callbacks (so the epoch's
    val/fid is there) and skip its own checkpointing.
    """

    def __init__(self, dirpath: str, every_n_epochs: int = 1, monitor: str | None = "val/fid"):
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.monitor = monitor
        self.best: float | None = None

    @property
    def last(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        improved = score is not None and (self.best is None or float(score) < self.best)
        if improved:
            self.best = float(score)  # before saving, so that last.ckpt knows the best so far
        self.save(trainer)
        if not trainer.is_global_zero:
            return
        epochs = trainer.current_epoch + 1
        if self.every_n_epochs > 0 and epochs % self.every_n_epochs == 0:
            shutil.copyfile(self.last, self.dirpath / f"epoch={epochs:03d}.ckpt")
        if improved:
            partial = self.dirpath / "best.ckpt.partial"
            shutil.copyfile(self.last, partial)
            os.replace(partial, self.dirpath / "best.ckpt")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]

    def save(self, trainer: pl.Trainer) -> None:
        """Write last.ckpt; every rank must call it (Lightning gathers state, rank 0 writes)."""
        partial = self.dirpath / "last.ckpt.partial"
        trainer.save_checkpoint(partial, weights_only=False)
        if trainer.is_global_zero:
            os.replace(partial, self.last)
