"""SRNS: selection formula, snapshot windows, pools, memory refresh, synthetic mode, checkpoints, refusals."""

import io
import math
import statistics

import pytest
import torch

from recbole.utils import ModelType

from recbole_negs.scoring import CandidateScorer
from recbole_negs.errors import ConfigError
from recbole_negs.samplers.srns import real as srns_module  # the real mode: its constants and helpers
from recbole_negs.samplers.base import Targets
from recbole_negs.samplers.srns import SRNSSampler, first_occurrence, occurrence_rank, sample_without_replacement

from conftest import context_from_histories


# --------------------------------------------------------------------------- fixtures
def make_config(**over):
    config = {"neg_sample_num": 1, "neg_exclude": "history", "neg_sample_replacement": True, "neg_share": "target",
              "srns_pool_size": 4, "srns_s1": 3, "srns_s2": 4, "srns_tau": 1.0, "srns_alpha": 5.0,
              "srns_warmup": 50, "srns_mode": "real", "MODEL_TYPE": ModelType.GENERAL, "model": "BPR"}
    config.update(over)
    return config


def make_context(histories, n_items):
    """``histories[u]``: the training items of user u (user 0 is RecBole's padding: keep it empty)."""
    return context_from_histories(dict(enumerate(histories)), n_items, torch.zeros(n_items, dtype=torch.long))


class UserScores:
    """What the trainer hands SRNS at on_train_start / on_epoch_end: a callable returning detached scores of
    every user's items under the current weights."""

    def __init__(self, users, items):
        self.users, self.items = users, items

    def __call__(self):
        return CandidateScorer(self.users, self.items)

    def set(self, users=None, items=None):
        if users is not None:
            self.users = users
        if items is not None:
            self.items = items


def targets_for(users, positives, user_table, item_table):
    users, positives = torch.as_tensor(users), torch.as_tensor(positives)
    return Targets(users, positives, CandidateScorer(user_table[users], item_table))


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


# A hand-made 5-epoch history for user 1 (positive item 1; candidates 2, 3, 4), one value per snapshot time
# s = 0 (before training), 1..6 (ends of epochs 0..5). At epoch 6 the window is s = 2..6.
POS = [0.0, 0.0, 0.5, 0.2, 0.1, 0.4, 0.3]
CAND = {2: [1.0, 1.0, 1.0, 1.2, 1.1, 1.0, 1.1],  # hard now, stable
        3: [0.0, 0.0, -1.5, 1.5, -1.5, 1.5, -1.5],  # easier, varies a lot inside the window
        4: [9.0, -9.0, -1.0, -1.0, -1.0, -1.0, -1.0]}  # varies only before the window
CURRENT, CURRENT_POS = {2: 1.2, 3: 0.0, 4: -1.0, 5: -3.0}, 0.3


def item_table(values):
    """1-d item embeddings (user embedding 1): the score of item i is values[i]."""
    return torch.tensor([[float(v)] for v in values])


def table_at(s):
    return item_table([0.0, POS[s], CAND[2][s], CAND[3][s], CAND[4][s], -3.0])


def hand_key(k, alpha_t, window=range(2, 7)):
    std = statistics.pstdev([sig(CAND[k][s] - POS[s]) for s in window])
    difficulty = sig(CURRENT[k] - CURRENT_POS)
    return std if alpha_t < 0 else difficulty + alpha_t * std


def run_history(**config):
    """SRNS over the hand-made history, stopped at the start of epoch 6 with memory = items 2, 3, 4."""
    context = make_context([[], [1]], 6)
    sampler = SRNSSampler(make_config(**config), context)
    trainer = UserScores(torch.ones(2, 1), table_at(0))
    sampler.on_train_start(trainer)
    for epoch in range(6):
        sampler.on_epoch_start(epoch)
        trainer.set(items=table_at(epoch + 1))
        sampler.on_epoch_end(epoch, trainer)
    sampler.on_epoch_start(6)
    sampler.pools[sampler.head, 1] = torch.tensor([2, 3, 4, 5], dtype=sampler.pools.dtype)
    sampler.memory[1] = torch.tensor([0, 1, 2])
    current = item_table([0.0, CURRENT_POS, CURRENT[2], CURRENT[3], CURRENT[4], CURRENT[5]])
    return sampler, targets_for([1], [1], torch.ones(2, 1), current)


