"""Whole runs on ml-100k through the public entry points: every supported backbone trains on the plugin's
path and is evaluated by RecBole's evaluators; the command line reports user mistakes without a traceback."""

import os
import subprocess
import sys

import pytest
import torch

from recbole_negs import run_recbole_negs

from conftest import SMALL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(model, **overrides):
    return run_recbole_negs(model=model, dataset="ml-100k", config_dict={**SMALL, **overrides}, saved=True)


def _check_result(result):
    assert set(result) == {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}
    assert all(type(v) is float for v in result["test_result"].values())
    assert set(result["test_result"]) == {"ndcg@10", "hit@10"}


GENERAL = {"train_batch_size": 2048}  # few propagations per epoch for LightGCN


@pytest.mark.slow
@pytest.mark.parametrize("model,extra", [
    ("SASRec", {"sampler": "uniform"}), ("GRU4Rec", {"sampler": "uniform"}), ("BERT4Rec", {"sampler": "uniform"}),
    ("LightGCN", {"sampler": "uniform", **GENERAL}), ("SASRec", {"sampler": "none", "train_batch_size": 2048}),
    ("SASRec", {"method": "genni"}), ("BPR", {"sampler": "dns", **GENERAL}),
    ("LightGCN", {"method": "pdns", **GENERAL}), ("SASRec", {"sampler": "popularity", "loss": "sampled_softmax"}),
])
def test_two_epochs_beat_random_ranking(model, extra, in_tmp):
    """After two epochs every backbone ranks the held-out item better than chance (NDCG@10 of a random
    ranking of ~1,650 items is about 0.003)."""
    result = _run(model, epochs=2, learning_rate=0.005, **extra)
    _check_result(result)
    assert result["test_result"]["ndcg@10"] > 0.006, result


@pytest.mark.slow
def test_training_improves_bpr(in_tmp):
    untrained = _run("BPR", epochs=0, **GENERAL)
    trained = _run("BPR", epochs=5, learning_rate=0.01, **GENERAL)
    _check_result(trained)
    assert trained["test_result"]["ndcg@10"] > 2 * untrained["test_result"]["ndcg@10"]


