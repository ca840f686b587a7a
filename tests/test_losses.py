"""Losses: identities between them, gradients, and the config dispatch."""

import math

import pytest
import torch
import torch.nn.functional as F

from recbole_negs import registry
from recbole_negs.errors import ConfigError
from recbole_negs.losses import FORMULAS, bce, bpr, gbce, gbce_beta, sampled_softmax, soft_bpr


@pytest.fixture
def scores():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, generator=g, dtype=torch.double), torch.randn(8, 5, generator=g, dtype=torch.double)


def test_soft_bpr_is_bpr_at_beta_one(scores):
    pos, neg = scores
    assert torch.equal(soft_bpr(pos, neg, 1.0), bpr(pos, neg))
    assert torch.allclose(bpr(pos, neg), -torch.log(torch.sigmoid(pos[:, None] - neg)).mean())


@pytest.mark.parametrize("beta", [0.1, 1.0, 3.0])
def test_soft_bpr_gradient_is_beta_sigmoid_minus_beta_gap_over_pairs(beta):
    gap = torch.linspace(-10, 10, 12, dtype=torch.double).reshape(4, 3).requires_grad_()
    soft_bpr(torch.zeros(4, dtype=torch.double), -gap, beta).backward()  # pos - neg = gap
    expected = -beta * torch.sigmoid(-beta * gap.detach()) / gap.numel()  # descent raises the gap
    assert torch.allclose(gap.grad, expected, rtol=1e-12, atol=0)


def test_soft_bpr_small_beta_damps_hard_negatives():
    # PDNS: for a hard negative (gap << 0) BPR pushes with ~1 per pair, soft BPR with ~beta
    gap = torch.tensor([[-20.0]], dtype=torch.double, requires_grad=True)
    soft_bpr(torch.zeros(1, dtype=torch.double), -gap, 0.1).backward()
    assert gap.grad.item() == pytest.approx(-0.1 / (1 + math.exp(-2.0)), rel=1e-12)
    hard = torch.tensor([[-20.0]], dtype=torch.double, requires_grad=True)
    bpr(torch.zeros(1, dtype=torch.double), -hard).backward()
    assert hard.grad.item() == pytest.approx(-1.0, rel=1e-8)


def test_sampled_softmax_with_all_other_items_is_the_full_softmax():
    g = torch.Generator().manual_seed(1)
    n, n_items = 6, 9
    logits = torch.randn(n, n_items, generator=g, dtype=torch.double)
    target = torch.randint(0, n_items, (n,), generator=g)
    pos = logits[torch.arange(n), target]
    others = torch.ones(n, n_items, dtype=torch.bool)
    others[torch.arange(n), target] = False
    neg = logits[others].view(n, n_items - 1)
    k = n_items - 1
    full = F.cross_entropy(logits, target)
    assert torch.allclose(sampled_softmax(pos, neg), full, rtol=1e-12)
    # uniform proposal over the K other items: q = 1/K, so log(K q) = 0 and the correction vanishes
    assert torch.allclose(sampled_softmax(pos, neg, torch.full((n, k), -math.log(k), dtype=torch.double)),
                          full, rtol=1e-12)
    # the correction subtracts log(K q): another constant q shifts every negative logit and changes the loss
    shifted = sampled_softmax(pos, neg, torch.full((n, k), -math.log(2 * k), dtype=torch.double))
    assert torch.allclose(shifted, F.cross_entropy(logits + math.log(2) * others, target), rtol=1e-12)
    assert not torch.allclose(shifted, full)


def test_bce_matches_hand_formula(scores):
    pos, neg = scores
    s = torch.sigmoid
    per_row = -torch.log(s(pos)) - torch.log(1 - s(neg)).sum(dim=1)
    assert torch.allclose(bce(pos, neg), per_row.mean(), rtol=1e-12)
    weighted = -0.3 * torch.log(s(pos)) - torch.log(1 - s(neg)).sum(dim=1)
    assert torch.allclose(bce(pos, neg, pos_weight=0.3), weighted.mean(), rtol=1e-12)


def test_gbce_beta_limits_and_gbce_reduces_to_bce(scores):
    pos, neg = scores
    k, n_items = neg.shape[1], 1001
    alpha = k / (n_items - 1)
    assert gbce_beta(k, n_items, 0) == pytest.approx(1.0, rel=1e-12)
    assert gbce_beta(k, n_items, 1) == pytest.approx(alpha, rel=1e-12)
    assert gbce_beta(k, n_items, 0.75) == pytest.approx(0.75 * (alpha - 1) + 1, rel=1e-12)
    assert torch.allclose(gbce(pos, neg, n_items, 0.0), bce(pos, neg), rtol=1e-12)
    assert torch.allclose(gbce(pos, neg, n_items, 1.0), bce(pos, neg, pos_weight=alpha), rtol=1e-12)
    assert not torch.allclose(gbce(pos, neg, n_items, 1.0), bce(pos, neg))


