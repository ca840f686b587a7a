"""No sampling: every item but the target is a negative, and the loss is the full-softmax cross-entropy over
the catalog. It is RecBole's CE objective on the plugin's rows (all positions of a sequence in one pass rather
than one row per prefix), the reference every sampled configuration is measured against, at the cost of a
[N, n_items] logit matrix per batch."""

from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import NegativeSampler


class CatalogSampler(NegativeSampler):
    name = "catalog"
    whole_catalog = True  # NegsModel computes the loss from the catalog's logits; sample() is never called

    @classmethod
    def check_config(cls, config):
        super().check_config(config)
        if config["loss"] != "sampled_softmax":
            raise ConfigError(f"config key 'loss' = '{config['loss']}' cannot be used with sampler 'catalog', "
                              "which trains the full-softmax cross-entropy; allowed: sampled_softmax")

    def check_data(self):
        """Nothing is drawn, so no user can run out of items."""

    def sample(self, targets):
        raise RuntimeError("sampler 'catalog' draws nothing: NegsModel scores the whole catalog")

    def record_catalog(self, logits, positives):
        """Statistics over all (positive, other item) pairs, from the logits the loss computed anyway; ``logits``
        [N, n_items] with the padding column at -inf."""
        pos = logits.gather(1, positives[:, None])
        others = logits.shape[1] - 2  # neither the padding column nor the target
        self._stats["pairs"] += pos.numel() * others
        self._stats["outscoring"] += int((logits > pos).sum())
        finite = logits[:, 1:]
        self._stats["gap_sum"] += float((pos[:, 0] * others - (finite.sum(dim=1) - pos[:, 0])).sum())
