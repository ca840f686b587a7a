"""SRNS real mode (``srns_mode: real``, the authors' real-data code).

* every user has a pool of P items drawn with replacement from its non-training items. Five pools are alive at
  once: the current one and four waiting ones. At each epoch end the current pool is retired, a new one is drawn
  into its slot (it becomes current five epochs later) and every live pool is scored, together with every
  training interaction (the positives, keyed by their CSR index in ``UserHistory``). Before training the first
  pools and the positives are scored once: epoch 0 has one snapshot, epoch t in 1..5 has t (the epoch ends
  0..t-1), later epochs 5, and every item that can be chosen already carries its snapshots.
* the memory is S1 distinct slots of the current pool, kept when the pool changes (so at an epoch start it is
  in effect S1 random items of the new pool, as in the code).
* per positive: ``argmax sigmoid(s_k - s_pos) + alpha_t * std_k``, ``alpha_t = alpha * min(t / T0, 1)``, where
  std_k is the population std over the snapshot window of ``sigmoid(snap_k - snap_pos)`` paired by epoch; a
  negative alpha selects by std alone. K > 1 takes the top K of the same key.
* then, once per user of the batch (its first row), the memory is refreshed: S1 of memory + the next S2 slots
  of the pool after a per-user cursor, sampled without replacement from ``softmax(score / tau)`` on the
  current scores.

Snapshot columns are item ids ("catalog" storage, used when the catalog is no larger than the five live pools)
or ``pool_slot * P + index`` ("pool" storage). Nothing loops over users or items in Python.
"""

import torch

from recbole_negs import distributed
from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import Negatives
from recbole_negs.samplers.srns.base import WINDOW, SRNSSampler, population_std, sample_without_replacement

LIVE_POOLS = 5  # the current pool and the four drawn ahead of it
DENSE_TABLE_LIMIT = 1 << 25  # users x items up to which pools are drawn from a dense table of free items
GATHER_RATIO = 8  # pool storage: score the whole catalog and gather while n_items <= GATHER_RATIO * 5 P
CATALOG_RATIO = 32  # per batch: score the catalog for the batch's users while n_items <= CATALOG_RATIO * (S1 + S2)


