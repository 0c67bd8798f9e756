"""Checkpoints in the run directory: last.ckpt after every epoch, and periodic ones kept."""

import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint


class RunCheckpoints(Checkpoint):
    """dirpath/last.ckpt after every epoch; dirpath/epoch=NNN.ckpt (N epochs done) every N epochs.

    last.ckpt is replaced atomically: a crash mid-write leaves the previous one loadable.
    Subclassing Checkpoint makes Lightning run this after the other callbacks and skip its own.
    """

    def __init__(self, dirpath: str, every_n_epochs: int = 1):
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs

    @property
    def last(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)
        epochs = trainer.current_epoch + 1
        if self.every_n_epochs > 0 and epochs % self.every_n_epochs == 0 and trainer.is_global_zero:
            shutil.copyfile(self.last, self.dirpath / f"epoch={epochs:03d}.ckpt")

    def save(self, trainer: pl.Trainer) -> None:
        """Write last.ckpt; every rank must call it (Lightning gathers state, rank 0 writes)."""
        partial = self.dirpath / "last.ckpt.partial"
        trainer.save_checkpoint(partial, weights_only=False)
        if trainer.is_global_zero:
            os.replace(partial, self.last)
