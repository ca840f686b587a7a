"""UFNRec: false-negative mining per (user, position) target, label reversing, the mean teacher, the loss, the
warm-up and early stopping, the ablation variants, state in checkpoints, and the sparse count map."""

import math
import os
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from recbole.utils import get_model, init_seed

import recbole_negs
from recbole_negs.backbones import build_backbone
from recbole_negs.trainers.checkpoint import load_checkpoint
from recbole_negs.errors import ConfigError
from recbole_negs.trainers.ufnrec.teacher import MeanTeacher
from recbole_negs.quick_start import build_training, load_data_and_model
from recbole_negs.samplers.base import Negatives
from recbole_negs.sequence_rows import training_sequences
from recbole_negs.trainers.ufnrec.sparse_sums import SparseSums
from recbole_negs.losses import entry_bce
from recbole_negs.trainers.ufnrec.mining import FalseNegativeMiner

from conftest import SMALL, build, small_config

N_ITEMS, N_TARGETS, K = 20, 6, 3


# --------------------------------------------------------------------------- miner helpers
def make_miner(variant="ufn", m=2, std=0.05, num=K):
    config = {"ufn_variant": variant, "ufn_reverse_threshold": m, "ufn_variance_threshold": std,
              "neg_sample_num": num}
    return FalseNegativeMiner(config, n_items=N_ITEMS, n_targets=N_TARGETS, device="cpu")


def visit(miner, keys, uniform, beats, logits=None):
    """One visit of the targets ``keys``: ``uniform`` [N, K] draws; the items in ``beats[i]`` score 1 against
    a positive scoring 0, the others -1 (or ``logits[i][item]`` when given)."""
    keys = torch.tensor(keys, dtype=torch.long)
    placement = miner.place(keys, torch.tensor(uniform, dtype=torch.long))
    neg = torch.full(placement.ids.shape, -1.0)
    for row, items in enumerate(beats):
        for col, item in enumerate(placement.ids[row].tolist()):
            if logits is not None and item in logits[row]:
                neg[row, col] = logits[row][item]
            elif item in items:
                neg[row, col] = 1.0
    miner.update(keys, placement, torch.zeros(len(keys)), neg)
    return placement


def count(miner, key, item):
    """Placements from the record of ``item`` for the target ``key`` so far."""
    return float(miner.placements.get(torch.tensor([key * N_ITEMS + item]))[0, 0])


def recorded(miner, key):
    return {int(i) for i in miner.record[key] if int(i) > 0}


def slot(placement, row, item):
    hits = (placement.ids[row] == item).nonzero().flatten().tolist()
    assert len(hits) == 1, f"item {item} placed {len(hits)} times in row {row}: {placement.ids[row].tolist()}"
    return hits[0]


def masks(placement, row, item):
    col = slot(placement, row, item)
    return (bool(placement.from_record[row, col]), float(placement.label[row, col]),
            float(placement.weight[row, col]), bool(placement.consistency[row, col]))


A, B = 1, 4  # two targets (user, position) of the hand-made cases


# --------------------------------------------------------------------------- 1-3: the count rule
def test_reversed_exactly_on_the_m_plus_first_placement_from_the_record_per_key():
    miner = make_miner(m=2)
    # visit 1: 5 is a uniform draw for A and beats the positive; B draws other items
    p = visit(miner, [A, B], [[5, 6, 7], [8, 9, 10]], [{5}, set()])
    assert not p.from_record.any() and count(miner, A, 5) == 0, "uniform draws are never counted"
    assert recorded(miner, A) == {5} and recorded(miner, B) == set()
    # visit 2: 5 comes back from A's record (1st placement); B draws 5 uniformly and it beats its positive
    p = visit(miner, [A, B], [[11, 12, 13], [5, 12, 13]], [{5}, {5}])
    assert masks(p, 0, 5) == (True, 0.0, 1.0, False) and masks(p, 1, 5) == (False, 0.0, 1.0, False)
    assert p.ids[0, 0] == 5, "recorded items fill the first slots"
    assert (count(miner, A, 5), count(miner, B, 5)) == (1, 0)
    # visit 3: A's 2nd placement (not reversed), B's 1st
    p = visit(miner, [A, B], [[11, 12, 13], [11, 12, 13]], [{5}, {5}])
    assert masks(p, 0, 5)[1] == 0.0 and masks(p, 1, 5)[1] == 0.0
    # visit 4: A's 3rd = (m+1)-th placement is reversed; B's 2nd is not
    p = visit(miner, [A, B], [[11, 12, 13], [11, 12, 13]], [{5}, {5}])
    assert masks(p, 0, 5) == (True, 1.0, 1.0, True), "the (m+1)-th placement from the record is reversed"
    assert masks(p, 1, 5) == (True, 0.0, 1.0, False), "another (user, position) key keeps its own count"
    assert (count(miner, A, 5), count(miner, B, 5)) == (3, 2)
    # visit 5: B's 3rd placement is reversed too
    p = visit(miner, [B], [[11, 12, 13]], [{5}])
    assert masks(p, 0, 5)[1] == 1.0