class RealSRNSSampler(SRNSSampler):
    mode = "real"

    @classmethod
    def check_mode_config(cls, config):
        s1 = config["srns_s1"]
        if config["srns_pool_size"] <= s1:
            raise ConfigError(
                f"config key 'srns_pool_size' = {config['srns_pool_size']} must be larger than srns_s1 = {s1}: "
                "the memory holds S1 distinct pool slots and fresh slots come from the rest of the pool; "
                f"allowed: int >= {s1 + 1}")

    def __init__(self, config, context):
        super().__init__(config, context)
        users, device = context.n_users, context.device
        self.pools = torch.zeros((LIVE_POOLS, users, self.pool_size), dtype=self.item_dtype, device=device)
        self.pos_snaps = torch.zeros((len(context.history.items), WINDOW), device=device)
        self.cursor = torch.zeros(users, dtype=torch.long, device=device)  # the next fresh pool slot
        self._steps = torch.arange(self.s2, device=device)
        self.head = 0  # pool slot of the current pool
        self._free_table = None
        self._position_table = None

    def _storage(self):
        items, live = self.context.n_items, LIVE_POOLS * int(self.pool_size)
        return ("catalog", items) if items <= live else ("pool", live)

    def _per_user_rows(self):
        return self.memory, self.cursor

    def _mode_epoch_end(self):
        """Retire the current pool: a new one, current in five epochs, takes its slot."""
        self.pools[self.head] = self._draw_pool()
        self.head = (self.head + 1) % LIVE_POOLS

    # --- sampling
    def _sample(self, targets):
        users, positives, scorer = targets.users, targets.positives, targets.scorer
        # Rows of one user share its query (general models), so candidates are scored once per user: its
        # first row in the batch; a user seen twice in a batch is also refreshed once.
        unique, first, inverse = first_occurrence(users)
        pool = self.pools[self.head].view(-1)
        base = unique[:, None] * self.pool_size
        memory = self.memory[unique]  # [M, S1] pool slots
        fresh = (self.cursor[unique, None] + self._steps) % self.pool_size  # [M, S2] the next pool slots
        slots = torch.cat([memory, fresh], dim=1)
        items = pool.take(base + slots).long()  # [M, S1 + S2]
        scores, pos_scores = self._score(scorer, first, inverse, items, positives)
        mem_items, mem_scores = items[:, :self.s1], scores[:, :self.s1]

        difficulty = torch.sigmoid(mem_scores.index_select(0, inverse) - pos_scores[:, None])  # [N, S1]
        std = self._real_std(users, unique, inverse, positives, mem_items, memory)
        chosen = self._select(difficulty, std)
        negatives = mem_items.index_select(0, inverse).gather(1, chosen)

        # refresh: S1 of memory + S2 fresh slots from softmax(score / tau), without replacement; a fresh slot
        # that is already in memory (once the cursor has gone round the pool) or repeats is left out
        invalid = torch.zeros(slots.shape, dtype=torch.bool, device=slots.device)
        offset = (memory - self.cursor[unique, None]) % self.pool_size
        in_fresh = offset < self.s2
        invalid.scatter_(1, torch.where(in_fresh, self.s1 + offset, torch.zeros_like(offset)), in_fresh)
        invalid[:, self.s1 + self.pool_size:] = True
        invalid[:, :self.s1] = False
        picked = sample_without_replacement(scores / self.tau, invalid, self.s1)
        self.memory[unique] = slots.gather(1, picked)
        self.cursor[unique] = (self.cursor[unique] + self.s2) % self.pool_size

        stats = self._srns_stats
        stats["chosen"] += chosen.numel()
        stats["chosen_hardness"] += float(difficulty.gather(1, chosen).sum())
        stats["chosen_std"] += float(std.gather(1, chosen).sum())
        stats["fresh"] += fresh.numel()
        stats["fresh_hardness"] += float(torch.sigmoid(scores[:, self.s1:] - pos_scores[first][:, None]).sum())
        return Negatives(negatives)

    def _score(self, scorer, first, inverse, items, positives):
        """Current scores of the candidates ``items`` [M, C] of the batch's users and of the N positives: one
        product of the M queries with the whole item table when the catalog is small next to the candidates
        (a matrix product beats gathering candidate vectors by far), else a gather and a batched product."""
        if self.context.n_items <= CATALOG_RATIO * items.shape[1]:
            table = scorer.score_catalog(first)  # [M, n_items]
            return table.gather(1, items), table.view(-1).take(inverse * table.shape[1] + positives)
        return scorer.score(items, rows=first), scorer.score(positives[:, None])[:, 0]

    def _real_std(self, users, unique, inverse, positives, items, memory):
        """[N, S1] population std over the window of sigmoid(snapshot_k - snapshot_pos), paired by epoch;
        ``items`` / ``memory`` [M, S1] are the memory items / slots of the ``unique`` users, ``inverse`` maps
        the N rows to them."""
        slots = self._window()
        if len(slots) < 2:
            return torch.zeros((len(users), items.shape[1]), device=items.device)
        slots = torch.tensor(slots, device=items.device)
        columns = items if self.storage == "catalog" else self.head * self.pool_size + memory
        where = ((unique * self.columns)[:, None] + columns)[..., None] * WINDOW + slots  # [M, S1, W]
        candidate = self.snaps.view(-1).take(where).index_select(0, inverse)  # [N, S1, W]
        at = self._position(users, positives)
        positive = self.pos_snaps.view(-1).take(at.clamp(min=0)[:, None] * WINDOW + slots)  # [N, W]
        std = population_std(torch.sigmoid(candidate - positive[:, None, :]))
        return std * (at >= 0)[:, None]  # a positive outside the training split has no snapshots

    def _position(self, users, positives):
        """CSR index of each (user, positive) training pair (-1 if absent): ``UserHistory.position_of``, or a
        dense users x items lookup table when that is small (the same DENSE_TABLE_LIMIT as the pool draws)."""
        history, n_items = self.context.history, self.context.n_items
        if self.context.n_users * n_items > DENSE_TABLE_LIMIT:
            return history.position_of(users, positives)
        if self._position_table is None:
            table = torch.full((self.context.n_users * n_items,), -1, dtype=torch.int32, device=self.device)
            table[history.keys] = torch.arange(len(history.keys), dtype=torch.int32, device=self.device)
            self._position_table = table
        return self._position_table.take(users * n_items + positives).long()

    def _window(self):
        """Ring slots of the snapshots behind the std, oldest first: the last five epoch ends; the snapshot
        taken before training serves epoch 0 only (as in the authors' code)."""
        if self.taken == 0:
            return []
        low = max(self.taken - WINDOW, 1 if self.taken > 1 else 0)
        return [s % WINDOW for s in range(low, self.taken)]

    # --- pools and memory
    def _draw_memory(self):
        for slot in range(LIVE_POOLS):
            self.pools[slot] = self._draw_pool()
        self.head = 0
        # pool slots hold i.i.d. draws, so the first S1 slots are S1 random items and fresh slots are read on
        # from there
        self.memory.copy_(torch.arange(self.s1, device=self.device).expand(self.context.n_users, -1))
        self.cursor.fill_(self.s1 % self.pool_size)

    def _draw_pool(self):
        """``[users, P]`` items drawn uniformly with replacement from each user's non-training items."""
        history, users, items = self.context.history, self.context.n_users, self.context.n_items
        if users * items > DENSE_TABLE_LIMIT:
            pool = history.sample_free(torch.arange(users, device=self.device), self.pool_size)
            return distributed.broadcast_(pool.to(self.item_dtype))
        if self._free_table is None:  # each user's free items first, ascending (built once)
            taken = torch.zeros((users, items), dtype=torch.uint8, device=self.device)
            taken[:, 0] = 1
            taken[history.owner, history.items] = 1
            self._free_table = torch.argsort(taken, dim=1, stable=True).to(self.item_dtype)
        free = history.free_count
        rank = (torch.rand((users, self.pool_size), device=self.device) * free[:, None]).long()
        rank = torch.minimum(rank, (free[:, None] - 1).clamp(min=0))
        return distributed.broadcast_(self._free_table.gather(1, rank))  # every process: rank 0's pools

    # --- snapshots: the live pools' columns and every training interaction
    def _via_catalog(self):
        """Score the whole catalog and keep the columns (catalog storage, or pools large next to the catalog)
        rather than a batched product over the pools' items."""
        return self.storage == "catalog" or self.context.n_items <= GATHER_RATIO * self.columns

    def _snapshot_width(self):
        return self.context.n_items if self._via_catalog() else self.columns

    def _write_snapshot_chunk(self, scorer, a, b, slot):
        history = self.context.history
        lo, hi = int(history.indptr[a]), int(history.indptr[b])  # the chunk's training pairs are contiguous
        if self._via_catalog():
            scores = scorer.score_catalog(slice(a, b))  # [b - a, items]
            if self.storage == "catalog":
                self.snaps[a:b, :, slot] = scores
            else:
                self.snaps[a:b, :, slot] = scores.gather(1, self._pool_columns(a, b))
            self.pos_snaps[lo:hi, slot] = scores[history.owner[lo:hi] - a, history.items[lo:hi]]
        else:
            rows = torch.arange(a, b, device=self.device)
            self.snaps[a:b, :, slot] = scorer.score(self._pool_columns(a, b), rows=rows)
            pairs = scorer.score(history.items[lo:hi, None], rows=history.owner[lo:hi])
            self.pos_snaps[lo:hi, slot] = pairs[:, 0]

    def _pool_columns(self, a, b):
        """Items of the five live pools of users a..b-1, laid out as pool-storage columns (slot * P + index)."""
        return self.pools[:, a:b].permute(1, 0, 2).reshape(b - a, self.columns).long()

    # --- statistics and checkpoints
    def _mode_statistics(self, s):
        """The mean ``sigmoid(s_neg - s_pos)`` of the chosen negatives and of the fresh (uniform) pool draws."""
        return {"chosen_hardness": s["chosen_hardness"] / max(s["chosen"], 1),
                "fresh_hardness": s["fresh_hardness"] / max(s["fresh"], 1)}

    def _mode_state(self):
        return {"head": self.head, "cursor": self.cursor, "pools": self.pools, "pos_snaps": self.pos_snaps}

    def _load_mode_state(self, state):
        self.head = state["head"]
        self.cursor.copy_(state["cursor"])
        self.pools.copy_(state["pools"])
        self.pos_snaps.copy_(state["pos_snaps"])


def first_occurrence(users):
    """Unique users (sorted), the row of each one's first occurrence and each row's index in ``unique``."""
    unique, inverse = torch.unique(users, return_inverse=True)
    rows = torch.arange(len(users), device=users.device)
    first = torch.full((len(unique),), len(users), dtype=torch.long, device=users.device)
    first.scatter_reduce_(0, inverse, rows, reduce="amin")
    return unique, first, inverse
