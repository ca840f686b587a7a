"""UserHistory: membership, exact uniform draws of non-history items, distinct draws."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.stats import chisquare

from recbole_negs.history import UserHistory, draw_distinct_ranks

N_ITEMS = 11  # items 1..10, 0 is padding
HISTORIES = {
    0: {2, 3, 5, 9},
    1: {2, 3, 4, 5, 6, 7, 8, 9},  # almost everything: only 1 and 10 (both catalog ends) are free
    2: set(),  # nothing
    3: {10},
    4: {1},
}


def build(histories, n_items, duplicate=True):
    rows, cols = [], []
    for u, items in histories.items():
        for i in sorted(items, reverse=True):  # unsorted on purpose
            rows.append(u)
            cols.append(i)
    if duplicate and rows:  # a repeated interaction must count once
        rows.append(rows[0])
        cols.append(cols[0])
    matrix = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(histories), n_items))
    return UserHistory.from_matrix(matrix)


def free_items(u, histories=HISTORIES, n_items=N_ITEMS):
    return [i for i in range(1, n_items) if i not in histories[u]]


def chi2_p(counts, probs):
    counts = np.asarray(counts, dtype=float)
    probs = np.asarray(probs, dtype=float)
    return chisquare(counts, probs / probs.sum() * counts.sum()).pvalue


@pytest.fixture
def history():
    return build(HISTORIES, N_ITEMS)


def test_free_count_and_nth_free_enumerate_the_free_items_exactly(history):
    assert history.free_count.tolist() == [len(free_items(u)) for u in HISTORIES]
    for u in HISTORIES:
        f = len(free_items(u))
        got = history.nth_free(torch.tensor([u]), torch.arange(f)[None, :])[0].tolist()
        assert got == free_items(u), f"user {u}"


def test_contains_matches_brute_force_on_random_histories():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 60
    hist = {u: set(rng.choice(np.arange(1, n_items), size=rng.integers(0, 50), replace=False).tolist())
            for u in range(n_users)}
    h = build(hist, n_items)
    users = torch.arange(n_users)
    items = torch.arange(n_items)[None, :].expand(n_users, -1)
    expected = torch.tensor([[i in hist[u] for i in range(n_items)] for u in range(n_users)])
    assert torch.equal(h.contains(users, items), expected)
    # same-shape users/items (one item per user), and a history with no interaction at all
    assert h.contains(users, items[:, 5]).tolist() == [5 in hist[u] for u in range(n_users)]
    empty = build({0: set(), 1: set()}, n_items)
    assert not empty.contains(torch.tensor([0, 1]), torch.tensor([[1, 2], [3, 4]])).any()


def test_sample_free_avoids_history_and_padding_and_is_uniform(history):
    torch.manual_seed(0)
    users = torch.tensor(list(HISTORIES))
    draws = history.sample_free(users, 100_000)  # 1e5 draws per user
    assert draws.shape == (len(users), 100_000)
    for u in HISTORIES:
        row = draws[u]
        free = free_items(u)
        counts = torch.bincount(row, minlength=N_ITEMS).numpy()
        assert counts[0] == 0, f"user {u}: padding drawn"
        assert counts[sorted(HISTORIES[u])].sum() == 0, f"user {u}: history item drawn"
        assert chi2_p(counts[free], np.ones(len(free))) > 1e-3, f"user {u}: not uniform over free items"
    # the same test rejects a wrong distribution: user 2 (no history) against a 10% tilt on item 1
    counts = torch.bincount(draws[2], minlength=N_ITEMS).numpy()[1:]
    assert chi2_p(counts, [1.1] + [1.0] * 9) < 1e-6


def test_sample_free_distinct_rows_are_distinct_free_and_uniform(history):
    torch.manual_seed(1)
    users = torch.tensor([0, 2, 3, 4]).repeat_interleave(40_000)
    num = 3  # free counts 6, 10, 9, 9: the redraw-repeats path of draw_distinct_ranks (2 * num <= min free)
    draws = history.sample_free_distinct(users, num)
    assert draws.shape == (len(users), num)
    assert (draws.sort(dim=1).values.diff(dim=1) > 0).all(), "duplicate item in a row"
    assert not history.contains(users, draws).any(), "history item drawn"
    assert (draws > 0).all()
    for u in (0, 2, 3, 4):
        rows = draws[users == u]
        free = free_items(u)
        for k in range(num):  # each position is marginally uniform over the free items
            counts = torch.bincount(rows[:, k], minlength=N_ITEMS).numpy()[free]
            assert chi2_p(counts, np.ones(len(free))) > 1e-3, f"user {u}, position {k}"
    # user 0 (6 free items): every ordered triple equally likely (120 of them, 40 000 rows)
    rows = draws[users == 0]
    triples = list(itertools.permutations(free_items(0), 3))
    index = {t: j for j, t in enumerate(triples)}
    counts = np.bincount([index[tuple(r)] for r in rows.tolist()], minlength=len(triples))
    assert chi2_p(counts, np.ones(len(triples))) > 1e-3
    # a wrong distribution is rejected: first position against weights 1..6
    counts = torch.bincount(rows[:, 0], minlength=N_ITEMS).numpy()[free_items(0)]
    assert chi2_p(counts, np.arange(1, 7)) < 1e-6


def test_draw_distinct_ranks_num_equal_to_free_is_a_uniform_permutation():
    torch.manual_seed(2)
    ranks = draw_distinct_ranks(torch.full((100_000,), 4), 4)  # the random-keys path (2 * num > free)
    assert (ranks.sort(dim=1).values == torch.arange(4)).all()
    index = {p: j for j, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(r)] for r in ranks.tolist()], minlength=24)
    assert chi2_p(counts, np.ones(24)) > 1e-3
    # rows with different free counts: the row with free == num takes all of its ranks
    mixed = draw_distinct_ranks(torch.tensor([3, 7, 3]), 3)
    assert mixed[0].sort().values.tolist() == [0, 1, 2] and mixed[2].sort().values.tolist() == [0, 1, 2]
    assert mixed[1].unique().numel() == 3 and mixed[1].max() < 7
    assert draw_distinct_ranks(torch.tensor([5, 2]), 0).shape == (2, 0)


def test_sample_free_distinct_takes_every_free_item_when_num_equals_free(history):
    torch.manual_seed(3)
    draws = history.sample_free_distinct(torch.tensor([1] * 1000), 2)  # user 1 has exactly {1, 10} free
    assert (draws.sort(dim=1).values == torch.tensor([1, 10])).all()
    assert 0.4 < (draws[:, 0] == 1).float().mean() < 0.6  # both orders occur
