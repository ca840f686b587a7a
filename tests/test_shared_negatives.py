"""Shared negatives (neg_share: sequence | batch), in-batch and mixed negatives, DNS on a shared pool, and the
steps-per-epoch rule: accidental hits are masked, the logQ correction is exact, shared scores are the
per-target scores, and a stock config makes RecBole's number of optimizer steps."""

import math

import pytest
import torch
import torch.nn.functional as F
from recbole.utils import ModelType

from recbole_negs.losses import FORMULAS, bce, bpr, sampled_softmax
from recbole_negs.samplers import DynamicNegativeSampler, Targets, UniformSampler
from recbole_negs.samplers.in_batch import InBatchSampler
from recbole_negs.samplers.mixed import MixedSampler
from recbole_negs.scoring import CandidateScorer, train_scores, train_shared_scores
from recbole_negs.sequence_rows import rows_per_batch

from conftest import build, context_from_histories

N_ITEMS = 21  # items 1..20
HISTORIES = {0: {1, 2, 3, 4, 5}, 1: {10, 11}, 2: set()}
COUNTS = torch.tensor([0] + [i for i in range(1, N_ITEMS)])  # item i seen i times


def config(**kw):
    base = dict(neg_sample_num=8, neg_exclude="history", neg_sample_replacement=True, neg_share="batch",
                dns_candidates=8, mixed_uniform_num=4, MODEL_TYPE=ModelType.SEQUENTIAL, model="SASRec")
    return {**base, **kw}


def context():
    return context_from_histories(HISTORIES, N_ITEMS, COUNTS)


def batch(rows=None, n_rows=0):
    users = torch.tensor([0, 0, 1, 2, 1, 0])
    positives = torch.tensor([3, 6, 10, 7, 12, 1])
    queries = torch.randn(len(users), 4, generator=torch.Generator().manual_seed(0))
    items = torch.randn(N_ITEMS, 4, generator=torch.Generator().manual_seed(1))
    return Targets(users, positives, CandidateScorer(queries, items), None, rows, n_rows), queries, items


def assert_valid_is_exactly_the_allowed_pairs(targets, ids, valid, exclude_history=True):
    for n in range(len(targets.users)):
        for c in range(ids.shape[1]):
            item, user = int(ids[n, c]), int(targets.users[n])
            forbidden = item == int(targets.positives[n]) or item == 0 or (
                exclude_history and item in HISTORIES[user])
            assert bool(valid[n, c]) == (not forbidden), (n, item)


@pytest.mark.parametrize("exclude", ["history", "target"])
@pytest.mark.parametrize("sampler_class", [UniformSampler, InBatchSampler, MixedSampler])
def test_shared_sets_mask_exactly_the_positive_and_the_exclusions(sampler_class, exclude):
    torch.manual_seed(3)
    sampler = sampler_class(config(neg_exclude=exclude, neg_sample_num=20), context())
    targets, _, _ = batch()
    out = sampler(targets)
    assert out.ids is None and out.shared.dim() == 1
    ids = out.per_target_ids()
    assert_valid_is_exactly_the_allowed_pairs(targets, ids, out.valid, exclude == "history")
    if sampler_class is InBatchSampler:  # the batch's own positives, each target's own masked
        assert sorted(out.shared.tolist()) == sorted(targets.positives.tolist())
        assert not bool(out.valid[torch.arange(6), torch.arange(6)].any())


def test_sequence_share_gives_each_row_one_set_and_masks_per_target():
    torch.manual_seed(4)
    rows = torch.tensor([0, 0, 1, 2, 1, 0])  # user 0 on row 0, user 1 on row 1, user 2 on row 2
    targets, _, _ = batch(rows, 3)
    out = UniformSampler(config(neg_share="sequence"), context())(targets)
    assert out.shared.shape == (3, 8)
    ids = out.per_target_ids(rows)
    assert torch.equal(ids[0], ids[1]) and torch.equal(ids[0], ids[5]) and torch.equal(ids[2], ids[4])
    assert_valid_is_exactly_the_allowed_pairs(targets, ids, out.valid)


