"""ADA's own augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", StyleGAN2-ADA's training/augment.py), written anew: its 'blit', 'geom' and
'color' groups, each transform drawn per image with probability p times its multiplier (1 for
every transform of a chosen group), with the paper's parameter distributions.

- blit: x-flip (1/2), rotation by a multiple of 90 degrees (uniform), integer translation
  (uniform within 1/8 of the size, rounded to pixels).
- geom: isotropic scale (2^N(0, 0.2^2)), rotation before the anisotropic scale and again after
  it (uniform over the circle; each with 1 - sqrt(1 - p), so that one or both happen with p),
  anisotropic scale (2^N(0, 0.2^2) in x, its inverse in y), fractional translation
  (N(0, 0.125^2) of the size).
- color: brightness (+N(0, 0.2^2)), contrast (x 2^N(0, 0.5^2)), luma flip (1/2), hue rotation
  about the grey axis (uniform over the circle), saturation (x 2^N(0, 1)), all about mid-grey 0.

As in theirs, the geometric transforms compose one matrix per image and the image is resampled
once, with reflect padding (pixels beyond an edge mirror those inside it, the edge pixel not
repeated, as torch.nn.functional.pad's 'reflect', to any distance); the color transforms compose
one 4x4 matrix. Greyscale images take the mean of the color matrix's rows, with no hue or
saturation. One deliberate difference: the resampling is bilinear from the reflected image,
where theirs upsamples 2x with a sym6 wavelet filter, resamples bilinearly and filters back
down (anti-aliasing that costs two filtered passes); and theirs pads a margin that it reads back
from the device, where reflecting the sample coordinates needs no padding and no host sync.
With p = 0 every matrix is the identity and the image comes back bit for bit.

All draws come from the generator the caller passes (the run's latent stream), on the images'
device; the sampler is plain gather arithmetic, so the gradients of R1 through it (a double
backward) exist as well.
"""

import math
from functools import partial

import torch
from torch import Tensor, nn

GROUPS = {  # transform -> its group (StyleGAN2-ADA's --augpipe letters: b, g, c)
    "xflip": "blit", "rotate90": "blit", "xint": "blit",
    "scale": "geom", "rotate": "geom", "aniso": "geom", "xfrac": "geom",
    "brightness": "color", "contrast": "color", "lumaflip": "color", "hue": "color", "saturation": "color",
}
PIPELINES = {  # StyleGAN2-ADA's --augpipe names for these groups -> their transforms
    name: [transform for transform, group in GROUPS.items() if group in groups]
    for name, groups in {"blit": ["blit"], "geom": ["geom"], "color": ["color"], "bg": ["blit", "geom"],
                         "bgc": ["blit", "geom", "color"]}.items()
}


def _affine(a: Tensor, b: Tensor, tx: Tensor, c: Tensor, d: Tensor, ty: Tensor) -> Tensor:
    """(B, 3, 3) matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (B,) entries."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack(torch.broadcast_tensors(a, b, tx, c, d, ty, zero, zero, one), 1).view(-1, 3, 3)


def _rotation(cos: Tensor, sin: Tensor) -> Tensor:
    zero = torch.zeros_like(cos)
    return _affine(cos, -sin, zero, sin, cos, zero)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Integer positions mirrored into [0, size): ... 2 1 | 0 1 2 ... size-1 | size-2 ..."""
    last = size - 1
    return last - (index.remainder(max(2 * last, 1)) - last).abs()


def resample(images: Tensor, g_inv: Tensor) -> Tensor:
    """images (B, C, H, W) seen through g_inv (B, 3, 3), which maps each output pixel's position
    (x, y, 1), relative to the image centre, to where it reads the input: bilinear, reflected."""
    b, c, h, w = images.shape
    y, x = torch.meshgrid(torch.arange(h, device=images.device, dtype=g_inv.dtype) - (h - 1) / 2,
                          torch.arange(w, device=images.device, dtype=g_inv.dtype) - (w - 1) / 2, indexing="ij")
    grid = torch.stack([x.flatten(), y.flatten(), torch.ones_like(x.flatten())])  # (3, H*W)
    source = g_inv[:, :2] @ grid  # (B, 2, H*W)
    sx, sy = source[:, 0] + (w - 1) / 2, source[:, 1] + (h - 1) / 2  # (B, H*W) in pixels
    x0, y0 = sx.floor(), sy.floor()
    fx, fy = (sx - x0).to(images.dtype).unsqueeze(1), (sy - y0).to(images.dtype).unsqueeze(1)  # (B, 1, H*W)
    x0, y0 = x0.long(), y0.long()
    columns, rows = (_reflect(x0, w), _reflect(x0 + 1, w)), (_reflect(y0, h) * w, _reflect(y0 + 1, h) * w)
    flat = images.reshape(b, c, h * w)
    taps = [flat.gather(2, (row + column).unsqueeze(1).expand(b, c, -1)) for row in rows for column in columns]
    # lerp(a, b, 0) is a exactly: at whole-pixel positions (the blit group, p = 0) nothing blurs
    return torch.lerp(torch.lerp(taps[0], taps[1], fx), torch.lerp(taps[2], taps[3], fx), fy).view(b, c, h, w)


