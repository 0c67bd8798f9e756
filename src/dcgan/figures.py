"""The seed's figures, written into the run directory when training ends: the animation of the
fixed-noise grids, the loss curves and real beside fake. Read back from the run's TensorBoard
events, so they show exactly what TensorBoard shows and hold no memory while training."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from PIL import Image  # noqa: E402
from pytorch_lightning.loggers import TensorBoardLogger  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


class TrainingFigures(pl.Callback):
    """progress.gif (the fixed-noise grids, one frame each), loss_curves.png (G's and D's loss
    against the iteration) and real_vs_fake.png (the real grid beside the last fake one)."""

    def __init__(self, dirpath: str, frame_ms: int = 500):
        self.dirpath = Path(dirpath)
        self.frame_ms = frame_ms

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None or not trainer.is_global_zero:
            return
        logger.experiment.flush()
        events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "scalars": 0})
        events.Reload()
        tags = events.Tags()
        self.dirpath.mkdir(parents=True, exist_ok=True)
        if "samples/fixed_noise" in tags["images"]:
            frames = [_image(event) for event in events.Images("samples/fixed_noise")]
            frames[0].save(self.dirpath / "progress.gif", save_all=True, append_images=frames[1:],
                           duration=self.frame_ms, loop=0)
            if "samples/real" in tags["images"]:
                self._real_vs_fake(_image(events.Images("samples/real")[0]), frames[-1])
        if {"train/loss_g", "train/loss_d"} <= set(tags["scalars"]):
            self._loss_curves({name: events.Scalars(f"train/loss_{name}") for name in ("g", "d")})

    def _loss_curves(self, series: dict) -> None:
        figure = plt.figure(figsize=(10, 5))
        plt.title("Generator and Discriminator Loss During Training")
        for name, events in series.items():
            plt.plot([e.step for e in events], [e.value for e in events], label=name.upper())
        plt.xlabel("iterations")
        plt.ylabel("Loss")
        plt.legend()
        figure.savefig(self.dirpath / "loss_curves.png", dpi=100)
        plt.close(figure)

    def _real_vs_fake(self, real: Image.Image, fake: Image.Image) -> None:
        figure = plt.figure(figsize=(15, 7.5))
        for index, (title, image) in enumerate((("Real Images", real), ("Fake Images", fake)), start=1):
            plt.subplot(1, 2, index)
            plt.axis("off")
            plt.title(title)
            plt.imshow(image)
        figure.savefig(self.dirpath / "real_vs_fake.png", dpi=100, bbox_inches="tight")
        plt.close(figure)


def _image(event) -> Image.Image:
    return Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB")
