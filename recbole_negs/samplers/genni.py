"""GenNi (Chen et al. 2022, "Generating Negative Samples for Sequential Recommendation"): for every target,
pre-select a uniform ``beta`` share of the items, then draw K negatives from ``softmax(alpha * h . v)`` over
that set (Eq. 5), the scores coming from the encoding the training step already computed.

Readings chosen (docs/genni.md has the details): the pre-selected set is drawn from the items ``neg_exclude``
allows (the target only, by default, as Eq. 5), so exclusions never shrink it below K; ``per_position`` draws
one set per target as Algorithm 1 does, ``per_batch`` one set for the whole batch (fast mode; the same
method at beta = 1, a different one at small beta). Rows are processed in chunks so that a catalog of 10^6
items stays in memory; every chunk is one batched product, never a loop over users or items.
"""

import math

import torch

from recbole_negs.history import draw_distinct_ranks
from recbole_negs.samplers.base import Negatives, NegativeSampler, Targets


def scheduled_beta(epoch, m):
    """Eq. 7: beta grows tenfold every m epochs from 0.001 until it reaches 1."""
    return min(0.001 * 10 ** (epoch / m), 1.0)


class GenNiSampler(NegativeSampler):
    name = "genni"
    model_aware = True
    shares = ("target",)  # genni_preselect chooses how its candidate sets are shared
    chunk_floats = 1 << 24  # scores held at once: rows x set size
    dense_catalog = 1 << 15

    def __init__(self, config, context):
        super().__init__(config, context)
        self.alpha = float(config["genni_alpha"])
        self.fixed_beta = float(config["genni_beta"])
        self.schedule_m = config["genni_beta_schedule"]
        self.per_position = config["genni_preselect"] == "per_position"
        self.group_rows = int(config["genni_group_rows"])
        self.curriculum = config["genni_curriculum"]
        self.alpha_step = float(config["genni_alpha_step"])
        self.alpha_bounds = tuple(float(b) for b in config["genni_alpha_bounds"])
        self.catalog = context.n_items - 1  # real items, padding excluded
        self.beta = self.beta_at(0)
        self.last_loss = None

    # --- schedule and curriculum
    def beta_at(self, epoch):
        return self.fixed_beta if self.schedule_m is None else scheduled_beta(epoch, self.schedule_m)

    def on_epoch_start(self, epoch):
        super().on_epoch_start(epoch)
        self.beta = self.beta_at(epoch)

    def on_batch_end(self, loss_value):
        """Section 3.4: a falling loss means the model copes, so negatives get harder (alpha up); a rising
        loss makes them easier. Step and bounds are ours (the paper gives neither; it tuned alpha in 0..6)."""
        if not self.curriculum:
            return
        if self.last_loss is not None and loss_value != self.last_loss:
            direction = 1.0 if loss_value < self.last_loss else -1.0
            lo, hi = self.alpha_bounds
            self.alpha = min(max(self.alpha + direction * self.alpha_step, lo), hi)
        self.last_loss = loss_value

    def set_size(self):
        """Items pre-selected per target: a beta share of the catalog, never fewer than K."""
        return min(self.catalog, max(self.num, math.ceil(self.beta * self.catalog)))

    # --- sampling
    def sample(self, targets):
        size = self.set_size()
        n = len(targets.positives)
        sparse = self.per_position and size < self.catalog and self.catalog > self.dense_catalog
        shared = None if self.per_position or size >= self.catalog else self._shared_set(targets, size)
        width = len(shared) if shared is not None else (size if sparse else self.context.n_items)
        step = max(1, self.chunk_floats // width)  # scores held at once stay under chunk_floats
        ids, log_q = [], []
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            chunk = Targets(targets.users[rows], targets.positives[rows])
            candidates, logits = self._candidates(targets.scorer, rows, chunk, size, shared)
            picked, log_p = self._draw(logits)
            ids.append(candidates.gather(1, picked) if candidates.dim() == 2 else candidates[picked])
            log_q.append(log_p + self._log_inclusion(chunk, size, shared))
        return Negatives(torch.cat(ids), torch.cat(log_q))

    def _shared_set(self, targets, size):
        """Fast mode: one uniform set for the whole batch, large enough that every target keeps K items after
        its exclusions."""
        if self.exclude_history:
            most = int(self.context.history.sizes[targets.users].max())
        else:
            most = 1
        size = min(self.catalog, max(size, self.num + most))
        one = torch.tensor([self.catalog], device=targets.positives.device)
        return draw_distinct_ranks(one, size)[0] + 1

    def _candidates(self, scorer, rows, chunk, size, shared):
        """(candidate ids, their logits with excluded items at -inf) for one chunk of targets."""
        if shared is None and size < self.catalog and self.group_rows > 1:
            grouped = self._grouped_candidates(scorer, rows, chunk, size)
            if grouped is not None:
                return grouped
        if shared is not None:
            return shared, scorer.score_shared(shared, rows).masked_fill_(self.excluded(chunk, shared), -math.inf)
        catalog = torch.arange(self.context.n_items, device=chunk.positives.device)
        if size >= self.catalog:  # beta = 1: every allowed item
            return catalog, self.mask_catalog(chunk, scorer.score_catalog(rows), -math.inf)
        if self.dense(size, chunk):
            # score the whole catalog and keep a random ``size`` of each row's allowed items (the ``size``
            # smallest of uniform keys); a row with fewer allowed items keeps them all
            keys = self.mask_catalog(chunk, torch.rand((len(chunk.users), len(catalog)), device=catalog.device), 2.0)
            keys, candidates = keys.topk(size, dim=1, largest=False)
            logits = scorer.score_catalog(rows).gather(1, candidates)
            return candidates, logits.masked_fill_(keys > 1.0, -math.inf)
        candidates = self.draw_uniform(chunk, size, replacement=False)  # distinct, none excluded
        return candidates, scorer.score(candidates, rows)

    def _grouped_candidates(self, scorer, rows, chunk, size):
        """Algorithm 1's per-target sets at the cost of a beta share of the catalog. The chunk's targets go
        into random groups of ``group_rows``; each group draws W = size + (most items excluded for one of its
        targets) distinct items in random order, and each target takes the first ``size`` of them it may take.
        Whatever the group, that is a uniform ``size``-subset of the target's allowed items (the order is
        random and at most W - size of the W are excluded for it), so every target's negatives follow Eq. 5
        over a uniform beta share exactly; only targets of one group share the draw. Scores: one batched
        product [groups, group_rows, W]. Returns None when W would reach the catalog (then a dense path)."""
        n, device = len(chunk.users), chunk.users.device
        if self.exclude_history:
            most = int(self.context.history.sizes[chunk.users].max())
        else:
            most = 1
        width = size + most
        if width >= self.catalog:
            return None
        groups = -(-n // self.group_rows)
        shuffled = torch.randperm(n, device=device)
        order = torch.cat([shuffled, shuffled[: groups * self.group_rows - n]])  # the last group padded by repeats
        members = order.view(groups, self.group_rows)
        ranks = draw_distinct_ranks(torch.full((groups,), self.catalog, device=device), width)
        ranks = ranks.gather(1, torch.rand(ranks.shape, device=device).argsort(dim=1))  # random order
        sets = ranks + 1  # [G, W] item ids
        group_of = torch.empty(n, dtype=torch.long, device=device)
        group_of[order[:n]] = torch.arange(n, device=device) // self.group_rows  # the first n are a permutation
        candidates = sets[group_of]  # [n, W]
        excluded = self._excluded_in_sets(chunk, sets, group_of)
        allowed = ~excluded
        keep = allowed & (allowed.cumsum(dim=1) <= size)
        scores = scorer.score_grouped(sets, members, rows)  # [G, M, W]
        slot = torch.empty(n, dtype=torch.long, device=device)
        slot[order[:n]] = torch.arange(n, device=device)
        logits = scores.view(groups * self.group_rows, width)[slot]
        return candidates, logits.masked_fill_(~keep, -math.inf)

    def _excluded_in_sets(self, chunk, sets, group_of):
        """[n, W]: which items of each target's group set ``neg_exclude`` rules out for it, found from the
        targets' exclusions (history entries, or the target) through an item -> column map per group, in time
        proportional to the exclusions, not to n x W."""
        groups, width = sets.shape
        column = torch.full((groups, self.context.n_items), -1, dtype=torch.long, device=sets.device)
        column.scatter_(1, sets, torch.arange(width, device=sets.device).expand(groups, -1))
        if self.exclude_history:  # what excluded() rules out: the user's training items
            rows, items = self.context.history.entries(chunk.users)
        else:
            rows, items = torch.arange(len(chunk.users), device=sets.device), chunk.positives
        cols = column[group_of[rows], items]
        excluded = torch.zeros((len(chunk.users), width), dtype=torch.bool, device=sets.device)
        hit = cols >= 0
        excluded[rows[hit], cols[hit]] = True
        return excluded

    def dense(self, size, chunk):
        """Per-position sets from a scored catalog row when that is cheaper than drawing distinct ids (a
        catalog up to ``dense_catalog`` items, measured on CPU), or when some user has too few allowed items
        for distinct draws to converge fast."""
        return self.catalog <= self.dense_catalog or 2 * size > int(self.free_items_per_user()[chunk.users].min())

    def _draw(self, logits):
        """K draws per row from softmax(alpha * logits): inverse CDF with replacement, Gumbel top-K without.
        Returns the column indices and the log-probabilities of the draws within the set."""
        shifted = (self.alpha * (logits - logits.max(dim=1, keepdim=True).values)).masked_fill_(
            logits == -math.inf, -math.inf)  # <= 0; -inf where excluded, also at alpha = 0
        weights = shifted.exp()
        cdf = weights.cumsum_(dim=1)
        if self.replacement:
            # u in (0, total]: the first column whose cdf reaches u has weight > 0 (never an excluded item)
            u = (1.0 - torch.rand((len(cdf), self.num), device=cdf.device)) * cdf[:, -1:]
            picked = torch.searchsorted(cdf, u).clamp_(max=cdf.shape[1] - 1)
        else:
            gumbel = -torch.log(-torch.log(torch.rand_like(shifted).clamp_min(1e-20)))
            picked = (shifted + gumbel).topk(self.num, dim=1).indices
        return picked, shifted.gather(1, picked) - torch.log(cdf[:, -1:])

    def _log_inclusion(self, chunk, size, shared):
        """log P(item in the pre-selected set): the set's size over the items it is drawn from (the allowed
        items per target; the whole catalog for a shared set), at most 1. With the within-set probability it
        gives sampled softmax its (approximate, exact at beta = 1) proposal log q."""
        if shared is not None:
            return torch.full((len(chunk.users), 1), math.log(len(shared) / self.catalog), device=shared.device)
        free = self.free_items_per_user()[chunk.users].float()
        return torch.log(torch.clamp(size / free, max=1.0))[:, None]

    # --- logging and state
    def statistics(self):
        return {**super().statistics(), "alpha": self.alpha, "beta": self.beta}

    def state_dict(self):
        return {**super().state_dict(), "alpha": self.alpha, "beta": self.beta, "last_loss": self.last_loss}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.alpha, self.beta, self.last_loss = state["alpha"], state["beta"], state["last_loss"]
