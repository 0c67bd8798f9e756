"""Networks as interchangeable parts: any G and D built from a spec, the contract they keep, and
spectral normalisation over any of them; build_networks does all three for a GAN. Plain PyTorch,
like dcgan.py."""

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dcgan.errors import UsageError


def with_spectral_norm(module: nn.Module) -> nn.Module:
    """Every convolution, linear layer and embedding of module divided by its largest singular
    value (Miyato et al. 2018), estimated by one power iteration per training forward pass; in
    place. The embeddings are the projection discriminator's class vectors, which Miyato & Koyama
    normalise too (their SNEmbedID): without, the class term escapes the Lipschitz bound."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


# Networks that moved, by the name checkpoints written before the move give them.
MOVED = {"dcgan.networks.Generator": "dcgan.model.networks.dcgan.Generator",
         "dcgan.networks.Discriminator": "dcgan.model.networks.dcgan.Discriminator"}


def current_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """spec with its _target_ where that network is now (a checkpoint's may name an old place)."""
    return {**spec, "_target_": MOVED.get(spec["_target_"], spec["_target_"])}


def build(spec: Mapping[str, Any]) -> nn.Module:
    """The network a spec names: {"_target_": "package.module.Class", **its arguments}, as in
    conf/model/ and as checkpoints record it, so that the same network can be built again."""
    module_name, _, name = spec["_target_"].rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise UsageError(f"_target_={spec['_target_']} cannot be imported: is its package on PYTHONPATH?") from None
    return factory(**{key: value for key, value in spec.items() if key != "_target_"})


@torch.no_grad()
def check_contract(generator: nn.Module, discriminator: nn.Module, nz: int, channels: int, image_size: int,
                   num_classes: int = 0) -> None:
    """One line naming the broken part unless G maps latents (B, nz, 1, 1) to images (B, channels,
    image_size, image_size) in [-1, 1] and D maps those to one logit per image, (B,); with
    classes, both also take the labels (B,) as a second argument."""
    shape = (2, channels, image_size, image_size)
    labels = (torch.arange(2) % num_classes,) if num_classes else ()
    modes = generator.training, discriminator.training
    generator.eval(), discriminator.eval()  # no running statistics updated, no power iteration run
    try:
        images = generator(torch.randn(2, nz, 1, 1, generator=torch.Generator().manual_seed(0)), *labels)
        if tuple(images.shape) != shape:
            raise UsageError(f"generator: G(z) for z of shape (2, {nz}, 1, 1) must be images of shape {shape}, "
                             f"got {tuple(images.shape)}")
        if images.min() < -1 or images.max() > 1:
            raise UsageError(f"generator: G(z) must be images in [-1, 1] (end it with Tanh), got values in "
                             f"[{images.min():.3g}, {images.max():.3g}]")
        logits = discriminator(images, *labels)
        if tuple(logits.shape) != (2,):
            raise UsageError(f"discriminator: D(x) for x of shape {shape} must be one logit per image, of shape "
                             f"(2,), got {tuple(logits.shape)} (end it with .flatten() or .view(-1))")
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])


def build_networks(specs: dict[str, dict[str, Any]], nz: int, channels: int, image_size: int, num_classes: int = 0,
                   class_names: list[str] | None = None,
                   spectral_norm: str = "none") -> tuple[dict[str, dict[str, Any]], nn.Module, nn.Module]:
    """(specs as built, G, D) from specs {"generator": spec, "discriminator": spec}: checked against
    the contract, with spectral norm on "g", "d" or "both". num_classes: every spec is told the
    classes, and both networks then take labels as second input; class_names: what each one is."""
    if class_names is not None and len(class_names) != num_classes:
        raise UsageError(f"class_names names {len(class_names)} classes, num_classes={num_classes}")
    if num_classes:
        specs = {name: {**spec, "num_classes": num_classes} for name, spec in specs.items()}
    generator, discriminator = build(specs["generator"]), build(specs["discriminator"])
    check_contract(generator, discriminator, nz, channels, image_size, num_classes)
    if spectral_norm in ("g", "both"):
        with_spectral_norm(generator)
    if spectral_norm in ("d", "both"):
        with_spectral_norm(discriminator)
    return specs, generator, discriminator
