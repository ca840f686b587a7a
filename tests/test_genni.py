"""GenNiSampler: softmax(alpha * s) over a beta share of the allowed items, pre-selection modes, exclusions,
beta schedule, curriculum, log_q, statistics and state."""

import math

import numpy as np
import pytest
import torch
from recbole.utils import ModelType
from scipy.stats import chisquare

from recbole_negs.scoring import CandidateScorer
from recbole_negs.samplers import GenNiSampler, Targets
from recbole_negs.samplers.genni import scheduled_beta

from conftest import context_from_histories

N_ITEMS = 101  # items 1..100, 0 is padding; the score of item i is i / 100
# user 0 holds the 30 highest-scored items, so that a leak of history items would be frequent
HISTORIES = {0: set(range(71, 101)), 1: {3, 17, 42, 58, 99}, 2: set()}
SMALL = 21  # items 1..20 for the beta = 1 distribution tests
NO_HISTORY = {0: set(), 1: set(), 2: set()}
DRAWS = 100_000


def context(histories=HISTORIES, n_items=N_ITEMS):
    return context_from_histories(histories, n_items)


def config(**kw):
    base = dict(neg_sample_num=1, neg_exclude="target", neg_sample_replacement=True, neg_share="target", genni_alpha=2.5,
                genni_beta=1.0, genni_beta_schedule=None, genni_preselect="per_position", genni_curriculum=False,
                genni_alpha_step=0.05, genni_alpha_bounds=[0.0, 6.0], genni_group_rows=1, MODEL_TYPE=ModelType.SEQUENTIAL,
                model="SASRec")
    return {**base, **kw}


def item_scores(n_items=N_ITEMS):
    return torch.arange(n_items, dtype=torch.float32) / (n_items - 1)


def scorer(n, n_items=N_ITEMS, sign=None):
    """Query 1 (or ``sign[row]``) for every row, item i's vector i / (n_items - 1): a row scores item i as
    sign * i / (n_items - 1)."""
    queries = torch.ones(n, 1) if sign is None else sign.float()[:, None]
    return CandidateScorer(queries, item_scores(n_items)[:, None])


def targets(user, positive, n, n_items=N_ITEMS):
    return Targets(torch.full((n,), user), torch.full((n,), positive), scorer(n, n_items))


def mixed_targets(n_each):
    """Users 0, 1, 2 interleaved, each with a positive outside its history."""
    users = torch.tensor([0, 1, 2]).repeat(n_each)
    positives = torch.tensor([50, 60, 100]).repeat(n_each)
    return Targets(users, positives, scorer(len(users)))


def sparse(sampler):
    sampler.dense_catalog = 0  # per-position sets drawn as distinct ids, not from a scored catalog row
    return sampler


