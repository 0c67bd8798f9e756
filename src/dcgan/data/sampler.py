"""The order of the training images: the same in a run and in its resumption."""

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from dcgan.streams import derived_seed


class EpochShuffle(Sampler[int]):
    """A permutation of range(size) per epoch, drawn from (seed, epoch), and this rank's equal
    share of it (the last size % world_size images of each permutation wait for the next epoch).

    Torch's RandomSampler draws from the global random state, which a resumed run does not have,
    so it would see other images than the run it continues."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, indices of it already trained)

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it before each epoch
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        """Start `skip` indices into `epoch` if that is the next epoch iterated; a checkpoint
        written at an epoch's end says how far that epoch went, and the next one starts whole."""
        self._resume = (epoch, skip)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)[self.rank :: self.world_size][: len(self)]
        (epoch, skip), self._resume = self._resume or (self.epoch, 0), None
        return iter(order[skip if epoch == self.epoch else 0 :].tolist())

    def __len__(self) -> int:
        return self.size // self.world_size


class ResumableLoader(DataLoader):
    """A DataLoader over an EpochShuffle that knows how far into its epoch it is. Lightning saves
    the state_dict of such a loader in checkpoints and loads it on resume before the first batch,
    so a resumed run goes on with the batches an uninterrupted one would have trained."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._batches = 0  # of the current epoch, handed out

    def __iter__(self) -> Iterator[Any]:
        # A generator: nothing starts until the first batch is asked for. Lightning makes the
        # first iterator of a run before it sets the sampler's epoch, and worker processes read
        # the sampler as soon as their iterator exists, so a resumed run's first epoch would take
        # epoch 0's order.
        self._batches = 0
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": getattr(self.sampler, "epoch", 0), "batches": self._batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if isinstance(self.sampler, EpochShuffle):  # Lightning's overfit_batches puts a sequential one in
            self.sampler.resume(state_dict["epoch"], state_dict["batches"] * self.batch_size)
