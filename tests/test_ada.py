"""ADA: its own 'bgc' pipeline draws each transform per image with probability p from the paper's
distributions, with reflect padding, differentiably; p follows D's overfitting heuristic at the
paper's speed, is logged, resumes exactly, and is the same on every rank (resumes of whole runs:
tests/test_resume.py). The DiffAugment-operations variant stays reachable."""

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from dcgan.data.memory import InMemoryDataModule
from dcgan.errors import UsageError
from dcgan.model.ada import AdaptiveAugment
from dcgan.model.ada_pipeline import GROUPS, PIPELINES, AdaPipeline, resample
from dcgan.model.gan import DCGAN
from train import train

N = 4000  # images per distribution check: a KS distance of 0.04 is ~2.5 times its spread
SIZE = 64  # the geometric probes' size: fractional shifts (std 8 pixels) stay inside it


def test_p_moves_by_the_sign_of_rt_minus_the_target_at_the_papers_speed():
    ada = AdaptiveAugment(target=0.6, interval=4, kimg=1, p=0.5)  # 1,000 images from 0 to 1
    for iteration in range(1, 4):  # three iterations of 8 images each, 7 called real: no adjustment yet
        ada.observe(torch.tensor([1.0] * 7 + [-1.0]))
        ada.adjust(iteration, lambda sums: sums)
        assert ada.p == 0.5
    ada.observe(torch.tensor([1.0] * 7 + [-1.0]))
    ada.adjust(4, lambda sums: sums)
    assert ada.rt == pytest.approx(0.75) and ada.p == pytest.approx(0.5 + 32 / 1000)  # r_t above 0.6: up
    assert ada.signs.tolist() == [0, 0]  # counted again from nothing
    for iteration in range(5, 9):  # r_t = 0.25 (and with four ranks' sums, four times the images)
        ada.observe(torch.tensor([1.0] * 5 + [-1.0] * 3))
        ada.adjust(iteration, lambda sums: sums * 4)
    assert ada.rt == pytest.approx(0.25) and ada.p == pytest.approx(0.532 - 128 / 1000)  # down
    ada.p.fill_(0.001)
    ada.observe(-torch.ones(100))
    ada.adjust(12, lambda sums: sums)
    assert ada.p == 0  # kept in [0, 1]


@pytest.mark.parametrize("channels", [3, 1])
def test_p_zero_gives_back_every_image_bit_for_bit(channels: int):
    images = torch.rand(16, channels, 16, 16) * 2 - 1
    ada = AdaptiveAugment("bgc", p=0.0)
    assert torch.equal(ada(images, torch.Generator().manual_seed(0)), images)
    ada.p.fill_(0.5)
    assert not torch.equal(ada(images, torch.Generator().manual_seed(0)), images)