def spy_draw_uniform(sampler):
    calls = []
    original = sampler.draw_uniform

    def spy(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    sampler.draw_uniform = spy
    return calls


def chi2_p(counts, probs):
    counts, probs = np.asarray(counts, dtype=float), np.asarray(probs, dtype=float)
    return chisquare(counts, probs / probs.sum() * counts.sum()).pvalue


def counts_of(ids, n_items=N_ITEMS):
    return torch.bincount(ids.flatten(), minlength=n_items).numpy()


def softmax(alpha, items, n_items=N_ITEMS):
    s = item_scores(n_items).double().numpy()[items]
    w = np.exp(alpha * (s - s.max()))
    return w / w.sum()


def free_items(u, n_items=N_ITEMS):
    return [i for i in range(1, n_items) if i not in HISTORIES[u]]


# --- (1) beta = 1: softmax(alpha * s) over the allowed items

@pytest.mark.parametrize("replacement", [True, False])  # inverse CDF / Gumbel top-K
def test_beta_one_single_draws_follow_softmax_of_alpha_times_score(replacement):
    torch.manual_seed(1)
    target = 20  # the highest-scored item is the excluded target
    sampler = GenNiSampler(config(genni_alpha=2.5, neg_sample_replacement=replacement), context(NO_HISTORY, SMALL))
    out = sampler(targets(2, target, DRAWS, SMALL))
    counts = counts_of(out.ids, SMALL)
    assert counts[0] == 0 and counts[target] == 0, "padding or target drawn"
    allowed = [i for i in range(1, SMALL) if i != target]
    p = chi2_p(counts[allowed], softmax(2.5, allowed, SMALL))
    assert p > 1e-3, f"draws do not follow softmax(2.5 s) (p={p:.2e})"
    for wrong in (2.25, 2.75):
        p_wrong = chi2_p(counts[allowed], softmax(wrong, allowed, SMALL))
        assert p_wrong < 1e-6, f"alpha {wrong} not rejected (p={p_wrong:.2e})"
    assert counts[19] > counts[18] > counts[1], "the highest allowed score must be drawn most"


# --- (2) alpha = 0: uniform over the allowed items

@pytest.mark.parametrize("path,user", [("beta1", 0), ("beta1", 2), ("dense", 0), ("dense", 2), ("sparse", 0)])
def test_alpha_zero_is_uniform_over_allowed_items_and_log_q_is_minus_log_free(path, user):
    torch.manual_seed(10 + user)
    beta = 1.0 if path == "beta1" else 0.1
    sampler = GenNiSampler(config(genni_alpha=0.0, genni_beta=beta, neg_exclude="history"), context())
    if path == "sparse":
        sparse(sampler)
    calls = spy_draw_uniform(sampler)
    out = sampler(targets(user, 5, DRAWS))
    assert bool(calls) == (path == "sparse"), "wrong pre-selection path taken"
    counts = counts_of(out.ids)
    free = free_items(user)
    assert counts[0] == 0 and counts[sorted(HISTORIES[user])].sum() == 0, "padding or history item drawn"
    p = chi2_p(counts[free], np.ones(len(free)))
    assert p > 1e-3, f"alpha = 0 is not uniform on path {path} (p={p:.2e})"
    tilted = softmax(0.5, free)  # a mild preference for high scores must be visible
    assert chi2_p(counts[free], tilted) < 1e-6, "softmax(0.5 s) not rejected"
    # log q = log(set size / free) + log(1 / set size) = -log(free), for every draw
    assert torch.allclose(out.log_q, torch.full_like(out.log_q, -math.log(len(free))), atol=1e-5)


# --- (3) pre-selection: per position vs per batch, set sizes

@pytest.mark.parametrize("path", ["dense", "sparse"])
@pytest.mark.parametrize("exclude", ["target", "history"])
def test_per_position_gives_each_target_its_own_set_of_set_size_allowed_items(path, exclude):
    torch.manual_seed(20)
    sampler = GenNiSampler(config(genni_beta=0.1, neg_exclude=exclude), context())
    if path == "sparse":
        sparse(sampler)
    calls = spy_draw_uniform(sampler)
    size = sampler.set_size()
    assert size == 10
    n = 300
    t = targets(0, 50, n)  # identical user, positive and query on every row
    candidates, logits = sampler._candidates(t.scorer, slice(0, n), Targets(t.users, t.positives), size, None)
    assert bool(calls) == (path == "sparse"), "wrong pre-selection path taken"
    assert candidates.shape == (n, size)
    sets = {tuple(sorted(row)) for row in candidates.tolist()}
    assert len(sets) == n, "targets with the same user and query got the same pre-selected set"
    assert (candidates.sort(dim=1).values.diff(dim=1) > 0).all(), "a set holds an item twice"
    assert not sampler.excluded(Targets(t.users, t.positives), candidates).any(), "an excluded item pre-selected"
    assert torch.equal(logits, item_scores()[candidates]), "logits are not the candidates' scores"


def test_sparse_path_with_history_users_of_few_free_items_falls_back_to_dense_sets():
    # 2 * set size > free items of user 0 (70): distinct draws would be slow, the dense path is taken
    torch.manual_seed(21)
    sampler = sparse(GenNiSampler(config(genni_beta=0.4, neg_exclude="history"), context()))
    calls = spy_draw_uniform(sampler)
    t = targets(0, 50, 50)
    candidates, logits = sampler._candidates(t.scorer, slice(0, 50), Targets(t.users, t.positives), 40, None)
    assert not calls and candidates.shape == (50, 40) and torch.isfinite(logits).all()
    assert not sampler.context.history.contains(t.users, candidates).any()


@pytest.mark.parametrize("exclude,beta,expected", [
    ("target", 0.05, 5),  # set_size 5 >= K + 1
    ("history", 0.05, 3 + 30),  # user 0's 30 training items: K + 30 > set_size
    ("history", 0.5, 50),  # set_size already leaves K items after the exclusions
])
def test_per_batch_shares_one_set_of_set_size_or_k_plus_exclusions(exclude, beta, expected):
    torch.manual_seed(22)
    sampler = GenNiSampler(config(genni_beta=beta, neg_exclude=exclude, genni_preselect="per_batch",
                                  neg_sample_num=3, genni_alpha=0.0), context())
    sampler.chunk_floats = N_ITEMS * 500  # several chunks: the set must still be shared across them
    t = mixed_targets(1000)
    shared = sampler._shared_set(t, sampler.set_size())
    assert shared.dim() == 1 and len(shared) == expected == max(sampler.set_size(), 3 + (
        30 if exclude == "history" else 1))
    assert len(set(shared.tolist())) == expected and 1 <= int(shared.min()) and int(shared.max()) <= 100
    candidates, logits = sampler._candidates(t.scorer, slice(0, 3), Targets(t.users[:3], t.positives[:3]),
                                             sampler.set_size(), shared)
    assert candidates is shared and logits.shape == (3, expected)
    assert torch.equal(torch.isinf(logits), sampler.excluded(Targets(t.users[:3], t.positives[:3]), shared))
    # sampling: every row draws from one set of that size
    made = []
    original = sampler._shared_set
    sampler._shared_set = lambda *a: made.append(original(*a)) or made[-1]
    out = sampler(t)
    assert len(made) == 1, "per_batch must build one set per batch"
    # every shared item is allowed for some user (user 2 has no history, user 1 may draw item 100): at alpha 0
    # the 9000 draws cover the shared set, and nothing outside it
    assert set(out.ids.flatten().tolist()) == set(made[0].tolist())
    assert not sampler.excluded(t, out.ids).any()


def test_per_position_sets_are_not_shared_across_rows_when_sampling():
    torch.manual_seed(23)
    sampler = GenNiSampler(config(genni_beta=0.05, genni_alpha=0.0), context())
    out = sampler(targets(2, 50, 2000))
    assert len(set(out.ids.flatten().tolist())) == 99, "per-position draws must reach every allowed item"


# --- (4) beta < 1: frequency increasing in the score; sparse sets have uniform marginals

@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_small_beta_draw_frequency_increases_with_the_score(path):
    torch.manual_seed(30)
    target = 50
    sampler = GenNiSampler(config(genni_alpha=2.5, genni_beta=0.1), context())
    if path == "sparse":
        sparse(sampler)
    out = sampler(targets(2, target, DRAWS))
    counts = counts_of(out.ids)
    assert counts[0] == 0 and counts[target] == 0
    bins = np.array([counts[10 * b + 1:10 * b + 11].sum() for b in range(10)])  # items by score decile
    assert (np.diff(bins) > 0).all(), f"draw frequency not increasing with the score: {bins.tolist()}"
    allowed = [i for i in range(1, N_ITEMS) if i != target]
    assert chi2_p(counts[allowed], np.ones(len(allowed))) < 1e-6, "uniform not rejected"
    # a beta share of the catalog is not the beta = 1 distribution: it is flatter (the top decile's share is
    # 7 standard deviations below softmax's) and softmax over the whole catalog is rejected
    full = softmax(2.5, allowed)
    top_share = bins[-1] / bins.sum()
    assert top_share < full[-10:].sum() - 0.01, (top_share, full[-10:].sum())
    assert chi2_p(counts[allowed], full) < 1e-6, "softmax over all allowed items (beta = 1) not rejected"


@pytest.mark.parametrize("path", ["dense", "sparse", "per_batch"])
def test_small_beta_rows_in_chunks_are_scored_with_their_own_queries(path):
    torch.manual_seed(32)
    sampler = GenNiSampler(config(genni_alpha=6.0, genni_beta=0.1,
                                  genni_preselect="per_batch" if path == "per_batch" else "per_position"), context())
    if path == "sparse":
        sparse(sampler)
    sampler.chunk_floats = N_ITEMS * 500  # several chunks of rows
    n = 20_000
    sign = torch.where(torch.arange(n) < n // 3, 1, -1)  # the last two thirds prefer low ids: a chunk scored
    # with the first rows' queries would draw high ids
    made = []
    original = sampler._shared_set
    sampler._shared_set = lambda *a: made.append(original(*a)) or made[-1]
    out = sampler(Targets(torch.full((n,), 2), torch.full((n,), 50), scorer(n, sign=sign)))
    if path == "per_batch":  # one shared set: each row's most frequent draw is its own end of it
        shared = made[0][made[0] != 50]
        assert int(out.ids[sign > 0].flatten().mode().values) == int(shared.max())
        assert int(out.ids[sign < 0].flatten().mode().values) == int(shared.min())
    else:
        high, low = out.ids[sign > 0].float().mean(), out.ids[sign < 0].float().mean()
        assert low < 45 and high > 56, (float(low), float(high))


@pytest.mark.parametrize("exclude,user", [("target", 2), ("history", 0)])
def test_sparse_sets_include_each_allowed_item_with_probability_size_over_allowed(exclude, user):
    torch.manual_seed(31)
    sampler = sparse(GenNiSampler(config(genni_alpha=0.0, genni_beta=0.1, neg_exclude=exclude), context()))
    calls = spy_draw_uniform(sampler)
    n, size = 10_000, sampler.set_size()
    t = targets(user, 50, n)
    candidates, _ = sampler._candidates(t.scorer, slice(0, n), Targets(t.users, t.positives), size, None)
    assert calls == [size], "the sparse path was not taken"
    allowed = free_items(user) if exclude == "history" else [i for i in range(1, N_ITEMS) if i != 50]
    counts = counts_of(candidates)
    assert counts[[i for i in range(N_ITEMS) if i not in allowed]].sum() == 0
    assert np.allclose(counts[allowed].mean() / n, size / len(allowed))
    p = chi2_p(counts[allowed], np.ones(len(allowed)))
    assert p > 1e-3, f"inclusion not uniform (p={p:.2e})"
    tilt = np.linspace(0.9, 1.1, len(allowed))  # a 10% preference for high ids must be visible
    assert chi2_p(counts[allowed], tilt) < 1e-6, "a tilted inclusion not rejected"


# --- (4b) grouped per-position sets (genni_group_rows > 1): Algorithm 1's law per target at a beta share's cost

@pytest.mark.parametrize("exclude,user,positive", [("target", 2, 50), ("history", 0, 50), ("history", 1, 3)])
def test_grouped_sets_hold_set_size_allowed_items_each_included_with_probability_size_over_allowed(
        exclude, user, positive):
    torch.manual_seed(33)
    sampler = GenNiSampler(config(genni_alpha=0.0, genni_beta=0.1, neg_exclude=exclude, genni_group_rows=16),
                           context())
    n, size = 12_800, sampler.set_size()
    t = targets(user, positive, n)
    candidates, logits = sampler._candidates(t.scorer, slice(0, n), Targets(t.users, t.positives), size, None)
    kept = torch.isfinite(logits)
    assert bool((kept.sum(dim=1) == size).all()), "a target's set does not hold exactly set_size items"
    chosen = candidates[kept].view(n, size)
    allowed = free_items(user) if exclude == "history" else [i for i in range(1, N_ITEMS) if i != positive]
    assert not set(chosen.unique().tolist()) - set(allowed), "an excluded item pre-selected"
    assert (chosen.sort(dim=1).values.diff(dim=1) > 0).all(), "a set holds an item twice"
    assert torch.equal(logits[kept].view(n, size), item_scores()[chosen]), "logits are not the items' scores"
    sets = {tuple(sorted(row)) for row in chosen.tolist()}
    assert len(sets) <= math.ceil(n / 16) < n, "targets of one group do not share the draw of their set"
    # the 800 groups' sets are the independent draws: each allowed item in size / allowed of them
    counts = counts_of(chosen) / 16
    assert np.allclose(counts[allowed].mean() / (n / 16), size / len(allowed))
    p = chi2_p(counts[allowed], np.ones(len(allowed)))
    assert p > 1e-3, f"inclusion not uniform (p={p:.2e})"
    tilt = np.linspace(0.8, 1.2, len(allowed))
    assert chi2_p(counts[allowed], tilt) < 1e-6, "a tilted inclusion not rejected"


def test_grouped_draws_follow_the_same_law_as_independent_sets():
    """At beta 0.1, alpha 2.5: the negatives' frequencies under grouped sets match those of independent
    per-target sets (Algorithm 1), item by item."""
    torch.manual_seed(34)
    n = 80_000  # groups of 4: 20,000 independent set draws
    independent = sparse(GenNiSampler(config(genni_beta=0.1, neg_exclude="history"), context()))
    grouped = GenNiSampler(config(genni_beta=0.1, neg_exclude="history", genni_group_rows=4), context())
    a = counts_of(independent(targets(1, 50, n)).ids) / n
    b = counts_of(grouped(targets(1, 50, n)).ids) / n
    flat = GenNiSampler(config(genni_alpha=0.0, genni_beta=0.1, neg_exclude="history", genni_group_rows=4),
                        context())
    c = counts_of(flat(targets(1, 50, n)).ids) / n
    # sampling noise alone: about 0.02 here (two independent-set runs differ by 0.028 at n = 40,000)
    assert 0.5 * np.abs(a - b).sum() < 0.035, "grouped and independent sets draw different negatives"
    assert 0.5 * np.abs(a - c).sum() > 0.1, "the comparison cannot tell alpha 2.5 from alpha 0"


# --- (5) beta schedule

def test_scheduled_beta_grows_tenfold_every_m_epochs_and_is_capped_at_one():
    assert scheduled_beta(0, 20) == pytest.approx(0.001)
    assert scheduled_beta(10, 20) == pytest.approx(0.001 * math.sqrt(10))
    assert scheduled_beta(20, 20) == pytest.approx(0.01)
    assert scheduled_beta(40, 20) == pytest.approx(0.1)
    assert scheduled_beta(60, 20) == 1.0
    assert scheduled_beta(61, 20) == 1.0 and scheduled_beta(500, 20) == 1.0


def test_on_epoch_start_follows_the_schedule_and_keeps_fixed_beta_without_one():
    scheduled = GenNiSampler(config(genni_beta=0.3, genni_beta_schedule=20), context())
    assert scheduled.beta == pytest.approx(0.001)
    assert scheduled.set_size() == 1  # ceil(0.001 * 100) = 1 = K
    for epoch, beta, size in [(20, 0.01, 1), (40, 0.1, 10), (50, 10 ** -0.5, 32), (60, 1.0, 100), (90, 1.0, 100)]:
        scheduled.on_epoch_start(epoch)
        assert scheduled.epoch == epoch
        assert scheduled.beta == pytest.approx(beta), epoch
        assert scheduled.set_size() == size, epoch
    fixed = GenNiSampler(config(genni_beta=0.3, genni_beta_schedule=None), context())
    for epoch in (0, 20, 60):
        fixed.on_epoch_start(epoch)
        assert fixed.beta == 0.3 and fixed.set_size() == 30


def test_set_size_is_never_below_k():
    sampler = GenNiSampler(config(genni_beta=0.001, neg_sample_num=7), context())
    assert sampler.set_size() == 7
    assert GenNiSampler(config(genni_beta=0.999), context()).set_size() == 100


# --- (6) curriculum

def test_curriculum_moves_alpha_by_step_against_the_loss_trend_within_bounds():
    sampler = GenNiSampler(config(genni_curriculum=True, genni_alpha=1.0, genni_alpha_step=0.25,
                                  genni_alpha_bounds=[0.5, 1.6]), context())
    sampler.on_batch_end(5.0)  # first batch: nothing to compare with
    assert sampler.alpha == 1.0 and sampler.last_loss == 5.0
    alphas = []
    for loss in (4.0, 3.0):  # falling: harder negatives
        sampler.on_batch_end(loss)
        alphas.append(sampler.alpha)
    assert alphas == pytest.approx([1.25, 1.5])
    sampler.on_batch_end(2.0)
    assert sampler.alpha == pytest.approx(1.6), "alpha must stop at the upper bound"
    sampler.on_batch_end(2.0)
    assert sampler.alpha == pytest.approx(1.6), "an equal loss must leave alpha"
    alphas = []
    for loss in (2.5, 3.0, 3.5, 4.0, 4.5):  # rising: easier negatives, down to the lower bound
        sampler.on_batch_end(loss)
        alphas.append(sampler.alpha)
    assert alphas == pytest.approx([1.35, 1.1, 0.85, 0.6, 0.5])
    sampler.on_batch_end(4.5)
    assert sampler.alpha == pytest.approx(0.5) and sampler.last_loss == 4.5


def test_without_curriculum_alpha_never_moves():
    sampler = GenNiSampler(config(genni_curriculum=False, genni_alpha=2.0), context())
    for loss in (5.0, 4.0, 3.0, 9.0):
        sampler.on_batch_end(loss)
    assert sampler.alpha == 2.0


# --- (7) exclusions on every path

PATHS = {  # name: (beta, preselect, force sparse)
    "beta1": (1.0, "per_position", False),
    "dense": (0.1, "per_position", False),
    "sparse": (0.1, "per_position", True),
    "per_batch": (0.3, "per_batch", False),  # 30 shared items: some are among the 30 highest-scored
}


@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("path", list(PATHS))
def test_history_exclusion_never_draws_a_training_item(path, replacement):
    torch.manual_seed(40)
    beta, preselect, force_sparse = PATHS[path]
    sampler = GenNiSampler(config(genni_alpha=6.0, genni_beta=beta, genni_preselect=preselect, neg_sample_num=3,
                                  neg_exclude="history", neg_sample_replacement=replacement), context())
    if force_sparse:
        sparse(sampler)
    t = mixed_targets(10_000)  # user 0's training items are the 30 highest-scored
    out = sampler(t)
    assert out.ids.shape == (30_000, 3)
    assert not (out.ids == 0).any(), f"{path}: padding drawn"
    leaks = sampler.context.history.contains(t.users, out.ids)
    assert not leaks.any(), f"{path}: {int(leaks.sum())} training items drawn"
    assert (out.ids[t.users == 2] > 70).any(), "user 2 has no history: high-scored items must be drawn"


@pytest.mark.parametrize("path", list(PATHS))
def test_target_exclusion_never_draws_the_target_but_draws_history_items(path):
    torch.manual_seed(41)
    beta, preselect, force_sparse = PATHS[path]
    sampler = GenNiSampler(config(genni_alpha=6.0, genni_beta=beta, genni_preselect=preselect, neg_sample_num=2),
                           context())
    if force_sparse:
        sparse(sampler)
    n = 30_000
    positives = torch.tensor([100, 99, 1]).repeat(n // 3)  # the two highest scores, and the lowest
    t = Targets(torch.zeros(n, dtype=torch.long), positives, scorer(n))
    made = []
    original = sampler._shared_set
    sampler._shared_set = lambda *a: made.append(original(*a)) or made[-1]
    out = sampler(t)
    assert not (out.ids == 0).any(), f"{path}: padding drawn"
    assert not (out.ids == positives[:, None]).any(), f"{path}: target drawn"
    top = int(made[0].max()) if made else 100  # the best item the rows of target 1 can draw
    assert top > 70, "the shared set holds none of user 0's training items: the check below would be void"
    assert (out.ids[positives == 1] == top).any(), "history items stay drawable with target exclusion"


def test_inverse_cdf_draw_at_u_zero_never_picks_an_excluded_column(monkeypatch):
    # torch.rand returns exactly 0.0 with probability 2**-24 per value (about once in 17M draws). The inverse
    # CDF then searches u = 0 in the cumulative weights; a leading excluded column (weight 0, cdf 0) must not be
    # picked. At beta = 1 column 0 is the padding item; in per_batch mode it is shared[0], which may be a
    # training item of the user or the target.
    sampler = GenNiSampler(config(genni_beta=1.0, neg_sample_num=2), context())
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros_like(real_rand(*a, **k)))
    out = sampler(targets(2, 50, 4))
    monkeypatch.undo()
    assert not (out.ids == 0).any(), (
        "GenNiSampler._draw (replacement=True) returned the padding item 0 when torch.rand gave u = 0: "
        "torch.searchsorted(cdf, 0) picks column 0 although its weight is 0")


def test_inverse_cdf_draw_at_u_zero_never_picks_an_excluded_shared_item(monkeypatch):
    # per_batch: the shared set's first item is a training item of user 0 (excluded, weight 0)
    sampler = GenNiSampler(config(genni_beta=0.1, genni_preselect="per_batch", neg_exclude="history"), context())
    t = targets(0, 50, 4)
    shared = torch.tensor([71] + list(range(1, 40)))
    candidates, logits = sampler._candidates(t.scorer, slice(0, 4), Targets(t.users, t.positives), 10, shared)
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros_like(real_rand(*a, **k)))
    picked, _ = sampler._draw(logits)
    monkeypatch.undo()
    assert not sampler.excluded(Targets(t.users, t.positives), candidates[picked]).any(), (
        "GenNiSampler._draw (replacement=True) returned user 0's training item 71 (column 0 of the shared set, "
        "weight 0) when torch.rand gave u = 0")


# --- (8) K > 1 without replacement

@pytest.mark.parametrize("path", list(PATHS))
def test_k_draws_without_replacement_are_distinct(path):
    torch.manual_seed(50)
    beta, preselect, force_sparse = PATHS[path]
    sampler = GenNiSampler(config(genni_alpha=6.0, genni_beta=beta, genni_preselect=preselect, neg_sample_num=5,
                                  neg_sample_replacement=False, neg_exclude="history"), context())
    if force_sparse:
        sparse(sampler)
    t = mixed_targets(3_000)
    out = sampler(t)
    assert (out.ids.sort(dim=1).values.diff(dim=1) > 0).all(), f"{path}: a row repeats an item"
    assert not sampler.excluded(t, out.ids).any()


def test_with_replacement_rows_do_repeat_items_at_high_alpha():
    # contrast for the test above: with replacement the top item is drawn several times in a row
    torch.manual_seed(51)
    sampler = GenNiSampler(config(genni_alpha=50.0, neg_sample_num=5), context())
    out = sampler(targets(2, 50, 1000))
    assert ((out.ids.sort(dim=1).values.diff(dim=1) == 0).any(dim=1)).float().mean() > 0.5


# --- (9) log_q

@pytest.mark.parametrize("replacement", [True, False])
@pytest.mark.parametrize("exclude", ["target", "history"])
def test_log_q_at_beta_one_is_the_log_softmax_probability_of_each_draw(exclude, replacement):
    torch.manual_seed(60)
    sampler = GenNiSampler(config(genni_alpha=2.5, neg_sample_num=4, neg_exclude=exclude,
                                  neg_sample_replacement=replacement), context())
    sampler.chunk_floats = N_ITEMS * 333  # rows in chunks of 333: each chunk must use its own rows' queries
    n = 3000
    users = torch.tensor([0, 1, 2]).repeat(n // 3)
    positives = torch.tensor([50, 60, 100]).repeat(n // 3)
    sign = torch.where(torch.arange(n) < n // 3, 1, -1)  # the last two thirds prefer low ids
    out = sampler(Targets(users, positives, scorer(n, sign=sign)))
    s = item_scores().double()
    logits = 2.5 * sign.double()[:, None] * s[None, :]
    allowed = torch.ones(n, N_ITEMS, dtype=torch.bool)
    allowed[:, 0] = False
    if exclude == "history":
        for u, items in HISTORIES.items():
            allowed[(users == u).nonzero()[:, 0][:, None], torch.tensor(sorted(items), dtype=torch.long)] = False
    else:
        allowed[torch.arange(n), positives] = False
    log_p = torch.log_softmax(logits.masked_fill(~allowed, -math.inf), dim=1)
    expected = log_p.gather(1, out.ids)
    assert torch.isfinite(expected).all(), "an excluded item drawn"
    assert torch.allclose(out.log_q.double(), expected, atol=1e-4), "exp(log_q) is not the softmax probability"
    # the draws follow each row's own preference (user 2: no history, so both ends of the catalog are open)
    mine = users == 2
    high, low = out.ids[mine & (sign > 0)].float().mean(), out.ids[mine & (sign < 0)].float().mean()
    assert high - low > 15, (float(high), float(low))


# --- (10) state, (11) statistics

def test_state_dict_round_trip_restores_alpha_beta_last_loss_and_epoch():
    a = GenNiSampler(config(genni_curriculum=True, genni_beta_schedule=20), context())
    a.on_epoch_start(40)
    for loss in (3.0, 2.0, 1.0):
        a.on_batch_end(loss)
    state = a.state_dict()
    assert state == {"epoch": 40, "alpha": pytest.approx(2.6), "beta": pytest.approx(0.1), "last_loss": 1.0}
    b = GenNiSampler(config(genni_curriculum=True, genni_beta_schedule=20), context())
    assert (b.alpha, b.beta, b.last_loss, b.epoch) == (2.5, pytest.approx(0.001), None, 0)
    b.load_state_dict(state)
    assert (b.alpha, b.beta, b.last_loss, b.epoch) == (a.alpha, a.beta, 1.0, 40)
    assert b.set_size() == a.set_size() == 10
    b.on_batch_end(0.5)  # the restored last loss is compared with: falling, alpha up
    assert b.alpha == pytest.approx(2.65)


def test_statistics_include_alpha_and_beta():
    sampler = GenNiSampler(config(genni_alpha=1.5, genni_beta=0.2), context())
    assert sampler.statistics() == {"mean_gap": 0.0, "share_outscoring": 0.0, "alpha": 1.5, "beta": 0.2}
    sampler.record(torch.tensor([1.0]), torch.tensor([[0.0, 2.0]]))
    sampler.alpha = 2.0
    assert sampler.statistics() == {"mean_gap": 0.0, "share_outscoring": 0.5, "alpha": 2.0, "beta": 0.2}