def test_count_continues_after_the_item_left_the_record():
    miner = make_miner(m=2)
    visit(miner, [A], [[5, 6, 7]], [{5}])  # uniform draw beats the positive: recorded, not counted
    p = visit(miner, [A], [[8, 9, 10]], [{5}])  # 1st placement from the record
    assert masks(p, 0, 5)[:2] == (True, 0.0)
    p = visit(miner, [A], [[8, 9, 10]], [set()])  # 2nd placement; fails to beat the positive
    assert masks(p, 0, 5)[:2] == (True, 0.0)
    assert recorded(miner, A) == set() and count(miner, A, 5) == 2, "it left the record, keeping its count"
    p = visit(miner, [A], [[8, 9, 10]], [set()])  # absent from this visit
    assert 5 not in p.ids.tolist()[0] and not p.from_record.any()
    p = visit(miner, [A], [[9, 5, 10]], [{5}])  # comes back as a uniform draw that beats the positive
    assert masks(p, 0, 5) == (False, 0.0, 1.0, False)
    assert recorded(miner, A) == {5} and count(miner, A, 5) == 2
    p = visit(miner, [A], [[8, 9, 10]], [{5}])  # 3rd placement from the record: reversed
    assert masks(p, 0, 5) == (True, 1.0, 1.0, True)
    assert count(miner, A, 5) == 3


def _item_with_count_above_m(miner, key=A, item=5):
    """Drive ``item`` to count m + 1 for ``key`` (reversed at the last visit) and return the miner."""
    visit(miner, [key], [[item, 6, 7]], [{item}])
    for _ in range(miner.m + 1):
        visit(miner, [key], [[8, 9, 10]], [{item}])
    assert count(miner, key, item) == miner.m + 1
    return miner


def test_uniform_draw_of_an_item_above_m_is_neither_reversed_nor_counted():
    miner = _item_with_count_above_m(make_miner(m=2))
    assert recorded(miner, A) == set()
    p = visit(miner, [A], [[8, 5, 9]], [{5}])
    assert masks(p, 0, 5) == (False, 0.0, 1.0, False)
    assert not p.mined.any() and count(miner, A, 5) == 3, "uniform draws are never counted"
    assert recorded(miner, A) == {5}, "outscoring the positive as a uniform draw brings it back"
    p = visit(miner, [A], [[8, 9, 10]], [{5}])
    assert masks(p, 0, 5) == (True, 1.0, 1.0, True), "from the record again, its count is above m"
    assert count(miner, A, 5) == 4


def test_reversed_item_is_not_re_recorded_at_that_visit():
    miner = make_miner(m=1)
    visit(miner, [A], [[5, 6, 7]], [{5, 6}])
    visit(miner, [A], [[11, 12, 13]], [{5, 6}])  # 1st placements of 5 and 6
    p = visit(miner, [A], [[11, 12, 13]], [{5, 6, 13}])  # 2nd: both reversed; 13 is a uniform draw beating
    assert masks(p, 0, 5)[1] == 1.0 and masks(p, 0, 6)[1] == 1.0
    assert recorded(miner, A) == {13}, "reversed items leave the record even though they beat the positive"


def test_reversed_item_is_not_re_recorded_through_a_duplicate_uniform_draw():
    """Spec: a reversed item is not re-recorded at that visit. Here the uniform draw of the free slot happens
    to be the reversed item itself (draws do not know the record) and also beats the positive."""
    miner = make_miner(m=1)
    visit(miner, [A], [[5, 6, 7]], [{5, 6}])
    visit(miner, [A], [[11, 12, 13]], [{5, 6}])
    keys, uniform = torch.tensor([A]), torch.tensor([[11, 12, 5]])
    p = miner.place(keys, uniform)
    assert p.ids.tolist() == [[6, 5, 5]] or p.ids.tolist() == [[5, 6, 5]]
    assert p.label[0, :2].tolist() == [1.0, 1.0] and p.label[0, 2] == 0.0, "uniform draws are never reversed"
    miner.update(keys, p, torch.zeros(1), torch.ones(1, K))
    assert 5 not in recorded(miner, A), (
        "item 5 was reversed at this visit (placed from the record) but is back in the record because a "
        f"duplicate uniform draw of it beat the positive; record = {sorted(recorded(miner, A))}")


