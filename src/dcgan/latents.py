"""Paths through latent space: spherical interpolation between fixed endpoints."""

import torch
from torch import Tensor


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