def test_loss_dispatches_each_name(scores):
    pos, neg = scores
    log_q = torch.log(torch.rand(neg.shape, generator=torch.Generator().manual_seed(2), dtype=torch.double))
    n_items = 50
    expected = {
        "bpr": bpr(pos, neg),
        "soft_bpr": soft_bpr(pos, neg, 0.5),
        "bce": bce(pos, neg),
        "gbce": gbce(pos, neg, n_items, 0.75),
        "sampled_softmax": sampled_softmax(pos, neg, log_q),
    }
    values = [v.item() for v in expected.values()]
    assert len({round(v, 9) for v in values}) == len(values), "fixture must tell the losses apart"
    for name, value in expected.items():
        cfg = dict(loss=name, soft_bpr_beta=0.5, gbce_t=0.75, sampled_softmax_logq=True)
        assert torch.equal(registry.load("loss", name)(cfg, n_items)(pos, neg, log_q), value), name
    cfg = dict(loss="sampled_softmax", soft_bpr_beta=0.5, gbce_t=0.75, sampled_softmax_logq=False)
    assert torch.equal(registry.load("loss", "sampled_softmax")(cfg, n_items)(pos, neg, log_q), sampled_softmax(pos, neg))


def test_unknown_loss_name_raises():
    """No name falls through to a default loss."""
    with pytest.raises(ConfigError) as error:
        registry.load("loss", "softmax")
    assert "'loss' = 'softmax'" in str(error.value) and "full_softmax" in str(error.value)


def test_key_table_allows_exactly_the_registered_names():
    """The key table, validation and the registry cannot drift apart: one list of names."""
    from recbole_negs.config.keys import KEY_BY_NAME
    from recbole_negs.config.properties import method_names

    for kind in ("sampler", "loss", "trainer"):
        assert KEY_BY_NAME[kind].allowed.split("|") == list(registry.names(kind))
        for name in registry.names(kind):
            assert KEY_BY_NAME[kind].check(name)
            if kind == "loss":
                loss = registry.load(kind, name)({"loss": name}, 10)
                assert loss.name == name and (loss.whole_catalog or name in FORMULAS)
            elif name != registry.NO_SAMPLER:
                assert registry.load(kind, name).name == name
        assert not KEY_BY_NAME[kind].check("no_such_" + kind)
    assert KEY_BY_NAME["method"].allowed.split("|") == ["none", *method_names()]


# --------------------------------------------------------------------------- the papers' L2 (embedding_l2)
def test_squared_l2_gradient_is_lambda_e_over_the_batch():
    """lambda * sum ||e||^2 / (2 B): each row of the batch gets lambda * e / B, a row present twice twice that
    (the SRNS code's TF l2_regularizer beside a summed loss, divided by B; PDNS's lambda read the same way)."""
    from recbole_negs.losses import squared_l2

    g = torch.Generator().manual_seed(1)
    table = torch.randn(6, 4, generator=g, dtype=torch.double, requires_grad=True)
    users, negatives = torch.tensor([0, 1, 1]), torch.tensor([[2, 3], [4, 2], [5, 3]])  # B = 3, K = 2
    lam = 0.01
    squared_l2(lam, table[users], table[negatives]).backward()
    count = torch.bincount(torch.cat([users, negatives.flatten()]), minlength=6).double()
    assert torch.allclose(table.grad, lam * count[:, None] * table.detach() / 3, rtol=1e-12, atol=0)
    assert squared_l2(0.0, table[users]) == 0.0


@pytest.mark.parametrize("model", ["BPR", "LightGCN"])
def test_embedding_l2_reaches_the_batch_rows_of_each_backbone(model, in_tmp):
    """The backbone's regularization with embedding_l2 = lambda (LightGCN's own reg_weight off) puts lambda e / B
    on the ego embeddings of the batch's users, positives and negatives and nothing elsewhere."""
    from recbole.data.interaction import Interaction

    from conftest import build

    lam = 0.05
    config, net, *_ = build(model, embedding_l2=lam, reg_weight=0.0, sampler="uniform")
    backbone, recbole_model = net.backbone, net.backbone.model
    users, positives = torch.tensor([1, 2, 2, 7]), torch.tensor([3, 4, 5, 3])
    negatives = torch.tensor([[9], [10], [11], [12]])
    enc = backbone.encode(Interaction({config["USER_ID_FIELD"]: users, config["ITEM_ID_FIELD"]: positives}))
    recbole_model.zero_grad()
    backbone.regularization(enc, negatives).backward()
    user_w, item_w = recbole_model.user_embedding.weight, recbole_model.item_embedding.weight
    user_count = torch.bincount(users, minlength=user_w.shape[0]).float()
    item_count = torch.bincount(torch.cat([positives, negatives.flatten()]), minlength=item_w.shape[0]).float()
    assert torch.allclose(user_w.grad, lam * user_count[:, None] * user_w.detach() / 4, atol=1e-9)
    assert torch.allclose(item_w.grad, lam * item_count[:, None] * item_w.detach() / 4, atol=1e-9)
    _, off, *_ = build(model, embedding_l2=0.0, reg_weight=0.0, sampler="uniform")
    enc = off.backbone.encode(Interaction({config["USER_ID_FIELD"]: users, config["ITEM_ID_FIELD"]: positives}))
    assert float(off.backbone.regularization(enc, negatives)) == 0.0