def test_position_of_gives_the_csr_index_or_minus_one():
    history = make_context([[], [3, 1], [], [2, 5, 4]], 6).history  # CSR items: 1 3 | 2 4 5
    users = torch.tensor([1, 1, 3, 3, 3, 2, 1])
    items = torch.tensor([1, 3, 2, 4, 5, 1, 2])
    assert history.position_of(users, items).tolist() == [0, 1, 2, 3, 4, -1, -1]
    assert history.position_of(torch.tensor([3]), torch.tensor([[5, 1]])).tolist() == [[4, -1]]
    sampler = SRNSSampler(make_config(), make_context([[], [3, 1], [], [2, 5, 4]], 6))
    assert sampler._position(users, items).tolist() == [0, 1, 2, 3, 4, -1, -1]  # the dense lookup agrees


# --------------------------------------------------------------------------- selection
def test_selection_follows_the_formula_on_a_hand_made_history():
    sampler, targets = run_history(srns_alpha=5.0, srns_warmup=6)  # alpha_6 = 5
    assert sampler.storage == "catalog" and sampler.alpha_t() == 5.0
    keys = {k: hand_key(k, 5.0) for k in (2, 3, 4)}
    expected = max(keys, key=keys.get)
    assert expected == 3 and max((2, 3, 4), key=lambda k: sig(CURRENT[k] - CURRENT_POS)) == 2
    assert int(sampler(targets).ids[0, 0]) == expected
    # the std term itself, per candidate, against the hand computation
    items = torch.tensor([[2, 3, 4]])
    one = torch.tensor([1])
    std = sampler._real_std(one, one, torch.tensor([0]), one, items, torch.tensor([[0, 1, 2]]))
    for column, k in enumerate((2, 3, 4)):
        assert float(std[0, column]) == pytest.approx(hand_key(k, -1.0), abs=1e-6)


def test_warm_start_epoch_zero_selects_by_difficulty_only():
    sampler, targets = run_history(srns_alpha=50.0, srns_warmup=50)
    sampler.on_epoch_start(0)
    assert sampler.alpha_t() == 0.0
    assert int(sampler(targets).ids[0, 0]) == 2  # hardest now, although item 3 has by far the largest std
    sampler.on_epoch_start(25)
    assert sampler.alpha_t() == pytest.approx(25.0)
    sampler.on_epoch_start(80)
    assert sampler.alpha_t() == pytest.approx(50.0)


def test_negative_alpha_selects_the_largest_std():
    sampler, targets = run_history(srns_alpha=-1.0)
    stds = {k: hand_key(k, -1.0) for k in (2, 3, 4)}
    assert max(stds, key=stds.get) == 3
    # with the snapshots before the window (s = 0, 1) included, item 4 would have the largest std
    wrong = {k: hand_key(k, -1.0, window=range(0, 7)) for k in (2, 3, 4)}
    assert max(wrong, key=wrong.get) == 4
    assert int(sampler(targets).ids[0, 0]) == 3


def test_top_k_takes_the_k_largest_keys():
    sampler, targets = run_history(srns_alpha=5.0, srns_warmup=6, neg_sample_num=2)
    keys = {k: hand_key(k, 5.0) for k in (2, 3, 4)}
    assert sorted(int(i) for i in sampler(targets).ids[0]) == sorted(sorted(keys, key=keys.get)[-2:])


