"""Latents for sampling: truncated draws, seed lists, and spherical paths between endpoints."""

import torch
from torch import Tensor

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