def test_installed_package_carries_its_yaml_defaults(tmp_path):
    """Run from outside the repository, the package finds every property file (inside the wheel when
    installed with pip install .)."""
    code = ("from recbole_negs.config.properties import properties_dir, all_defaults; import os; "
            "d = properties_dir(); print(d); print(sorted(os.listdir(os.path.join(d, 'sampler')))); "
            "print(len(all_defaults()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    folder, samplers, n_defaults = done.stdout.split("\n")[:3]
    for name in ("uniform", "popularity", "dns", "genni", "none"):
        assert f"'{name}.yaml'" in samplers
    assert os.path.isfile(os.path.join(folder, "method", "pdns", "LightGCN.yaml"))
    assert int(n_defaults) >= 20


def _cli(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(REPO, "run_recbole_negs.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_reports_a_bad_value_without_traceback(in_tmp):
    done = _cli("--model=BPR", "--sampler=bogus", cwd=in_tmp)
    assert done.returncode == 2
    assert "recbole-negs: error: config key 'sampler' = 'bogus' is invalid; allowed:" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(in_tmp.iterdir()) == [], "nothing is written for a bad config"


@pytest.mark.slow
def test_cli_runs_from_another_directory(in_tmp):
    done = _cli("--model=BPR", "--epochs=1", "--show_progress=False", "--sampler=popularity", cwd=in_tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test result" in done.stdout + done.stderr


def test_history_masking_in_sequential_full_ranking(in_tmp):
    """With eval_mask_history no item of a user's input sequence (other than the target) is ever ranked, and
    the metrics can only rise: each masked item was a competitor of the target."""
    from conftest import build

    config, model, train_data, valid_data, test_data, trainer = build("SASRec", sampler="uniform",
                                                                      eval_mask_history=True)
    trainer.tot_item_num = test_data._dataset.item_num  # what RecBole's evaluate sets before scoring
    model.eval()
    batch = next(iter(test_data))
    interaction, scores, _, _ = trainer._full_sort_batch_eval(batch)
    sequence = interaction[config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]]
    target = interaction[config["ITEM_ID_FIELD"]]
    for row in range(len(sequence)):
        earlier = set(sequence[row].tolist()) - {0, int(target[row])}
        assert all(scores[row, item] == float("-inf") for item in earlier)
        assert scores[row, int(target[row])] > float("-inf")
    masked = trainer.evaluate(test_data, load_best_model=False)
    trainer.config["eval_mask_history"] = False
    unmasked = trainer.evaluate(test_data, load_best_model=False)
    assert masked["hit@10"] >= unmasked["hit@10"] and masked["ndcg@10"] >= unmasked["ndcg@10"]


def test_sampled_evaluation_negatives_outside_training_items(in_tmp):
    """eval_neg_exclude: train (the UFNRec code's protocol): each evaluated target gets 100 negatives, none of
    them a training item of its user or the target itself; at test the validation item may be one."""
    from conftest import build

    eval_args = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100"}
    config, model, train_data, valid_data, test_data, trainer = build(
        "SASRec", sampler="uniform", eval_args=eval_args, eval_neg_exclude="train")
    history = model.sampler.context.history
    sampler = test_data._sampler
    users = torch.arange(1, history.n_users).repeat(20)
    targets = torch.randint(1, history.n_items, (len(users),))
    ids = sampler.sample_by_user_ids(users.numpy(), targets.numpy(), 100).view(100, -1).t()
    assert not bool(history.contains(users, ids).any()) and not bool((ids == targets[:, None]).any())
    assert bool((ids > 0).all())
    result = trainer.evaluate(test_data, load_best_model=False)
    assert set(result) == {"ndcg@10", "hit@10"}


def test_fixed_evaluation_negatives_per_user(in_tmp):
    """eval_neg_seed (the SRNS code's protocol): one set of negatives per user, the same at validation and
    test and at every evaluation, outside everything the user interacted with."""
    from conftest import build

    eval_args = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100"}
    config, model, train_data, valid_data, test_data, trainer = build(
        "BPR", sampler="uniform", eval_args=eval_args, eval_neg_exclude="train", eval_neg_seed=5)
    users = torch.arange(1, model.sampler.context.n_users)
    first = valid_data._sampler.sample_by_user_ids(users.numpy(), users.numpy(), 100).view(100, -1).t()
    again = test_data._sampler.sample_by_user_ids(users.numpy(), users.numpy(), 100).view(100, -1).t()
    assert torch.equal(first, again)
    everything = test_data._sampler.fixed.history
    assert not bool(everything.contains(users, first).any())
    assert everything.sizes.sum() > model.sampler.context.history.sizes.sum()  # valid and test items included
    assert set(trainer.evaluate(test_data, load_best_model=False)) == {"ndcg@10", "hit@10"}


def _evaluated_users(trainer, loader):
    """The users one evaluation ranks, read from the batches of the loader the trainer evaluates."""
    users = []
    for interaction, *_ in trainer.evaluated_users(loader):
        users += interaction[trainer.config["USER_ID_FIELD"]].tolist()
    return users


@pytest.mark.parametrize("model", ["SASRec", "BPR"])
def test_eval_max_users_draws_a_fresh_subset_per_evaluation(model, in_tmp):
    """eval_max_users (the UFNRec code's 10,000 random users): each evaluation ranks exactly that many distinct
    users, a different subset each time, the same subsets again with the same seed; the metric is computed
    over them alone; without the key every user is ranked."""
    from conftest import build

    _, _, _, _, test_data, trainer = build(model, sampler="uniform", eval_max_users=100)
    first, second = _evaluated_users(trainer, test_data), _evaluated_users(trainer, test_data)
    assert len(first) == len(set(first)) == 100 and len(second) == len(set(second)) == 100
    assert set(first) != set(second)
    _, _, _, _, again_data, again = build(model, sampler="uniform", eval_max_users=100)
    assert _evaluated_users(again, again_data) == first and _evaluated_users(again, again_data) == second

    counted = []
    original = again._full_sort_batch_eval
    again._full_sort_batch_eval = lambda batch: counted.append(batch) or original(batch)
    again.evaluate(again_data, load_best_model=False)
    assert sum(len(batch[0]) for batch in counted) == 100  # one row per ranked user

    _, _, _, _, full_data, full = build(model, sampler="uniform")
    assert len(_evaluated_users(full, full_data)) == full_data.sample_size > 100


def test_every_package_of_the_source_tree_is_shipped():
    """A sub-package missing from pyproject's list installs a wheel that cannot import (CI found one)."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    root = os.path.join(REPO, "recbole_negs")
    found = {"recbole_negs" + dirpath[len(root):].replace(os.sep, ".")
             for dirpath, _, files in os.walk(root) if "__init__.py" in files}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"
