"""The arithmetic of benchmarks/device_runs.py: per-user metrics from held-out ranks, the paired bootstrap, the
verdict, and a table made from two tiny fake rows (no training)."""

import json
import math

import numpy as np
import pytest

from benchmarks import device_runs as dr
from benchmarks import device_specs


def test_per_user_metrics_from_ranks_match_recbole_definitions():
    # user 7: one held-out item at rank 1; user 3: two held-out items at ranks 2 and 20; user 5: rank 11
    users = [7, 3, 3, 5]
    ranks = [1, 2, 20, 11]
    uniq, ndcg = dr.per_user_metric(users, ranks, "ndcg@10")
    assert uniq.tolist() == [3, 5, 7]
    idcg_two = 1 + 1 / math.log2(3)
    assert ndcg == pytest.approx([(1 / math.log2(3)) / idcg_two, 0.0, 1.0])
    assert dr.per_user_metric(users, ranks, "hit@10")[1].tolist() == [1.0, 0.0, 1.0]
    assert dr.per_user_metric(users, ranks, "recall@10")[1].tolist() == [0.5, 0.0, 1.0]
    assert dr.per_user_metric(users, ranks, "recall@50")[1].tolist() == [1.0, 1.0, 1.0]
    assert dr.per_user_metric(users, ranks, "mrr@10")[1].tolist() == [0.5, 0.0, 1.0]
    with pytest.raises(ValueError):
        dr.parse_metric("auc@10")


def test_held_out_ranks_count_the_items_scored_above():
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 40, generator=generator)
    scores[1, :10] = float("-inf")  # masked history
    scores[2, 3] = scores[2, 7]  # a tie counts as not above
    positive_u = torch.tensor([0, 0, 1, 2, 2, 2, 4])
    positive_i = torch.tensor([3, 9, 12, 7, 3, 0, 39])
    brute = torch.stack([(scores[u] > scores[u, i]).sum() + 1 for u, i in zip(positive_u, positive_i)])
    assert dr.held_out_ranks(scores, positive_u, positive_i).tolist() == brute.tolist()


def test_paired_bootstrap_of_a_constant_and_of_noise():
    mean, se, lo, hi = dr.paired_bootstrap(np.full(50, 0.02), n_boot=200)
    assert (mean, se, lo, hi) == pytest.approx((0.02, 0.0, 0.02, 0.02))
    diff = np.array([1.0, -1.0] * 500)  # mean 0, per-user sd 1: bootstrap SE close to 1 / sqrt(1000)
    mean, se, lo, hi = dr.paired_bootstrap(diff, n_boot=1000, seed=3)
    assert mean == 0.0
    assert se == pytest.approx(1 / math.sqrt(1000), rel=0.1)
    assert lo < 0 < hi
    assert dr.paired_bootstrap(diff, n_boot=1000, seed=3) == (mean, se, lo, hi)  # seeded: repeatable


def test_verdict_needs_both_the_seed_se_and_the_bootstrap():
    assert dr.verdict(0.01, 0.002, 0.01, 0.001) == "**gain**"
    assert dr.verdict(-0.01, 0.002, -0.01, 0.001) == "**loss**"
    assert dr.verdict(0.01, 0.008, 0.01, 0.001) == "noise"  # seeds disagree
    assert dr.verdict(0.01, 0.002, 0.01, 0.006) == "noise"  # bootstrap disagrees
    assert dr.verdict(0.01, 0.002, -0.01, 0.001) == "noise"  # opposite signs
    assert dr.verdict(0.01, float("nan"), 0.01, 0.001) == "n/a (1 seed)"


def _fake_run(folder, row, seed, ranks, ndcg):
    name = f"toy__{row}__s{seed}"
    record = {"run": name, "spec": "toy", "row": row, "seed": seed, "status": "done", "stopped_by": "epochs",
              "epochs": [{"epoch": 0, "train_s": 2.0}, {"epoch": 1, "train_s": 4.0}],
              "evals": [{"epoch": 1, "valid_score": 0.1, "t_train": 7.0}],
              "best": {"epoch": 1, "t_train": 7.0}, "test": {"recbole": {"ndcg@10": ndcg}}}
    with open(folder / f"{name}.json", "w", encoding="utf-8") as f:
        json.dump(record, f)
    np.savez(folder / f"{name}.npz", recbole_user=np.arange(len(ranks)), recbole_rank=np.array(ranks))


def test_table_pairs_rows_on_users_and_averages_seeds(tmp_path):
    spec = {"dataset": "toy", "baseline": "base", "metrics": ["ndcg@10"], "main": "ndcg@10",
            "protocols": ["recbole"], "rows": [{"name": "base"}, {"name": "better"}]}
    # 4 users; the better row ranks users 0 and 1 at 1 instead of 3: +(1 - 0.5) per such user
    _fake_run(tmp_path, "base", 1, [3, 3, 1, 30], 0.5)
    _fake_run(tmp_path, "base", 2, [3, 3, 1, 30], 0.5)
    _fake_run(tmp_path, "better", 1, [1, 1, 1, 30], 0.75)
    _fake_run(tmp_path, "better", 2, [1, 3, 1, 30], 0.625)
    runs, _ = dr.load_runs(str(tmp_path))
    base = [r for r in runs.values() if r["row"] == "base"]
    better = [r for r in runs.values() if r["row"] == "better"]
    assert dr.seed_averaged_users(better, "recbole", "ndcg@10") == {0: 1.0, 1: 0.75, 2: 1.0, 3: 0.0}
    c = dr.compare(base, better, "recbole", "ndcg@10", n_boot=200)
    assert c["users"] == 4
    assert c["seed_diff"] == pytest.approx(0.1875)
    assert c["seed_se"] == pytest.approx(0.0625)  # base SE 0, better SE 0.0625
    assert c["boot_diff"] == pytest.approx((0.5 + 0.25) / 4)  # user 0 +0.5, user 1 +0.25 (seed-averaged)
    table = dr.spec_table("toy", spec, runs, n_boot=200)
    line = next(x for x in table.splitlines() if x.startswith("| better"))
    assert "0.6875 ± 0.0625" in line and "+0.1875 (3.0 SE)" in line and "| 2/2 |" in line
    assert "| 3.0 ± 0.0 |" in line  # median seconds per epoch


def test_specs_expand_to_runs_with_their_baseline():
    runs = device_specs.expand(["genni_table1"])
    assert runs[0][1]["name"] == device_specs.SPECS["genni_table1"]["baseline"]
    assert len(runs) == sum(len(row["seeds"]) for row in device_specs.SPECS["genni_table1"]["rows"])
    for name, spec in device_specs.SPECS.items():
        assert spec["main"] in spec["metrics"], name
        assert set(spec["protocols"]) <= {"recbole", "masked"}, name
