"""Odd data must not be the reason a run dies late: users who hold almost the whole catalog, catalogs smaller
than H or S1 + S2, one-item sequences, duplicated interactions, items first seen at evaluation, and a loss that
turns non-finite (stopped with the epoch and batch, the last good checkpoint kept)."""

import glob

import pytest
import torch

from recbole_negs import run_recbole_negs
from recbole_negs.trainers.checkpoint import load_checkpoint
from recbole_negs.errors import DataError, TrainingError
from recbole_negs.model import NegsModel

QUIET = {"show_progress": False, "state": "ERROR", "epochs": 1, "seed": 1, "metrics": ["Hit", "NDCG"],
         "topk": [3], "valid_metric": "NDCG@3", "train_batch_size": 64, "eval_batch_size": 64,
         "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "hidden_size": 8, "inner_size": 8,
         "n_layers": 1, "n_heads": 1, "embedding_size": 8, "MAX_ITEM_LIST_LENGTH": 5}


def write_dataset(root, name, interactions):
    """RecBole atomic file ``<root>/<name>/<name>.inter`` from (user, item) pairs in time order."""
    folder = root / name
    folder.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"u{user}\ti{item}\t{t}" for t, (user, item) in enumerate(interactions)]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    return str(root)


def run(root, name, model, **config):
    return run_recbole_negs(model=model, dataset=name, config_dict={**QUIET, "data_path": root, **config})


def ordinary_users(n_users=12, n_items=10, length=6, offset=0):
    return [(u, (u * 3 + k) % n_items + offset) for u in range(n_users) for k in range(length)]


def test_users_holding_every_item_or_all_but_one(in_tmp):
    # user 99 has every one of the 10 items: RecBole's own sampler refuses the dataset; the plugin says why
    greedy = [(99, i) for i in range(10)] + [(99, 0), (99, 1)]
    root = write_dataset(in_tmp / "data", "greedy", ordinary_users() + greedy)
    with pytest.raises(DataError, match="interacted with every item.*user_inter_num_interval"):
        run(root, "greedy", "BPR", sampler="uniform")
    # user 98 holds all items but item 9 in training: its only negative is item 9, and training proceeds
    almost = [(98, i) for i in range(9)] + [(98, 0), (98, 1)]
    root = write_dataset(in_tmp / "data2", "almost", ordinary_users() + almost)
    result = run(root, "almost", "BPR", sampler="uniform", neg_sample_num=4)
    assert set(result["test_result"]) == {"hit@3", "ndcg@3"}


def test_catalog_smaller_than_dns_candidates(in_tmp):
    root = write_dataset(in_tmp / "data", "small", ordinary_users(n_items=6, length=4))
    result = run(root, "small", "BPR", sampler="dns", dns_candidates=50)  # with replacement: fine
    assert result["test_result"]["hit@3"] >= 0
    with pytest.raises(DataError, match="'dns_candidates' = 50"):
        run(root, "small", "BPR", sampler="dns", dns_candidates=50, neg_sample_replacement=False)


def test_catalog_smaller_than_srns_pools_and_memory(in_tmp):
    root = write_dataset(in_tmp / "data", "tiny", ordinary_users(n_items=8, length=4))
    result = run(root, "tiny", "BPR", method="srns", srns_pool_size=20, srns_s1=8, srns_s2=64, epochs=2,
                 train_batch_size=16)
    assert result["test_result"]["hit@3"] >= 0


def test_one_item_sequences_and_duplicates(in_tmp):
    # users 50..54 have a single training item after leave-one-out; user 60 repeats the same item
    short = [(50 + u, u) for u in range(5) for _ in range(3)]
    repeats = [(60, 2)] * 5 + [(60, 3), (60, 4)]
    root = write_dataset(in_tmp / "data", "odd", ordinary_users() + short + repeats)
    for model in ("SASRec", "BERT4Rec"):
        result = run(root, "odd", model, sampler="uniform", epochs=2)
        assert set(result["test_result"]) == {"hit@3", "ndcg@3"}
    result = run(root, "odd", "SASRec", method="ufnrec", ufn_warmup_epochs=0, ufn_reverse_threshold=1,
                 neg_sample_num=3, epochs=3)
    assert set(result["test_result"]) == {"hit@3", "ndcg@3"}


def test_items_first_seen_at_evaluation(in_tmp):
    # items 20.. occur only as the last (test) interaction of some users
    fresh = [(u, 20 + u) for u in range(6)]
    root = write_dataset(in_tmp / "data", "fresh", ordinary_users() + fresh)
    for model, sampler in (("BPR", "popularity"), ("SASRec", "genni"), ("LightGCN", "dns")):
        result = run(root, "fresh", model, sampler=sampler)
        assert set(result["test_result"]) == {"hit@3", "ndcg@3"}


def test_non_finite_loss_stops_with_epoch_and_batch_and_keeps_the_checkpoint(in_tmp, monkeypatch):
    root = write_dataset(in_tmp / "data", "nan", ordinary_users(n_users=40))
    calls = {"n": 0}
    original = NegsModel.calculate_loss

    def poisoned(self, interaction):
        calls["n"] += 1
        loss = original(self, interaction)
        return loss * float("nan") if calls["n"] > 2 else loss  # epoch 0 has 2 batches

    monkeypatch.setattr(NegsModel, "calculate_loss", poisoned)
    with pytest.raises(TrainingError, match="at epoch 1, batch 0"):
        run(root, "nan", "BPR", sampler="uniform", epochs=3, train_batch_size=128)
    (best,) = [f for f in glob.glob("saved/*.pth") if not f.endswith("-last.pth")]
    state = load_checkpoint(best)
    assert state["epoch"] == 0 and all(torch.isfinite(t).all() for t in state["state_dict"].values())
