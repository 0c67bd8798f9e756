"""The learning rates over a run (model.lr_decay): "none", the seed's constant rates, or "linear",
SN-GAN's decay to 0 at the run's last G update, as its Chainer code (LinearShift from iteration 0,
pfnet-research/sngan_projection) and Mimicry (torch_mimicry/training/scheduler.py) decay it."""

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.utilities import rank_zero_warn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from dcgan.errors import UsageError

LR_DECAYS = ("none", "linear")


class LinearDecay(LambdaLR):
    """The optimizer's rate times 1 - k / iterations once k G updates are done: update k + 1 runs at
    that rate, the first at the full rate, the last at 1 / iterations of it, and the rate is 0 after.
    Stepped once per G update (one iteration: n_critic D updates and one G update), for G's and D's
    optimizer alike, as Mimicry and the Chainer code step theirs after each iteration. Its state
    (the updates counted) is in checkpoints; `iterations` is set by start() for every run."""

    def __init__(self, optimizer: Optimizer):
        self.iterations: int | None = None
        super().__init__(optimizer, self.factor)

    def factor(self, done: int) -> float:
        return 1.0 if done == 0 else max(0.0, 1.0 - done / self.iterations)


def build(lr_decay: str, optimizers: list[Optimizer]) -> list[LinearDecay]:
    """One scheduler per optimizer for model.lr_decay (none: none)."""
    return [LinearDecay(optimizer) for optimizer in optimizers] if lr_decay == "linear" else []


def start(schedulers: LinearDecay | list[LinearDecay] | None, trainer: pl.Trainer, n_critic: int) -> list[LinearDecay]:
    """The schedulers (as LightningModule.lr_schedulers() gives them), told the run's length once
    the trainer knows its loader; a resumed run's own length, which may be longer than the first's."""
    schedulers = [schedulers] if isinstance(schedulers, LinearDecay) else schedulers or []
    if not schedulers:
        return []
    iterations = planned_iterations(trainer, n_critic)
    if any(isinstance(callback, Timer) for callback in trainer.callbacks):  # what trainer.max_time adds
        rank_zero_warn(f"model.lr_decay=linear decays to 0 over {iterations} G updates (trainer.max_steps or "
                       "max_epochs); a time limit may stop the run before")
    for scheduler in schedulers:
        scheduler.iterations = iterations
    return schedulers


def planned_iterations(trainer: pl.Trainer, n_critic: int) -> int:
    """The G updates this run ends after: the first of trainer.max_steps, which counts every
    optimizer step (n_critic + 1 an iteration, in manual optimization), and trainer.max_epochs
    epochs of trainer.num_training_batches iterations (a training step takes one batch). Lightning's
    estimated_stepping_batches takes max_steps for a count of batches, so it does not serve here."""
    bounds = []
    if trainer.max_steps != -1:
        bounds.append(math.ceil(trainer.max_steps / (n_critic + 1)))
    if trainer.max_epochs not in (None, -1) and trainer.num_training_batches != math.inf:
        bounds.append(trainer.max_epochs * int(trainer.num_training_batches))
    if not bounds:
        raise UsageError("model.lr_decay=linear decays the rates to 0 at the run's last step, but this run sets "
                         "no end: set trainer.max_steps (optimizer steps, model.n_critic + 1 an iteration) or "
                         "trainer.max_epochs, or model.lr_decay=none")
    return min(bounds)
