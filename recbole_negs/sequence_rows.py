"""All-position training rows for sequential models: one row per user sequence (or window of it), a target at
every position, as the SASRec, GenNi and UFNRec papers train.

RecBole trains sequential models on one row per prefix and re-encodes each prefix; with all-position rows each
sequence is encoded once per epoch and every time step gets its own negatives. The rows are rebuilt from
RecBole's *training* split only (its prefix rows), so validation and test items are never inputs or targets.
"""

from logging import getLogger

import numpy as np
import torch

from recbole.data.dataloader.abstract_dataloader import AbstractDataLoader
from recbole.data.interaction import Interaction

TARGET_SEQ = "negs_target_list"  # [L] the item each position must predict (0 = padding); causal models only
WINDOW_START = "negs_window_start"  # index in the user's training sequence of the row's first input item


def training_sequences(train_dataset):
    """Each user's training sequence, in time order, rebuilt from RecBole's prefix rows of the training split:
    the first row's history followed by every row's target. Returns (users, indptr, items) as numpy arrays."""
    inter = train_dataset.inter_feat
    uid_field, iid_field = train_dataset.uid_field, train_dataset.iid_field
    item_list_field = iid_field + train_dataset.config["LIST_SUFFIX"]
    length_field = train_dataset.config["ITEM_LIST_LENGTH_FIELD"]
    users = inter[uid_field].numpy()
    targets = inter[iid_field].numpy()
    lists, lengths = inter[item_list_field].numpy(), inter[length_field].numpy()

    order = np.argsort(users, kind="stable")  # RecBole keeps each user's rows in time order; keep it
    users, targets, lists, lengths = users[order], targets[order], lists[order], lengths[order]
    first = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, dtype=np.int64)
    row_counts = np.diff(np.r_[first, len(users)])
    head_lengths = lengths[first]
    seq_lengths = head_lengths + row_counts
    indptr = np.r_[0, np.cumsum(seq_lengths)].astype(np.int64)
    items = np.zeros(indptr[-1], dtype=np.int64)
    # the first row's history: items[indptr[u] : indptr[u] + head_len]
    head_pos = indptr[:-1][:, None] + np.arange(lists.shape[1])[None, :]
    head_mask = np.arange(lists.shape[1])[None, :] < head_lengths[:, None]
    items[head_pos[head_mask]] = lists[first][head_mask]
    # then the targets of all the user's rows, in order
    row_user = np.repeat(np.arange(len(first)), row_counts)
    rank = np.arange(len(users)) - first[row_user]
    items[indptr[row_user] + head_lengths[row_user] + rank] = targets
    return users[first], indptr, items


def window_bounds(seq_lengths, max_len, shift, policy):
    """(owner, start, length) of every row. A causal row (shift 1) has inputs [start, start+length) and
    targets shifted by one; a masked row (shift 0) covers items [start, start+length). Windows are laid from
    the end of the sequence backwards, so the most recent items always have the longest context."""
    span = seq_lengths - shift  # number of targets (causal) or items (masked)
    per_user = np.ceil(span / max_len) if policy == "windows" else np.ones_like(span)
    n_windows = np.where(span > 0, per_user, 0).astype(np.int64)
    owner = np.repeat(np.arange(len(span)), n_windows)
    back = np.arange(len(owner)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)  # 0 = last window
    end = span[owner] - back * max_len  # exclusive end of the inputs
    start = np.maximum(end - max_len, 0)
    return owner, start, end - start


def build_rows(train_dataset, config, shift):
    """The all-position rows as an Interaction: user id, input item list, its length, the target list
    (causal models) and the window start."""
    users, indptr, items = training_sequences(train_dataset)
    max_len = config["MAX_ITEM_LIST_LENGTH"]
    owner, start, length = window_bounds(np.diff(indptr), max_len, shift, config["seq_long_policy"])
    steps = np.arange(max_len)[None, :]
    valid = steps < length[:, None]
    base = indptr[owner][:, None] + start[:, None] + steps
    inputs = np.where(valid, items[np.where(valid, base, 0)], 0)
    fields = {
        train_dataset.uid_field: torch.from_numpy(users[owner]),
        train_dataset.iid_field + config["LIST_SUFFIX"]: torch.from_numpy(inputs),
        config["ITEM_LIST_LENGTH_FIELD"]: torch.from_numpy(length.astype(np.int64)),
        WINDOW_START: torch.from_numpy(start.astype(np.int64)),
    }
    if shift:
        fields[TARGET_SEQ] = torch.from_numpy(np.where(valid, items[np.where(valid, base + 1, 0)], 0))
    rows = Interaction(fields)
    return rows, int(length.sum())


def rows_per_batch(config, rows, targets):
    """Rows in one batch. ``seq_batch_size_unit: targets`` reads ``train_batch_size`` as targets, as RecBole's
    prefix rows do (one target each): train_batch_size / (mean targets per row) rows, so that an epoch makes
    about targets / train_batch_size optimizer steps, RecBole's count. ``rows`` reads it as rows."""
    size = config["train_batch_size"]
    if config["seq_batch_size_unit"] == "rows" or targets == 0:
        return size
    return max(1, round(size * rows / targets))


class SequenceRowsDataLoader(AbstractDataLoader):
    """Iterates all-position rows, ``rows_per_batch`` at a time. The RecBole training dataset stays attached
    (``_dataset``) for everything else that reads it."""

    def __init__(self, config, train_dataset, shift, shuffle=True):
        self.rows, self.targets_per_epoch = build_rows(train_dataset, config, shift)
        self.sample_size = len(self.rows)
        super().__init__(config, train_dataset, None, shuffle=shuffle)
        steps = -(-len(self.rows) // self.step)
        getLogger().info(
            f"recbole-negs: all-position rows ({config['seq_long_policy']}): {len(self.rows)} rows, "
            f"{self.targets_per_epoch} training targets, {self.step} rows per batch (train_batch_size "
            f"{config['train_batch_size']} counts {config['seq_batch_size_unit']}), {steps} steps per epoch")

    def _init_batch_size_and_step(self):
        self.step = rows_per_batch(self.config, len(self.rows), self.targets_per_epoch)
        self.set_batch_size(self.step)

    def collate_fn(self, index):
        rows = self.rows[torch.as_tensor(np.asarray(index), dtype=torch.long)]
        return self.transform(self._dataset, rows)
