"""Images and hyperparameters to every logger that can hold them, each through its own library's
API: TensorBoard, Weights & Biases and MLflow. CSV holds numbers only (and hparams.yaml)."""

import contextlib
import importlib
from pathlib import Path

import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor
from torch.utils.tensorboard.summary import hparams as hparams_summary
from torchvision.transforms.functional import to_pil_image

from dcgan.errors import UsageError

EXTRAS = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}  # loggers whose library is an extra of ours


def check_installed(loggers: dict) -> None:
    """A one-line error, before any work, for a chosen logger whose library is not installed."""
    for name, node in (loggers or {}).items():
        extra = EXTRAS.get((node or {}).get("_target_", "").rsplit(".", 1)[-1])
        if extra is None:
            continue
        try:
            importlib.import_module(extra)
        except ImportError:
            raise UsageError(f"logger {name} needs the {extra} package, which is not installed: "
                             f'pip install -e ".[{extra}]"') from None


def log_image(trainer: pl.Trainer, tag: str, image: Tensor, step: int) -> None:
    """A (3, H, W) image in [0, 1], at the iteration `step` (rank 0 only)."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, image, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[to_pil_image(image)], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_image(logger.run_id, to_pil_image(image),
                                        artifact_file=f"{tag}/{step:07d}.png")


def log_figure(trainer: pl.Trainer, path: Path) -> None:
    """A figure file of the run directory (PNG or GIF), once training is over (rank 0 only)."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger) and path.suffix == ".png":  # TensorBoard has no animations
            logger.experiment._get_file_writer().add_summary(png_summary(f"figures/{path.stem}", path))
        elif isinstance(logger, WandbLogger):
            import wandb  # the wandb extra; installed whenever a WandbLogger runs

            media = wandb.Video(str(path), format="gif") if path.suffix == ".gif" else wandb.Image(str(path))
            logger.experiment.log({f"figures/{path.stem}": media})
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_artifact(logger.run_id, str(path), "figures")


def png_summary(tag: str, path: Path) -> Summary:
    """A PNG file as TensorBoard's image summary, its bytes as they are: add_image would decode and
    encode it again (0.15 s for the run's two figures)."""
    with Image.open(path) as image:
        width, height, colorspace = image.width, image.height, len(image.getbands())  # 1 L, 2 LA, 3 RGB, 4 RGBA
    picture = Summary.Image(height=height, width=width, colorspace=colorspace, encoded_image_string=path.read_bytes())
    return Summary(value=[Summary.Value(tag=tag, image=picture)])


def log_params(trainer: pl.Trainer, params: dict) -> None:
    """The run's hyperparameters to the loggers that hold them apart from metrics: W&B's config,
    MLflow's params, CSV's hparams.yaml (rank 0 only)."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params)


def log_hparams_tab(trainer: pl.Trainer, params: dict, metrics: dict[str, float]) -> None:
    """The run's hyperparameters with its final metrics, in the given order, to TensorBoard's
    HParams tab (rank 0 only)."""
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()  # the run's own event file, as Lightning's
            for summary in hparams_summary(params, metrics):
                writer.add_summary(summary)
            logger.experiment.flush()


def finish(loggers: list, failed: bool = False) -> None:
    """End the runs of loggers that keep one open in the process (W&B), as failed if training
    raised: a sweep's next job, in the same process, would otherwise log into this job's run.
    TensorBoard's writer threads are stopped: after a failed run Lightning's last flush may have
    raised before it closed them, and one still writing would fail after the run's error line."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)
        if isinstance(logger, TensorBoardLogger) and logger._experiment is not None:
            for writer in (logger.experiment.all_writers or {}).values():
                with contextlib.suppress(OSError):  # a full disk: its thread has said so
                    writer.close()  # its thread stopped (joined) first, then the file flushed
