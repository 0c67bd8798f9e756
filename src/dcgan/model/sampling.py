"""Sampling from a generator: latents (truncated draws, seed lists, spherical paths between
endpoints), batches of equal size, with or without labels, normalisation with batch statistics,
and pixels."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from dcgan.errors import UsageError


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation from a to b, (R, nz) each, at fractions t (S,): (R, S, nz).
    Unlike a straight line, the path keeps the norm Gaussian latents have, so its middle images
    are as sharp as its ends."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1, 1)[:, None, None]  # (R, 1, 1)
    omega = torch.acos(cos)
    t = t[None, :, None]  # (1, S, 1)
    sin = torch.sin(omega).clamp_min(1e-6)  # parallel endpoints: the weights tend to a straight line's
    return (torch.sin((1 - t) * omega) / sin) * a[:, None] + (torch.sin(t * omega) / sin) * b[:, None]


def interpolation_latents(endpoints: Tensor, steps: int) -> Tensor:
    """endpoints (R, 2, nz) -> (R * steps, nz, 1, 1): R rows of `steps` latents each."""
    rows, _, nz = endpoints.shape
    path = slerp(endpoints[:, 0], endpoints[:, 1], torch.linspace(0, 1, steps, device=endpoints.device))
    return path.reshape(rows * steps, nz, 1, 1)


def truncated_normal(shape: tuple[int, ...], truncation: float | None, generator: torch.Generator) -> Tensor:
    """Standard normal latents; with a truncation T, every component beyond T in magnitude drawn
    again until none is (the truncation trick: typical images, less variety)."""
    z = torch.randn(shape, generator=generator)
    while truncation is not None and (outside := z.abs() > truncation).any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
    return z


def parse_seeds(seeds: int | list[int] | str) -> list[int]:
    """seeds=5, seeds=[1, 7] or seeds=0-63 (inclusive) -> a list of seeds."""
    if isinstance(seeds, str):
        first, _, last = seeds.partition("-")
        if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
            raise UsageError(f"seeds={seeds} must be a seed, a list of seeds or a range such as 0-63")
        return list(range(int(first), int(last) + 1))
    return [seeds] if isinstance(seeds, int) else list(seeds)


def equal_batches(count: int, batch_size: int) -> list[int]:
    """Sizes of the fewest batches of at most batch_size that hold count items, as equal as can be:
    65 in batches of 64 is 33 + 32, not 64 + 1. A generator that normalises each batch with its
    own statistics (BatchNorm, as in training) gives poor images in a very small batch."""
    batches = -(-count // batch_size)
    return [count // batches + (i < count % batches) for i in range(batches)]


def generate(generator: nn.Module, z: Tensor, labels: Tensor | None) -> Tensor:
    """G(z), or G(z, labels) for a class-conditional G (labels not None)."""
    return generator(z) if labels is None else generator(z, labels)


def split(labels: Tensor | None, parts: int) -> list[Tensor | None]:
    """labels (B,) in `parts` chunks, as a batch's chunk(parts); None: `parts` times None."""
    return list(labels.chunk(parts)) if labels is not None else [None] * parts


@contextmanager
def sampling_mode(module: nn.Module) -> Iterator[None]:
    """Sample as training normalises, and leave module as it was: BatchNorm with each batch's own
    statistics, without updating the running averages or synchronising SyncBatchNorm across
    ranks (so rank 0 can sample alone); spectral norm with its current vectors, without the power
    iteration that rewrites them (so the same latent gives the same image every time); every
    other layer in eval mode."""
    modes = [(m, m.training) for m in module.modules()]
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    statistics = [(m.running_mean, m.running_var) for m in norms]
    module.eval()  # spectral norm's parametrizations are submodules: eval stops their power iteration
    for m in norms:  # eval mode with no running stats = batch stats, no update, no all-reduce
        m.running_mean = m.running_var = None
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for m, (mean, var) in zip(norms, statistics):
            m.running_mean, m.running_var = mean, var


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] floats -> the uint8 pixels a PNG of them holds."""
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
