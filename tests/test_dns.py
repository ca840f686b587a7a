"""DynamicNegativeSampler: the top K of H uniform candidates, exclusions, config and data checks."""

import numpy as np
import pytest
import torch
from recbole.utils import ModelType
from scipy.stats import chisquare

from recbole_negs.scoring import CandidateScorer
from recbole_negs.errors import ConfigError, DataError
from recbole_negs.samplers import DynamicNegativeSampler, Targets

from conftest import context_from_histories

N_ITEMS = 21  # items 1..20, 0 is padding
# user 0 holds the five highest-scored items (with score = id), so a leak of history items would be visible
HISTORIES = {0: {16, 17, 18, 19, 20}, 1: {2, 5, 7}, 2: set()}
DRAWS = 100_000


def context(histories=HISTORIES, n_items=N_ITEMS):
    return context_from_histories(histories, n_items)


def config(**kw):
    base = dict(neg_sample_num=1, neg_exclude="target", neg_sample_replacement=True, neg_share="target", dns_candidates=4,
                MODEL_TYPE=ModelType.GENERAL, model="BPR")
    return {**base, **kw}


def targets(user, positive, n, scorer=None):
    return Targets(torch.full((n,), user), torch.full((n,), positive), scorer)


def id_scorer(n, n_items=N_ITEMS):
    """Every row's query is 1 and item i's vector is i: the score of an item is its id."""
    return CandidateScorer(torch.ones(n, 1), torch.arange(n_items, dtype=torch.float32)[:, None])


def free_items(u):
    return [i for i in range(1, N_ITEMS) if i not in HISTORIES[u]]


def pooled_chi2_p(counts, probs, reference=None, min_expected=5.0):
    """Chi-square p-value of ``counts`` against ``probs``, the bins ordered as given; bins are pooled from the
    start until every pooled bin expects >= ``min_expected`` draws under ``reference`` (default ``probs``),
    so that the same pooling serves the null and the alternatives."""
    counts, probs = np.asarray(counts, dtype=float), np.asarray(probs, dtype=float)
    probs = probs / probs.sum()
    ref = probs if reference is None else np.asarray(reference, dtype=float) / np.sum(reference)
    total = counts.sum()
    groups, current, acc = [], [], 0.0
    for i in range(len(counts)):
        current.append(i)
        acc += ref[i] * total
        if acc >= min_expected:
            groups.append(current)
            current, acc = [], 0.0
    if current:
        groups[-1].extend(current)
    obs = np.array([counts[g].sum() for g in groups])
    exp = np.array([probs[g].sum() for g in groups]) * total
    return chisquare(obs, exp).pvalue


def max_of_uniform_probs(n, h):
    """P(max of h uniform draws over ranks 1..n == r) = (r/n)^h - ((r-1)/n)^h."""
    r = np.arange(1, n + 1, dtype=float)
    return (r / n) ** h - ((r - 1) / n) ** h


# --- DNS keeps the hardest of its H candidates

@pytest.mark.parametrize("h", [1, 4])
def test_dns_returns_the_max_of_h_uniform_candidates(h):
    torch.manual_seed(h)
    target = 9
    sampler = DynamicNegativeSampler(config(dns_candidates=h), context())
    out = sampler(targets(1, target, DRAWS, id_scorer(DRAWS)))
    counts = np.bincount(out.ids.flatten().numpy(), minlength=N_ITEMS)
    assert counts[0] == 0 and counts[target] == 0, "padding or target drawn"
    allowed = [i for i in range(1, N_ITEMS) if i != target]  # ascending score = ascending rank
    n = len(allowed)
    assert counts[allowed].sum() == DRAWS
    truth = max_of_uniform_probs(n, h)
    p = pooled_chi2_p(counts[allowed], truth)
    assert p > 1e-3, f"draws are not the max of H={h} uniform candidates (p={p:.2e})"
    for wrong in (h - 1, h + 1):
        if wrong >= 1:
            p_wrong = pooled_chi2_p(counts[allowed], max_of_uniform_probs(n, wrong), reference=truth)
            assert p_wrong < 1e-6, f"H={wrong} not rejected (p={p_wrong:.2e})"


def test_dns_with_h_equal_to_k_draws_uniformly_over_the_allowed_items():
    # limiting case: H = K = 1 keeps every candidate, whatever the scores
    torch.manual_seed(5)
    sampler = DynamicNegativeSampler(config(dns_candidates=1), context())
    scorer = CandidateScorer(torch.randn(DRAWS, 3), torch.randn(N_ITEMS, 3))
    out = sampler(targets(0, 3, DRAWS, scorer))
    counts = np.bincount(out.ids.flatten().numpy(), minlength=N_ITEMS)
    allowed = [i for i in range(1, N_ITEMS) if i != 3]
    assert counts[[0, 3]].sum() == 0
    assert pooled_chi2_p(counts[allowed], np.ones(len(allowed))) > 1e-3


