"""Shared fixtures: small ml-100k pipelines (ml-100k ships inside the recbole wheel) built once per session,
and runs inside a temporary directory so RecBole's saved/ and log/ folders never land in the repository."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recbole_negs  # noqa: F401  (applies the compat layer before RecBole is used)
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.history import UserHistory
from recbole_negs.samplers import SamplingContext
from recbole_negs.quick_start import prepare_run

SMALL = {
    "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1, "embedding_size": 16,
    "MAX_ITEM_LIST_LENGTH": 20, "epochs": 1, "train_batch_size": 256, "seq_batch_size_unit": "rows", "eval_batch_size": 4096,
    "show_progress": False, "state": "ERROR", "seed": 7, "reproducibility": True, "metrics": ["NDCG", "Hit"],
    "topk": [10], "valid_metric": "NDCG@10", "checkpoint_dir": "saved",
}


def small_config(model, **overrides):
    return NegsConfig(model=model, dataset="ml-100k", config_dict={**SMALL, **overrides})


def build(model, **overrides):
    """(config, model, train_data, valid_data, test_data, trainer) on the plugin's training path."""
    config = small_config(model, **overrides)
    _, net, train_data, valid_data, test_data, trainer = prepare_run(config)
    return config, net, train_data, valid_data, test_data, trainer


def context_from_histories(histories, n_items, counts=None):
    """A SamplingContext for hand-made cases: ``histories`` maps user -> training items; item counts default
    to how often each item occurs in the histories."""
    rows = [u for u, items in histories.items() for _ in items]
    cols = [i for items in histories.values() for i in sorted(items)]
    matrix = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(histories), n_items))
    if counts is None:
        counts = torch.from_numpy(np.bincount(cols, minlength=n_items).astype(np.int64))
    return SamplingContext(UserHistory.from_matrix(matrix), len(histories), n_items, counts, torch.device("cpu"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread: on a busy 2-core machine two OpenMP threads spin against other processes and ran
    small tensor operations 10-50x slower here; the results do not depend on it."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


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
