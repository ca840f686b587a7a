"""What every sampler shares. A new sampler writes one method, ``sample(targets) -> Negatives``.

In the spirit of pytorch-metric-learning's miners: sampling always runs under ``no_grad``, its output shape is
checked, and each sampler keeps a few statistics per epoch (how hard its negatives are) for the trainer to log.
"""

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from recbole.utils import ModelType

from recbole_negs import distributed
from recbole_negs.errors import ConfigError, DataError
from recbole_negs.history import UserHistory, draw_distinct_ranks


@dataclass
class Targets:
    """The N positives of one training batch, flattened (one per row, or per position for sequences)."""

    users: torch.Tensor  # [N]
    positives: torch.Tensor  # [N]
    scorer: Any = None  # CandidateScorer / PredictScorer: detached scores of candidate items for these N targets
    positions: Optional[torch.Tensor] = None  # [N] index of the target in the user's training sequence
    rows: Optional[torch.Tensor] = None  # [N] the batch row (sequence) of each target; None: one row per target
    n_rows: int = 0  # rows in the batch (with ``rows``)


@dataclass
class Negatives:
    """Per-target negatives (``ids`` [N, K]), or a candidate set shared by many targets (``shared``: [C] for
    the whole batch, [R, C] one per batch row, each target taking its row's), with ``valid`` [N, C] False where
    a shared candidate is the target's positive or an item ``neg_exclude`` rules out for it (an accidental hit,
    left out of that target's loss)."""

    ids: Optional[torch.Tensor] = None  # [N, K]
    log_q: Optional[torch.Tensor] = None  # log proposal probability, broadcastable to the scores' shape
    shared: Optional[torch.Tensor] = None  # [C] or [R, C]
    valid: Optional[torch.Tensor] = None  # [N, C] bool, with ``shared``

    def per_target_ids(self, rows=None):
        """[N, C] ids of every target's candidates (a shared set expanded; costs N x C)."""
        if self.shared is None:
            return self.ids
        if self.shared.dim() == 1:
            return self.shared[None, :].expand(len(self.valid), -1)
        return self.shared[rows]


@dataclass
class SamplingContext:
    """What samplers know about the data, built once after RecBole has split it."""

    history: Any  # UserHistory of the training split
    n_users: int
    n_items: int  # RecBole's item_num: ids 1..n_items-1 are items, 0 is padding
    item_counts: torch.Tensor  # [n_items] training interactions per item
    device: torch.device

    @classmethod
    def from_training_split(cls, train_dataset, device):
        # RecBole's inter_matrix of the training split: one entry per interaction (for sequential datasets it
        # includes each user's first item, which no prefix row has as a target).
        matrix = train_dataset.inter_matrix(form="coo")
        counts = np.bincount(matrix.col, minlength=matrix.shape[1]).astype(np.int64)
        return cls(UserHistory.from_matrix(matrix, device), matrix.shape[0], matrix.shape[1],
                   torch.from_numpy(counts).to(device), device)


