"""Callbacks the tests load through the config (+callbacks.probe=...), in every rank."""

import hashlib
import json
from pathlib import Path

import pytorch_lightning as pl
import torch


class RankProbe(pl.Callback):
    """Each rank writes what it saw to <dirpath>/rank<N>.json."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self.batches: list[list[str]] = []
        self.shapes: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([hashlib.md5(image.cpu().numpy().tobytes()).hexdigest() for image in batch])
        self.shapes.append(list(batch.shape))

    def on_train_end(self, trainer, pl_module):
        self.dirpath.mkdir(parents=True, exist_ok=True)
        report = {
            "world_size": trainer.world_size,
            "fixed_noise": pl_module.fixed_noise.sum().item(),
            "latents": pl_module.sample_latents(4).sum().item(),
            "images": [x for batch in self.batches for x in batch],
            "shapes": self.shapes,
            "wrapped": [type(net).__name__ for net in pl_module._train_nets],
            "norms": sorted({type(m).__name__ for m in pl_module.modules() if "Norm" in type(m).__name__}),
        }
        (self.dirpath / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


class ScalerProbe(pl.Callback):
    """Records the AMP grad scaler's state as training starts (after any resume)."""

    seen: dict = {}

    def on_train_start(self, trainer, pl_module):
        ScalerProbe.seen = dict(trainer.precision_plugin.scaler.state_dict())
