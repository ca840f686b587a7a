"""DNS (Zhang et al., SIGIR 2013): draw H uniform candidates per positive, keep the K the model scores highest.
With the soft BPR loss this is PDNS (Shi et al., "Enhancing Recommender Systems: A Strategy to Mitigate False
Negative Impact", arXiv 2211.13912). Candidates are scored from the batch's own encoding."""

import torch

from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import Negatives, NegativeSampler


class DynamicNegativeSampler(NegativeSampler):
    name = "dns"
    model_aware = True

    @classmethod
    def check_config(cls, config):
        super().check_config(config)
        if config["dns_candidates"] < config["neg_sample_num"]:
            raise ConfigError(
                f"config key 'dns_candidates' = {config['dns_candidates']} is smaller than neg_sample_num = "
                f"{config['neg_sample_num']}; allowed: int >= neg_sample_num (the top K of H candidates)")

    def __init__(self, config, context):
        super().__init__(config, context)
        self.candidates = config["dns_candidates"]

    def distinct_draws(self):
        return {} if self.replacement else {"dns_candidates": self.candidates}

    def sample(self, targets):
        if self.share != "target":
            return self._sample_from_shared_pool(targets)
        candidates = self.draw_uniform(targets, self.candidates, self.replacement)  # [N, H]
        scores = targets.scorer.score(candidates)
        hardest = scores.topk(self.num, dim=1).indices
        return Negatives(candidates.gather(1, hardest))

    def _sample_from_shared_pool(self, targets):
        """H uniform candidates shared by the batch (or by each row), scored in one matmul; each target keeps
        the K it scores highest among those it may take (its positive and exclusions at -inf). A target left
        with fewer than K allowed candidates takes uniform draws in the missing slots."""
        count, rows = self.share_rows(targets)
        pool = self.draw_catalog((self.candidates,) if count is None else (count, self.candidates))
        valid = self.shared_valid(targets, pool, rows)
        if pool.dim() == 1:
            scores = targets.scorer.score_shared(pool)
            ids = pool[None, :].expand(len(valid), -1)
        else:
            ids = pool[rows]
            scores = targets.scorer.score(ids)
        scores = scores.masked_fill(~valid, float("-inf"))
        hardest = scores.topk(self.num, dim=1)
        chosen = ids.gather(1, hardest.indices)
        short = torch.isinf(hardest.values)
        if bool(short.any()):
            fill = self.draw_uniform(targets, self.num, replacement=True)
            chosen = torch.where(short, fill, chosen)
        return Negatives(chosen)
