"""All-position rows: built from the training split only, every training target covered (windows) or the
papers' last window, and negatives shaped [B, K] / [B, L, K] / [B, M, K], never repeated copies of the batch."""

import numpy as np
import pytest
import torch

from recbole_negs.sequence_rows import TARGET_SEQ, WINDOW_START, build_rows, training_sequences, window_bounds

from conftest import build


@pytest.fixture(scope="module")
def sasrec():
    return build("SASRec", sampler="uniform", neg_sample_num=3)


def _by_user(data, field):
    """user -> item of the user's evaluation row (leave-one-out: one per user)."""
    inter = data._dataset.inter_feat
    return dict(zip(inter[data._dataset.uid_field].tolist(), inter[field].tolist()))


def test_rows_hold_only_training_items(sasrec):
    config, model, train_data, valid_data, test_data, _ = sasrec
    iid = config["ITEM_ID_FIELD"]
    users, indptr, items = training_sequences(train_data._dataset)
    train_items = {int(u): set(items[indptr[k]:indptr[k + 1]].tolist()) for k, u in enumerate(users)}
    held_out = {}
    for data in (valid_data, test_data):
        for user, item in _by_user(data, iid).items():
            held_out.setdefault(user, set()).add(item)
    rows = train_data.rows
    seen_inputs_and_targets = 0
    for row in range(len(rows)):
        user = int(rows[config["USER_ID_FIELD"]][row])
        used = set(rows[iid + config["LIST_SUFFIX"]][row].tolist()) | set(rows[TARGET_SEQ][row].tolist())
        used.discard(0)
        assert used <= train_items[user]
        assert not (used & held_out.get(user, set())), f"user {user}: a held-out item is a training input/target"
        seen_inputs_and_targets += len(used)
    assert seen_inputs_and_targets > 10000  # the check really looked at the data


def test_windows_cover_every_training_target_once(sasrec):
    config, _, train_data, *_ = sasrec
    users, indptr, items = training_sequences(train_data._dataset)
    lengths = np.diff(indptr)
    rows = train_data.rows
    assert train_data.targets_per_epoch == int((lengths - 1).sum())  # every item after the first is a target
    # the (user, position) of every target appears exactly once
    start, targets = rows[WINDOW_START].numpy(), rows[TARGET_SEQ].numpy()
    owner = np.searchsorted(users, rows[config["USER_ID_FIELD"]].numpy())
    positions, wrong = set(), 0
    for o, s, row in zip(owner, start, targets):
        for t in np.flatnonzero(row):
            positions.add((o, s + 1 + t))
            wrong += int(items[indptr[o] + s + 1 + t] != row[t])  # the target is the item at that position
    assert len(positions) == train_data.targets_per_epoch and wrong == 0


def test_long_policy_last_keeps_only_the_latest_window():
    lengths = np.array([3, 25, 50])
    owner, start, length = window_bounds(lengths, 20, 1, "last")
    assert owner.tolist() == [0, 1, 2] and (start + length).tolist() == [2, 24, 49]
    owner, start, length = window_bounds(lengths, 20, 1, "windows")
    assert owner.tolist() == [0, 1, 1, 2, 2, 2] and int(length.sum()) == int((lengths - 1).sum())


def test_negatives_have_the_batch_layout(sasrec):
    config, model, train_data, *_ = sasrec
    batch = next(iter(train_data))
    negatives = model.sample_negatives(batch)
    b, l = batch[TARGET_SEQ].shape
    assert negatives.shape == (b, l, 3)
    has_target = batch[TARGET_SEQ] > 0
    assert bool((negatives[has_target] > 0).all()) and bool((negatives[~has_target] == 0).all())


@pytest.mark.parametrize("name,extra", [("BPR", {}), ("BERT4Rec", {}), ("SASRec", {"seq_train_mode": "prefix"})])
def test_negatives_shape_for_other_layouts(name, extra):
    config, model, train_data, *_ = build(name, sampler="uniform", neg_sample_num=4, **extra)
    batch = next(iter(train_data))
    negatives = model.sample_negatives(batch)
    if name == "BERT4Rec":
        masked = batch[model.model.POS_ITEMS]
        assert negatives.shape == masked.shape + (4,)
        assert bool((negatives[masked > 0] > 0).all()) and bool((negatives[masked == 0] == 0).all())
    else:
        assert negatives.shape == (len(batch), 4)


def test_history_exclusion_in_all_position_rows(sasrec):
    """A sequential user's training items are never negatives (RecBole's own sequential sampler only drops
    the target)."""
    config, model, train_data, *_ = sasrec
    history = model.sampler.context.history
    torch.manual_seed(0)
    for batch in train_data:
        negatives = model.sample_negatives(batch)
        users = batch[config["USER_ID_FIELD"]][:, None, None].expand_as(negatives)
        real = negatives > 0
        assert not bool(history.contains(users[real], negatives[real][:, None]).any())


def test_build_rows_is_deterministic(sasrec):
    config, _, train_data, *_ = sasrec
    first, n_first = build_rows(train_data._dataset, config, 1)
    second, n_second = build_rows(train_data._dataset, config, 1)
    assert n_first == n_second and torch.equal(first[TARGET_SEQ], second[TARGET_SEQ])