def k_best(queries, items, excluded_rows, k):
    """Brute force: the k highest-scored items of each row, padding and the row's excluded items left out."""
    scores = queries @ items.T
    scores[:, 0] = -np.inf
    for row, excluded in enumerate(excluded_rows):
        scores[row, sorted(excluded)] = -np.inf
    return scores.topk(k, dim=1).indices


def test_dns_with_every_allowed_item_as_candidate_returns_exactly_the_k_best_target_exclusion():
    torch.manual_seed(7)
    k, n = 3, 500
    positives = torch.randint(1, N_ITEMS, (n,))
    queries, items = torch.randn(n, 4), torch.randn(N_ITEMS, 4)  # continuous scores: no ties
    # H = the number of allowed items, without replacement: every allowed item is a candidate
    sampler = DynamicNegativeSampler(
        config(neg_sample_num=k, neg_sample_replacement=False, dns_candidates=N_ITEMS - 2), context())
    got = sampler(Targets(torch.randint(0, 3, (n,)), positives, CandidateScorer(queries, items))).ids
    expected = k_best(queries, items, [{int(p)} for p in positives], k)
    assert torch.equal(got, expected), "DNS did not return the K best allowed items in score order"


@pytest.mark.parametrize("user", [0, 1, 2])
def test_dns_with_every_allowed_item_as_candidate_returns_exactly_the_k_best_history_exclusion(user):
    torch.manual_seed(8 + user)
    k, n = 3, 500
    queries, items = torch.randn(n, 4), torch.randn(N_ITEMS, 4)
    sampler = DynamicNegativeSampler(
        config(neg_sample_num=k, neg_exclude="history", neg_sample_replacement=False,
               dns_candidates=len(free_items(user))), context())
    got = sampler(targets(user, 1, n, CandidateScorer(queries, items))).ids
    expected = k_best(queries, items, [HISTORIES[user]] * n, k)
    assert torch.equal(got, expected), f"user {user}: DNS did not return the K best free items in score order"


@pytest.mark.parametrize("replacement", [True, False])
def test_dns_never_returns_a_training_item_with_history_exclusion(replacement):
    torch.manual_seed(11)
    n = 30_000
    sampler = DynamicNegativeSampler(
        config(neg_sample_num=3, neg_exclude="history", neg_sample_replacement=replacement, dns_candidates=10),
        context())
    users = torch.tensor([0, 1, 2]).repeat(n // 3)
    positives = torch.tensor([16, 5, 4]).repeat(n // 3)
    out = sampler(Targets(users, positives, id_scorer(n)))  # history items of user 0 score highest
    assert out.ids.shape == (n, 3)
    assert not (out.ids == 0).any(), "padding drawn"
    assert not sampler.context.history.contains(users, out.ids).any(), "a training item of the user drawn"
    for u in HISTORIES:  # the hardest free item is kept whenever it is among the 10 candidates
        rows = out.ids[users == u]
        f = len(free_items(u))
        expected = 1 - (1 - 1 / f) ** 10 if replacement else 10 / f
        share = float((rows == max(free_items(u))).any(dim=1).double().mean())
        assert abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / len(rows)), (
            f"user {u}: best free item kept in {share:.4f} of the rows, expected {expected:.4f}")
    if not replacement:
        assert (out.ids.sort(dim=1).values.diff(dim=1) > 0).all(), "repeated item without replacement"
    # user 2 has no history: the highest-scored item 20 is drawn, and it is user 0's training item
    assert (out.ids[users == 2] == 20).any()


# --- checks

def test_check_config_refuses_fewer_candidates_than_negatives_and_names_the_key():
    DynamicNegativeSampler.check_config(config(neg_sample_num=4, dns_candidates=4))
    DynamicNegativeSampler.check_config(config(neg_sample_num=4, dns_candidates=16))
    with pytest.raises(ConfigError, match=r"dns_candidates' = 3 .*neg_sample_num = 4"):
        DynamicNegativeSampler.check_config(config(neg_sample_num=4, dns_candidates=3))


def test_check_data_without_replacement_refuses_more_candidates_than_free_items():
    ctx = context()  # user 0 has 15 free items, the fewest
    DynamicNegativeSampler(config(neg_exclude="history", neg_sample_replacement=False, dns_candidates=15),
                           ctx).check_data()
    with pytest.raises(DataError, match=r"dns_candidates' = 16 .* 15 items"):
        DynamicNegativeSampler(config(neg_exclude="history", neg_sample_replacement=False, dns_candidates=16),
                               ctx).check_data()
    DynamicNegativeSampler(config(neg_exclude="history", neg_sample_replacement=True, dns_candidates=16),
                           ctx).check_data()
    # target exclusion: the 20 items minus the target
    DynamicNegativeSampler(config(neg_sample_replacement=False, dns_candidates=19), ctx).check_data()
    with pytest.raises(DataError, match="dns_candidates"):
        DynamicNegativeSampler(config(neg_sample_replacement=False, dns_candidates=20), ctx).check_data()
