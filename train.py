"""Train DCGAN on an image folder: python train.py [key=value ...] (see README.md)."""

from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from dcgan.config import check_config, instantiate_node
from dcgan.errors import UsageError

TOP_LEVEL = {"seed": int, "ckpt_path": str | None}


def train(cfg: DictConfig) -> dict[str, float]:
    """Build everything the config names, fit, and return the final logged metrics."""
    check_config(cfg, TOP_LEVEL)
    ckpt_path = cfg.ckpt_path and Path(cfg.ckpt_path).expanduser()
    if ckpt_path and not ckpt_path.is_file():
        raise UsageError(f"ckpt_path={ckpt_path} is not a file: pass a .ckpt from a run's checkpoints/")
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate_node(cfg.data, "data")
    model = instantiate_node(cfg.model, "model")
    callbacks = [instantiate_node(node, f"callbacks.{name}") for name, node in cfg.callbacks.items()]
    logger = instantiate_node(cfg.logger, "logger")
    trainer = instantiate_node(cfg.trainer, "trainer", callbacks=callbacks, logger=logger)
    if trainer.is_global_zero:  # the resolved options, beside the run they produced
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except UsageError as error:  # the user's mistake: one line, no traceback
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
