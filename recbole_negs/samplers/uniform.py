"""Uniform negatives over the catalog minus the exclusions (``neg_exclude``): per target, or one shared set per
batch row or per batch (``neg_share``), where excluded items are masked out of each target's loss instead."""

import math

import torch

from recbole_negs.samplers.base import Negatives, NegativeSampler


class UniformSampler(NegativeSampler):
    name = "uniform"

    def sample(self, targets):
        if self.share == "target":
            ids = self.draw_uniform(targets, self.num, self.replacement)
            # q = 1 / free items; also right without replacement, where K q is each item's inclusion probability
            return Negatives(ids, self.uniform_log_q(targets, self.num))
        count, rows = self.share_rows(targets)
        shared = self.draw_catalog((self.num,) if count is None else (count, self.num))
        # drawn over the whole catalog, exclusions masked per target afterwards: q = 1 / (n_items - 1)
        log_q = torch.full((1, self.num), -math.log(self.context.n_items - 1), device=shared.device)
        return Negatives(shared=shared, log_q=log_q, valid=self.shared_valid(targets, shared, rows))
