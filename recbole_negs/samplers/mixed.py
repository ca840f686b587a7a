"""Mixed negative sampling (Yang et al., WWW 2020, "Mixed Negative Sampling for Learning Two-tower Neural
Networks in Recommendations"): the batch's positives (popular items, as in-batch sampling) plus
``mixed_uniform_num`` items drawn uniformly from the catalog (the long tail in-batch sampling never shows),
one shared set. Its proposal is the mixture: an item's expected count in the set is K_b p_i + K_u / (n - 1)
(p_i its share of the training targets), so the sampled softmax subtracts log of that count."""

import math

import torch

from recbole_negs.samplers.in_batch import InBatchSampler
from recbole_negs.samplers.base import Negatives


class MixedSampler(InBatchSampler):
    name = "mixed"

    def __init__(self, config, context):
        super().__init__(config, context)
        self.uniform_num = int(config["mixed_uniform_num"])

    def sample(self, targets):
        in_batch = self.in_batch_items(targets)
        uniform = self.draw_catalog((self.uniform_num,), replacement=True)
        shared = torch.cat([in_batch, uniform])
        width = len(shared)
        # expected count per item / width: the loss adds log(width) back, leaving log(expected count)
        expected = len(in_batch) * self.log_popularity[shared].exp() + self.uniform_num / (self.context.n_items - 1)
        log_q = (torch.log(expected) - math.log(width))[None, :]
        return Negatives(shared=shared, log_q=log_q, valid=self.shared_valid(targets, shared, None))