# --------------------------------------------------------------------------- snapshots and pools
@pytest.mark.parametrize("pool_size,gather_ratio", [(3, 8), (3, 0), (40, 8)])
def test_every_choosable_item_has_its_snapshots_and_the_window_is_five_epochs(pool_size, gather_ratio, monkeypatch):
    """P = 3: pool storage (41 items > 5 P), scored by gathering from the catalog scores or (ratio 0) by a
    batched product over the pools; P = 40: catalog storage."""
    monkeypatch.setattr(srns_module, "GATHER_RATIO", gather_ratio)
    torch.manual_seed(0)
    histories = [[], [1, 2, 3], [4], [5, 6, 7, 8, 9]]
    context = make_context(histories, 41)
    sampler = SRNSSampler(make_config(srns_pool_size=pool_size, srns_s1=2), context)
    assert sampler.storage == ("pool" if pool_size == 3 else "catalog")
    n_users = len(histories)

    def at(s):  # score(u, i) = 100 i + s at snapshot time s: tells every snapshot apart
        users = torch.tensor([[1.0, float(s)]] * n_users)
        items = torch.tensor([[100.0 * i, 1.0] for i in range(41)])
        return users, items

    trainer = UserScores(*at(0))
    sampler.on_train_start(trainer)
    born = {slot: 0 for slot in range(5)}  # snapshot time at which each live pool got its first score
    history = context.history
    for epoch in range(13):
        sampler.on_epoch_start(epoch)
        assert sampler.taken == epoch + 1
        window = [0] if epoch == 0 else list(range(max(1, epoch - 4), epoch + 1))  # snapshot times
        assert len(window) == (1 if epoch == 0 else min(epoch, 5))
        assert sampler._window() == [s % 5 for s in window]
        assert born[sampler.head] <= window[0]  # the current pool was scored at every time of the window
        for s in window:
            for user in range(1, n_users):
                pool_items = sampler.pools[sampler.head, user].long()
                if sampler.storage == "catalog":
                    stored = sampler.snaps[user, pool_items, s % 5]
                else:
                    stored = sampler.snaps[user, sampler.head * pool_size + torch.arange(pool_size), s % 5]
                assert torch.equal(stored, 100.0 * pool_items + s)
            assert torch.equal(sampler.pos_snaps[:, s % 5], 100.0 * history.items + s)
        retiring = sampler.head
        trainer.set(*at(epoch + 1))
        sampler.on_epoch_end(epoch, trainer)
        born[retiring] = sampler.taken - 1
        assert sampler.head == (retiring + 1) % 5


