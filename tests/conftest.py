"""Shared fixtures: small ml-100k pipelines (ml-100k ships inside the recbole wheel) built once per session,
and runs inside a temporary directory so RecBole's saved/ and log/ folders never land in the repository."""

import sys

import pytest

import recbole_negs  # noqa: F401  (applies the compat layer before RecBole is used)
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model

from recbole_negs.config import NegsConfig
from recbole_negs.quick_start import build_training, seed_run

SMALL = {
    "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1, "embedding_size": 16,
    "MAX_ITEM_LIST_LENGTH": 20, "epochs": 1, "train_batch_size": 256, "eval_batch_size": 4096,
    "show_progress": False, "state": "ERROR", "seed": 7, "reproducibility": True, "metrics": ["NDCG", "Hit"],
    "topk": [10], "valid_metric": "NDCG@10", "checkpoint_dir": "saved",
}


def small_config(model, **overrides):
    return NegsConfig(model=model, dataset="ml-100k", config_dict={**SMALL, **overrides})


def build(model, **overrides):
    """(config, model, train_data, valid_data, test_data, trainer) on the plugin's training path."""
    config = small_config(model, **overrides)
    seed_run(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    seed_run(config)
    net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    net, train_data, trainer = build_training(config, net, train_data)
    return config, net, train_data, valid_data, test_data, trainer


@pytest.fixture(autouse=True, scope="session")
def plain_argv():
    """RecBole's Config reads sys.argv as config keys; pytest's own arguments must not leak into it."""
    saved = sys.argv
    sys.argv = ["pytest"]
    yield
    sys.argv = saved


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path
