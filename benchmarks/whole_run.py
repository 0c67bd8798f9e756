"""Whole training runs as a user starts them, against the tutorial's plain loop: the wall time of
whole processes, start-up included, at two lengths so that the start-up cancels out, alternating.

    python benchmarks/whole_run.py [--epochs 1 4] [--pairs 3] [--batch-size 64] [--width 32] [KEY=VALUE ...]
    python benchmarks/whole_run.py data.cache=false       # the template decoding every epoch, as the loop does

Both train the seed's networks (ngf = ndf = --width) at --image-size RGB, batch --batch-size, on
the built-in digits written as an image folder (1,797 PNGs, or the first --images), each reading
it with --workers loader processes:

- the template: python train.py experiment=cifar32 data.root=<the folder> ~callbacks.quality and
  the sizes above (everything else as a user gets it: grids, checkpoints, figures, TensorBoard);
- the loop: the tutorial's training loop (tutorial_loop.py) over torchvision's
  ImageFolder with the tutorial's transforms (Resize, CenterCrop, ToTensor, Normalize).

Per iteration: (median wall time of the long runs - that of the short ones) / the iterations
between; start-up: the short runs' median less their iterations at that rate.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loop(args: argparse.Namespace) -> None:
    """The plain loop's whole process (--loop): what a user of the tutorial runs."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    from tutorial_loop import seed_loop

    dataset = dset.ImageFolder(root=args.root, transform=transforms.Compose([
        transforms.Resize(args.image_size), transforms.CenterCrop(args.image_size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    setting = argparse.Namespace(accelerator="cpu", width=args.width, image_size=args.image_size,
                                 batch_size=args.batch_size, warmup=0, cudnn_benchmark=False, workers=args.workers)
    seed_loop(setting, dataset, "32-true", epochs=args.loop)


def template_command(args: argparse.Namespace, root: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "experiment=cifar32", f"data.root={root}",
            f"data.image_size={args.image_size}", f"data.batch_size={args.batch_size}", f"model.ngf={args.width}",
            f"model.ndf={args.width}", f"data.num_workers={args.workers}", "~callbacks.quality",
            f"trainer.max_epochs={epochs}", f"hydra.run.dir={out}", f"paths.data_dir={out.parent / 'data'}",
            *args.overrides]


def loop_command(args: argparse.Namespace, root: Path, epochs: int) -> list[str]:
    return [sys.executable, __file__, "--loop", str(epochs), "--root", str(root), "--image-size", str(args.image_size),
            "--batch-size", str(args.batch_size), "--width", str(args.width), "--workers", str(args.workers)]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")})
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def write_folder(folder: Path, images: int | None) -> Path:
    """The built-in digits as an image folder of class subfolders (`images` of them, every class)."""
    from dcgan.data.digits import write_digits

    root = folder / "digits"
    write_digits(root)
    files = sorted(root.rglob("*.png"))
    kept = set(files[:: len(files) // images][:images]) if images else set(files)
    for path in set(files) - kept:
        path.unlink()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs=2, default=[1, 4], help="the short and the long run")
    parser.add_argument("--pairs", type=int, default=3, help="alternating runs of each kind and length")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32, help="ngf = ndf (the seed: 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--images", type=int, default=None, help="train on N of the digits only")
    parser.add_argument("overrides", nargs="*", help="train.py overrides for the template, e.g. data.cache=false")
    parser.add_argument("--loop", type=int, default=None, help=argparse.SUPPRESS)  # a plain loop's own process
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop is not None:
        return loop(args)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = write_folder(tmp, args.images)
        count = len(list(root.rglob("*.png")))
        per_epoch = count // args.batch_size
        short, long = args.epochs
        print(f"CPU, {os.cpu_count()} cores: {count} images at {args.image_size}x{args.image_size} RGB, batch "
              f"{args.batch_size} ({per_epoch} iterations an epoch), ngf = ndf = {args.width}, {args.workers} loader "
              f"worker(s); {args.pairs} alternating pairs of {short} and {long} epochs; template overrides: "
              f"{' '.join(args.overrides) or 'none'}", flush=True)
        walls: dict[tuple[str, int], list[float]] = {}
        for pair in range(args.pairs):
            for epochs in (short, long):
                out = tmp / f"run{pair}-{epochs}"
                walls.setdefault(("dcgan", epochs), []).append(timed(template_command(args, root, out, epochs), tmp))
                walls.setdefault(("plain loop", epochs), []).append(timed(loop_command(args, root, epochs), tmp))
                print(f"  pair {pair}, {epochs} epochs: dcgan {walls['dcgan', epochs][-1]:.1f} s, plain loop "
                      f"{walls['plain loop', epochs][-1]:.1f} s", file=sys.stderr, flush=True)

        print(f"\n| | {short} epoch(s), wall: median (range) | {long} epochs, wall: median (range) | per iteration | "
              "start-up |\n| --- | --- | --- | --- | --- |")
        rates = {}
        for kind in ("dcgan", "plain loop"):
            a, b = statistics.median(walls[kind, short]), statistics.median(walls[kind, long])
            rates[kind] = (b - a) / ((long - short) * per_epoch)
            cells = [f"{statistics.median(walls[kind, n]):.1f} s ({min(walls[kind, n]):.1f} - {max(walls[kind, n]):.1f})"
                     for n in (short, long)]
            print(f"| {kind} | {cells[0]} | {cells[1]} | {rates[kind]:.3f} s | {a - short * per_epoch * rates[kind]:.1f} s |")
        print(f"\ndcgan's speed per iteration: {rates['plain loop'] / rates['dcgan']:.2f}x the plain loop's")


if __name__ == "__main__":
    main()