def test_std_window_drops_snapshots_older_than_five_epochs():
    """One candidate whose relative score swings only at early epochs: once those epochs are more than five
    epoch ends back, its std is exactly that of the last five snapshots."""
    context = make_context([[], [1]], 4)
    sampler = SRNSSampler(make_config(srns_pool_size=4, srns_s1=2), context)
    values = [5.0, -5.0, 5.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # candidate 2 at s = 0..9; positive at 0
    trainer = UserScores(torch.ones(2, 1), item_table([0, 0, values[0], 0]))
    sampler.on_train_start(trainer)
    for epoch in range(9):
        sampler.on_epoch_start(epoch)
        items, memory = torch.tensor([[2, 2]]), torch.tensor([[0, 1]])
        one = torch.tensor([1])
        std = float(sampler._real_std(one, one, torch.tensor([0]), one, items, memory)[0, 0])
        window = [0] if epoch == 0 else list(range(max(1, epoch - 4), epoch + 1))
        assert std == pytest.approx(statistics.pstdev([sig(values[s]) for s in window]), abs=1e-6)
        trainer.set(items=item_table([0, 0, values[epoch + 1], 0]))
        sampler.on_epoch_end(epoch, trainer)
    assert std == pytest.approx(statistics.pstdev([sig(v) for v in values[4:9]]), abs=1e-6)


# --------------------------------------------------------------------------- memory refresh
def test_sample_without_replacement_follows_softmax():
    torch.manual_seed(1)
    draws = 100_000
    logits = torch.tensor([2.0, 1.0, 0.0])
    p = torch.softmax(logits, 0)
    first = sample_without_replacement(logits.expand(draws, -1), torch.zeros(draws, 3, dtype=torch.bool), 2)
    freq_first = torch.bincount(first[:, 0], minlength=3).double() / draws
    inclusion = torch.bincount(first.reshape(-1), minlength=3).double() / draws
    expected_inclusion = [float(p[i] + sum(p[j] * p[i] / (1 - p[j]) for j in range(3) if j != i)) for i in range(3)]
    assert torch.allclose(freq_first, p.double(), atol=0.005)
    assert torch.allclose(inclusion, torch.tensor(expected_inclusion, dtype=torch.double), atol=0.005)
    assert bool((first[:, 0] != first[:, 1]).all())
    invalid = torch.tensor([[False, True, False]]).expand(draws, -1)
    assert not bool((sample_without_replacement(logits.expand(draws, -1), invalid, 2) == 1).any())


def test_refresh_keeps_distinct_pool_slots_and_favours_high_scores_as_tau_falls():
    n_users, n_items = 801, 31
    histories = [[]] + [[1]] * (n_users - 1)
    means = []
    for tau in (100.0, 3.0, 1.0, 0.3):
        torch.manual_seed(2)
        context = make_context(histories, n_items)
        sampler = SRNSSampler(make_config(srns_pool_size=30, srns_s1=4, srns_s2=8, srns_tau=tau), context)
        items = item_table([0.0] + [i / 10 for i in range(1, n_items)])  # higher id, higher score
        trainer = UserScores(torch.ones(n_users, 1), items)
        sampler.on_train_start(trainer)
        sampler.on_epoch_start(0)
        users = torch.arange(1, n_users)
        for _ in range(3):
            sampler(targets_for(users, torch.ones_like(users), torch.ones(n_users, 1), items))
            assert_distinct_slots(sampler.memory[1:], 30)
        pool_items = sampler.pools[sampler.head, 1:].gather(1, sampler.memory[1:]).double()
        means.append(float(pool_items.mean()))
    assert means == sorted(means) and means[-1] - means[0] > 5  # monotone in 1 / tau, and by a wide margin


def assert_distinct_slots(memory, pool_size):
    ordered = memory.sort(dim=1).values
    assert bool((ordered[:, 1:] != ordered[:, :-1]).all())
    assert bool(((memory >= 0) & (memory < pool_size)).all())


@pytest.mark.parametrize("pool_size,s2", [(12, 5), (5, 8)])  # fresh slots wrap round the pool; S2 > P
def test_memory_slots_stay_distinct_when_fresh_slots_wrap_round_the_pool(pool_size, s2):
    torch.manual_seed(7)
    context = make_context([[], [1], [2], [3]], 9)
    sampler = SRNSSampler(make_config(srns_pool_size=pool_size, srns_s1=3, srns_s2=s2, srns_tau=0.5), context)
    users_table, items = torch.randn(4, 2), torch.randn(9, 2)
    sampler.on_train_start(UserScores(users_table, items))
    for _ in range(20):
        sampler(targets_for([1, 2, 3, 1], [1, 2, 3, 1], users_table, items))
        assert_distinct_slots(sampler.memory[1:], pool_size)


def test_a_user_seen_twice_in_a_batch_updates_once(monkeypatch):
    calls = []
    original = srns_module.sample_without_replacement

    def spy(logits, invalid, k):
        calls.append(logits.shape[0])
        return original(logits, invalid, k)

    monkeypatch.setattr(srns_module, "sample_without_replacement", spy)
    context = make_context([[], [1], [2]], 10)
    sampler = SRNSSampler(make_config(srns_pool_size=6), context)
    items = torch.randn(10, 2)
    sampler.on_train_start(UserScores(torch.randn(3, 2), items))
    sampler(targets_for([1, 2, 1, 1], [1, 2, 1, 1], torch.randn(3, 2), items))
    assert calls == [2]
    unique, first, inverse = first_occurrence(torch.tensor([5, 3, 5, 3, 7]))
    assert unique.tolist() == [3, 5, 7] and first.tolist() == [1, 0, 4] and inverse.tolist() == [1, 0, 1, 0, 2]
    assert occurrence_rank(torch.tensor([5, 3, 5, 3, 7, 5])).tolist() == [0, 0, 1, 1, 0, 2]


def test_never_returns_a_training_item():
    torch.manual_seed(3)
    n_users, n_items = 30, 25
    histories = [[]] + [torch.randperm(n_items - 1)[: 3 + u % 15].add(1).tolist() for u in range(1, n_users)]
    context = make_context(histories, n_items)
    sampler = SRNSSampler(make_config(srns_pool_size=40, srns_s1=4, srns_s2=6, srns_warmup=2), context)
    users_table, items = torch.randn(n_users, 4), torch.randn(n_items, 4)
    trainer = UserScores(users_table, items)
    sampler.on_train_start(trainer)
    history = context.history
    for epoch in range(8):
        sampler.on_epoch_start(epoch)
        for _ in range(5):
            rows = torch.randint(0, len(history.items), (64,))
            users, positives = history.owner[rows], history.items[rows]
            ids = sampler(targets_for(users, positives, users_table, items)).ids
            assert not bool(history.contains(users, ids).any())
            assert bool((ids > 0).all())
        users_table += 0.3 * torch.randn_like(users_table)
        trainer.set(users=users_table)
        sampler.on_epoch_end(epoch, trainer)
    stats = sampler.statistics()
    assert stats["chosen_hardness"] > stats["fresh_hardness"]


# --------------------------------------------------------------------------- synthetic mode
def test_synthetic_mode_feeds_a_false_negative_and_uses_epoch_start_raw_scores():
    torch.manual_seed(4)
    n_users, n_items = 6, 30
    histories = [[]] + [[1, 2, 3]] * (n_users - 1)
    context = make_context(histories, n_items)
    sampler = SRNSSampler(make_config(srns_mode="synthetic", srns_s1=4, srns_s2=5, srns_alpha=10.0,
                                      srns_warmup=2), context)
    false_negatives = torch.zeros(n_users, 2, dtype=torch.long)
    false_negatives[1:4, 1] = torch.tensor([20, 21, 22])  # users 4 and 5 have none
    false_negatives[2, 0] = 23
    sampler.set_false_negatives(false_negatives)
    known = {1: {20}, 2: {21, 23}, 3: {22}}
    users_table, items = torch.randn(n_users, 3), torch.randn(n_items, 3)
    trainer = UserScores(users_table, items)
    sampler.on_train_start(trainer)
    epoch_start = {}
    for epoch in range(8):
        sampler.on_epoch_start(epoch)
        epoch_start[epoch] = users_table @ items.T
        snapshot = sampler.snaps[:, :, (sampler.taken - 1) % 5]
        assert torch.allclose(snapshot, epoch_start[epoch])  # difficulty = raw score from the epoch start
        users = torch.tensor([1, 2, 3, 4, 5, 1, 2, 1])
        memory_before = sampler.memory[1].clone()
        ids = sampler(targets_for(users, torch.ones_like(users), users_table, items)).ids[:, 0]
        # first row of user 1: argmax over its memory of raw score + alpha_t * std of raw scores
        raw = epoch_start[epoch][1, memory_before]
        std = torch.zeros_like(raw)
        if epoch >= 5:  # zero in the first five epochs, then over the last five epoch-start snapshots
            history = torch.stack([epoch_start[e][1, memory_before] for e in range(epoch - 4, epoch + 1)])
            std = history.std(dim=0, correction=0)
        assert int(ids[0]) == int(memory_before[(raw + sampler.alpha_t() * std).argmax()])
        for user, item in zip(users.tolist(), ids.tolist()):  # a training item only if it is the injected one
            assert item not in histories[user] or item in known.get(user, set())
        for user in range(1, n_users):
            memory = sampler.memory[user].tolist()
            if user in known:
                assert memory[0] in known[user] and not set(memory[1:]) & set(histories[user])
            else:
                assert not set(memory) & set(histories[user])
        users_table += 0.5 * torch.randn_like(users_table)
        trainer.set(users=users_table)
        sampler.on_epoch_end(epoch, trainer)
    assert 0.0 <= sampler.statistics()["false_negative_share"] <= 1.0
    with pytest.raises(ConfigError, match="synthetic"):
        SRNSSampler(make_config(), context).set_false_negatives(false_negatives)


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("mode", ["real", "synthetic"])
def test_state_dict_round_trip_restores_pools_snapshots_and_memory(mode):
    torch.manual_seed(5)
    histories = [[]] + [[u, u + 1] for u in range(1, 9)]
    context = make_context(histories, 20)
    config = make_config(srns_mode=mode, srns_pool_size=5, srns_s1=2)
    sampler = SRNSSampler(config, context)
    users_table, items = torch.randn(9, 3), torch.randn(20, 3)
    trainer = UserScores(users_table, items)
    sampler.on_train_start(trainer)
    batch = ([1, 2, 3, 8, 1], [1, 2, 3, 8, 2])
    for epoch in range(7):
        sampler.on_epoch_start(epoch)
        sampler(targets_for(*batch, users_table, items))
        trainer.set(users=users_table + 0.1 * epoch)
        sampler.on_epoch_end(epoch, trainer)
    sampler.on_epoch_start(7)
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    buffer.seek(0)
    restored = SRNSSampler(config, context)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    for name in ("memory", "snaps", "pools", "pos_snaps"):
        a, b = getattr(sampler, name), getattr(restored, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    assert (restored.taken, restored.head, restored.epoch) == (sampler.taken, sampler.head, sampler.epoch)
    torch.manual_seed(6)
    first = sampler(targets_for(*batch, users_table, items)).ids
    torch.manual_seed(6)
    second = restored(targets_for(*batch, users_table, items)).ids
    assert torch.equal(first, second) and torch.equal(sampler.memory, restored.memory)
    restored.on_train_start(trainer)  # resuming: no new pre-training snapshot
    assert restored.taken == sampler.taken
    other = SRNSSampler(make_config(srns_mode=mode, srns_pool_size=5, srns_s1=3), context)
    with pytest.raises(ConfigError, match="srns_"):
        other.load_state_dict(sampler.state_dict())


# --------------------------------------------------------------------------- configuration
def test_refuses_sequential_models_and_impossible_settings():
    with pytest.raises(ConfigError, match=r"'srns'.*sequential.*per position"):
        SRNSSampler.check_config(make_config(MODEL_TYPE=ModelType.SEQUENTIAL, model="SASRec"))
    with pytest.raises(ConfigError, match="neg_sample_num"):
        SRNSSampler.check_config(_full_config(neg_sample_num=4))
    with pytest.raises(ConfigError, match="srns_pool_size"):
        SRNSSampler.check_config(_full_config(srns_pool_size=3))
    with pytest.raises(ConfigError, match="neg_exclude"):
        SRNSSampler.check_config(_full_config(neg_exclude="target"))
    SRNSSampler.check_config(_full_config(srns_pool_size=2000))  # larger than the catalog: fine


def _full_config(**over):
    class Config(dict):
        model_class = None

    from recbole.model.general_recommender import BPR

    config = Config(make_config(**over))
    config.model_class = BPR
    return config


def _register(monkeypatch):
    """SRNS is registered by name (recbole_negs.registry.SAMPLERS); nothing to add."""


def test_config_refuses_srns_for_sasrec(monkeypatch, tmp_path):
    _register(monkeypatch)
    monkeypatch.chdir(tmp_path)
    from recbole_negs import NegsConfig

    with pytest.raises(ConfigError, match="'srns'.*sequential"):
        NegsConfig(model="SASRec", dataset="ml-100k", config_dict={"sampler": "srns"})
    config = NegsConfig(model="BPR", dataset="ml-100k", config_dict={"method": "srns"})
    assert (config["sampler"], config["srns_s1"], config["srns_s2"], config["srns_tau"], config["srns_alpha"],
            config["srns_warmup"], config["neg_sample_num"]) == ("srns", 8, 64, 10.0, 5.0, 50, 1)


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_bpr_trains_with_srns_on_ml100k(monkeypatch, tmp_path):
    _register(monkeypatch)
    monkeypatch.chdir(tmp_path)
    from recbole_negs import run_recbole_negs

    seen = []
    original = SRNSSampler.statistics
    monkeypatch.setattr(SRNSSampler, "statistics", lambda self: seen.append(original(self)) or seen[-1])
    result = run_recbole_negs(model="BPR", dataset="ml-100k", config_dict={
        "sampler": "srns", "srns_pool_size": 50, "epochs": 2, "eval_step": 100, "show_progress": False,
        "state": "ERROR"}, saved=False)
    assert result["test_result"]["ndcg@10"] > 0
    assert len(seen) == 2
    for stats in seen:  # the chosen negatives are harder than uniform draws from the same pools
        assert stats["chosen_hardness"] > stats["fresh_hardness"]


# --------------------------------------------------------------------------- one class per mode
def test_srns_sampler_builds_the_class_of_its_mode():
    from recbole_negs.samplers.srns import RealSRNSSampler, SyntheticSRNSSampler

    context = make_context([[], [1]], 6)
    for mode, cls in (("real", RealSRNSSampler), ("synthetic", SyntheticSRNSSampler)):
        assert SRNSSampler.for_config(make_config(srns_mode=mode)) is cls
        sampler = SRNSSampler(make_config(srns_mode=mode), context)
        assert type(sampler) is cls and isinstance(sampler, SRNSSampler) and sampler.name == "srns"
    with pytest.raises(ConfigError, match="srns_mode.*real"):
        SRNSSampler.for_config(make_config(srns_mode="other"))
    with pytest.raises(ConfigError, match="nproc"):  # the synthetic mode's own refusal, through the base
        SRNSSampler.check_config(_full_config(srns_mode="synthetic", single_spec=False, nproc=2))
