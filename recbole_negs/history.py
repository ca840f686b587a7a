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

    def sample_free(self, users, num, generator=None):
        """``[len(users), num]`` items drawn uniformly, with replacement, from each user's non-history items.
        Every user passed must have at least one free item (``free_count > 0``)."""
        free = self.free_count[users]
        r = (torch.rand((len(users), num), device=users.device, generator=generator) * free[:, None]).long()
        r = torch.minimum(r, free[:, None] - 1)  # guard against rand() rounding up to 1.0 in float32
        return self.nth_free(users, r)

    def nth_free(self, users, r):
        """The r-th (0-based) item that is not in the user's history, for ``r`` shaped ``[len(users), *]``."""
        base = users[:, None] * self.n_items
        below = torch.searchsorted(self.free_keys, base + r, right=True) - self.indptr[users][:, None]
        return r + 1 + below

    def sample_free_distinct(self, users, num, generator=None):
        """``num`` distinct non-history items per user (needs ``num <= free_count``)."""
        return self.nth_free(users, draw_distinct_ranks(self.free_count[users], num, generator))


def draw_distinct_ranks(free, num, generator=None):
    """``num`` distinct ranks per row, uniform over [0, free[row]) (needs ``num <= free``). The k-th draw takes a
    uniform rank among the ``free - k`` ranks not taken yet, so every subset is equally likely; it is mapped
    past the taken ranks by the fixed point v = r + #{taken <= v}, reached from below in a few steps."""
    taken = torch.empty((len(free), 0), dtype=torch.long, device=free.device)
    for k in range(num):
        r = (torch.rand(len(free), device=free.device, generator=generator) * (free - k)).long()
        r = torch.minimum(r, free - k - 1)
        v = r
        while True:
            nxt = r + (taken <= v[:, None]).sum(dim=1)
            if torch.equal(nxt, v):
                break
            v = nxt
        taken = torch.cat([taken, v[:, None]], dim=1)
    return taken
