"""How the training step runs on the hardware at hand, none of which changes the algorithm: NHWC
memory (model.channels_last), one DDP wrapper each for G and D (launch/ddp.py), torch.compile
(model.compile), Adam's kernel, and 16-mixed's loss scale. The measurements behind the defaults:
README, Performance."""

from collections.abc import Callable, Iterable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn


def memory_format(channels_last: bool | None, device: torch.device) -> torch.memory_format:
    """NHWC (channels_last) or NCHW weights and batches; None: NHWC on CPU only, where it measured
    faster (on an H200 it was slower)."""
    if channels_last is None:
        channels_last = device.type == "cpu"
    return torch.channels_last if channels_last else torch.contiguous_format


def training_nets(generator: nn.Module, discriminator: nn.Module, wrap: Callable[[nn.Module], nn.Module] | None,
                  compile: bool | str) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(G, D, plain D) as the training step calls them: G and D through wrap (None: as they are),
    then all three through torch.compile when compile is True or a mode. The plain D is for G's
    update, which skips D's weight gradients that DDP's wrapper would wait for."""
    nets = (generator, discriminator)
    if wrap is not None:
        nets = tuple(wrap(net) for net in nets)
    nets = (*nets, discriminator)
    if compile:
        mode = None if compile is True else compile
        nets = tuple(torch.compile(net, mode=mode) for net in nets)
    return nets


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
         device: torch.device) -> torch.optim.Adam:
    """Adam with the kernel that measured fastest: fused on CUDA, the multi-tensor foreach one on
    CPU (fused and the default per-parameter loop are slower there)."""
    kernel = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, betas=betas, **kernel)


def loss_scale(trainer: pl.Trainer, device: torch.device) -> Tensor | None:
    """16-mixed's loss scale, as a tensor (reading it as a number would sync with the device);
    None when there is none."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return None if scaler is None else scaler.scale(torch.ones((), device=device))