class NegativeSampler:
    name = ""
    model_aware = False  # True when it scores candidates with the model (needs Targets.scorer)
    needs_user_scores = False  # True when its hooks need every user's scores (a model with a query per user)
    serves = (ModelType.GENERAL, ModelType.SEQUENTIAL)
    shares = ("target", "sequence", "batch")  # the neg_share modes it can draw

    def __init__(self, config, context: SamplingContext):
        self.config = config
        self.context = context
        self.num = config["neg_sample_num"]
        self.exclude_history = config["neg_exclude"] == "history"
        self.replacement = config["neg_sample_replacement"]
        self.share = config["neg_share"]
        self.epoch = 0
        self.reset_statistics()

    # --- checks
    @classmethod
    def check_config(cls, config):
        if config["MODEL_TYPE"] not in cls.serves:
            kinds = " and ".join(t.name.lower() for t in cls.serves)
            raise ConfigError(f"config key 'sampler' = '{cls.name}' serves {kinds} models; model "
                              f"'{config['model']}' is a {config['MODEL_TYPE'].name.lower()} model")
        if config["neg_share"] not in cls.shares:
            raise ConfigError(f"config key 'neg_share' = '{config['neg_share']}' is not available for sampler "
                              f"'{cls.name}'; allowed: {'|'.join(cls.shares)}")

    @classmethod
    def for_config(cls, config):
        """The class that serves ``config`` (a sampler with several modes returns the mode's class)."""
        return cls

    def check_data(self):
        """Data-dependent checks, right after the dataset is built: every user needs items left to draw."""
        free = self.free_items_per_user()
        active = self.context.history.sizes > 0
        worst = int(free[active].min()) if bool(active.any()) else int(free.min())
        if worst < 1:
            users = int(((free < 1) & active).sum())
            raise DataError(
                f"{users} user(s) have interacted with every item, so no item is left to sample as a negative "
                f"with neg_exclude = 'history'; use neg_exclude: target, or filter those users "
                "(e.g. user_inter_num_interval)")
        for key, needed in self.distinct_draws().items():
            if needed > worst:
                raise DataError(
                    f"config key '{key}' = {needed} is larger than the {worst} items some user can draw without "
                    "replacement (the catalog minus the exclusions); lower it, or set neg_exclude: target"
                    + (" or neg_sample_replacement: True" if key == "neg_sample_num" else ""))

    def distinct_draws(self):
        """How many distinct items per positive the sampler draws, by the key that sets it."""
        return {} if self.replacement else {"neg_sample_num": self.num}

    def free_items_per_user(self):
        history = self.context.history
        if self.exclude_history:
            return history.free_count
        return torch.full_like(history.free_count, self.context.n_items - 2)  # all items but the target

    # --- sampling
    def sample(self, targets: Targets) -> Negatives:
        raise NotImplementedError

    def __call__(self, targets: Targets) -> Negatives:
        with torch.no_grad():
            out = self.sample(targets)
        if out.shared is None:
            expected = (len(targets.positives), self.num)
            assert tuple(out.ids.shape) == expected, (
                f"{type(self).__name__}.sample returned ids of shape {tuple(out.ids.shape)}, expected {expected}")
        else:
            assert out.valid is not None and out.valid.shape == (len(targets.positives), out.shared.shape[-1])
        return out

    # --- shared candidate sets (neg_share: sequence | batch)
    def share_rows(self, targets):
        """How many candidate sets this batch draws under ``neg_share``, and each target's set: (R, [N] index)
        or (None, None) for one set shared by the batch. ``sequence`` gives each batch row (a user's sequence)
        its own set; where rows hold one target each (general models, prefix rows) that is per target."""
        if self.share == "batch":
            return None, None
        if targets.rows is None:
            n = len(targets.positives)
            return n, torch.arange(n, device=targets.positives.device)
        return targets.n_rows, targets.rows

    def draw_catalog(self, shape, replacement=None):
        """Items uniform over the whole catalog (1..n_items-1), ``shape`` = (C,) or (R, C); without replacement
        along the last dim when asked (needs C <= catalog size)."""
        catalog = self.context.n_items - 1
        device = self.context.device
        replacement = self.replacement if replacement is None else replacement
        if replacement:
            return torch.randint(1, catalog + 1, shape, device=device)
        rows = shape[0] if len(shape) == 2 else 1
        ranks = draw_distinct_ranks(torch.full((rows,), catalog, device=device), shape[-1])
        return (ranks + 1).view(shape)

    def shared_valid(self, targets, shared, rows):
        """[N, C]: True where a shared candidate may serve as the target's negative. Exclusions against the
        user's history are looked up once per (batch user, candidate), then spread to the user's targets."""
        if shared.dim() == 1:
            hit = shared[None, :] == targets.positives[:, None]
            if self.exclude_history:
                users, inverse = torch.unique(targets.users, return_inverse=True)
                hit |= self.context.history.contains(users, shared[None, :].expand(len(users), -1))[inverse]
            return ~(hit | (shared[None, :] == 0))
        ids = shared[rows]  # [N, C]: each target's row set
        hit = (ids == targets.positives[:, None]) | (ids == 0)
        if self.exclude_history:  # a row holds one user: look its history up once per row
            row_user = targets.users.new_zeros(len(shared))
            row_user[rows] = targets.users
            hit |= self.context.history.contains(row_user, shared)[rows]
        return ~hit


    def draw_uniform(self, targets, num, replacement=True):
        """``[N, num]`` items uniform over the catalog minus the exclusions (the user's training items, or
        the target only); exact, no rejection loop."""
        history = self.context.history
        if self.exclude_history:
            if replacement:
                return history.sample_free(targets.users, num)
            return history.sample_free_distinct(targets.users, num)
        n, pos = len(targets.positives), targets.positives
        free = torch.full((n,), self.context.n_items - 2, device=pos.device)
        r = draw_distinct_ranks(free, num) if not replacement else torch.randint(
            0, self.context.n_items - 2, (n, num), device=pos.device)
        items = r + 1
        return items + (items >= pos[:, None]).long()

    def excluded(self, targets, ids):
        """Boolean mask shaped like ``ids`` ([N, C], or [C] shared by all N targets): the padding id 0 and the
        items ``neg_exclude`` rules out for each target."""
        if self.exclude_history:
            hit = self.context.history.contains(targets.users, ids if ids.dim() == 2 else ids[None, :])
        else:
            hit = ids == targets.positives[:, None]
        return hit | (ids == 0)

    def mask_catalog(self, targets, scores, value):
        """Set the padding column and each target's excluded items of a [N, n_items] matrix to ``value``, in
        place, touching only those entries."""
        scores[:, 0] = value
        if self.exclude_history:
            rows, items = self.context.history.entries(targets.users)
            scores[rows, items] = value
        else:
            scores[torch.arange(len(scores), device=scores.device), targets.positives] = value
        return scores

    def uniform_log_q(self, targets, num):
        """log of the uniform proposal probability of each draw: -log(free items of its user)."""
        free = self.free_items_per_user()[targets.users].float()
        return (-torch.log(free))[:, None].expand(-1, num)

    # --- hooks the trainer calls; ``user_scores()`` returns a CandidateScorer of every user under the current
    # weights (general models only, for samplers with needs_user_scores)
    def on_train_start(self, user_scores):
        pass

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, loss_value):
        pass

    def on_epoch_end(self, epoch, user_scores):
        pass

    # --- statistics (per epoch)
    def reset_statistics(self):
        self._stats = {"pairs": 0, "outscoring": 0, "gap_sum": 0.0}

    def record(self, pos_scores, neg_scores, valid=None):
        """Called by the training step with the scores it computed anyway (no extra work); ``valid`` [N, C]
        leaves a shared set's accidental hits out."""
        gap = pos_scores[:, None] - neg_scores
        if valid is not None:
            gap = gap[valid]
        self._stats["pairs"] += gap.numel()
        self._stats["outscoring"] += int((gap < 0).sum())
        self._stats["gap_sum"] += float(gap.sum())

    def record_catalog(self, logits, positives):
        """The same statistics over all (positive, other item) pairs, from the logits the full softmax computed
        anyway; ``logits`` [N, n_items] with the padding column at -inf."""
        pos = logits.gather(1, positives[:, None])
        others = logits.shape[1] - 2  # neither the padding column nor the target
        self._stats["pairs"] += pos.numel() * others
        self._stats["outscoring"] += int((logits > pos).sum())
        finite = logits[:, 1:]
        self._stats["gap_sum"] += float((pos[:, 0] * others - (finite.sum(dim=1) - pos[:, 0])).sum())

    def reduce_statistics(self):
        """Several processes: sum the counters over them before statistics() is computed from them."""
        self._stats = distributed.sum_dict(self._stats)

    def statistics(self):
        """Mean score gap positive - negative and the share of negatives that outscore their positive."""
        pairs = max(self._stats["pairs"], 1)
        return {"mean_gap": self._stats["gap_sum"] / pairs, "share_outscoring": self._stats["outscoring"] / pairs}

    # --- state in checkpoints
    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, state):
        self.epoch = state.get("epoch", 0)


