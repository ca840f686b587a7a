"""SRNS synthetic mode (``srns_mode: synthetic``, section 4.2, the authors' ``SRNS_syn`` code).

No pools: a memory slot holds an item id; the difficulty is the raw score from the start of the epoch, the std
that of the raw scores over the last 5 epoch-start snapshots (zero in the first 5 epochs), fresh candidates
are uniform non-training items, every occurrence of a user selects and refreshes in turn, and
``set_false_negatives`` feeds one known false negative into memory slot 0 at every refresh (that slot is left
out of the softmax refresh). Snapshots are whole-catalog score tables.
"""

import torch

from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import Negatives
from recbole_negs.samplers.srns.base import WINDOW, SRNSSampler, population_std, sample_without_replacement


class SyntheticSRNSSampler(SRNSSampler):
    mode = "synthetic"
    # no pools: the real mode's pool attributes read as absent, so code that inspects either mode's state
    # (checkpoint round trips) finds the same names
    head = 0
    pools = pos_snaps = None

    @classmethod
    def check_mode_config(cls, config):
        if "single_spec" in config and not config["single_spec"]:
            raise ConfigError(
                f"config key 'nproc' = {config['nproc']} is not available with srns_mode 'synthetic', whose "
                "memory is refreshed at every occurrence of a user and fed a false negative per batch; "
                "allowed: 1 (srns_mode 'real' runs in several processes)")

    def __init__(self, config, context):
        super().__init__(config, context)
        self.false_negatives = None  # [users, F] item ids, the known ones first (0 = none)
        self.fn_count = torch.zeros(context.n_users, dtype=torch.long, device=self.device)

    def set_false_negatives(self, items_per_user):
        """``[n_users, F]`` known false negatives per user (item ids, 0 = none). From now on memory slot 0 of
        every user with one holds one of them, redrawn at every refresh and left out of it."""
        fn = torch.as_tensor(items_per_user, dtype=torch.long, device=self.device)
        if fn.dim() != 2 or fn.shape[0] != self.context.n_users:
            raise ValueError(f"set_false_negatives expects a [{self.context.n_users}, F] tensor of item ids "
                             f"(0 = none), got shape {tuple(fn.shape)}")
        order = torch.argsort((fn <= 0).to(torch.uint8), dim=1, stable=True)
        self.false_negatives = fn.gather(1, order)
        self.fn_count = (fn > 0).sum(dim=1)
        self._ensure_ready()
        users = torch.nonzero(self.fn_count > 0)[:, 0]
        self.memory[users, 0] = self._pick_false_negatives(users)

    # --- sampling
    def _sample(self, targets):
        users = targets.users
        out = torch.empty((len(users), self.num), dtype=torch.long, device=users.device)
        rank = occurrence_rank(users)
        for r in range(int(rank.max()) + 1 if len(users) else 0):  # every occurrence selects, then refreshes
            rows = torch.nonzero(rank == r)[:, 0]
            group = users[rows]
            memory = self.memory[group]  # [M, S1] item ids
            difficulty, std, current = self._terms(group, memory, targets, rows)
            chosen = self._select(difficulty, std)
            out[rows] = memory.gather(1, chosen)
            has_fn = self.fn_count[group] > 0
            self._refresh(group, memory, has_fn, current)
            stats = self._srns_stats
            stats["chosen"] += chosen.numel()
            stats["chosen_std"] += float(std.gather(1, chosen).sum())
            stats["fn_chosen"] += int(((chosen == 0).any(dim=1) & has_fn).sum())
            stats["rows"] += len(rows)
        return Negatives(out)

    def _terms(self, users, memory, targets, rows):
        """Raw scores from the start of the epoch (the current ones before any snapshot exists) and the std of
        the raw scores over the last five epoch-start snapshots, zero in the first five epochs."""
        if self.taken == 0:
            current = lambda ids: targets.scorer.score(ids, rows=rows)  # noqa: E731
        else:
            flat, slot = self.snaps.view(-1), (self.taken - 1) % WINDOW
            current = lambda ids: flat.take(((users * self.columns)[:, None] + ids) * WINDOW + slot)  # noqa: E731
        std = torch.zeros(memory.shape, device=memory.device)
        if self.taken > WINDOW:
            slots = torch.tensor([s % WINDOW for s in range(self.taken - WINDOW, self.taken)], device=memory.device)
            where = ((users * self.columns)[:, None] + memory)[..., None] * WINDOW + slots
            std = population_std(self.snaps.view(-1).take(where))
        return current(memory), std, current

    def _refresh(self, users, memory, has_fn, current):
        fresh = self.context.history.sample_free(users, self.s2)
        candidates = torch.cat([memory, fresh], dim=1)
        invalid = duplicates(candidates)
        invalid[:, 0] |= has_fn  # the false-negative slot stays out of the refresh
        new = candidates.gather(1, sample_without_replacement(current(candidates) / self.tau, invalid, self.s1))
        if bool(has_fn.any()):
            fn = torch.zeros(len(users), dtype=torch.long, device=users.device)
            fn[has_fn] = self._pick_false_negatives(users[has_fn])
            with_fn = torch.cat([fn[:, None], new[:, :-1]], dim=1)  # slot 0 + the first S1 - 1 sampled
            new = torch.where(has_fn[:, None], with_fn, new)
        self.memory[users] = new

    def _pick_false_negatives(self, users):
        count = self.fn_count[users]
        r = (torch.rand(len(users), device=users.device) * count).long().clamp_(max=count - 1)
        return self.false_negatives[users].gather(1, r[:, None])[:, 0]

    def _draw_memory(self):
        """S1 uniform non-training items per user (distinct where every user has that many)."""
        history = self.context.history
        everyone = torch.arange(self.context.n_users, device=self.device)
        if int(history.free_count.min()) >= self.s1:
            self.memory.copy_(history.sample_free_distinct(everyone, self.s1))
        else:
            self.memory.copy_(history.sample_free(everyone, self.s1))

    # --- statistics and checkpoints
    def _mode_statistics(self, s):
        """The share of rows whose negative is the injected false negative."""
        return {"false_negative_share": s["fn_chosen"] / max(s["rows"], 1)}

    def _mode_state(self):
        return {"false_negatives": self.false_negatives, "fn_count": self.fn_count}

    def _load_mode_state(self, state):
        fn = state.get("false_negatives")
        self.false_negatives = None if fn is None else fn.to(self.device).clone()
        self.fn_count.copy_(state["fn_count"])


def occurrence_rank(users):
    """0 for a user's first row in the batch, 1 for its second, ..."""
    order = torch.argsort(users, stable=True)
    ordered = users[order]
    index = torch.arange(len(users), device=users.device)
    start = torch.ones_like(ordered, dtype=torch.bool)
    start[1:] = ordered[1:] != ordered[:-1]
    group_start = torch.where(start, index, torch.zeros_like(index)).cummax(dim=0).values
    rank = torch.empty_like(index)
    rank[order] = index - group_start
    return rank


def duplicates(ids):
    """True at every repeat of a value in its row after its first (leftmost) occurrence."""
    ordered, order = ids.sort(dim=1, stable=True)
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    return torch.zeros_like(repeat).scatter_(1, order, repeat)
