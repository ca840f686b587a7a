"""Uniform negatives over the catalog minus the exclusions (``neg_exclude``)."""

from recbole_negs.samplers.base import Negatives, NegativeSampler


class UniformSampler(NegativeSampler):
    name = "uniform"

    def sample(self, targets):
        ids = self.draw_uniform(targets, self.num, self.replacement)
        # q = 1 / free items; also right without replacement, where K q is each item's inclusion probability
        return Negatives(ids, self.uniform_log_q(targets, self.num))
