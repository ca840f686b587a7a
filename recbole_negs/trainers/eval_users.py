"""``eval_max_users``: each evaluation ranks a fresh random subset of users when there are more, as the UFNRec
authors' code does (10,000 random users per evaluation). The subset is a function of the seed and the number
of the evaluation, so runs repeat exactly and every process picks the same users."""

import copy

import torch
from torch.utils.data import BatchSampler


def capped_loader(loader, max_users, seed, rank=0, world_size=1):
    """``loader`` itself, or a shallow copy that yields only ``max_users`` of its evaluation rows (one per user
    under leave-one-out and for general models; RecBole's collate functions take one index per user or row),
    kept in their original order and split over ``world_size`` processes."""
    if max_users is None or loader.sample_size <= max_users:
        return loader
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(loader.sample_size, generator=generator)[:max_users].sort().values.tolist()
    capped = copy.copy(loader)
    # torch's DataLoader forbids setting batch_sampler after construction; the copy is private to this call
    object.__setattr__(capped, "batch_sampler", BatchSampler(chosen[rank::world_size], loader.step, False))
    return capped
