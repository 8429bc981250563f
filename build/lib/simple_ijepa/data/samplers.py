"""Which samples a rank reads in an epoch: a seeded shuffle, disjoint across ranks, resumable mid-epoch."""
from __future__ import annotations

from torch.utils.data import DistributedSampler, Sampler


class SkipBatches(Sampler):
    """Yield a sampler's indices after the first `skip` (resume inside an epoch)."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return len(self.sampler) - self.skip


def epoch_sampler(dataset, rank: int, world_size: int, seed: int, epoch: int, skip: int) -> Sampler:
    """This rank's shard of epoch `epoch` (a seeded shuffle, disjoint across ranks), minus `skip` samples."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    return SkipBatches(sampler, skip)
