"""The progress bar, with the train/ statistics, read from the device only when they are logged."""

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


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
