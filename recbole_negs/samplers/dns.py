"""DNS (Zhang et al., SIGIR 2013): draw H uniform candidates per positive, keep the K the model scores highest.
With the soft BPR loss this is PDNS (Shi et al., "Enhancing Recommender Systems: A Strategy to Mitigate False
Negative Impact", arXiv 2211.13912). Candidates are scored from the batch's own encoding."""

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
        candidates = self.draw_uniform(targets, self.candidates, self.replacement)  # [N, H]
        scores = targets.scorer.score(candidates)
        hardest = scores.topk(self.num, dim=1).indices
        return Negatives(candidates.gather(1, hardest))