def test_masked_entries_leave_the_loss_and_get_no_gradient():
    """A masked column changes nothing: every loss equals the loss over the valid columns only."""
    pos = torch.randn(4, dtype=torch.double, requires_grad=True)
    neg = torch.randn(4, 5, dtype=torch.double, requires_grad=True)
    valid = torch.ones(4, 5, dtype=torch.bool)
    valid[0, 1] = valid[2, 4] = valid[3, 0] = False
    log_q = torch.full((1, 5), -math.log(20.0), dtype=torch.double)
    cfg = {"soft_bpr_beta": 0.5, "gbce_t": 0.0, "sampled_softmax_logq": True}
    for name, formula in FORMULAS.items():
        loss = formula(pos, neg, log_q, valid, cfg, 20)
        grad = torch.autograd.grad(loss, neg)[0]
        assert float(grad[~valid].abs().sum()) == 0.0, name
    # the same value as dropping the masked pairs, row by row (BCE sums, BPR averages over valid pairs)
    expected_bce = sum(bce(pos[r:r + 1], neg[r:r + 1][:, valid[r]]) for r in range(4)) / 4
    assert torch.allclose(FORMULAS["bce"](pos, neg, None, valid, cfg, 20), expected_bce)
    pairs = torch.cat([-F.logsigmoid(pos[r] - neg[r][valid[r]]) for r in range(4)])
    assert torch.allclose(FORMULAS["bpr"](pos, neg, None, valid, cfg, 20), pairs.mean())
    assert torch.allclose(bpr(pos, neg), FORMULAS["bpr"](pos, neg, None, None, cfg, 20))


def test_shared_training_scores_equal_per_target_scores():
    torch.manual_seed(5)
    queries, items, bias = torch.randn(6, 4), torch.randn(N_ITEMS, 4), torch.randn(N_ITEMS)
    shared = torch.randint(1, N_ITEMS, (7,))
    per_target = train_scores(queries, items, bias, shared[None, :].expand(6, -1))
    assert torch.allclose(train_shared_scores(queries, items, bias, shared), per_target, atol=1e-6)
    layout = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    rows = torch.nonzero(layout, as_tuple=True)[0]
    row_sets = torch.randint(1, N_ITEMS, (3, 7))
    expected = train_scores(queries, items, bias, row_sets[rows])
    assert torch.allclose(train_shared_scores(queries, items, bias, row_sets, rows, layout), expected, atol=1e-6)


def test_in_batch_and_mixed_log_q_are_the_proposals():
    torch.manual_seed(6)
    targets, _, _ = batch()
    popularity = COUNTS.double() / COUNTS.sum()
    out = InBatchSampler(config(), context())(targets)
    assert torch.allclose(out.log_q[0].double(), torch.log(popularity[out.shared]), atol=1e-6)
    mixed = MixedSampler(config(neg_sample_num=6, mixed_uniform_num=4), context())(targets)
    assert len(mixed.shared) == 10 and sorted(mixed.shared[:6].tolist()) == sorted(targets.positives.tolist())
    expected_count = 6 * popularity[mixed.shared] + 4 / (N_ITEMS - 1)
    assert torch.allclose((mixed.log_q[0] + math.log(10)).double(), torch.log(expected_count), atol=1e-5)


def test_in_batch_caps_the_set_at_k_targets_drawn_without_replacement():
    torch.manual_seed(7)
    targets, _, _ = batch()
    out = InBatchSampler(config(neg_sample_num=4), context())(targets)
    assert len(out.shared) == 4
    remaining = targets.positives.tolist()
    for item in out.shared.tolist():
        remaining.remove(item)  # each drawn positive is a distinct target's


