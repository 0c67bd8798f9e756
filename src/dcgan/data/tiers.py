"""Where data.cache keeps the decoded images (the tiers: on the device, in host memory, on disk),
and how data.cache=auto chooses one from their size and the memory there is."""

import os
from typing import Literal

import pytorch_lightning as pl
import torch

DEVICE_SHARE = 1 / 8  # data.cache=auto keeps the images on the device when they take at most this of its memory
HOST_SHARE = 1 / 2  # ... else in host memory when they take at most this of it
TIERS = ("device", "host", "disk")
Cache = bool | Literal["auto", "refresh", "device", "host", "disk"]


def auto_tier(size: int, trainer: pl.Trainer | None, disk: bool) -> str | None:
    """The first tier that size bytes of decoded images fit (disk: whether there is a cache_dir),
    else None: decoded per batch."""
    if size <= DEVICE_SHARE * device_memory(trainer):
        return "device"
    if size <= HOST_SHARE * host_memory():
        return "host"
    return "disk" if disk else None


def device_memory(trainer: pl.Trainer | None) -> int:
    """Bytes of memory each rank's copy of the cache may use on its device: the GPU's, or the
    host's shared by the ranks on it. Totals, not what is free now, so every rank decides alike."""
    device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return host_memory() // (trainer.num_devices if trainer else 1)


def host_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def megabytes(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"
