"""SRNS (Ding et al., NeurIPS 2020, "Simplify and Robustify Negative Sampling for Implicit Collaborative
Filtering") for general models with user and item tables (BPR/MF, LightGCN, NGCF), as the authors' code makes
section 3 work. The choices between readings are in docs/srns.md.

Real mode (``srns_mode: real``, the authors' real-data code):

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

Synthetic mode (``srns_mode: synthetic``, section 4.2, the code's ``SRNS_syn``): no pools; the difficulty is the
raw score from the start of the epoch, the std that of the raw scores over the last 5 epoch-start snapshots
(zero in the first 5 epochs), fresh candidates are uniform non-training items, every occurrence of a user
selects and refreshes in turn, and ``set_false_negatives`` feeds one known false negative into memory slot 0
at every refresh (that slot is left out of the softmax refresh).

Snapshots live in a float32 ring ``[users, columns, 5]`` (slot = snapshot time mod 5); a column is an item id
("catalog" storage, used when the catalog is no larger than the five live pools) or ``pool_slot * P + index``
("pool" storage). Nothing loops over users or items in Python.
"""

import torch

from recbole.utils import ModelType

from recbole_negs import distributed
from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import Negatives, NegativeSampler

WINDOW = 5  # epochs of snapshots behind the std (the paper's and the code's)
LIVE_POOLS = 5  # the current pool and the four drawn ahead of it
CHUNK_FLOATS = 1 << 24  # users x columns scored at once at an epoch end (64 MB of float32)
DENSE_TABLE_LIMIT = 1 << 25  # users x items up to which pools are drawn from a dense table of free items
GATHER_RATIO = 8  # pool storage: score the whole catalog and gather while n_items <= GATHER_RATIO * 5 P
CATALOG_RATIO = 32  # per batch: score the catalog for the batch's users while n_items <= CATALOG_RATIO * (S1 + S2)


