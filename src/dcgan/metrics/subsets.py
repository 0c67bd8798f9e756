"""Which images an evaluation scores when it scores fewer than it has: a seeded random draw, never
the first N in sorted order. A folder of samples or a dataset is usually sorted by class (a class
per subfolder, names numbered by class), so its first N are a few classes: the first 900 of the
1,797 digits, all 0-4, scored against all of them give an FID of 202.6 where all 1,797 give 0."""

import torch
from torch import Tensor


def draw(total: int, count: int, seed: int) -> Tensor:
    """(count,) indices into `total` items, a random draw seeded by `seed`: the same on any
    machine, and all of them, in a random order, when count >= total."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]
