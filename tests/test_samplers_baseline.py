"""UniformSampler and PopularitySampler: exclusions, distributions, log_q, data checks, statistics."""

import math

import numpy as np
import pytest
import torch
from recbole.utils import ModelType
from scipy.stats import chisquare

from recbole_negs.errors import DataError
from recbole_negs.samplers import PopularitySampler, Targets, UniformSampler

from conftest import context_from_histories

N_ITEMS = 11  # items 1..10, 0 is padding
# heavy items 1, 3, 5, 9; item 4 never occurs in training
COUNTS = torch.tensor([0, 100, 1, 80, 0, 90, 2, 3, 1, 120, 2])
HISTORIES = {0: {2, 5, 7}, 1: {1, 3, 5, 9}, 2: set()}  # user 1 holds 390/401 of the popularity mass
DRAWS = 100_000


def context(histories=HISTORIES, counts=COUNTS):
    return context_from_histories(histories, N_ITEMS, counts)


def config(**kw):
    base = dict(neg_sample_num=1, neg_exclude="history", neg_sample_replacement=True, neg_share="target", popularity_alpha=1.0,
                MODEL_TYPE=ModelType.GENERAL, model="BPR")
    return {**base, **kw}


def targets(user, positive, n):
    return Targets(torch.full((n,), user), torch.full((n,), positive))


def free_items(u):
    return [i for i in range(1, N_ITEMS) if i not in HISTORIES[u]]


def chi2_p(counts, probs):
    counts, probs = np.asarray(counts, dtype=float), np.asarray(probs, dtype=float)
    return chisquare(counts, probs / probs.sum() * counts.sum()).pvalue


def counts_of(ids):
    return torch.bincount(ids.flatten(), minlength=N_ITEMS).numpy()


# --- uniform

