"""Training throughput (images/s) of dcgan's LightningModule + Trainer, per precision.

Data are random uint8 images held in memory, so the model and the training loop are measured,
not image decoding. Iterations before --warmup are left out of the timing.

    python benchmarks/throughput.py --accelerator gpu --precision 32-true 16-mixed bf16-mixed
    python benchmarks/throughput.py --accelerator cpu --width 16 --iterations 30
"""

import argparse
import time

import pytorch_lightning as pl
import torch

from dcgan.data import ImageFolderDataModule
from dcgan.gan import DCGAN


class RandomImages(ImageFolderDataModule):
    """The real DataModule's loader and on-device scaling, over random images in memory."""

    def __init__(self, count: int, image_size: int, batch_size: int):
        super().__init__("unused", image_size=image_size, channels=3, batch_size=batch_size, num_workers=0)
        self.count = count

    def setup(self, stage: str) -> None:
        self.dataset = torch.randint(0, 256, (self.count, 3, self.image_size, self.image_size), dtype=torch.uint8)


class Stopwatch(pl.Callback):
    """Wall-clock time from the start of iteration `warmup` to the end of training."""

    def __init__(self, warmup: int):
        self.warmup = warmup

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 2 * self.warmup:
            self.synchronize(pl_module)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.synchronize(pl_module)
        self.seconds = time.perf_counter() - self.start

    @staticmethod
    def synchronize(pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)


def lightning_images_per_second(args: argparse.Namespace, precision: str) -> float:
    pl.seed_everything(0, verbose=False)
    model = DCGAN(nz=100, ngf=args.width, ndf=args.width, channels=3, image_size=args.image_size)
    data = RandomImages(args.batch_size * args.iterations, args.image_size, args.batch_size)
    stopwatch = Stopwatch(args.warmup)
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=1, precision=precision, max_epochs=1, logger=False,
        callbacks=[stopwatch], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    return args.batch_size * (args.iterations - args.warmup) / stopwatch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["32-true"])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf (the seed: 64)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    device = torch.cuda.get_device_name() if args.accelerator in ("gpu", "cuda") else f"{torch.get_num_threads()} CPU threads"
    print(f"{device}: DCGAN {args.image_size}x{args.image_size} RGB, ngf=ndf={args.width}, batch {args.batch_size}, "
          f"{args.iterations - args.warmup} timed iterations")
    print(f"{'precision':<12} {'images/s':>10}")
    for precision in args.precision:
        print(f"{precision:<12} {lightning_images_per_second(args, precision):>10,.0f}")


if __name__ == "__main__":
    main()
