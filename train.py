"""Train DCGAN on an image folder: python train.py [key=value ...] (see README.md)."""

import json
import signal
import sys
from pathlib import Path
from typing import Literal

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from dcgan.config import check_config, instantiate_node
from dcgan.errors import UsageError
from dcgan.gan import DCGAN
from dcgan.parallel import register as register_gan_ddp
from dcgan.quality import QualityMetrics
from dcgan.sweep import UNRANKED, job_name

TOP_LEVEL = {"seed": int, "ckpt_path": str | None, "objective": str,
             "objective_direction": Literal["minimize", "maximize"]}
# What a checkpoint's weights are shaped by, and where this run's config sets it.
ARCHITECTURE = {"nz": "model.nz", "ngf": "model.ngf", "ndf": "model.ndf", "channels": "data.channels",
                "image_size": "data.image_size", "d_norm": "model.d_norm", "spectral_norm": "model.spectral_norm",
                "generator": "model.generator", "discriminator": "model.discriminator", "ema_decay": "model.ema_decay",
                "num_classes": "classes (data.labels)"}
MIRRORED = {"nz", "ngf", "ndf", "channels", "image_size", "norm", "num_classes"}  # network arguments the keys above set
OmegaConf.register_new_resolver("job_name", job_name, replace=True)  # names a sweep's job directories
register_gan_ddp()  # trainer.devices > 1: DDP over G and D separately (src/dcgan/parallel.py)


def train(cfg: DictConfig) -> dict[str, float]:
    """Build everything the config names, fit, and return the final logged metrics."""
    check_config(cfg, TOP_LEVEL)
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate_node(cfg.data, "data")
    model = instantiate_node(cfg.model, "model", num_classes=getattr(datamodule, "num_classes", 0))  # the data's
    if cfg.ckpt_path:
        check_resumable(cfg.ckpt_path, model)
    callbacks = [instantiate_node(node, f"callbacks.{name}") for name, node in cfg.callbacks.items()]
    logger = instantiate_node(cfg.logger, "logger")
    trainer = instantiate_node(cfg.trainer, "trainer", callbacks=callbacks, logger=logger)
    output_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:  # the resolved options, beside the run they produced
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path and Path(cfg.ckpt_path).expanduser(),
                weights_only=True)  # a checkpoint runs no pickled code
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if trainer.is_global_zero:  # what a sweep's summary reads
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        if cfg.objective not in metrics:  # the run is done and saved, but a sweep cannot rank it
            why = [cb.unavailable for cb in callbacks if isinstance(cb, QualityMetrics) and cb.unavailable]
            missing = (f"objective={cfg.objective} was not logged{f' ({why[0]})' if why else ''}, "
                       f"so this run is not ranked; logged: {', '.join(sorted(metrics))}")
            (output_dir / UNRANKED).write_text(missing + "\n")
            print(f"warning: {missing}", file=sys.stderr)
    return metrics


def check_resumable(ckpt_path: str, model: DCGAN) -> None:
    """A one-line error, before any work, when the checkpoint's weights would not fit this model."""
    trained = DCGAN.read_checkpoint(ckpt_path)["hyper_parameters"]

    def shape(hparams: dict) -> dict[str, object]:
        """What shapes the weights, key by key; a network's own arguments as model.generator.<arg>
        (but those the top-level keys already name); ema_decay: only whether there is an average.
        A checkpoint older than a key does not record it and is not judged by it."""
        flat = {}
        for name, key in ARCHITECTURE.items():
            value = hparams.get(name)
            if isinstance(value, dict):
                flat |= {f"{key}.{arg}": v for arg, v in value.items() if arg not in MIRRORED}
            elif name in hparams:
                flat[key] = ("set" if value is not None else None) if name == "ema_decay" else value
        return flat

    theirs, ours = shape(trained), shape(model.hparams)
    differences = [f"{key}={theirs[key]} (this run: {ours.get(key)})" for key in theirs if theirs[key] != ours.get(key)]
    if differences:
        raise UsageError(f"ckpt_path={ckpt_path} was trained with {', '.join(differences)}: "
                         "pass the same values to resume it")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Train and return the objective, which sweepers (Optuna) minimise or maximise."""
    try:
        return train(cfg).get(cfg.objective, float("nan"))  # NaN: not ranked, and why is in unranked.txt
    except UsageError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # this job fails, the sweep goes on and its summary says why
        raise SystemExit(f"error: {error}") from None  # the user's mistake: one line, no traceback
    except SIGTERMException:  # SIGTERM or Ctrl-C: last.ckpt was written, and its path printed
        raise SystemExit(128 + signal.SIGTERM) from None


if __name__ == "__main__":
    main()