def geometry(transform: str, p: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's (A (N, 2, 2), t (N, 2)): the output pixel at x (from the centre) reads the input
    at A x + t, measured on ramps (channel 0: x, channel 1: y), which bilinear sampling keeps exact."""
    centred = torch.arange(SIZE, dtype=torch.float32) - (SIZE - 1) / 2
    y, x = torch.meshgrid(centred, centred, indexing="ij")
    ramps = torch.stack([x, y, torch.zeros_like(x)]).expand(N, 3, SIZE, SIZE)
    out = AdaPipeline([transform])(ramps, torch.tensor(p), torch.Generator().manual_seed(seed))
    c = SIZE // 2
    centre = out[:, :2, c - 1:c + 1, c - 1:c + 1]  # (N, 2, 2, 2): the four pixels at (+-0.5, +-0.5)
    along_x = (centre[..., 1] - centre[..., 0]).mean(-1)  # (N, 2): the input's step per output pixel in x
    along_y = (centre[..., 1, :] - centre[..., 0, :]).mean(-1)
    return torch.stack([along_x, along_y], -1), centre.mean((2, 3))


def colors(transform: str, p: float, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's colour map (M (N, 3, 3), o (N, 3)), out = M rgb + o, read off black, red, green, blue."""
    probe = torch.zeros(N, 3, 2, 2)
    probe[:, 0, 0, 1], probe[:, 1, 1, 0], probe[:, 2, 1, 1] = 1, 1, 1
    out = AdaPipeline([transform])(probe[:, :channels], torch.tensor(p), torch.Generator().manual_seed(0))
    offset = out[:, :, 0, 0]
    return torch.stack([out[:, :, 0, 1], out[:, :, 1, 0], out[:, :, 1, 1]], -1) - offset.unsqueeze(-1), offset


def normal(std: float):
    return lambda v: 0.5 * (1 + torch.erf(v / (std * math.sqrt(2))))


def uniform(low: float, high: float):
    return lambda v: ((v - low) / (high - low)).clamp(0, 1)


def turn(a: torch.Tensor) -> torch.Tensor:
    return torch.atan2(a[:, 1, 0], a[:, 0, 0])


def hue_angle(m: torch.Tensor) -> torch.Tensor:  # a rotation about (1, 1, 1) / sqrt(3): M - M^T = 2 sin [v]x
    return torch.atan2((m[:, 2, 1] - m[:, 1, 2]) * math.sqrt(3) / 2, (m.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2)


QUARTER = math.pi / 2
# transform: (what is measured of each image at a given p, its identity value, its stated
# distribution at p = 1: the CDF of a continuous one, or {value: probability} of a discrete one)
STATED = {
    "xflip": (lambda p: geometry("xflip", p)[0][:, 0, 0], 1, {1.0: 0.5, -1.0: 0.5}),
    "rotate90": (lambda p: turn(geometry("rotate90", p)[0]) / QUARTER, 0, {0.0: 0.25, 1.0: 0.25, 2.0: 0.25, -1.0: 0.25}),
    "xint": (lambda p: -geometry("xint", p)[1].flatten(), 0,  # uniform within 1/8 of 64 pixels, rounded
             {**{float(k): 1 / 16 for k in range(-7, 8)}, -8.0: 1 / 32, 8.0: 1 / 32}),
    "scale": (lambda p: -torch.log2(geometry("scale", p)[0][:, 0, 0]), 0, normal(0.2)),
    "rotate": (lambda p: turn(geometry("rotate", p)[0]), 0, uniform(-math.pi, math.pi)),  # pre + post: still uniform
    "aniso": (lambda p: torch.log2(geometry("aniso", p)[0][:, 1, 1]), 0, normal(0.2)),
    "xfrac": (lambda p: -geometry("xfrac", p)[1].flatten() / SIZE, 0, normal(0.125)),
    "brightness": (lambda p: colors("brightness", p)[1][:, 0], 0, normal(0.2)),
    "contrast": (lambda p: torch.log2(colors("contrast", p)[0][:, 0, 0]), 0, normal(0.5)),
    "lumaflip": (lambda p: colors("lumaflip", p)[0][:, 0, 0], 1, {1.0: 0.5, 1 / 3: 0.5}),  # I - 2 v v^T: 1/3
    "hue": (lambda p: hue_angle(colors("hue", p)[0]), 0, uniform(-math.pi, math.pi)),
    "saturation": (lambda p: torch.log2((colors("saturation", p)[0].diagonal(dim1=1, dim2=2).sum(1) - 1) / 2), 0,
                   normal(1.0)),
}


@pytest.mark.parametrize("transform", list(GROUPS))
def test_at_p_one_each_transform_draws_from_the_papers_distribution(transform: str):
    measure, _, stated = STATED[transform]
    values = measure(1.0)
    if callable(stated):  # Kolmogorov-Smirnov distance to the stated CDF
        ordered = values.double().sort().values
        empirical = torch.arange(1, len(ordered) + 1, dtype=torch.float64) / len(ordered)
        assert (empirical - stated(ordered)).abs().max() < 0.04
    else:  # every value is one of the stated ones, each about as often as stated
        close = (values.unsqueeze(1) - torch.tensor(list(stated)).unsqueeze(0)).abs() < 1e-4
        assert bool(close.any(1).all())
        assert close.float().mean(0).tolist() == pytest.approx(list(stated.values()), abs=0.025)


@pytest.mark.parametrize("transform", list(GROUPS))
def test_each_transform_reaches_each_image_with_probability_p(transform: str):
    """At p = 0.3, the share of images a transform changes is 0.3 times its share at p = 1 (where
    a flip, say, leaves half of them as they were); the rotation, drawn before and after the
    anisotropic scale with 1 - sqrt(1 - p) each, still changes a share p."""
    measure, identity, _ = STATED[transform]
    changed = {p: ((measure(p) - identity).abs() > 1e-4).float().mean().item() for p in (0.3, 1.0)}
    assert changed[0.3] == pytest.approx(0.3 * changed[1.0], abs=0.025)
    if transform == "rotate":
        assert changed[0.3] == pytest.approx(0.3, abs=0.025)
