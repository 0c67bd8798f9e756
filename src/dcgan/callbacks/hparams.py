"""The run's hyperparameters in every logger, and with the final metrics in TensorBoard's HParams tab."""

import pytorch_lightning as pl
import torch

from dcgan.callbacks.sinks import log_hparams_tab, log_params


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
