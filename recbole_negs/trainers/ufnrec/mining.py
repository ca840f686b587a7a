"""UFNRec's false-negative mining (Liu et al. 2022, section 3.2, and the authors' code): per training target,
keyed by (user, position in the user's training sequence) so that a key means the same target in every epoch,

- the *record*: the negatives placed at the target's last visit whose logit beat the positive's and whose
  label was not reversed; at the next visit they fill the first negative slots, uniform draws fill the rest;
- the *counts* of placements made from the record, per (user, position, item), never reset (an item keeps its
  count after it leaves the record). A placement from the record whose count exceeds m is mined: its label is
  reversed. Uniform draws are never counted and never mined, whatever the item's count.

The variants of the paper's ablations (Tables 3 and 4) change only what a mined placement does; see
``Mined`` and docs/ufnrec.md.
"""

from dataclasses import dataclass
from typing import Optional

import torch

from recbole_negs import distributed
from recbole_negs.trainers.ufnrec.sparse_sums import SparseSums


@dataclass
class Placement:
    """One visit's negatives for N targets, and what mining decided about each slot."""

    ids: torch.Tensor  # [N, K]
    from_record: torch.Tensor  # [N, K] bool
    mined: torch.Tensor  # [N, K] bool: a false negative by the variant's rule
    label: torch.Tensor  # [N, K] float: 1 where the label is reversed
    weight: torch.Tensor  # [N, K] float: 0 where the entry leaves the loss (removal)
    consistency: torch.Tensor  # [N, K] bool: entries of the consistency loss
    keys: Optional[torch.Tensor] = None  # [N] the targets' keys (TargetIndex), set by the trainer
    # what NegsModel.step reads of any negatives: a placement is per target, never shared
    shared = None
    valid = None
    log_q = None


