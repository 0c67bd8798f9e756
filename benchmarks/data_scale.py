"""How the data path scales with the dataset's size: synthetic datasets of N JPEGs (64x64 by
default; --image-size 256 for the large-image row), for each source and cache tier: start-up
(cold: listing, the bad-image scan and the cache build; warm: a later run's, which stats each file
once and maps the cache), peak host memory, device memory, and images/s in a later epoch.

Each measurement is a fresh process of its own (peak host memory: its ru_maxrss, less that of a
process that only imports what it does). Cold start-up is measured twice per dataset: the
bad-image scan alone (data.cache=false) and the cache's build (one file for the device, host and
disk tiers); warm start-up once per tier, on that cache folder.
Host memory counts the pages of a memory-mapped cache the process touched (they are the OS's page
cache, shared by the ranks on a machine, but they are resident). Epochs are cut at --epoch-images images, so a 1 M-image
dataset's rate is measured without an hour-long pass. The OS's page cache is warm throughout
(the files were just written): the disk tier's rate is that of a page-cache hit, a lower bound on
its cost where the array does not fit in memory.

    python benchmarks/data_scale.py [--sizes 10000 100000 1000000] [--image-size 64]
        [--sources folder zip] [--tiers device host disk false] [--batch-size 256] [--workers 2]
        [--device cpu] [--epoch-images 20000] [--keep DIR]
"""

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

GPU_MEMORY, HOST_MEMORY = 24 * 2**30, 64 * 2**30  # the machine the README's "largest dataset" column is for


def jpeg(rng: np.random.Generator, size: int) -> bytes:
    """A smooth random colour field: decoded about as fast as a photo of its size."""
    buffer = io.BytesIO()
    coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    coarse.resize((size, size), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make(source: str, count: int, size: int, where: Path) -> Path:
    """count images of size x size in source's format under where (folder: 1,000 per subfolder,
    as StyleGAN's dataset_tool writes them; zip: that layout inside one zip)."""
    rng = np.random.default_rng(0)
    names = [f"{i // 1000:05d}/img{i:08d}.jpg" for i in range(count)]
    if source == "folder":
        for name in names:
            path = where / "folder" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg(rng, size))
        return where / "folder"
    path = where / "images.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # JPEGs do not compress
        for name in names:
            archive.writestr(name, jpeg(rng, size))
    return path


def measure(args: argparse.Namespace | None) -> dict:
    """One process's run: the DataModule's start-up, then two epochs as training receives them
    (args None: the imports only)."""
    import torch

    from dcgan.data.folder import ImageFolderDataModule
    from dcgan.data.zip import ZipDataModule

    if args is None:
        return {"peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    device = torch.device(args.device)
    kind = ImageFolderDataModule if args.source == "folder" else ZipDataModule
    cache = args.tier if args.tier != "false" else False
    start = time.perf_counter()
    dm = kind(args.path, image_size=args.image_size, batch_size=args.batch_size, num_workers=args.workers,
              cache=cache, cache_dir=args.cache_dir, drop_last=True)
    listed = len(dm.source)
    listing = time.perf_counter() - start
    dm.prepare_data()  # the bad-image scan, and with a cache its build (a warm start: the record's check)
    dm.setup("fit")
    if dm.tier == "device":
        dm.on_after_batch_transfer(torch.zeros(1, dtype=torch.long, device=device), 0)  # the copy to the device
    startup = time.perf_counter() - start
    rates = []
    loader = dm.train_dataloader()
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        begin, seen = time.perf_counter(), 0
        for batch in loader:
            images = dm.on_after_batch_transfer(batch.to(device, non_blocking=True), 0)
            seen += len(images)
            if seen >= args.epoch_images:
                break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(seen / (time.perf_counter() - begin))
    return {"images": listed, "listing_s": listing, "startup_s": startup, "rate": rates[1],
            "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "device_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}


def child(args: argparse.Namespace, **chosen: str) -> dict:
    """measure() in a fresh process: its own peak memory."""
    options = {**vars(args), **chosen}
    command = [sys.executable, __file__, "--measure", json.dumps({k: v for k, v in options.items() if k != "measure"})]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"failed": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_imports() -> float:
    done = subprocess.run([sys.executable, __file__, "--measure", "imports"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_host_mb"]


def imports_only() -> dict:
    """What a process that imports torch, Lightning and the sources and does nothing else peaks at."""
    return measure(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--sources", nargs="+", default=["folder", "zip"], choices=["folder", "zip"])
    parser.add_argument("--tiers", nargs="+", default=["device", "host", "disk", "false"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epoch-images", type=int, default=20_000, help="images per measured epoch, at most")
    parser.add_argument("--keep", help="make the datasets here (and keep them) instead of a temporary folder")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a measuring child's options, as JSON
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(argparse.Namespace(**json.loads(args.measure))) if args.measure != "imports" else
                         imports_only()))
        return
    imports = child_imports()

    per_image = 3 * args.image_size**2  # bytes, decoded
    print(f"{args.image_size}x{args.image_size} RGB JPEGs, batches of {args.batch_size} on {args.device}, "
          f"{args.workers} workers; start-up cold (cache built) / warm (a later run); rate: a later epoch, "
          f"at most {args.epoch_images:,} images")
    print(f"{'source':<7} {'images':>9} {'tier':<7} {'cold s':>8} {'warm s':>8} {'warm us/img':>11} "
          f"{'host MB':>9} {'device MB':>9} {'images/s':>10}   (host MB: peak over the {imports:.0f} MB of the imports)")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for count in args.sizes:
            for source in args.sources:
                where = base / f"{source}-{count}-{args.image_size}"
                where.mkdir(parents=True, exist_ok=True)
                begin = time.perf_counter()
                path = make(source, count, args.image_size, where)
                print(f"# made {count:,} images as {source} in {time.perf_counter() - begin:.0f} s", flush=True)
                # Cold: the bad-image scan (no cache), then the cache's build, which is the same file
                # for the device, host and disk tiers; each tier's warm start then maps that file.
                chosen = {"source": source, "path": str(path), "cache_dir": str(where / "cache")}
                cold = {tier: child(args, **chosen, tier=tier) for tier in ("false", "disk")}
                for tier in args.tiers:
                    first = cold["false" if tier == "false" else "disk"]
                    warm = child(args, **chosen, tier=tier) if "failed" not in first else first
                    if "failed" in warm:
                        print(f"{source:<7} {count:>9,} {tier:<7} failed: {warm['failed']}", flush=True)
                        continue
                    device = f"{warm['device_mb']:.0f}" if warm["device_mb"] is not None else "-"
                    print(f"{source:<7} {count:>9,} {tier:<7} {first['startup_s']:>8.2f} {warm['startup_s']:>8.2f} "
                          f"{warm['startup_s'] / count * 1e6:>11.1f} {warm['peak_host_mb'] - imports:>9.0f} {device:>9} "
                          f"{warm['rate']:>10,.0f}", flush=True)
    print(f"largest dataset at {args.image_size}x{args.image_size} ({per_image:,} bytes an image decoded) on a "
          f"{GPU_MEMORY // 2**30} GB GPU with {HOST_MEMORY // 2**30} GB of host memory: device (auto: 1/8 of it) "
          f"{GPU_MEMORY // 8 // per_image:,}; host (1/2 of it) {HOST_MEMORY // 2 // per_image:,}; disk: its free space "
          f"/ {per_image:,} bytes")


if __name__ == "__main__":
    main()
