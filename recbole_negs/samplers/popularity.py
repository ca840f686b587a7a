"""Negatives drawn with probability proportional to ``count^alpha`` (training interactions), minus the
exclusions. Draws that hit an excluded item are redrawn a few times; the rare rows still left (users whose
history holds most of the popularity mass) are drawn exactly from their own masked distribution."""

import torch

from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import Negatives, NegativeSampler

REDRAW_ROUNDS = 8


class PopularitySampler(NegativeSampler):
    name = "popularity"

    @classmethod
    def check_config(cls, config):
        super().check_config(config)
        if not config["neg_sample_replacement"]:
            raise ConfigError("config key 'neg_sample_replacement' = False is not available for sampler "
                              "'popularity', which draws with replacement; allowed: True")

    def __init__(self, config, context):
        super().__init__(config, context)
        weights = context.item_counts.double() ** config["popularity_alpha"]
        weights[0] = 0.0  # padding
        self.weights = weights.float()
        history = context.history
        history_mass = torch.zeros(history.n_users, dtype=torch.double, device=weights.device)
        history_mass.index_add_(0, history.owner, weights[history.items])
        self.log_weights = torch.log(weights).float()
        self.log_total = float(torch.log(weights.sum()))
        self.log_free_mass = torch.log((weights.sum() - history_mass).clamp_min(1e-300)).float()

    def free_items_per_user(self):
        """Items of zero weight can never be drawn, so they do not count as free."""
        drawable = int((self.weights > 0).sum())
        if not self.exclude_history:
            return torch.full_like(self.context.history.free_count, drawable - 1)
        history = self.context.history
        held = torch.zeros(history.n_users, dtype=torch.long, device=history.items.device)
        held.index_add_(0, history.owner, (self.weights[history.items] > 0).long())
        return drawable - held

    def sample(self, targets):
        if self.share != "target":
            return self._sample_shared(targets)
        n = len(targets.positives)
        ids = torch.multinomial(self.weights, n * self.num, replacement=True).view(n, self.num)
        bad = self.excluded(targets, ids)
        for _ in range(REDRAW_ROUNDS):
            count = int(bad.sum())
            if count == 0:
                break
            ids[bad] = torch.multinomial(self.weights, count, replacement=True)
            bad = self.excluded(targets, ids)
        rows = torch.nonzero(bad.any(dim=1))[:, 0]
        if len(rows):
            ids[rows] = self._exact(targets, rows)
        return Negatives(ids, self.log_weights[ids] - self._log_normaliser(targets)[:, None])

    def _sample_shared(self, targets):
        """One set per batch row or per batch from the whole catalog's popularity; excluded items are masked
        per target, so q is the unmasked proposal count^alpha / total."""
        count, rows = self.share_rows(targets)
        sets = 1 if count is None else count
        shared = torch.multinomial(self.weights, sets * self.num, replacement=True).view(sets, self.num)
        shared = shared[0] if count is None else shared
        log_q = self.log_weights[shared] - self.log_total
        log_q = log_q[None, :] if count is None else log_q[rows]
        return Negatives(shared=shared, log_q=log_q, valid=self.shared_valid(targets, shared, rows))

    def _exact(self, targets, rows):
        catalog = torch.arange(self.context.n_items, device=rows.device)[None, :].expand(len(rows), -1)
        sub = type(targets)(targets.users[rows], targets.positives[rows])
        weights = self.weights[None, :].expand(len(rows), -1).clone()
        weights[self.excluded(sub, catalog)] = 0.0
        return torch.multinomial(weights, self.num, replacement=True)

    def _log_normaliser(self, targets):
        if self.exclude_history:
            return self.log_free_mass[targets.users]
        mass = torch.exp(torch.tensor(self.log_total, dtype=torch.double)) - self.weights[targets.positives].double()
        return torch.log(mass).float()
