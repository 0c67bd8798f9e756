"""The seed's figures, written into the run directory when training ends: the animation of the
fixed-noise grids, the loss curves and real beside fake. Read back from the run's TensorBoard
events, so they show exactly what TensorBoard shows and hold no memory while training."""

import io
from pathlib import Path

import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_warn

from dcgan.callbacks.events import Logged, logged_between
from dcgan.callbacks.sinks import log_figure

# zlib's fastest level: the figures are drawn while the user waits for the run to end, and level 6
# (PIL's default) took 0.05 s more per figure for files a third smaller
FAST_PNG = {"compress_level": 1}


class TrainingFigures(pl.Callback):
    """progress.gif (the fixed-noise grids, one frame each), loss_curves.png (G's and D's loss
    against the iteration) and real_vs_fake.png (the real grid beside the last fake one).

    A resumed run logs into a new directory; the checkpoint remembers where the earlier segments
    logged and from which iteration, so the figures cover the whole training from iteration 0."""

    def __init__(self, dirpath: str, frame_ms: int = 500):
        self.dirpath = Path(dirpath)
        self.frame_ms = frame_ms
        self.segments: list[tuple[str, int]] = []  # (TensorBoard log dir, first iteration) of each run

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = _tensorboard(trainer)
        if logger is not None:
            self.segments.append((str(Path(logger.log_dir).resolve()), pl_module.iteration))
        elif not trainer.fast_dev_run:
            rank_zero_warn("no progress.gif, loss_curves.png or real_vs_fake.png: they are drawn from TensorBoard's "
                           "events, so add tensorboard to the loggers (e.g. logger=[tensorboard,wandb])")

    def state_dict(self) -> dict:
        return {"segments": self.segments}

    def load_state_dict(self, state_dict: dict) -> None:
        self.segments = [tuple(segment) for segment in state_dict["segments"]]

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = _tensorboard(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        logger.experiment.flush()
        grids, real, losses = [], [], {"g": [], "d": []}
        ends = [first for _, first in self.segments[1:]] + [float("inf")]
        for (log_dir, first), end in zip(self.segments, ends):
            if not Path(log_dir).is_dir():
                rank_zero_warn(f"the figures miss iterations {first} to {end - 1}: their TensorBoard events "
                               f"({log_dir}) are gone")
                continue
            images, scalars = logged_between(log_dir, first, end)
            grids += images.get("samples/fixed_noise", [])
            real += images.get("samples/real", [])
            for name in losses:
                losses[name] += scalars.get(f"train/loss_{name}", [])
        self.dirpath.mkdir(parents=True, exist_ok=True)
        if grids:
            frames = [_image(event) for event in grids]
            # GIF holds 256 colours a frame: PIL's default quantiser took 0.4 s a frame, its
            # octree 0.01 s (measured on 530x530 grids), with no visible loss on these grids
            palette = [frame.quantize(256, method=Image.Quantize.FASTOCTREE) for frame in frames]
            palette[0].save(self.dirpath / "progress.gif", save_all=True, append_images=palette[1:],
                            duration=self.frame_ms, loop=0)
            if real:
                self._real_vs_fake(_image(real[0]), frames[-1])
        if all(losses.values()):
            self._loss_curves(losses)
        for name in ("progress.gif", "loss_curves.png", "real_vs_fake.png"):  # to every other logger too
            if (self.dirpath / name).exists():
                log_figure(trainer, self.dirpath / name)

    def _loss_curves(self, series: dict) -> None:
        plt = _pyplot()
        figure = plt.figure(figsize=(10, 5))
        plt.title("Generator and Discriminator Loss During Training")
        for name, events in series.items():
            plt.plot([e.step for e in events], [e.value for e in events], label=name.upper())
        plt.xlabel("iterations")
        plt.ylabel("Loss")
        plt.legend()
        figure.savefig(self.dirpath / "loss_curves.png", dpi=100, pil_kwargs=FAST_PNG)
        plt.close(figure)

    def _real_vs_fake(self, real: Image.Image, fake: Image.Image) -> None:
        plt = _pyplot()
        figure = plt.figure(figsize=(15, 7.5))
        for index, (title, image) in enumerate((("Real Images", real), ("Fake Images", fake)), start=1):
            plt.subplot(1, 2, index)
            plt.axis("off")
            plt.title(title)
            plt.imshow(image)
        figure.savefig(self.dirpath / "real_vs_fake.png", dpi=100, bbox_inches="tight", pil_kwargs=FAST_PNG)
        plt.close(figure)


def _pyplot():
    """matplotlib's pyplot, drawing into files only: imported when the figures are drawn."""
    import matplotlib

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    return plt


def _tensorboard(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)


def _image(logged: Logged) -> Image.Image:
    return Image.open(io.BytesIO(logged.value)).convert("RGB")
