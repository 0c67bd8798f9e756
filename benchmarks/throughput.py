"""Training throughput (images/s): dcgan's LightningModule + Trainer against the seed's plain loop.

Both train the same networks on the same random uint8 images held in memory, with the same
batch size, device and precision, alternating run by run. The plain loop is the tutorial's:
two D backward passes, D's gradients computed in the G step, .item() statistics every
iteration, torch's default Adam. Iterations before --warmup are not timed.

    python benchmarks/throughput.py --width 32                        # CPU, the seed's 64x64 model at half width
    python benchmarks/throughput.py --accelerator gpu --precision 32-true bf16-mixed 16-mixed
    python benchmarks/throughput.py --accelerator gpu --precision bf16-mixed --cudnn-benchmark 0 1

--cudnn-benchmark sets torch.backends.cudnn.benchmark for both loops alike (dcgan through
trainer.benchmark), one row per value.
"""

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
from tutorial_loop import seed_loop, synchronize

from dcgan.data.memory import InMemoryDataModule
from dcgan.model.gan import DCGAN


class Stopwatch(pl.Callback):
    """Wall-clock time from the start of iteration `warmup` to the end of training."""

    def __init__(self, warmup: int):
        self.warmup = warmup

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 2 * self.warmup:
            synchronize(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        synchronize(pl_module.device)
        self.seconds = time.perf_counter() - self.start


def lightning(args: argparse.Namespace, images: torch.Tensor, precision: str) -> float:
    pl.seed_everything(0, verbose=False)
    channels_last = None if args.channels_last is None else bool(args.channels_last)
    model = DCGAN(nz=100, ngf=args.width, ndf=args.width, channels=3, image_size=args.image_size,
                  channels_last=channels_last, compile=args.compile)
    stopwatch = Stopwatch(args.warmup)
    trainer = pl.Trainer(
        accelerator=args.accelerator, devices=1, precision=precision, max_steps=2 * args.iterations,
        logger=False, callbacks=[stopwatch], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, benchmark=args.cudnn_benchmark,
    )
    trainer.fit(model, datamodule=InMemoryDataModule(images, batch_size=args.batch_size))
    return args.batch_size * (args.iterations - args.warmup) / stopwatch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["32-true"])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf (the seed: 64)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels-last", type=int, default=None, help="dcgan's model.channels_last (default: auto)")
    parser.add_argument("--compile", default="", help="dcgan's model.compile: '', true or a mode")
    parser.add_argument("--cudnn-benchmark", type=int, nargs="+", default=[1], choices=[0, 1],
                        help="cuDNN autotuning off (0) or on (1), for both loops; one row per value")
    args = parser.parse_args()
    args.compile = {"": False, "true": True}.get(args.compile, args.compile)

    images = torch.randint(0, 256, (args.batch_size * args.iterations, 3, args.image_size, args.image_size),
                           dtype=torch.uint8)
    on = torch.cuda.get_device_name() if args.accelerator in ("gpu", "cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"{on}: DCGAN {args.image_size}x{args.image_size} RGB, ngf=ndf={args.width}, batch {args.batch_size}, "
          f"{args.iterations - args.warmup} timed iterations, median of {args.repeats} alternating runs")
    print(f"dcgan: channels_last={'auto' if args.channels_last is None else bool(args.channels_last)}, compile={args.compile}")
    print(f"{'precision':<12} {'cudnn.benchmark':>15} {'seed loop img/s':>16} {'dcgan img/s':>12} {'ratio':>6} "
          f"{'dcgan ms/iteration':>19}")
    for precision in args.precision:
        for cudnn_benchmark in args.cudnn_benchmark:
            setting = argparse.Namespace(**{**vars(args), "cudnn_benchmark": bool(cudnn_benchmark)})
            plain, ours = [], []
            for _ in range(args.repeats):
                plain.append(seed_loop(setting, images, precision)[0])
                ours.append(lightning(setting, images, precision))
            p, o = statistics.median(plain), statistics.median(ours)
            print(f"{precision:<12} {str(bool(cudnn_benchmark)):>15} {p:>16,.0f} {o:>12,.0f} {o / p:>6.2f} "
                  f"{1000 * args.batch_size / o:>19.2f}", flush=True)


if __name__ == "__main__":
    main()
