"""One CelebA-sized epoch (202,599 64x64 RGB images) on a GPU: dcgan with bf16 and the cache,
against the tutorial's pipeline (ImageFolder + PIL, 2 workers, its fp32 loop) on the same card.

dcgan trains a whole epoch over a cache of random images (decoding is measured separately, by
data_pipeline.py). The tutorial pipeline runs on --tutorial-images generated CelebA-like JPEGs;
its rate gives its epoch time.

    python benchmarks/celeba_epoch.py [--runs BATCH,CHANNELS_LAST,COMPILE,EPOCHS[,CUDNN_BENCHMARK] ...]
    python benchmarks/celeba_epoch.py --runs 128,0,,1 512,0,,2 512,1,,2
    python benchmarks/celeba_epoch.py --runs 512,0,,2,1 512,0,,2,0     # cuDNN autotuning on, off
    python benchmarks/celeba_epoch.py --accelerator cpu --epoch-images 256 --width 8 --runs 64,0,,1   # on a CPU

CUDNN_BENCHMARK (0/1, default 1) is the Trainer's benchmark= (trainer.benchmark in conf/).
"""

import argparse
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torchvision.transforms as T
from data_pipeline import make_celeba_like
from torchvision.datasets import ImageFolder as TorchvisionImageFolder

from dcgan.data.memory import InMemoryDataModule
from dcgan.model.gan import DCGAN
from tutorial_loop import seed_loop, synchronize

CELEBA = 202_599


class EpochTimer(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.seconds = time.perf_counter() - self.start


def dcgan_epochs(images: torch.Tensor, batch_size: int, channels_last: bool, compile, epochs: int,
                 cudnn_benchmark: bool, accelerator: str = "gpu", width: int = 64) -> list[float]:
    """Seconds per epoch; the first includes cuDNN's autotuning, compilation and the cache's
    copy to the GPU."""
    pl.seed_everything(0, verbose=False)
    timer = EpochTimer()
    times = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            times.append(timer.seconds)

    model = DCGAN(nz=100, ngf=width, ndf=width, channels=3, image_size=64, channels_last=channels_last, compile=compile)
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision="bf16-mixed", max_epochs=epochs, logger=False,
                         callbacks=[timer, Record()], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, benchmark=cudnn_benchmark)
    trainer.fit(model, datamodule=InMemoryDataModule(images, batch_size=batch_size))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=["128,0,,2", "128,1,,2", "512,0,,2", "512,1,,2"],
                        help="batch size, channels_last (0/1), compile ('' or a mode), epochs, "
                             "optionally cuDNN autotuning (0/1, default 1)")
    parser.add_argument("--tutorial-images", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accelerator", default="gpu", help="cpu: a smaller --epoch-images, to try the script")
    parser.add_argument("--epoch-images", type=int, default=CELEBA, help="images in an epoch (CelebA's)")
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf (the seed: 64)")
    args = parser.parse_args()
    size = args.epoch_images
    device = torch.cuda.get_device_name() if args.accelerator in ("gpu", "cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"{device}: one epoch of {size:,} 64x64 RGB images, seed's DCGAN (ngf=ndf={args.width})", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        make_celeba_like(Path(tmp), args.tutorial_images)
        dataset = TorchvisionImageFolder(tmp, transform=T.Compose([
            T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
        setup = argparse.Namespace(accelerator=args.accelerator, width=args.width, image_size=64, batch_size=128, warmup=3,
                                   workers=args.workers, cudnn_benchmark=True)
        rate, _ = seed_loop(setup, dataset, "32-true")
    print(f"tutorial pipeline, fp32, batch 128, {args.workers} workers: {rate:,.0f} images/s "
          f"-> {size / rate:.1f} s per epoch", flush=True)

    images = torch.randint(0, 256, (size, 3, 64, 64), dtype=torch.uint8)
    print(f"{'dcgan, bf16-mixed, cache':<72} {'seconds per epoch':>18} {'last vs tutorial':>16}")
    for run in args.runs:
        batch, channels_last, compile, epochs, cudnn_benchmark = (run.split(",") + ["1"])[:5]
        name = (f"batch {batch}, channels_last={bool(int(channels_last))}, compile={compile or False}, "
                f"cudnn.benchmark={bool(int(cudnn_benchmark))}")
        try:
            times = dcgan_epochs(images, int(batch), bool(int(channels_last)), compile or False, int(epochs),
                                 bool(int(cudnn_benchmark)), args.accelerator, args.width)
            shown = " ".join(f"{t:.2f}" for t in times)
            print(f"{name:<72} {shown:>18} {size / rate / times[-1]:>15.1f}x", flush=True)
        except Exception as error:  # report and go on: one failing option must not hide the others
            print(f"{name:<72} failed: {type(error).__name__}: {str(error)[:200]}", flush=True)


if __name__ == "__main__":
    main()
