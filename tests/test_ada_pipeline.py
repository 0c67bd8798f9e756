"""ADA's bgc pipeline: each transform's distribution, rate p, reflect padding, gradients; and DiffAugment."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from dcgan.model.ada import AdaptiveAugment
from dcgan.model.ada_pipeline import GROUPS, PIPELINES, AdaPipeline, resample

N = 4000  # images per distribution check: a KS distance of 0.04 is ~2.5 times its spread
SIZE = 8  # the geometric probes' size: a fractional shift (std 1 pixel) reaches its edge once in ~2,000


@pytest.mark.parametrize("channels", [3, 1])
def test_p_zero_gives_back_every_image_bit_for_bit(channels: int):
    images = torch.rand(512, channels, 8, 8) * 2 - 1  # 6,144 draws of a transform: any leak shows
    ada = AdaptiveAugment("bgc", p=0.0)
    assert torch.equal(ada(images, torch.Generator().manual_seed(0)), images)
    ada.p.fill_(0.5)
    assert not torch.equal(ada(images, torch.Generator().manual_seed(0)), images)


@functools.cache
def geometry(transform: str, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's (A (N, 2, 2), t (N, 2)): the output pixel at x (from the centre) reads the input
    at A x + t, measured on ramps (channel 0: x, channel 1: y), which bilinear sampling keeps exact."""
    centred = torch.arange(SIZE, dtype=torch.float32) - (SIZE - 1) / 2
    y, x = torch.meshgrid(centred, centred, indexing="ij")
    ramps = torch.stack([x, y]).expand(N, 2, SIZE, SIZE)  # (N, 2, S, S): only the colour maps need 1 or 3
    out = AdaPipeline([transform])(ramps, torch.tensor(p), torch.Generator().manual_seed(0))
    c = SIZE // 2
    centre = out[:, :2, c - 1:c + 1, c - 1:c + 1]  # (N, 2, 2, 2): the four pixels at (+-0.5, +-0.5)
    along_x = (centre[..., 1] - centre[..., 0]).mean(-1)  # (N, 2): the input's step per output pixel in x
    along_y = (centre[..., 1, :] - centre[..., 0, :]).mean(-1)
    return torch.stack([along_x, along_y], -1), centre.mean((2, 3))


@functools.cache
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
    "xint": (lambda p: -geometry("xint", p)[1].flatten(), 0,  # uniform within 1/8 of 8 pixels, rounded
             {-1.0: 1 / 4, 0.0: 1 / 2, 1.0: 1 / 4}),
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


def test_greyscale_images_take_brightness_contrast_and_luma_flip_but_no_hue_or_saturation():
    def grey(transform: str) -> tuple[torch.Tensor, torch.Tensor]:  # (N,) gains and offsets: out = gain x + offset
        matrix, offset = colors(transform, 1.0, channels=1)
        return matrix[:, 0, 0], offset[:, 0]

    for transform in ("hue", "saturation"):
        assert grey(transform)[0].unique().tolist() == [1.0] and grey(transform)[1].unique().tolist() == [0.0]
    gain = grey("lumaflip")[0]  # grey is the luma axis: flipped, it is negated
    assert torch.allclose(gain.abs(), torch.ones_like(gain)) and (gain < 0).float().mean() == pytest.approx(0.5, abs=0.025)
    assert grey("brightness")[1].std() == pytest.approx(0.2, rel=0.05)
    assert grey("contrast")[0].log2().std() == pytest.approx(0.5, rel=0.05)


def test_geometric_transforms_pad_by_reflection_as_torch_does():
    """Whole-pixel moves read torch's 'reflect' padding (the edge pixel not repeated); any affine
    map reads as torch's grid_sample, bilinear with reflection about the edge pixels' centres,
    even from several image widths away."""
    images = torch.rand(4, 3, 12, 12)
    shift = torch.tensor([[1.0, 0, -3], [0, 1, -2], [0, 0, 1]]).expand(4, 3, 3)  # reads 3 left, 2 up
    assert torch.equal(resample(images, shift), F.pad(images, [3, 0, 2, 0], mode="reflect")[..., :12, :12])
    g_inv = torch.eye(3).repeat(4, 1, 1)
    g_inv[:, :2] = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 1, 20])
    to_unit = torch.diag(torch.tensor([2 / 11, 2 / 11, 1.0]))  # centred pixels -> grid_sample's [-1, 1]
    theta = (to_unit @ g_inv @ torch.linalg.inv(to_unit))[:, :2]
    grid = F.affine_grid(theta, [4, 3, 12, 12], align_corners=True)
    expected = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    assert torch.allclose(resample(images, g_inv), expected, atol=1e-5)


def test_the_pipeline_is_differentiable_twice_for_r1_through_it():
    pipeline = AdaPipeline(PIPELINES["bgc"])
    images = torch.rand(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)

    def augment(x: torch.Tensor) -> torch.Tensor:  # the same draws each call: a fixed function of x
        return pipeline(x, torch.tensor(1.0), torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(augment, (images,), fast_mode=True)
    assert torch.autograd.gradgradcheck(augment, (images,), fast_mode=True)


def test_the_diffaugment_variant_applies_each_operation_with_probability_p():
    images = torch.linspace(-1, 1, 16 * 16).reshape(1, 1, 16, 16).repeat(2000, 3, 1, 1)
    generator = torch.Generator().manual_seed(0)
    for p in (0.0, 0.3, 1.0):  # a quarter of turns are by 0 degrees
        ada = AdaptiveAugment("diffaugment", ["rotate90"], p=p)
        changed = (ada(images, generator) != images).flatten(1).any(1).float().mean()
        assert changed == pytest.approx(p * 0.75, abs=0.03)