# --------------------------------------------------------------------------- 4: labels, consistency, BCE
def test_only_reversed_entries_get_label_one_and_the_consistency_term():
    miner = make_miner(m=1)
    visit(miner, [A, B], [[5, 6, 7], [5, 8, 9]], [{5, 6}, {5}])
    visit(miner, [A, B], [[11, 12, 13], [11, 12, 13]], [{5}, {5}])  # A: 5 counted once, 6 dropped
    p = miner.place(torch.tensor([A, B]), torch.tensor([[6, 12, 13], [14, 15, 16]]))
    reversed_ = torch.tensor([[True, False, False], [True, False, False]])
    assert p.ids.tolist() == [[5, 12, 13], [5, 15, 16]]
    assert torch.equal(p.label, reversed_.float())
    assert torch.equal(p.consistency, reversed_)
    assert torch.equal(p.weight, torch.ones(2, K))
    assert torch.equal(p.from_record, reversed_)


def _bce(logit, target):
    s = 1 / (1 + math.exp(-logit))
    return -(target * math.log(s) + (1 - target) * math.log(1 - s))


def test_entry_bce_is_the_mean_over_positive_and_negative_entries():
    pos = torch.tensor([0.3, -1.2])
    neg = torch.tensor([[2.0, -0.5, 0.1], [0.7, 1.5, -2.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    terms = [_bce(p, 1.0) for p in pos.tolist()]
    terms += [_bce(x, y) for row, lab in zip(neg.tolist(), labels.tolist()) for x, y in zip(row, lab)]
    expected = sum(terms) / len(terms)
    assert float(entry_bce(pos, neg, labels, torch.ones_like(neg))) == pytest.approx(expected, rel=1e-6)
    # weight 0 (removal): the entry leaves the sum and the mean
    weights = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    kept = [t for i, t in enumerate(terms) if i != 2]
    assert float(entry_bce(pos, neg, labels, weights)) == pytest.approx(sum(kept) / len(kept), rel=1e-6)


# --------------------------------------------------------------------------- 8: the ablation variants
def _mined_visit(variant):
    """Item 5 placed from A's record with count m (so mined now), item 6 from the record not mined, one
    uniform draw; all three beat the positive."""
    miner = make_miner(variant, m=1)
    visit(miner, [A], [[5, 8, 9]], [{5}])
    visit(miner, [A], [[8, 6, 9]], [{5, 6}])  # 5 from the record (1st placement), 6 a uniform draw
    p = visit(miner, [A], [[11, 12, 13]], [{5, 6, 13}])
    return miner, p


@pytest.mark.parametrize("variant,label,weight,consistency,stays", [
    ("ufn", 1.0, 1.0, True, False),
    ("fmr", 1.0, 1.0, False, False),
    ("fcr", 0.0, 1.0, True, True),
    ("removal", 0.0, 0.0, False, False),
])
def test_variant_changes_only_what_a_mined_placement_does(variant, label, weight, consistency, stays):
    miner, p = _mined_visit(variant)
    assert masks(p, 0, 5) == (True, label, weight, consistency), variant
    assert masks(p, 0, 6) == (True, 0.0, 1.0, False), "a placement from the record below m is untouched"
    assert masks(p, 0, 13) == (False, 0.0, 1.0, False), "a uniform draw is untouched"
    assert bool(p.mined[0, slot(p, 0, 5)]) and int(p.mined.sum()) == 1
    assert recorded(miner, A) == ({5, 6, 13} if stays else {6, 13}), variant
    assert count(miner, A, 5) == 2, "placements from the record are counted in every variant"


def test_removal_entries_leave_the_loss():
    miner, p = _mined_visit("removal")
    pos, neg = torch.tensor([0.0]), torch.tensor([[1.0, 1.0, 1.0]])
    expected = (_bce(0.0, 1.0) + 2 * _bce(1.0, 0.0)) / 3  # the positive and the two other negatives
    assert float(entry_bce(pos, neg, p.label, p.weight)) == pytest.approx(expected, rel=1e-6)


def test_variance_variant_mines_stable_high_scorers_only():
    """Variance variant (docs, keys.py): placed from the record at least m times before, mean of
    x = sigmoid(s - s_pos) above 0.5 and std of x below ufn_variance_threshold; mined entries are treated
    as in ufn (reversed, consistency term)."""
    miner = make_miner("variance", m=2, std=0.05)
    stable, shaky, low = 5, 6, 7
    visit(miner, [A], [[stable, shaky, 8]], [{stable, shaky}])
    # two placements from the record each: stable x = sigmoid(1) twice, shaky sigmoid(3) then sigmoid(0.2)
    visit(miner, [A], [[9, 10, 11]], [{stable, shaky}], logits=[{stable: 1.0, shaky: 3.0}])
    p = visit(miner, [A], [[9, 10, 11]], [{stable, shaky}], logits=[{stable: 1.0, shaky: 0.2}])
    assert not p.mined.any(), "fewer than m placements before"
    p = miner.place(torch.tensor([A]), torch.tensor([[9, 10, 11]]))
    assert masks(p, 0, stable) == (True, 1.0, 1.0, True)
    assert masks(p, 0, shaky) == (True, 0.0, 1.0, False), "std of x above the threshold"
    # stable but below the positive on average (x = sigmoid(-0.2) at both placements from the record)
    miner = make_miner("variance", m=2, std=0.05)
    for _ in range(2):
        visit(miner, [A], [[low, 8, 9]], [{low}])  # a uniform draw that beats the positive: recorded
        visit(miner, [A], [[10, 11, 12]], [set()], logits=[{low: -0.2}])  # from the record, below
    visit(miner, [A], [[low, 8, 9]], [{low}])
    assert count(miner, A, low) == 2 and recorded(miner, A) == {low}
    p = miner.place(torch.tensor([A]), torch.tensor([[10, 11, 12]]))
    assert masks(p, 0, low) == (True, 0.0, 1.0, False), "mean x below 0.5"


# --------------------------------------------------------------------------- 10: SparseSums
def test_sparse_sums_accumulate_repeats_and_return_zero_for_unseen_keys():
    sums = SparseSums(columns=2)
    sums.add(torch.tensor([7, 3, 7, 7]), torch.tensor([[1.0, 2.0], [1.0, 0.5], [1.0, 2.0], [1.0, 2.0]]))
    sums.add(torch.tensor([3, 11]), torch.tensor([[1.0, 1.0], [1.0, 4.0]]))
    got = sums.get(torch.tensor([[7, 3], [11, 5]]))
    assert got.shape == (2, 2, 2)
    assert got.tolist() == [[[3.0, 6.0], [2.0, 1.5]], [[1.0, 4.0], [0.0, 0.0]]]
    assert len(sums) == 3
    assert SparseSums(columns=3).get(torch.tensor([0, 9])).tolist() == [[0.0] * 3] * 2


def test_sparse_sums_match_a_dictionary_over_many_batches():
    gen = torch.Generator().manual_seed(0)
    sums, truth = SparseSums(columns=2), {}
    merged = False
    for _ in range(50):  # 50 x 2000 = 1e5 keys, half of them repeats
        keys = torch.randint(0, 60_000, (2000,), generator=gen) * 7919  # sparse, large keys
        values = torch.randint(0, 5, (2000, 2), generator=gen).float()
        sums.add(keys, values)
        for key, value in zip(keys.tolist(), values.tolist()):
            old = truth.get(key, (0.0, 0.0))
            truth[key] = (old[0] + value[0], old[1] + value[1])
        merged |= len(sums.side_keys) == 0
    assert merged and len(sums.main_keys) > 0, "the test must cover merges of the side table"
    assert len(sums) == len(truth)
    seen = torch.tensor(sorted(truth))
    assert torch.equal(sums.get(seen), torch.tensor([truth[k] for k in seen.tolist()]))
    unseen = torch.tensor([1, 2, 7918, 60_000 * 7919 + 5])
    assert torch.equal(sums.get(unseen), torch.zeros(4, 2))
    restored = SparseSums(columns=2)
    restored.load_state_dict(sums.state_dict())
    assert torch.equal(restored.get(seen), sums.get(seen)) and len(restored) == len(truth)


def test_sparse_sums_state_dict_round_trip_keeps_adding():
    sums = SparseSums(columns=1)
    sums.add(torch.tensor([4, 2]), torch.tensor([[1.0], [2.0]]))
    state = sums.state_dict()
    copy = SparseSums(columns=1)
    copy.load_state_dict(state)
    copy.add(torch.tensor([4, 9]), torch.tensor([[5.0], [1.0]]))
    assert copy.get(torch.tensor([2, 4, 9])).flatten().tolist() == [2.0, 6.0, 1.0]
    assert sums.get(torch.tensor([4])).item() == 1.0
    assert state["values"].flatten().tolist() == [2.0, 1.0], (
        "SparseSums.load_state_dict keeps the given tensors, so adding to the restored map changes the state "
        f"dict it was loaded from: {state['values'].flatten().tolist()}")


def test_miner_state_dict_round_trip():
    miner = make_miner(m=1)
    visit(miner, [A, B], [[5, 6, 7], [5, 8, 9]], [{5, 6}, {8}])
    visit(miner, [A, B], [[11, 12, 13], [11, 12, 13]], [{5}, {8, 12}])
    fresh = make_miner(m=1)
    fresh.load_state_dict(miner.state_dict())
    assert torch.equal(fresh.record, miner.record)
    pairs = torch.arange(N_TARGETS * N_ITEMS)
    assert torch.equal(fresh.placements.get(pairs), miner.placements.get(pairs))
    same = [visit(m_, [A, B], [[14, 15, 16], [14, 15, 16]], [{5}, {8}]) for m_ in (miner, fresh)]
    assert torch.equal(same[0].label, same[1].label) and same[0].label.sum() == 2


# --------------------------------------------------------------------------- 6: the mean teacher (toy)
def test_mean_teacher_is_the_warmed_up_ema_of_the_student():
    torch.manual_seed(0)
    student = torch.nn.Linear(3, 2)
    teacher = MeanTeacher(student, decay=0.9)
    expected = [p.detach().clone() for p in student.parameters()]
    assert all(torch.equal(t, e) for t, e in zip(teacher.model.parameters(), expected)), "a copy at creation"
    for n in range(1, 31):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
        teacher.update(student)
        d = min(0.9, (1 + n) / (10 + n))  # 2/11, 3/12, ... until 0.9
        expected = [d * e + (1 - d) * s.detach() for e, s in zip(expected, student.parameters())]
        for t, e in zip(teacher.model.parameters(), expected):
            assert torch.allclose(t, e, atol=1e-6), n
    assert all(not p.requires_grad for p in teacher.model.parameters())
    assert all(p.requires_grad for p in student.parameters()), "the student is untouched"


# --------------------------------------------------------------------------- the SASRec pipeline
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """SASRec + UFNRec on ml-100k, deterministic (no dropout), mining from the start; tests build fresh
    trainers over its data with ``fresh_trainer``."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ufnrec"))
    try:
        config, _, train_data, valid_data, _, _ = build(
            "SASRec", method="ufnrec", neg_sample_num=K, ufn_warmup_epochs=0, hidden_size=8, inner_size=16,
            hidden_dropout_prob=0.0, attn_dropout_prob=0.0, ufn_teacher_dropout=False, ufn_reverse_threshold=2,
            ufn_lambda=0.7, stopping_step=2, eval_step=1)
        yield config, train_data, valid_data
    finally:
        os.chdir(here)


@contextmanager
def overridden(config, **values):
    old = {key: config[key] for key in values}
    for key, value in values.items():
        config[key] = value
    try:
        yield
    finally:
        for key, value in old.items():
            config[key] = value


def fresh_trainer(pipeline, **overrides):
    config, train_data, _ = pipeline
    with overridden(config, **overrides):
        init_seed(config["seed"], config["reproducibility"])
        model = get_model("SASRec")(config, train_data._dataset).to(config["device"])
        net, rows, trainer = build_training(config, model, train_data)
    return net, rows, trainer


def optimizer_params(trainer):
    return {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}


def test_keys_name_the_target_in_the_users_training_sequence(pipeline, in_tmp):
    net, rows, trainer = fresh_trainer(pipeline)
    users, indptr, items = training_sequences(rows._dataset)
    start = dict(zip(users.tolist(), indptr[:-1].tolist()))
    end = dict(zip(users.tolist(), indptr[1:].tolist()))
    seen = set()
    for batch in rows:
        with torch.no_grad():
            enc = net.backbone.encode(batch)
        keys = trainer.targets.keys(enc.users, enc.positions).tolist()
        for user, key, positive in zip(enc.users.tolist(), keys, enc.positives.tolist()):
            assert start[user] <= key < end[user] and items[key] == positive
        seen.update(keys)
    assert max(seen) < trainer.miner.record.shape[0]
    assert len(seen) == rows.targets_per_epoch, "one key per training target"


def test_total_loss_is_twice_mean_bce_plus_lambda_consistency(pipeline, in_tmp):
    config, _, _ = pipeline
    net, rows, trainer = fresh_trainer(pipeline)
    trainer.on_train_start(rows)
    assert trainer.mining and trainer.teacher is not None
    teacher = trainer.teacher.model
    for s, t in zip(net.model.parameters(), teacher.parameters()):
        assert torch.equal(s, t), "the teacher starts as the student's weights"
    torch.manual_seed(1)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.1 * torch.randn_like(p))
    net.train()
    batch = next(iter(rows))
    with torch.no_grad():
        enc = net.backbone.encode(batch)
    n = len(enc.positives)
    keys = trainer.targets.keys(enc.users, enc.positions)
    rng = torch.Generator().manual_seed(3)
    uniform = torch.randint(1, net.model.n_items, (n, K), generator=rng)
    net.sampler.sample = lambda targets: Negatives(uniform.clone(), None)
    # rows 0..39 have two recorded items; the first is at count m (reversed now) for rows 0..19
    m = config["ufn_reverse_threshold"]
    recorded_ids = torch.randint(1, net.model.n_items, (40, 2), generator=rng)
    recorded_ids[:, 1] = torch.where(recorded_ids[:, 1] == recorded_ids[:, 0], recorded_ids[:, 0] % 50 + 1,
                                     recorded_ids[:, 1])
    trainer.miner.record[keys[:40], :2] = recorded_ids.int()
    n_items = trainer.miner.n_items
    trainer.miner.placements.add(keys[:20] * n_items + recorded_ids[:20, 0], torch.tensor([[m, 0.0, 0.0]] * 20))
    trainer.miner.placements.add(keys[20:40] * n_items + recorded_ids[20:40, 0],
                                 torch.tensor([[m - 1, 0.0, 0.0]] * 20))
    ids = uniform.clone()
    ids[:40, :2] = recorded_ids
    labels = torch.zeros(n, K)
    labels[:20, 0] = 1.0

    with torch.no_grad():
        table = net.model.item_embedding.weight
        student_pos = (enc.queries * table[enc.positives]).sum(-1)
        student_neg = torch.einsum("nd,nkd->nk", enc.queries, table[ids])
        teacher.eval()
        t_enc = build_backbone(teacher, config).encode(batch)
        teacher_neg = torch.einsum("nd,nkd->nk", t_enc.queries, teacher.item_embedding.weight[ids])
    logits = torch.cat([student_pos[:, None], student_neg], 1).double()
    targets = torch.cat([torch.ones(n, 1), labels], 1).double()
    basic = -(targets * torch.nn.functional.logsigmoid(logits)
              + (1 - targets) * torch.nn.functional.logsigmoid(-logits)).mean()
    s, t = student_neg[labels > 0].double(), torch.sigmoid(teacher_neg[labels > 0].double())
    consistency = -(t * torch.nn.functional.logsigmoid(s) + (1 - t) * torch.nn.functional.logsigmoid(-s)).mean()
    expected = 2 * basic + config["ufn_lambda"] * consistency
    assert float(consistency) > 0.01

    parts = trainer.calculate_loss(batch)
    total = sum(parts) if isinstance(parts, tuple) else parts
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    assert float(parts[1]) == pytest.approx(config["ufn_lambda"] * float(consistency), rel=1e-5)
    total.backward()
    assert all(p.grad is None for p in teacher.parameters()), "the teacher never gets a gradient"
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.model.parameters())
    assert not optimizer_params(trainer) & {id(p) for p in teacher.parameters()}


def test_teacher_follows_the_ema_after_every_optimizer_step(pipeline, in_tmp):
    config, _, _ = pipeline
    net, rows, trainer = fresh_trainer(pipeline)
    trainer.on_train_start(rows)
    names = [name for name, _ in net.model.named_parameters()]
    expected = {name: p.detach().clone() for name, p in net.model.named_parameters()}
    step = trainer.optimizer.step
    steps = []

    def counted_step(*args, **kwargs):
        out = step(*args, **kwargs)
        steps.append({name: p.detach().clone() for name, p in net.model.named_parameters()})
        return out

    trainer.optimizer.step = counted_step
    trainer._train_epoch(rows, 0)
    assert len(steps) == len(rows) and trainer.teacher.updates == len(rows)
    for n, student in enumerate(steps, start=1):
        d = min(config["ufn_ema_decay"], (1 + n) / (10 + n))
        expected = {name: d * expected[name] + (1 - d) * student[name] for name in names}
    for name, p in trainer.teacher.model.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-6), name
        assert not p.requires_grad and p.grad is None
    assert not optimizer_params(trainer) & {id(p) for p in trainer.teacher.model.parameters()}


# --------------------------------------------------------------------------- 7: warm-up and early stopping
def drive_fit(trainer, train_data, valid_data, losses, scores, epochs):
    """fit() with the training and validation epochs replaced by the given loss and score sequences."""
    trained = []

    def train_epoch(train_data, epoch_idx, loss_func=None, show_progress=False):
        trained.append(epoch_idx)
        return losses[epoch_idx]

    trainer._train_epoch = train_epoch
    trainer._valid_epoch = lambda valid_data, show_progress=False: (scores[len(trained) - 1], {"s": 0.0})
    trainer.epochs = epochs
    trainer.fit(train_data, valid_data, saved=False, verbose=False)
    return trained


def test_fixed_warmup_starts_mining_and_the_teacher_after_n_epochs(pipeline, in_tmp):
    net, rows, trainer = fresh_trainer(pipeline, ufn_warmup_epochs=2)
    trainer.on_train_start(rows)
    assert not trainer.mining and trainer.teacher is None
    trainer.train_loss_dict[0] = 1.0
    trainer.on_epoch_end(0)
    assert not trainer.mining
    with torch.no_grad():
        for p in net.model.parameters():
            p.add_(0.5)
    trainer.train_loss_dict[1] = 1.0
    trainer.on_epoch_end(1)
    assert trainer.mining and trainer.mining_since == 2
    for s, t in zip(net.model.parameters(), trainer.teacher.model.parameters()):
        assert torch.equal(s, t), "the teacher is created from the student's weights when mining starts"


def test_early_stopping_waits_for_the_warmup_and_a_full_stopping_step(pipeline, in_tmp):
    config, _, valid_data = pipeline
    # warm-up 4 epochs, stopping_step 2: RecBole would stop at epoch 3 (no improvement after epoch 0)
    _, rows, trainer = fresh_trainer(pipeline, ufn_warmup_epochs=4)
    scores = [1.0 - 0.01 * e for e in range(20)]
    trained = drive_fit(trainer, rows, valid_data, [1.0] * 20, scores, epochs=20)
    assert trainer.mining_since == 4
    assert [trainer.may_stop(e) for e in range(8)] == [False] * 5 + [True] * 3
    assert trained == list(range(6)), "mining epochs 4 and 5 make a full stopping_step of 2"
    # without a warm-up it stops as RecBole does
    _, rows, trainer = fresh_trainer(pipeline)
    trained = drive_fit(trainer, rows, valid_data, [1.0] * 20, scores, epochs=20)
    assert trained == list(range(4))


def test_auto_warmup_fires_when_the_loss_curve_flattens(pipeline, in_tmp):
    _, _, valid_data = pipeline
    improving = [0.1 * e for e in range(14)]
    flat = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.99] + [3.98, 3.97, 3.96, 3.95]
    _, rows, trainer = fresh_trainer(pipeline, ufn_warmup_epochs="auto")
    drive_fit(trainer, rows, valid_data, flat, improving, epochs=12)
    assert trainer.mining_since == 8, "last drop 0.01 < (9 - 4) / 200 after the 8th epoch"
    steep = [10.0 - e for e in range(12)]
    _, rows, trainer = fresh_trainer(pipeline, ufn_warmup_epochs="auto")
    drive_fit(trainer, rows, valid_data, steep, improving, epochs=12)
    assert not trainer.mining and trainer.teacher is None
    early = [10.0, 9.0, 8.0, 8.0, 8.0, 8.0, 8.0]  # flat, but fewer than 8 finished epochs
    _, rows, trainer = fresh_trainer(pipeline, ufn_warmup_epochs="auto")
    drive_fit(trainer, rows, valid_data, early, improving, epochs=7)
    assert not trainer.mining


@pytest.mark.parametrize("last,fires", [(699.5, True), (699.0, False)])
def test_auto_rule_threshold_is_strict(pipeline, in_tmp, last, fires):
    _, _, trainer = fresh_trainer(pipeline, ufn_warmup_epochs="auto")
    losses = [1000.0, 900.0, 860.0, 820.0, 780.0, 740.0, 700.0, last]  # (900 - 700) / 200 = 1
    trainer.train_loss_dict = dict(enumerate(losses))
    assert trainer.warmup_over(7)[0] is fires
    trainer.train_loss_dict = dict(enumerate(losses[:7]))
    assert trainer.warmup_over(6)[0] is False


# --------------------------------------------------------------------------- 9: checkpoints
def test_checkpoint_extras_round_trip_restores_teacher_and_mining_state(pipeline, in_tmp):
    config, _, _ = pipeline
    net, rows, trainer = fresh_trainer(pipeline, ufn_reverse_threshold=1)
    trainer.on_train_start(rows)
    for epoch in range(2):
        trainer._train_epoch(rows, epoch)
    assert bool((trainer.miner.record > 0).any()) and len(trainer.miner.placements) > 0
    path = str(in_tmp / "extras.pth")
    torch.save(trainer.checkpoint_extras(), path)
    extras = load_checkpoint(path)

    fresh_net, _, fresh = fresh_trainer(pipeline, ufn_reverse_threshold=1)
    assert not fresh.mining
    fresh.restore_extras(extras)
    assert fresh.mining_since == trainer.mining_since == 0
    assert torch.equal(fresh.miner.record, trainer.miner.record)
    pairs = trainer.miner.placements.state_dict()["keys"]
    assert len(pairs) == len(fresh.miner.placements) > 0
    assert torch.equal(fresh.miner.placements.get(pairs), trainer.miner.placements.get(pairs))
    assert fresh.teacher.updates == trainer.teacher.updates == 2 * len(rows)
    for (name, a), b in zip(trainer.teacher.model.state_dict().items(), fresh.teacher.model.state_dict().values()):
        assert torch.equal(a, b), name
    for (name, a), b in zip(net.state_dict().items(), fresh_net.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(not p.requires_grad for p in fresh.teacher.model.parameters())
    assert not optimizer_params(fresh) & {id(p) for p in fresh.teacher.model.parameters()}


def test_load_data_and_model_serves_the_evaluated_teacher(pipeline, in_tmp):
    """The checkpoint's state_dict is the evaluated model (the teacher once mining has started); reloading the
    checkpoint for inference must give those weights, not the student's."""
    net, rows, trainer = fresh_trainer(pipeline)
    trainer.on_train_start(rows)
    with torch.no_grad():
        for p in trainer.teacher.model.parameters():
            p.add_(1.0)
    trainer._save_checkpoint(0, verbose=False)
    saved = load_checkpoint(trainer.saved_model_file)
    teacher = trainer.teacher.model.state_dict()
    assert all(torch.equal(saved["state_dict"][name], t) for name, t in teacher.items())
    _, model, *_ = load_data_and_model(trainer.saved_model_file)
    served = model.state_dict()
    differing = [name for name, t in teacher.items() if not torch.equal(served[name], t)]
    assert not differing, (
        "load_data_and_model serves the student: restore_extras overwrites the checkpoint's evaluated "
        f"(teacher) weights with negs['student']; differing tensors: {differing[:3]}")


# --------------------------------------------------------------------------- config errors and end to end
@pytest.mark.parametrize("model,overrides,key", [
    ("BPR", {"trainer": "ufnrec", "sampler": "uniform"}, "trainer"),
    ("SASRec", {"method": "ufnrec", "seq_train_mode": "prefix"}, "seq_train_mode"),
    ("SASRec", {"method": "ufnrec", "sampler": "popularity"}, "sampler"),
])
def test_unsupported_combinations_are_refused(model, overrides, key, in_tmp):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        small_config(model, **overrides)


@pytest.mark.slow
def test_end_to_end_ufnrec_on_ml100k(in_tmp):
    result = recbole_negs.run_recbole_negs(
        model="SASRec", dataset="ml-100k", saved=True,
        config_dict={**SMALL, "method": "ufnrec", "ufn_warmup_epochs": 1, "ufn_reverse_threshold": 1,
                     "epochs": 3, "neg_sample_num": 10})
    test = result["test_result"]
    assert set(test) == {"ndcg@10", "hit@10"}
    assert all(0.0 <= v <= 1.0 and np.isfinite(v) for v in test.values()) and test["hit@10"] > 0
