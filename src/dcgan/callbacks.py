"""What training shows: grids and hyperparameters in the loggers (sinks.py), statistics in the
progress bar."""

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import Tensor
from torchvision.utils import make_grid

from dcgan.sinks import log_hparams_tab, log_image, log_params


def to_grid(images: Tensor, nrow: int = 8) -> Tensor:
    """(B, C, S, S) in [-1, 1] -> one (3, H, W) image in [0, 1], 8 per row as in the seed."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


class ImageGrids(pl.Callback):
    """G(fixed_noise) after the first iteration, every N (0: none) and at each epoch end, so
    TensorBoard's image slider replays training like the seed's animation; a grid of real
    training images once; and at each epoch end, spherical interpolations between fixed pairs of
    latents.

    Every image is logged at the index of the latest finished iteration (one D and one G update,
    the seed's ``iters``): the x-axis of every plot, as Lightning logs scalars there (its
    global_step counts optimizer steps, two per iteration).
    """

    def __init__(self, every_n_iterations: int = 500):
        self.every_n_iterations = every_n_iterations
        self._last_logged = -1
        self._real_logged = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch: Tensor, batch_idx: int) -> None:
        step = pl_module.iteration - 1
        if not self._real_logged:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch  # (images, labels) with classes
            self._add(trainer, "samples/real", images[: len(pl_module.fixed_noise)], step)
            self._real_logged = True
        every = self.every_n_iterations  # on the iterations whose scalars are logged too, when a multiple
        if step == 0 or (every and pl_module.iteration % every == 0):
            self._add_fixed(trainer, pl_module, step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = pl_module.iteration - 1
        if step != self._last_logged:
            self._add_fixed(trainer, pl_module, step)
        if trainer.is_global_zero:  # 8 spherical paths between fixed endpoints, 8 steps each
            with torch.no_grad():
                path = pl_module.interpolation(steps=8)
            self._add(trainer, "samples/interpolation", path, step)

    def _add_fixed(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        if trainer.is_global_zero:  # the other ranks would render the same grid for nothing
            with torch.no_grad():
                images, nrow = pl_module.grid()
                self._add(trainer, "samples/fixed_noise", images, step, nrow)
        self._last_logged = step

    @staticmethod
    def _add(trainer: pl.Trainer, tag: str, images: Tensor, step: int, nrow: int = 8) -> None:
        if trainer.is_global_zero:
            log_image(trainer, tag, to_grid(images, nrow), step)


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, showing the train/ statistics.

    Logged with prog_bar=True, Lightning would turn them into Python numbers after every batch, a
    host sync per statistic per step. Here they are read only on the iterations Lightning has just
    logged, which sync anyway; in between, the bar shows the last values read.
    """

    def __init__(self, refresh_rate: int = 1):
        super().__init__(refresh_rate=refresh_rate)
        self._shown: dict[str, str] = {}

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, int | str | float]:
        every = trainer.log_every_n_steps
        if every and pl_module.iteration % every == 0:
            stats = {name: value for name, value in trainer.callback_metrics.items() if name.startswith("train/")}
            self._shown = {name: f"{value.item():.3g}" for name, value in stats.items()}
        return {**super().get_metrics(trainer, pl_module), **self._shown}


class HParams(pl.Callback):
    """The run's hyperparameters, the model's first, then the data's and the trainer's: to W&B's
    config, MLflow's params and CSV's hparams.yaml as training starts (so a run stopped early has
    them too), and with the final metrics (val/fid first, then val/ and train/) to TensorBoard's
    HParams tab when it ends, where a sweep can be sorted."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        log_params(trainer, self.params(trainer, pl_module))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        logged = {k: float(v) for k, v in metrics.items() if k.startswith(("train/", "val/"))}
        order = sorted(logged, key=lambda name: (name != "val/fid", not name.startswith("val/"), name))
        log_hparams_tab(trainer, self.params(trainer, pl_module), {name: logged[name] for name in order})

    @staticmethod
    def params(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, bool | int | float | str]:
        params = {f"model/{name}": value for name, value in pl_module.hparams.items()}
        if trainer.datamodule is not None:
            params |= {f"data/{name}": value for name, value in trainer.datamodule.hparams.items()}
        params |= {"trainer/precision": trainer.precision, "trainer/world_size": trainer.world_size,
                   "trainer/max_epochs": trainer.max_epochs, "seed": torch.initial_seed()}
        return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}
