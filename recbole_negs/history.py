"""Each user's training items, as tensors: membership tests and exact uniform draws of the items a user has
not interacted with, for a whole batch at once (no Python loop over users)."""

import numpy as np
import torch


class UserHistory:
    """Sorted CSR of training items per user; item ids are RecBole's (1..n_items-1, 0 is padding).

    ``keys = user * n_items + item`` is globally sorted, so ``contains`` is one ``searchsorted``. For exact
    uniform sampling of non-history items, ``free_before[j] = h_j - 1 - j`` counts the free items below the
    j-th history item h_j of a user; the r-th free item is then ``r + 1 + #{j : free_before[j] <= r}``, again
    one ``searchsorted`` over the same per-user layout.
    """

    def __init__(self, indptr, items, n_users, n_items, device="cpu"):
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.indptr = torch.as_tensor(indptr, dtype=torch.long, device=device)
        self.items = torch.as_tensor(items, dtype=torch.long, device=device)
        self.sizes = self.indptr[1:] - self.indptr[:-1]
        self.owner = torch.repeat_interleave(torch.arange(self.n_users, device=device), self.sizes)
        rank = torch.arange(len(self.items), device=device) - self.indptr[self.owner]
        self.keys = self.owner * self.n_items + self.items
        self.free_keys = self.owner * self.n_items + (self.items - 1 - rank)
        self.free_count = (self.n_items - 1) - self.sizes

    @classmethod
    def from_matrix(cls, matrix, device="cpu"):
        """From a scipy users x items matrix of the training split (duplicates allowed)."""
        matrix = matrix.tocsr().astype(np.float32)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return cls(matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64), matrix.shape[0],
                   matrix.shape[1], device)

    def to(self, device):
        return UserHistory(self.indptr.to(device), self.items.to(device), self.n_users, self.n_items, device)

    def contains(self, users, items):
        """Boolean tensor shaped like ``items``: is ``items[..., k]`` a training item of ``users[...]``?"""
        if len(self.keys) == 0:
            return torch.zeros_like(items, dtype=torch.bool)
        query = users.reshape(users.shape + (1,) * (items.dim() - users.dim())) * self.n_items + items
        pos = torch.searchsorted(self.keys, query).clamp_(max=len(self.keys) - 1)
        return self.keys[pos] == query

    def position_of(self, users, items):
        """Long tensor shaped like ``items``: the CSR index (into ``self.items`` / ``self.keys``) of each
        (``users[...]``, ``items[..., k]``) pair, or -1 where the pair is not a training interaction. A pair seen
        several times in the training split has one index (duplicates are merged)."""
        query = users.reshape(users.shape + (1,) * (items.dim() - users.dim())) * self.n_items + items
        if len(self.keys) == 0:
            return torch.full_like(query, -1)
        pos = torch.searchsorted(self.keys, query).clamp_(max=len(self.keys) - 1)
        return torch.where(self.keys[pos] == query, pos, torch.full_like(pos, -1))

    def entries(self, users):
        """(row, item) of every training item of ``users[row]``: what to mask in a [len(users), n_items] score
        matrix, in time proportional to the histories rather than to the catalog."""
        sizes = self.sizes[users]
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        offsets = torch.arange(len(rows), device=users.device) - starts[rows] + self.indptr[users][rows]
        return rows, self.items[offsets]

    def sample_free(self, users, num, generator=None):
        """``[len(users), num]`` items drawn uniformly, with replacement, from each user's non-history items.
        Every user passed must have at least one free item (``free_count > 0``)."""
        return self.nth_free(users, _uniform_ranks(self.free_count[users][:, None].expand(-1, num), generator))

    def nth_free(self, users, r):
        """The r-th (0-based) item that is not in the user's history, for ``r`` shaped ``[len(users), *]``."""
        base = users[:, None] * self.n_items
        below = torch.searchsorted(self.free_keys, base + r, right=True) - self.indptr[users][:, None]
        return r + 1 + below

    def sample_free_distinct(self, users, num, generator=None):
        """``num`` distinct non-history items per user (needs ``num <= free_count``)."""
        return self.nth_free(users, draw_distinct_ranks(self.free_count[users], num, generator))


def draw_distinct_ranks(free, num, generator=None):
    """``num`` distinct ranks per row, every ``num``-subset of [0, free[row]) equally likely (needs ``num <=
    free``). Sparse rows: i.i.d. uniform draws whose repeats are redrawn until ``num`` distinct values stand;
    the set of distinct values of an i.i.d. sequence is exchangeable, so the subset is uniform, and the rounds
    end fast while ``num`` is at most half of ``free``. Dense rows: the ``num`` smallest of ``free`` uniform
    keys (a random permutation's prefix)."""
    n = len(free)
    device = free.device
    if num == 0 or n == 0:
        return torch.zeros((n, num), dtype=torch.long, device=device)
    if 2 * num > int(free.min()):
        width = int(free.max())
        keys = torch.rand((n, width), device=device, generator=generator)
        keys[torch.arange(width, device=device)[None, :] >= free[:, None]] = 2.0  # ranks past free: never
        return keys.topk(num, dim=1, largest=False).indices
    ranks = _uniform_ranks(free[:, None].expand(-1, num), generator)
    while True:
        ordered, order = ranks.sort(dim=1)
        repeat = torch.zeros_like(ranks, dtype=torch.bool)
        repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
        if not bool(repeat.any()):
            return ranks
        redraw = torch.zeros_like(repeat).scatter_(1, order, repeat)
        ranks[redraw] = _uniform_ranks(free[:, None].expand(-1, num)[redraw], generator)


def _uniform_ranks(limit, generator=None):
    """Uniform integers in [0, limit), elementwise."""
    r = (torch.rand(limit.shape, device=limit.device, generator=generator) * limit).long()
    return torch.minimum(r, limit - 1)  # rand() can round up to 1.0 in float32