class SRNSSampler(NegativeSampler):
    name = "srns"
    model_aware = True
    needs_user_scores = True  # every user's scores at each epoch end (the snapshots)
    shares = ("target",)  # its memory is per user
    serves = (ModelType.GENERAL,)

    # --- checks
    @classmethod
    def check_config(cls, config):
        if "single_spec" in config and not config["single_spec"] and config["srns_mode"] == "synthetic":
            raise ConfigError(
                f"config key 'nproc' = {config['nproc']} is not available with srns_mode 'synthetic', whose "
                "memory is refreshed at every occurrence of a user and fed a false negative per batch; "
                "allowed: 1 (srns_mode 'real' runs in several processes)")
        if config["MODEL_TYPE"] == ModelType.SEQUENTIAL:
            raise ConfigError(
                f"config key 'sampler' = 'srns' is not available for model '{config['model']}', a sequential "
                "model: SRNS keeps score snapshots per user (taken at every epoch end from the user's query "
                "vector), while a sequential model's query is per position of a sequence; use a general model "
                "with user and item tables (BPR, LightGCN, NGCF)")
        super().check_config(config)
        if config["neg_exclude"] != "history":
            raise ConfigError(
                f"config key 'neg_exclude' = '{config['neg_exclude']}' is not available for sampler 'srns', "
                "whose candidates are the items outside the user's training items (as the authors' code); "
                "allowed: history")
        s1, k = config["srns_s1"], config["neg_sample_num"]
        if k > s1:
            raise ConfigError(
                f"config key 'neg_sample_num' = {k} is larger than srns_s1 = {s1}: SRNS picks its negatives "
                f"among the S1 memory items (the top K by its selection key); allowed: 1..{s1} (the paper: 1)")
        if config["srns_mode"] == "real" and config["srns_pool_size"] <= s1:
            raise ConfigError(
                f"config key 'srns_pool_size' = {config['srns_pool_size']} must be larger than srns_s1 = {s1}: "
                "the memory holds S1 distinct pool slots and fresh slots come from the rest of the pool; "
                f"allowed: int >= {s1 + 1}")

    def __init__(self, config, context):
        super().__init__(config, context)
        self.mode = config["srns_mode"]
        self.pool_size = int(config["srns_pool_size"])
        self.s1, self.s2 = int(config["srns_s1"]), int(config["srns_s2"])
        self.tau = float(config["srns_tau"])
        self.alpha = float(config["srns_alpha"])
        self.warmup = int(config["srns_warmup"])
        users, items, device = context.n_users, context.n_items, context.device
        self.device = device
        self.item_dtype = torch.int32 if items < 2 ** 31 else torch.int64
        self.real = self.mode == "real"
        if self.real:
            self.storage = "catalog" if items <= LIVE_POOLS * self.pool_size else "pool"
            self.columns = items if self.storage == "catalog" else LIVE_POOLS * self.pool_size
            self.pools = torch.zeros((LIVE_POOLS, users, self.pool_size), dtype=self.item_dtype, device=device)
            self.pos_snaps = torch.zeros((len(context.history.items), WINDOW), device=device)
        else:
            self.storage, self.columns = "catalog", items
            self.pools = self.pos_snaps = None
        # [users, columns, ring slot]: the five snapshots of one (user, column) sit together
        self.snaps = torch.zeros((users, self.columns, WINDOW), device=device)
        self.memory = torch.zeros((users, self.s1), dtype=torch.long, device=device)
        self.cursor = torch.zeros(users, dtype=torch.long, device=device)  # real: the next fresh pool slot
        self._touched = torch.zeros(users, dtype=torch.bool, device=device)  # users trained this epoch
        self._steps = torch.arange(self.s2, device=device)
        self.head = 0  # pool slot of the current pool
        self.taken = 0  # snapshots taken so far (0: before training, 1 + e: at the end of epoch e)
        self.ready = False  # pools and memory drawn
        self.false_negatives = None  # synthetic: [users, F] item ids, the known ones first (0 = none)
        self.fn_count = torch.zeros(users, dtype=torch.long, device=device)
        self._free_table = None
        self._position_table = None

    # --- hooks
    def on_train_start(self, user_scores):
        self._ensure_ready()
        if self.taken == 0:  # not when resuming from a checkpoint
            self._write_snapshot(user_scores())

    def on_epoch_end(self, epoch, user_scores):
        self._ensure_ready()
        # several processes: each refreshed the memory of the users in its shard; every user keeps the memory
        # (and pool cursor) of the lowest-ranked process that trained it this epoch, so that all processes
        # agree (pools and snapshots already do: the pools are rank 0's, the weights are DDP's)
        distributed.merge_rows(self._touched, self.memory, self.cursor)
        self._touched.zero_()
        if self.real:  # retire the current pool: a new one, current in five epochs, takes its slot
            self.pools[self.head] = self._draw_pool()
            self.head = (self.head + 1) % LIVE_POOLS
        self._write_snapshot(user_scores())  # real: the epoch end; synthetic: the next epoch's start (same weights)

    # --- synthetic experiment
    def set_false_negatives(self, items_per_user):
        """Synthetic mode: ``[n_users, F]`` known false negatives per user (item ids, 0 = none). From now on
        memory slot 0 of every user with one holds one of them, redrawn at every refresh and left out of it."""
        if self.real:
            raise ConfigError("set_false_negatives needs config key 'srns_mode' = 'synthetic' (section 4.2); "
                              "the real mode keeps pool indices in memory")
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
    def sample(self, targets):
        self._ensure_ready()
        self._touched[targets.users] = True
        if self.real:
            return self._sample_real(targets)
        return self._sample_synthetic(targets)

    def alpha_t(self):
        if self.warmup <= 0:
            return self.alpha
        return self.alpha * min(self.epoch / self.warmup, 1.0)

    def _select(self, difficulty, std):
        key = std if self.alpha < 0 else difficulty + self.alpha_t() * std
        if self.num == 1:
            return key.argmax(dim=1, keepdim=True)  # the first of tied maxima
        return key.topk(self.num, dim=1).indices

    def _sample_real(self, targets):
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

    def _sample_synthetic(self, targets):
        users = targets.users
        out = torch.empty((len(users), self.num), dtype=torch.long, device=users.device)
        rank = occurrence_rank(users)
        for r in range(int(rank.max()) + 1 if len(users) else 0):  # every occurrence selects, then refreshes
            rows = torch.nonzero(rank == r)[:, 0]
            group = users[rows]
            memory = self.memory[group]  # [M, S1] item ids
            difficulty, std, current = self._synthetic_terms(group, memory, targets, rows)
            chosen = self._select(difficulty, std)
            out[rows] = memory.gather(1, chosen)
            has_fn = self.fn_count[group] > 0
            self._refresh_synthetic(group, memory, has_fn, current)
            stats = self._srns_stats
            stats["chosen"] += chosen.numel()
            stats["chosen_std"] += float(std.gather(1, chosen).sum())
            stats["fn_chosen"] += int(((chosen == 0).any(dim=1) & has_fn).sum())
            stats["rows"] += len(rows)
        return Negatives(out)

    def _synthetic_terms(self, users, memory, targets, rows):
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

    def _refresh_synthetic(self, users, memory, has_fn, current):
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

    # --- pools, memory and snapshots
    def _ensure_ready(self):
        if self.ready:
            return
        users = self.context.n_users
        if self.real:
            for slot in range(LIVE_POOLS):
                self.pools[slot] = self._draw_pool()
            self.head = 0
            # pool slots hold i.i.d. draws, so the first S1 slots are S1 random items and fresh slots are
            # read on from there
            self.memory.copy_(torch.arange(self.s1, device=self.device).expand(users, -1))
            self.cursor.fill_(self.s1 % self.pool_size)
        else:
            history = self.context.history
            everyone = torch.arange(users, device=self.device)
            if int(history.free_count.min()) >= self.s1:
                self.memory.copy_(history.sample_free_distinct(everyone, self.s1))
            else:
                self.memory.copy_(history.sample_free(everyone, self.s1))
        self.ready = True

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

    def _write_snapshot(self, scorer):
        """Score every user's columns (catalog, or the five live pools) and, in real mode, every training
        interaction, into ring slot ``taken % 5``: in chunks of users, one matrix product per chunk."""
        slot = self.taken % WINDOW
        history, users, items = self.context.history, self.context.n_users, self.context.n_items
        via_catalog = self.storage == "catalog" or items <= GATHER_RATIO * self.columns
        step = max(1, CHUNK_FLOATS // (items if via_catalog else self.columns))
        for a in range(0, users, step):
            b = min(users, a + step)
            if via_catalog:
                scores = scorer.score_catalog(slice(a, b))  # [b - a, items]
                if self.storage == "catalog":
                    self.snaps[a:b, :, slot] = scores
                else:
                    self.snaps[a:b, :, slot] = scores.gather(1, self._pool_columns(a, b))
                if self.real:  # the chunk's training interactions are contiguous in the CSR
                    lo, hi = int(history.indptr[a]), int(history.indptr[b])
                    self.pos_snaps[lo:hi, slot] = scores[history.owner[lo:hi] - a, history.items[lo:hi]]
            else:
                rows = torch.arange(a, b, device=self.device)
                self.snaps[a:b, :, slot] = scorer.score(self._pool_columns(a, b), rows=rows)
                lo, hi = int(history.indptr[a]), int(history.indptr[b])
                pairs = scorer.score(history.items[lo:hi, None], rows=history.owner[lo:hi])
                self.pos_snaps[lo:hi, slot] = pairs[:, 0]
        self.taken += 1

    def _pool_columns(self, a, b):
        """Items of the five live pools of users a..b-1, laid out as pool-storage columns (slot * P + index)."""
        return self.pools[:, a:b].permute(1, 0, 2).reshape(b - a, self.columns).long()

    # --- statistics
    def reset_statistics(self):
        super().reset_statistics()
        self._srns_stats = {"chosen": 0, "chosen_hardness": 0.0, "chosen_std": 0.0, "fresh": 0,
                            "fresh_hardness": 0.0, "fn_chosen": 0, "rows": 0}

    def reduce_statistics(self):
        super().reduce_statistics()
        self._srns_stats = distributed.sum_dict(self._srns_stats)

    def statistics(self):
        """Besides the base statistics: the mean std of the chosen negatives and, in real mode, the mean
        ``sigmoid(s_neg - s_pos)`` of the chosen negatives and of the fresh (uniform) pool draws; in synthetic
        mode the share of rows whose negative is the injected false negative."""
        out = super().statistics()
        s = self._srns_stats
        chosen = max(s["chosen"], 1)
        out["alpha_t"] = self.alpha_t()
        out["chosen_std"] = s["chosen_std"] / chosen
        if self.real:
            out["chosen_hardness"] = s["chosen_hardness"] / chosen
            out["fresh_hardness"] = s["fresh_hardness"] / max(s["fresh"], 1)
        else:
            out["false_negative_share"] = s["fn_chosen"] / max(s["rows"], 1)
        return out

    # --- checkpoints
    def state_dict(self):
        state = super().state_dict()
        clone = lambda t: None if t is None else t.clone()  # noqa: E731
        state.update(mode=self.mode, storage=self.storage, taken=self.taken, head=self.head, ready=self.ready,
                     memory=clone(self.memory), cursor=clone(self.cursor), snaps=clone(self.snaps),
                     pools=clone(self.pools), pos_snaps=clone(self.pos_snaps),
                     false_negatives=clone(self.false_negatives), fn_count=clone(self.fn_count))
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "memory" not in state:  # a checkpoint of another sampler: start afresh
            return
        same = (state["mode"], state["storage"], state["memory"].shape, state["snaps"].shape) == (
            self.mode, self.storage, self.memory.shape, self.snaps.shape)
        if not same:
            raise ConfigError(
                f"the checkpoint's SRNS state (srns_mode '{state['mode']}', memory {tuple(state['memory'].shape)}, "
                f"snapshots {tuple(state['snaps'].shape)}) does not fit this configuration (srns_mode "
                f"'{self.mode}', memory {tuple(self.memory.shape)}, snapshots {tuple(self.snaps.shape)}); resume "
                "with the srns_* keys of the run that wrote it")
        self.taken, self.head, self.ready = state["taken"], state["head"], state["ready"]
        self.memory.copy_(state["memory"])
        self.cursor.copy_(state["cursor"])
        self.snaps.copy_(state["snaps"])
        if self.real:
            self.pools.copy_(state["pools"])
            self.pos_snaps.copy_(state["pos_snaps"])
        fn = state.get("false_negatives")
        self.false_negatives = None if fn is None else fn.to(self.device).clone()
        self.fn_count.copy_(state["fn_count"])


def population_std(x):
    """Standard deviation over the last dim with divisor n (numpy's default, the code's)."""
    return (x - x.mean(dim=-1, keepdim=True)).square_().mean(dim=-1).sqrt_()


def first_occurrence(users):
    """Unique users (sorted), the row of each one's first occurrence and each row's index in ``unique``."""
    unique, inverse = torch.unique(users, return_inverse=True)
    rows = torch.arange(len(users), device=users.device)
    first = torch.full((len(unique),), len(users), dtype=torch.long, device=users.device)
    first.scatter_reduce_(0, inverse, rows, reduce="amin")
    return unique, first, inverse


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


def sample_without_replacement(logits, invalid, k):
    """k column indices per row drawn without replacement from softmax(logits) over the valid columns
    (Gumbel top-k: the same law as drawing one at a time and renormalising); invalid columns come last."""
    uniform = torch.rand_like(logits).clamp_(min=1e-20)
    keys = (logits - torch.log(-torch.log(uniform))).masked_fill(invalid, float("-inf"))
    return keys.topk(k, dim=1).indices