class AdaPipeline(nn.Module):
    """ADA's `transforms` (GROUPS' keys; PIPELINES' values), each with multiplier 1, the others
    off; the distributions' widths are the paper's (StyleGAN2-ADA's AugmentPipe defaults)."""

    def __init__(self, transforms: list[str], xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1.0,
                 aniso_std: float = 0.2, xfrac_std: float = 0.125, brightness_std: float = 0.2,
                 contrast_std: float = 0.5, hue_max: float = 1.0, saturation_std: float = 1.0):
        super().__init__()
        unknown = set(transforms) - set(GROUPS)
        if unknown:
            raise ValueError(f"{', '.join(sorted(unknown))}: not ADA transforms; they are {', '.join(GROUPS)}")
        self.multipliers = {name: float(name in transforms) for name in GROUPS}
        self.xint_max, self.scale_std, self.rotate_max, self.aniso_std = xint_max, scale_std, rotate_max, aniso_std
        self.xfrac_std, self.brightness_std, self.contrast_std = xfrac_std, brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.geometric = any(self.multipliers[name] for name, group in GROUPS.items() if group != "color")
        self.color = any(self.multipliers[name] for name, group in GROUPS.items() if group == "color")
        # Constants of the color maps, moved with the module, out of checkpoints.
        rgb = torch.tensor([1.0, 1.0, 1.0, 0.0])  # r, g and b of homogeneous colours
        luma, x = rgb / math.sqrt(3), 1 / math.sqrt(3)  # the grey axis
        self.register_buffer("rgb", rgb, persistent=False)
        self.register_buffer("grey", torch.outer(luma, luma), persistent=False)  # projection onto it
        self.register_buffer("cross", torch.tensor([[0, -x, x, 0], [x, 0, -x, 0], [-x, x, 0, 0], [0, 0, 0, 0]]),
                             persistent=False)  # v x (.) for v the grey axis

    def forward(self, images: Tensor, p: Tensor, generator: torch.Generator) -> Tensor:
        """images (B, C, H, W) in [-1, 1], C 1 or 3; p: the probability, a 0-d tensor on their device."""
        if self.geometric:
            images = resample(images, self.geometry(images.shape, p, generator))
        if self.color:
            images = self.recolor(images, self.colors(images.shape, p, generator))
        return images

    def _draw(self, name: str, values: Tensor, identity: float, p: Tensor, generator: torch.Generator) -> Tensor:
        """values (B, ...) where a draw falls below p times the transform's multiplier, else identity."""
        chosen = torch.rand(values.shape[0], *[1] * (values.dim() - 1), device=values.device, generator=generator)
        return torch.where(chosen < p * self.multipliers[name], values, torch.full_like(values, identity))

    def geometry(self, shape: torch.Size, p: Tensor, generator: torch.Generator) -> Tensor:
        """(B, 3, 3): each image's output-to-input map, composed in StyleGAN2-ADA's order."""
        b, _, h, w = shape
        rand, randn = (partial(draw, b, device=p.device, generator=generator) for draw in (torch.rand, torch.randn))
        on = self.multipliers
        g_inv = torch.eye(3, device=p.device).expand(b, 3, 3)
        one, zero = torch.ones(b, device=p.device), torch.zeros(b, device=p.device)
        if on["xflip"]:
            flip = self._draw("xflip", (rand() * 2).floor(), 0, p, generator)
            g_inv = g_inv @ _affine(1 - 2 * flip, zero, zero, zero, one, zero)
        if on["rotate90"]:  # cos and sin of k quarter turns, exact (no trigonometry): a pure blit
            k = self._draw("rotate90", (rand() * 4).floor(), 0, p, generator)
            odd = k.remainder(2)
            g_inv = g_inv @ _rotation((1 - k) * (1 - odd), (2 - k) * odd)
        if on["xint"]:
            t = self._draw("xint", (rand(2) * 2 - 1) * self.xint_max, 0, p, generator)
            g_inv = g_inv @ _affine(one, zero, -(t[:, 0] * w).round(), zero, one, -(t[:, 1] * h).round())
        if on["scale"]:
            s = self._draw("scale", torch.exp2(randn() * self.scale_std), 1, p, generator)
            g_inv = g_inv @ _affine(1 / s, zero, zero, zero, 1 / s, zero)
        # Rotation before and after the anisotropic scale (a rotated, sheared-looking stretch),
        # each with p_rot so that at least one of them happens with p.
        p_rot = 1 - torch.sqrt((1 - p * on["rotate"]).clamp(0, 1))
        for stage in ("pre", "post"):
            if on["rotate"]:
                theta = (rand() * 2 - 1) * math.pi * self.rotate_max
                theta = torch.where(rand() < p_rot, theta, zero)
                g_inv = g_inv @ _rotation(theta.cos(), theta.sin())
            if stage == "pre" and on["aniso"]:
                s = self._draw("aniso", torch.exp2(randn() * self.aniso_std), 1, p, generator)
                g_inv = g_inv @ _affine(1 / s, zero, zero, zero, s, zero)
        if on["xfrac"]:
            t = self._draw("xfrac", randn(2) * self.xfrac_std, 0, p, generator)
            g_inv = g_inv @ _affine(one, zero, -t[:, 0] * w, zero, one, -t[:, 1] * h)
        return g_inv

    def colors(self, shape: torch.Size, p: Tensor, generator: torch.Generator) -> Tensor:
        """(B, 4, 4): each image's map of homogeneous colours (r, g, b, 1), composed in order."""
        b, channels = shape[:2]
        rand, randn = (partial(draw, b, device=p.device, generator=generator) for draw in (torch.rand, torch.randn))
        on, eye, grey = self.multipliers, torch.eye(4, device=p.device), self.grey
        c = eye.expand(b, 4, 4)
        if on["brightness"]:  # adds the shift to r, g and b: the homogeneous column
            shift = self._draw("brightness", randn() * self.brightness_std, 0, p, generator)
            c = (eye + shift.view(b, 1, 1) * torch.outer(self.rgb, eye[3])) @ c
        if on["contrast"]:
            gain = self._draw("contrast", torch.exp2(randn() * self.contrast_std), 1, p, generator)
            c = torch.diag_embed(torch.stack([gain, gain, gain, torch.ones_like(gain)], 1)) @ c
        if on["lumaflip"]:  # a Householder reflection through the plane across the grey axis
            flip = self._draw("lumaflip", (rand() * 2).floor(), 0, p, generator)
            c = (eye - 2 * grey * flip.view(b, 1, 1)) @ c
        if on["hue"] and channels > 1:  # rotation about the grey axis (Rodrigues)
            theta = self._draw("hue", (rand() * 2 - 1) * math.pi * self.hue_max, 0, p, generator).view(b, 1, 1)
            plane = eye - grey - torch.outer(eye[3], eye[3])  # the 3x3 identity minus the projection
            c = (eye - plane + plane * theta.cos() + self.cross * theta.sin()) @ c
        if on["saturation"] and channels > 1:
            gain = self._draw("saturation", torch.exp2(randn() * self.saturation_std), 1, p, generator)
            c = (grey + (eye - grey) * gain.view(b, 1, 1)) @ c
        return c

    @staticmethod
    def recolor(images: Tensor, c: Tensor) -> Tensor:
        """images (B, C, H, W), C 3 or 1, through c (B, 4, 4); greyscale: the mean of its rows."""
        b, channels, h, w = images.shape
        if channels not in (1, 3):
            raise ValueError(f"ADA's color transforms take RGB or greyscale images, not {channels} channels")
        c = c.to(images.dtype)
        flat = images.reshape(b, channels, h * w)
        if channels == 3:
            return (c[:, :3, :3] @ flat + c[:, :3, 3:]).view(b, channels, h, w)
        gain, shift = c[:, :3, :3].sum(2).mean(1), c[:, :3, 3].mean(1)  # (B,)
        return (flat * gain.view(b, 1, 1) + shift.view(b, 1, 1)).view(b, channels, h, w)
