"""What SRNS's two modes share: the per-user memory, the ring of score snapshots, the selection key
``difficulty + alpha_t * std``, the statistics and the checkpoint state. The modes differ in what a memory slot
holds, what the difficulty and the std are computed from and how fresh candidates are drawn (real.py,
synthetic.py); docs/srns.md has the choices between readings.

``SRNSSampler(config, context)`` builds the class of ``config['srns_mode']`` (``SRNSSampler.for_config``), so
the registry maps the name 'srns' to this one class.
"""

import torch

from recbole.utils import ModelType

from recbole_negs import distributed
from recbole_negs.errors import ConfigError
from recbole_negs.samplers.base import NegativeSampler

WINDOW = 5  # epochs of snapshots behind the std (the paper's and the code's)
CHUNK_FLOATS = 1 << 24  # users x columns scored at once at an epoch end (64 MB of float32)

MODES = {}  # srns_mode -> class, filled by the subclasses (real.py, synthetic.py)


class SRNSSampler(NegativeSampler):
    """Shared base of the modes. Subclasses set ``mode`` and write ``_sample``, ``_draw_memory`` and the
    ``_mode_*`` hooks; instantiating this class returns an instance of the configured mode's class."""

    name = "srns"
    mode = None
    model_aware = True
    needs_user_scores = True  # every user's scores at each epoch end (the snapshots)
    shares = ("target",)  # its memory is per user
    serves = (ModelType.GENERAL,)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.mode is not None:
            MODES[cls.mode] = cls

    def __new__(cls, config=None, context=None):
        if cls is SRNSSampler and config is not None:
            cls = SRNSSampler.for_config(config)
        return super().__new__(cls)

    @classmethod
    def for_config(cls, config):
        """The class of the configured ``srns_mode``."""
        mode = config["srns_mode"]
        if mode not in MODES:
            raise ConfigError(f"config key 'srns_mode' = '{mode}' is not available; allowed: "
                              + "|".join(sorted(MODES)))
        return MODES[mode]

    # --- checks
    @classmethod
    def check_config(cls, config):
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
        cls.for_config(config).check_mode_config(config)

    @classmethod
    def check_mode_config(cls, config):
        """The mode's own refusals (after the shared ones)."""

    def __init__(self, config, context):
        super().__init__(config, context)
        self.pool_size = int(config["srns_pool_size"])
        self.s1, self.s2 = int(config["srns_s1"]), int(config["srns_s2"])
        self.tau = float(config["srns_tau"])
        self.alpha = float(config["srns_alpha"])
        self.warmup = int(config["srns_warmup"])
        self.device = context.device
        self.item_dtype = torch.int32 if context.n_items < 2 ** 31 else torch.int64
        self.storage, self.columns = self._storage()
        # [users, columns, ring slot]: the five snapshots of one (user, column) sit together
        self.snaps = torch.zeros((context.n_users, self.columns, WINDOW), device=self.device)
        self.memory = torch.zeros((context.n_users, self.s1), dtype=torch.long, device=self.device)
        self._touched = torch.zeros(context.n_users, dtype=torch.bool, device=self.device)  # trained this epoch
        self.taken = 0  # snapshots taken so far (0: before training, 1 + e: at the end of epoch e)
        self.ready = False  # memory (and pools) drawn

    def _storage(self):
        """("catalog", n_items): a snapshot column is an item id; real mode may store pool slots instead."""
        return "catalog", self.context.n_items

    # --- hooks
    def on_train_start(self, user_scores):
        self._ensure_ready()
        if self.taken == 0:  # not when resuming from a checkpoint
            self._write_snapshot(user_scores())

    def on_epoch_end(self, epoch, user_scores):
        self._ensure_ready()
        # several processes: each refreshed the memory of the users in its shard; every user keeps the rows
        # (memory, pool cursor) of the lowest-ranked process that trained it this epoch, so that all processes
        # agree (pools and snapshots already do: the pools are rank 0's, the weights are DDP's)
        distributed.merge_rows(self._touched, *self._per_user_rows())
        self._touched.zero_()
        self._mode_epoch_end()
        self._write_snapshot(user_scores())

    def _per_user_rows(self):
        """Per-user tables a process changes while training its shard of users."""
        return (self.memory,)

    def _mode_epoch_end(self):
        """What the mode does at an epoch end before the snapshot."""

    def set_false_negatives(self, items_per_user):
        raise ConfigError("set_false_negatives needs config key 'srns_mode' = 'synthetic' (section 4.2); "
                          f"srns_mode '{self.mode}' keeps pool indices in memory")

    # --- sampling
    def sample(self, targets):
        self._ensure_ready()
        self._touched[targets.users] = True
        return self._sample(targets)

    def alpha_t(self):
        """alpha * min(t / T0, 1) (the warm start of section 3.3)."""
        if self.warmup <= 0:
            return self.alpha
        return self.alpha * min(self.epoch / self.warmup, 1.0)

    def _select(self, difficulty, std):
        """Columns of the top K of ``difficulty + alpha_t * std`` (std alone for a negative alpha)."""
        key = std if self.alpha < 0 else difficulty + self.alpha_t() * std
        if self.num == 1:
            return key.argmax(dim=1, keepdim=True)  # the first of tied maxima
        return key.topk(self.num, dim=1).indices

    def _ensure_ready(self):
        if self.ready:
            return
        self._draw_memory()
        self.ready = True

    # --- snapshots
    def _write_snapshot(self, scorer):
        """Score every user's columns into ring slot ``taken % 5``, in chunks of users."""
        slot = self.taken % WINDOW
        users = self.context.n_users
        step = max(1, CHUNK_FLOATS // self._snapshot_width())
        for a in range(0, users, step):
            self._write_snapshot_chunk(scorer, a, min(users, a + step), slot)
        self.taken += 1

    def _snapshot_width(self):
        return self.context.n_items

    def _write_snapshot_chunk(self, scorer, a, b, slot):
        self.snaps[a:b, :, slot] = scorer.score_catalog(slice(a, b))  # [b - a, items]

    # --- statistics
    def reset_statistics(self):
        super().reset_statistics()
        self._srns_stats = {"chosen": 0, "chosen_hardness": 0.0, "chosen_std": 0.0, "fresh": 0,
                            "fresh_hardness": 0.0, "fn_chosen": 0, "rows": 0}

    def reduce_statistics(self):
        super().reduce_statistics()
        self._srns_stats = distributed.sum_dict(self._srns_stats)

    def statistics(self):
        """Besides the base statistics: alpha_t, the mean std of the chosen negatives and the mode's own
        (``_mode_statistics``)."""
        out = super().statistics()
        s = self._srns_stats
        out["alpha_t"] = self.alpha_t()
        out["chosen_std"] = s["chosen_std"] / max(s["chosen"], 1)
        out.update(self._mode_statistics(s))
        return out

    def _mode_statistics(self, s):
        return {}

    # --- checkpoints
    def state_dict(self):
        state = super().state_dict()
        state.update(mode=self.mode, storage=self.storage, taken=self.taken, ready=self.ready,
                     memory=self.memory.clone(), snaps=self.snaps.clone())
        state.update({k: None if v is None else v.clone() if torch.is_tensor(v) else v
                      for k, v in self._mode_state().items()})
        return state

    def _mode_state(self):
        return {}

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
        self.taken, self.ready = state["taken"], state["ready"]
        self.memory.copy_(state["memory"])
        self.snaps.copy_(state["snaps"])
        self._load_mode_state(state)

    def _load_mode_state(self, state):
        pass


def population_std(x):
    """Standard deviation over the last dim with divisor n (numpy's default, the code's)."""
    return (x - x.mean(dim=-1, keepdim=True)).square_().mean(dim=-1).sqrt_()


def sample_without_replacement(logits, invalid, k):
    """k column indices per row drawn without replacement from softmax(logits) over the valid columns
    (Gumbel top-k: the same law as drawing one at a time and renormalising); invalid columns come last."""
    uniform = torch.rand_like(logits).clamp_(min=1e-20)
    keys = (logits - torch.log(-torch.log(uniform))).masked_fill(invalid, float("-inf"))
    return keys.topk(k, dim=1).indices
