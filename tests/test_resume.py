"""Exact resume and determinism: for every method, a run stopped after epoch 1 of 3 and resumed from its
"last" checkpoint ends with the same parameters, sampler state and metrics as the uninterrupted run, and the
same seed twice gives identical results. (CPU; reproducibility on, RecBole's default.)"""

import glob

import pytest
import torch

from recbole_negs import run_recbole_negs
from recbole_negs.trainers.checkpoint import load_checkpoint

from conftest import SMALL

TINY = {**SMALL, "hidden_size": 8, "inner_size": 16, "embedding_size": 8, "stopping_step": 100, "seed": 11}
METHODS = {
    "uniform": ("BPR", {"sampler": "uniform", "train_batch_size": 4096}),
    "popularity": ("BPR", {"sampler": "popularity", "train_batch_size": 4096}),
    "dns": ("BPR", {"sampler": "dns", "loss": "soft_bpr", "train_batch_size": 4096}),
    "srns": ("BPR", {"method": "srns", "srns_pool_size": 40, "srns_warmup": 2, "train_batch_size": 4096}),
    "genni": ("SASRec", {"sampler": "genni", "genni_curriculum": True, "genni_beta": 0.2, "train_batch_size": 512}),
    "shared": ("SASRec", {"sampler": "uniform", "loss": "sampled_softmax", "neg_share": "batch",
                          "neg_sample_num": 64, "train_batch_size": 512}),
    "in_batch": ("SASRec", {"sampler": "mixed", "neg_sample_num": 64, "mixed_uniform_num": 32,
                            "train_batch_size": 512}),
    "ufnrec": ("SASRec", {"method": "ufnrec", "ufn_warmup_epochs": 1, "ufn_reverse_threshold": 1,
                          "neg_sample_num": 5, "train_batch_size": 512}),
}
_runs = {}


def _run(method, epochs, directory, resume_from=None):
    model, extra = METHODS[method]
    config = {**TINY, **extra, "epochs": epochs, "checkpoint_dir": directory}
    if resume_from:
        config["checkpoint_file"] = resume_from
    before = set(glob.glob(f"{directory}/*-last.pth"))
    result = run_recbole_negs(model=model, dataset="ml-100k", config_dict=config, saved=True)
    (last,) = set(glob.glob(f"{directory}/*-last.pth")) - before  # this run's own file
    return result, load_checkpoint(last)


def _uninterrupted(method, tmp_path_factory, monkeypatch):
    if method not in _runs:
        monkeypatch.chdir(tmp_path_factory.mktemp(method))
        _runs[method] = _run(method, 3, "full")
    return _runs[method]


def _same_run(a, b):
    """(result, last checkpoint) of two runs: the same metrics, parameters and plugin state."""
    (result_a, state_a), (result_b, state_b) = a, b
    _same_state(state_a, state_b)
    assert result_a == result_b


def _same_state(a, b):
    assert a["epoch"] == b["epoch"]
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert _flatten(a["negs"]) == _flatten(b["negs"])


def _flatten(tree, prefix=""):
    """Nested state as {path: python value or tensor bytes}, comparable with ==."""
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}/{key}"))
        return out
    if isinstance(tree, torch.Tensor):
        return {prefix: (tuple(tree.shape), tree.cpu().numpy().tobytes())}
    return {prefix: tree}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_from_last_checkpoint_is_exact(method, tmp_path_factory, monkeypatch):
    full = _uninterrupted(method, tmp_path_factory, monkeypatch)
    monkeypatch.chdir(tmp_path_factory.mktemp(f"{method}-resume"))
    _, stopped = _run(method, 1, "stopped")
    assert stopped["epoch"] == 0
    (last,) = glob.glob("stopped/*-last.pth")
    written = {path: open(path, "rb").read() for path in glob.glob("stopped/*.pth")}
    _same_run(full, _run(method, 3, "stopped", resume_from=last))  # the same checkpoint_dir
    assert all(open(path, "rb").read() == data for path, data in written.items()), "the old files are untouched"
    assert len(glob.glob("stopped/*.pth")) == 4, "the resumed run writes its own best and last files"


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_same_seed_same_results(method, tmp_path_factory, monkeypatch):
    full = _uninterrupted(method, tmp_path_factory, monkeypatch)
    monkeypatch.chdir(tmp_path_factory.mktemp(f"{method}-again"))
    _same_run(full, _run(method, 3, "again"))
