"""The order of the training images: the same in a run and in its resumption."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def derived_seed(*parts: int) -> int:
    """A seed for one stream of randomness, from the run's seed and where in the run it is
    (epoch; rank and iteration): the same in a run and in its resumption."""
    return hash(parts) % 2**63  # tuples of ints hash the same in every process


class EpochShuffle(Sampler[int]):
    """A permutation of range(size) per epoch, drawn from (seed, epoch); this rank's equal share
    of it (the last size % world_size images of each permutation wait for the next epoch); and,
    once, a start `skip` indices in, where a resumed run left off mid-epoch.

    Torch's RandomSampler draws from the global random state, which a resumed run does not have,
    so it would see other images than the run it continues."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, skip: int = 0):
        self.size, self.seed, self.rank, self.world_size, self.skip = size, seed, rank, world_size, skip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it before each epoch
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)[self.rank :: self.world_size][: len(self)]
        start, self.skip = self.skip, 0
        return iter(order[start:].tolist())

    def __len__(self) -> int:
        return self.size // self.world_size