@pytest.mark.parametrize("user", [0, 1, 2])
def test_uniform_history_exclusion_shape_distribution_and_log_q(user):
    torch.manual_seed(user)
    sampler = UniformSampler(config(neg_sample_num=4), context())
    out = sampler(targets(user, 6 if user != 2 else 1, DRAWS // 4))
    assert out.ids.shape == (DRAWS // 4, 4)
    counts = counts_of(out.ids)
    assert counts[0] == 0 and counts[sorted(HISTORIES[user])].sum() == 0, "padding or history item drawn"
    free = free_items(user)
    assert chi2_p(counts[free], np.ones(len(free))) > 1e-3
    assert torch.allclose(out.log_q, torch.full((DRAWS // 4, 4), -math.log(len(free))), rtol=1e-6, atol=0)


def test_uniform_without_replacement_rows_distinct_and_free():
    torch.manual_seed(10)
    sampler = UniformSampler(config(neg_sample_num=6, neg_sample_replacement=False), context())
    out = sampler(targets(1, 6, 2000))  # user 1 has exactly 6 free items: every row is all of them
    assert (out.ids.sort(dim=1).values == torch.tensor(free_items(1))).all()


@pytest.mark.parametrize("replacement", [True, False])
def test_uniform_target_exclusion_draws_history_but_never_the_target(replacement):
    torch.manual_seed(11)
    sampler = UniformSampler(config(neg_sample_num=3, neg_exclude="target", neg_sample_replacement=replacement),
                             context())
    t = Targets(torch.tensor([1, 1]).repeat(20_000), torch.tensor([5, 10]).repeat(20_000))
    out = sampler(t)
    assert not (out.ids == t.positives[:, None]).any(), "target drawn"
    if not replacement:
        assert (out.ids.sort(dim=1).values.diff(dim=1) > 0).all()
    for pos in (5, 10):
        counts = counts_of(out.ids[t.positives == pos])
        others = [i for i in range(1, N_ITEMS) if i != pos]
        assert counts[0] == 0 and counts[pos] == 0
        assert counts[[1, 3, 9]].min() > 0, "history items must remain drawable"
        assert chi2_p(counts[others], np.ones(len(others))) > 1e-3
    assert torch.allclose(out.log_q, torch.full_like(out.log_q, -math.log(N_ITEMS - 2)))


# --- popularity

@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("user", [0, 1, 2])
def test_popularity_follows_count_power_alpha_over_free_items(alpha, user):
    # user 1 holds ~97% of the mass: most rows fail the 8 redraws and take the exact fallback
    torch.manual_seed(20 + user)
    sampler = PopularitySampler(config(popularity_alpha=alpha, neg_sample_num=2), context())
    exact_rows, exact = [], sampler._exact
    sampler._exact = lambda t, rows: exact_rows.append(len(rows)) or exact(t, rows)
    out = sampler(targets(user, 5, DRAWS // 2))
    if user == 1:
        assert sum(exact_rows) > DRAWS // 20, "the exact fallback was not exercised"
    counts = counts_of(out.ids)
    assert counts[0] == 0 and counts[sorted(HISTORIES[user])].sum() == 0, "padding or history item drawn"
    assert counts[4] == 0, "a zero-count item was drawn with alpha > 0"
    free = [i for i in free_items(user) if COUNTS[i] > 0]
    weights = COUNTS[free].double().numpy() ** alpha
    assert chi2_p(counts[free], weights) > 1e-3
    assert chi2_p(counts[free], weights ** ((alpha + 0.5) / alpha)) < 1e-6, "wrong alpha not rejected"
    # log_q is the log of the conditional proposal: one value per item, summing to 1 over the free items
    seen = {}
    for i, lq in zip(out.ids.flatten().tolist(), out.log_q.flatten().tolist()):
        assert math.isclose(seen.setdefault(i, lq), lq, rel_tol=1e-6)
    assert sorted(seen) == free
    assert math.isclose(sum(math.exp(v) for v in seen.values()), 1.0, rel_tol=1e-5)
    assert np.allclose([math.exp(seen[i]) for i in free], weights / weights.sum(), rtol=1e-5)


def test_popularity_target_exclusion_distribution_and_log_q():
    torch.manual_seed(30)
    sampler = PopularitySampler(config(neg_exclude="target", neg_sample_num=2), context())
    out = sampler(targets(1, 9, DRAWS // 2))  # the target is the most popular item
    counts = counts_of(out.ids)
    assert counts[9] == 0 and counts[[1, 3, 5]].min() > 0
    items = [i for i in range(1, N_ITEMS) if i != 9 and COUNTS[i] > 0]
    weights = COUNTS[items].double().numpy()
    assert chi2_p(counts[items], weights) > 1e-3
    assert np.allclose(out.log_q.exp().numpy(), (COUNTS[out.ids].double() / weights.sum()).numpy(), rtol=1e-5)


def test_popularity_alpha_zero_is_uniform_over_the_whole_catalog_including_zero_count_items():
    # 0 ** 0 == 1 in torch, so item 4 (count 0) gets weight 1 like every other item: alpha = 0 is exactly the
    # uniform sampler (properties/sampler/popularity.yaml: "0 is uniform"), while any alpha > 0 never draws it.
    torch.manual_seed(40)
    ctx = context()
    sampler = PopularitySampler(config(popularity_alpha=0.0, neg_sample_num=2), ctx)
    out = sampler(targets(0, 1, DRAWS // 2))
    counts = counts_of(out.ids)
    free = free_items(0)  # includes item 4
    assert counts[4] > 0
    assert chi2_p(counts[free], np.ones(len(free))) > 1e-3
    assert torch.allclose(out.log_q, torch.full_like(out.log_q, -math.log(len(free))))
    assert torch.equal(sampler.free_items_per_user(), UniformSampler(config(), ctx).free_items_per_user())
    tiny = PopularitySampler(config(popularity_alpha=1e-6), ctx)
    assert counts_of(tiny(targets(0, 1, 20_000)).ids)[4] == 0
    assert int(tiny.free_items_per_user()[0]) == len(free) - 1


# --- data checks and statistics

@pytest.mark.parametrize("cls", [UniformSampler, PopularitySampler])
def test_check_data_user_with_every_item_names_neg_exclude(cls):
    ctx = context({0: set(range(1, N_ITEMS)), 1: {2}})
    with pytest.raises(DataError, match="neg_exclude"):
        cls(config(), ctx).check_data()
    cls(config(neg_exclude="target"), ctx).check_data()  # excluding only the target leaves items to draw


def test_check_data_too_many_negatives_without_replacement_names_neg_sample_num():
    ctx = context()  # user 1 has 6 free items, the fewest
    UniformSampler(config(neg_sample_num=6, neg_sample_replacement=False), ctx).check_data()
    with pytest.raises(DataError, match="neg_sample_num"):
        UniformSampler(config(neg_sample_num=7, neg_sample_replacement=False), ctx).check_data()
    UniformSampler(config(neg_sample_num=7, neg_sample_replacement=True), ctx).check_data()
    with pytest.raises(DataError, match="neg_sample_num"):  # target exclusion: 10 items - 1 target
        UniformSampler(config(neg_sample_num=10, neg_exclude="target", neg_sample_replacement=False),
                       ctx).check_data()


def test_statistics_share_outscoring_and_mean_gap():
    sampler = UniformSampler(config(neg_sample_num=3), context())
    assert sampler.statistics() == {"mean_gap": 0.0, "share_outscoring": 0.0}
    sampler.record(torch.tensor([1.0, 0.0]), torch.tensor([[0.5, 2.0, 1.0], [-1.0, 0.0, 0.5]]))
    # gaps 0.5, -1, 0 | 1, 0, -0.5: two strictly negative (ties do not outscore), sum 0
    sampler.record(torch.tensor([2.0]), torch.tensor([[0.0, 1.0, 3.0]]))  # gaps 2, 1, -1
    assert sampler.statistics() == {"mean_gap": 2.0 / 9, "share_outscoring": 3 / 9}
    sampler.reset_statistics()
    assert sampler.statistics() == {"mean_gap": 0.0, "share_outscoring": 0.0}