@pytest.mark.parametrize("share", ["batch", "sequence"])
def test_dns_on_a_shared_pool_takes_the_hardest_allowed_candidate(share):
    torch.manual_seed(8)
    rows = torch.tensor([0, 0, 1, 2, 1, 0])
    targets, queries, items = batch(rows, 3)
    sampler = DynamicNegativeSampler(config(neg_share=share, neg_sample_num=1, dns_candidates=10), context())
    pools = []
    original = sampler.draw_catalog
    sampler.draw_catalog = lambda shape, replacement=None: pools.append(original(shape, replacement)) or pools[-1]
    out = sampler(targets).ids[:, 0]
    pool = pools[0]
    for n in range(6):
        candidates = pool if pool.dim() == 1 else pool[rows[n]]
        allowed = [int(i) for i in candidates if int(i) != int(targets.positives[n])
                   and int(i) not in HISTORIES[int(targets.users[n])]]
        best = max(allowed, key=lambda i: float(queries[n] @ items[i]))
        assert int(out[n]) == best


def test_full_pool_with_logq_equals_the_full_softmax(tmp_path, monkeypatch):
    """Every item once in the shared pool (K = catalog, no replacement, only the target excluded): the
    logQ-corrected sampled softmax is exactly the full-softmax cross-entropy."""
    monkeypatch.chdir(tmp_path)
    _, model, train_data, *_ = build("SASRec", loss="sampled_softmax", neg_share="batch", neg_exclude="target",
                                     neg_sample_replacement=False, neg_sample_num=1681)
    model.eval()
    batch_ = next(iter(train_data))
    torch.manual_seed(0)
    sampled = model.calculate_loss(batch_)
    enc = model.backbone.encode(batch_)
    logits = model.backbone.score_catalog(enc)
    logits[:, 0] = float("-inf")
    assert torch.allclose(sampled, F.cross_entropy(logits, enc.positives), rtol=1e-5, atol=1e-6)


def test_stock_batch_size_counts_targets_so_steps_match_recbole():
    """RecBole's prefix rows: one target each, so targets / train_batch_size steps; all-position rows with
    seq_batch_size_unit: targets make about as many."""
    rows, targets = 22363, 131413  # Beauty's user sequences and training targets
    stock = {"train_batch_size": 2048, "seq_batch_size_unit": "targets"}
    per_batch = rows_per_batch(stock, rows, targets)
    steps = math.ceil(rows / per_batch)
    recbole_steps = math.ceil(targets / 2048)
    assert recbole_steps / 2 <= steps <= 2 * recbole_steps
    assert rows_per_batch({**stock, "seq_batch_size_unit": "rows"}, rows, targets) == 2048


def test_loader_logs_rows_targets_and_steps(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    _, _, train_data, *_ = build("SASRec", seq_batch_size_unit="targets", train_batch_size=2048)
    expected_rows = rows_per_batch({"train_batch_size": 2048, "seq_batch_size_unit": "targets"},
                                   len(train_data.rows), train_data.targets_per_epoch)
    assert train_data.step == expected_rows
    assert len(train_data) == math.ceil(len(train_data.rows) / expected_rows)
    assert abs(len(train_data) - train_data.targets_per_epoch / 2048) <= 1


def test_shared_softmax_preset_takes_its_keys_and_its_loss_falls(tmp_path, monkeypatch):
    """--method=shared_softmax: shared uniform negatives, logQ-corrected sampled softmax, K 4096, 2048 targets
    per step; a few Adam steps on one batch lower its loss."""
    monkeypatch.chdir(tmp_path)
    config, model, train_data, *_ = build("SASRec", method="shared_softmax", seq_batch_size_unit="targets")
    assert (config["sampler"], config["loss"], config["neg_share"], config["neg_sample_num"]) == (
        "uniform", "sampled_softmax", "batch", 4096)
    assert config["neg_exclude"] == "target" and config["seq_batch_size_unit"] == "targets"
    from recbole_negs.config.properties import property_file, read_yaml
    assert read_yaml(property_file("method", "shared_softmax"))["train_batch_size"] == 2048  # the tests' 256 wins
    batch = next(iter(train_data))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # step-to-step noise (fresh negatives, dropout) is about 0.01 here; 15 steps lower the loss by about 0.12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05
