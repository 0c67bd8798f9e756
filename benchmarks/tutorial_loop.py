"""The PyTorch DCGAN tutorial's training loop, as the benchmarks run it beside the template: plain
PyTorch and the tutorial's networks only, so that a process running it starts as the tutorial's does."""

import argparse
import itertools
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dcgan.model.networks.dcgan import Discriminator, Generator


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_loop(args: argparse.Namespace, images, precision: str, epochs: int | None = 1, seed: int = 0,
              iterations: int | None = None, seconds: float | None = None) -> tuple[float, Generator]:
    """The PyTorch DCGAN tutorial's training loop, on the same networks (logits + BCE-with-logits):
    images/s after the warm-up, and the trained G. images: a uint8 tensor, or a dataset of
    (image in [-1, 1], label) pairs as torchvision's. It stops after `epochs`, `iterations` or
    `seconds` after the warm-up, whichever comes first (None: no such limit)."""
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark  # as the Trainer's benchmark=
    device = torch.device("cuda" if args.accelerator in ("gpu", "cuda") else "cpu")
    channels = images.shape[1] if isinstance(images, torch.Tensor) else 3
    net_g = Generator(100, args.width, channels, args.image_size).to(device)
    net_d = Discriminator(args.width, channels, args.image_size).to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    criterion = F.binary_cross_entropy_with_logits
    loader = DataLoader(images, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        pin_memory=device.type == "cuda", num_workers=getattr(args, "workers", 0))
    if epochs and epochs * len(loader) <= args.warmup:  # nothing would be timed
        raise SystemExit(f"the tutorial loop times the batches after its {args.warmup} warm-up ones, but "
                         f"{len(images)} images make {epochs * len(loader)} whole batches of {args.batch_size} "
                         f"in {epochs} epoch(s): give it more images")
    stats = []
    batches = (batch for _ in (range(epochs) if epochs else itertools.count()) for batch in loader)
    for i, batch in enumerate(batches):
        if i == args.warmup:
            synchronize(device)
            start = time.perf_counter()
        if i == iterations or (seconds and i > args.warmup and time.perf_counter() - start > seconds):
            i -= 1  # iteration i was not run
            break
        real = batch[0].to(device) if isinstance(batch, list) else batch.to(device).float().mul(2 / 255).sub(1)
        b = real.size(0)
        net_d.zero_grad()
        with autocast():
            output = net_d(real).view(-1)
            err_d_real = criterion(output, torch.full((b,), 1.0, device=device))
        scaler.scale(err_d_real).backward()
        d_x = output.sigmoid().mean().item()
        with autocast():
            fake = net_g(torch.randn(b, 100, 1, 1, device=device))
            output = net_d(fake.detach()).view(-1)
            err_d_fake = criterion(output, torch.full((b,), 0.0, device=device))
        scaler.scale(err_d_fake).backward()
        d_g_z1 = output.sigmoid().mean().item()
        scaler.step(opt_d)
        net_g.zero_grad()
        with autocast():
            output = net_d(fake).view(-1)
            err_g = criterion(output, torch.full((b,), 1.0, device=device))
        scaler.scale(err_g).backward()
        d_g_z2 = output.sigmoid().mean().item()
        scaler.step(opt_g)
        scaler.update()
        stats.append(((err_d_real + err_d_fake).item(), err_g.item(), d_x, d_g_z1, d_g_z2))
    synchronize(device)
    return args.batch_size * (i + 1 - args.warmup) / (time.perf_counter() - start), net_g
