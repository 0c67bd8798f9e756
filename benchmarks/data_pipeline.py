"""The data pipeline alone (images/s): the tutorial's ImageFolder + PIL against dcgan's loader,
without and with the decoded-image cache, the same worker count for all.

Works on a CelebA-like folder (root/img_align_celeba/*.jpg, 178x218 JPEGs), made up of smooth
random images when --root is not given. Each epoch ends with batches of floats in [-1, 1] on
--device, as training receives them.

    python benchmarks/data_pipeline.py [--images 4000] [--workers 2] [--device cpu] [--root DIR]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder as TorchvisionImageFolder

from dcgan.data.folder import ImageFolderDataModule


def make_celeba_like(root: Path, count: int) -> None:
    """count 178x218 JPEGs of smooth random colour fields, decoded about as fast as photos."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (14, 12, 3), dtype=np.uint8))
        coarse.resize((178, 218), Image.Resampling.BICUBIC).save(folder / f"{index:06d}.jpg", quality=95)


def epoch(loader, to_batch, device: torch.device) -> float:
    """Images per second over one pass of loader, each batch made a float batch on device."""
    start, count = time.perf_counter(), 0
    for batch in loader:
        images = to_batch(batch)
        count += images.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="a CelebA-like folder; default: generate --images JPEGs")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="cached epochs after the first pass")
    args = parser.parse_args()
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "celeba"
        if not args.root:
            make_celeba_like(root, args.images)

        tutorial = TorchvisionImageFolder(str(root), transform=T.Compose([
            T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
        print(f"{len(tutorial)} CelebA-like JPEGs -> 64x64 float batches of {args.batch_size} on {device}, "
              f"{args.workers} workers, {torch.get_num_threads()} torch threads")
        print(f"{'pipeline':<46} {'images/s':>10} {'vs tutorial':>12}")

        def row(name: str, rate: float) -> None:  # printed as measured: a run cut short still reports
            print(f"{name:<46} {rate:>10,.0f} {rate / tutorial_rate:>11.1f}x", flush=True)

        loader = DataLoader(tutorial, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
        tutorial_rate = epoch(loader, lambda batch: batch[0].to(device), device)
        row("tutorial: torchvision ImageFolder + PIL", tutorial_rate)

        def dcgan(cache: bool) -> ImageFolderDataModule:
            return ImageFolderDataModule(str(root), image_size=64, batch_size=args.batch_size, num_workers=args.workers,
                                         drop_last=False, cache=cache, cache_dir=str(Path(tmp) / "cache"))

        plain = dcgan(cache=False)
        plain.setup("fit")
        row("dcgan, no cache (PIL, JPEG draft decoding)",
            epoch(plain.train_dataloader(), lambda b: plain.on_after_batch_transfer(b.to(device), 0), device))

        cached = dcgan(cache=True)
        start = time.perf_counter()
        cached.prepare_data()  # the first pass: decode every image once, into the cache file
        row("dcgan cache, first pass (decode into the file)", len(cached.files) / (time.perf_counter() - start))
        cached.setup("fit")
        loader = cached.train_dataloader()
        row(f"dcgan cache, later epochs (best of {args.epochs})",
            max(epoch(loader, lambda b: cached.on_after_batch_transfer(b.to(device), 0), device)
                for _ in range(args.epochs)))

if __name__ == "__main__":
    main()