class FalseNegativeMiner:
    def __init__(self, config, n_items, n_targets, device):
        self.variant = config["ufn_variant"]
        self.m = config["ufn_reverse_threshold"]
        self.std_threshold = config["ufn_variance_threshold"]
        self.n_items = n_items
        self.num = config["neg_sample_num"]
        # [targets, K] recorded item ids packed at the front, 0 = empty slot: 4 bytes per (target, slot)
        self.record = torch.zeros((n_targets, self.num), dtype=torch.int32, device=device)
        # per (target, item) placed from the record: [count, sum x, sum x^2], x = sigmoid(s_item - s_pos)
        self.placements = SparseSums(columns=3, device=device)
        self._epoch_visits = []
        self.reset_statistics()

    # --- one visit
    def place(self, keys, uniform_ids):
        """The negatives of a visit: recorded items first, uniform draws in the other slots; counts the
        placements from the record and marks the mined ones."""
        recorded = self.record[keys].long()
        from_record = recorded > 0
        ids = torch.where(from_record, recorded, uniform_ids)
        before = self.placements.get(self._pairs(keys, ids)[from_record])  # [P, 3], earlier placements' sums
        mined = torch.zeros_like(from_record)
        if self.variant == "variance":
            mined[from_record] = self._low_variance(before)
        else:
            mined[from_record] = before[:, 0] + 1 > self.m  # this placement is the (count + 1)-th
        return self._decide(ids, from_record, mined)

    def _pairs(self, keys, ids):
        """The sparse map's key of each (target, item): key * n_items + item."""
        return keys[:, None] * self.n_items + ids

    def _low_variance(self, before):
        """Variance-based mining in the spirit of SRNS (the paper defines no threshold; docs/ufnrec.md):
        an item placed from the record at least m times before, scored above the positive on average
        (mean x > 0.5) with a standard deviation of x below ``ufn_variance_threshold``."""
        count = before[:, 0].clamp_min(1)
        mean = before[:, 1] / count
        std = (before[:, 2] / count - mean ** 2).clamp_min(0).sqrt()
        return (before[:, 0] >= self.m) & (mean > 0.5) & (std < self.std_threshold)

    def _decide(self, ids, from_record, mined):
        reverse = self.variant in ("ufn", "fmr", "variance")
        label = (mined & reverse).float()
        weight = (~(mined & (self.variant == "removal"))).float()
        consistency = mined & (self.variant in ("ufn", "fcr", "variance"))
        return Placement(ids, from_record, mined, label, weight, consistency)

    def update(self, keys, placement, pos_logits, neg_logits):
        """After scoring: count this visit's placements from the record and record the negatives that beat
        the positive, except those whose label was reversed or that were removed (they come back only by
        beating the positive again as a uniform draw)."""
        x = torch.sigmoid(neg_logits - pos_logits[:, None])[placement.from_record]
        sums = torch.stack([torch.ones_like(x), x, x * x], dim=1)
        pairs = self._pairs(keys, placement.ids)[placement.from_record]
        self.placements.add(pairs, sums)
        if distributed.active():  # this process's visits, for the other processes at the epoch end
            self._epoch_visits.append((keys, pairs, sums))
        dropped = (placement.label > 0) | (placement.weight == 0)
        keep = (neg_logits > pos_logits[:, None]) & ~same_item_as(placement.ids, dropped)
        self.record[keys] = pack_distinct(torch.where(keep, placement.ids, 0), self.num).int()
        stats = self._stats
        stats["recorded"] += int((self.record[keys] > 0).sum())
        stats["from_record"] += int(placement.from_record.sum())
        stats["mined"] += int(placement.mined.sum())
        stats["reversed"] += int(placement.label.sum())
        stats["removed"] += int((placement.weight == 0).sum())

    def sync(self):
        """Multi-process training: each process visited its own shard of targets this epoch; every process
        applies every process's record rows (in rank order, its own included, so that all end equal) and the
        others' placement counts. A no-op in a single process."""
        if not distributed.active():
            return
        if self._epoch_visits:
            keys, pairs, sums = (torch.cat(part) for part in zip(*self._epoch_visits))
        else:
            keys = pairs = torch.zeros(0, dtype=torch.long, device=self.record.device)
            sums = torch.zeros((0, 3), device=self.record.device)
        mine = (keys.cpu(), self.record[keys].cpu(), pairs.cpu(), sums.cpu())
        everyone = distributed.gather(mine)
        me = torch.distributed.get_rank()
        for rank, (their_keys, rows, their_pairs, their_sums) in enumerate(everyone):
            device = self.record.device
            self.record[their_keys.to(device)] = rows.to(device)
            if rank != me:
                self.placements.add(their_pairs.to(device), their_sums.to(device))
        self._epoch_visits = []

    # --- statistics and state
    def reset_statistics(self):
        self._stats = {"recorded": 0, "from_record": 0, "mined": 0, "reversed": 0, "removed": 0}

    def statistics(self):
        return {**{k: float(v) for k, v in self._stats.items()},
                "state_mb": (self.record.numel() * 4 + self.placements.nbytes()) / 2 ** 20}

    def state_dict(self):
        return {"record": self.record.clone(), "placements": self.placements.state_dict()}

    def load_state_dict(self, state):
        self.record.copy_(state["record"])
        self.placements.load_state_dict(state["placements"])


def same_item_as(ids, marked):
    """[N, K] bool: the slot holds an item that is marked in some slot of its row (a uniform draw can place
    again an item that was reversed from the record at the same visit): one searchsorted over the sorted
    (row, item) keys of the marked slots."""
    keys = torch.arange(len(ids), device=ids.device)[:, None] * (int(ids.max()) + 1 if ids.numel() else 1) + ids
    marked_keys = keys[marked].sort().values
    if len(marked_keys) == 0:
        return marked.clone()
    index = torch.searchsorted(marked_keys, keys).clamp_(max=len(marked_keys) - 1)
    return marked_keys[index] == keys


def pack_distinct(items, width):
    """Per row: the distinct non-zero ids of ``items`` moved to the front, zeros after, ``width`` columns."""
    ordered = items.sort(dim=1, descending=True).values  # zeros last
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    ordered = ordered.masked_fill(repeat, 0).sort(dim=1, descending=True).values
    return ordered[:, :width]
