"""Two CPU processes on RecBole's distributed path (gloo): each trains its own shard of every epoch, and at
the end the parameters are equal across processes, the sampler statistics are reduced over both, and
UFNRec's per-(user, position) mining state and SRNS's per-user memory hold both processes' visits, identically
in each."""

import os
import socket

import pytest
import torch

from recbole_negs import run_recbole_negs
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.quick_start import prepare_run

from conftest import SMALL

CASES = {
    "bpr_dns": ("BPR", {"sampler": "dns", "train_batch_size": 2048}),
    "bpr_srns": ("BPR", {"method": "srns", "srns_pool_size": 50, "srns_warmup": 1, "train_batch_size": 2048}),
    "sasrec_ufnrec": ("SASRec", {"method": "ufnrec", "ufn_warmup_epochs": 0, "ufn_reverse_threshold": 1,
                                 "neg_sample_num": 4, "train_batch_size": 128}),
}


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def _worker(rank, case, port, folder):
    model, extra = CASES[case]
    config = NegsConfig(model=model, dataset="ml-100k", config_dict={
        **SMALL, **extra, "epochs": 2, "local_rank": rank, "world_size": 2, "nproc": 2, "ip": "localhost",
        "port": port, "offset": 0, "checkpoint_dir": os.path.join(folder, "saved")})
    _, model, train_data, valid_data, _, trainer = prepare_run(config)
    trainer.fit(train_data, valid_data, saved=False, show_progress=False)
    train_data.sampler.set_epoch(0)
    state = {"params": {k: v.clone() for k, v in model.state_dict().items()}, "stats": trainer.last_statistics,
             "shard": sorted(train_data.sampler)}
    if model.sampler.name == "srns":
        state.update(memory=model.sampler.memory.clone(), cursor=model.sampler.cursor.clone(),
                     pools=model.sampler.pools.clone(), snaps=model.sampler.snaps.clone())
    if hasattr(trainer, "miner"):
        state["record"] = trainer.miner.record.clone()
        state["placements"] = trainer.miner.placements.state_dict()
    torch.save(state, os.path.join(folder, f"rank{rank}.pt"))


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_gloo_processes_agree(case, in_tmp):
    import torch.multiprocessing as mp

    os.makedirs(in_tmp / "saved", exist_ok=True)
    os.makedirs(in_tmp / "log", exist_ok=True)
    mp.spawn(_worker, args=(case, _free_port(), str(in_tmp)), nprocs=2, join=True)
    first, second = (torch.load(in_tmp / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert len(set(first["shard"]) & set(second["shard"])) <= 1, "each process trains its own shard"
    for name, tensor in first["params"].items():
        assert torch.equal(tensor, second["params"][name]), f"{name} differs between the processes"
    assert first["stats"] == second["stats"], "statistics are reduced over the processes"
    for key in ("memory", "cursor", "pools", "snaps"):  # SRNS: the merged per-user state
        if key in first:
            assert torch.equal(first[key], second[key]), f"SRNS {key} differs between the processes"
    if "record" in first:
        assert torch.equal(first["record"], second["record"])
        assert torch.equal(first["placements"]["keys"], second["placements"]["keys"])
        assert torch.equal(first["placements"]["values"], second["placements"]["values"])
        assert int((first["record"] > 0).sum()) > 0 and len(first["placements"]["keys"]) > 0


@pytest.mark.slow
def test_launcher_returns_rank0_result(in_tmp):
    result = run_recbole_negs(model="BPR", dataset="ml-100k", config_dict={
        **SMALL, "sampler": "uniform", "epochs": 1, "train_batch_size": 2048}, nproc=2, port=_free_port())
    assert set(result["test_result"]) == {"ndcg@10", "hit@10"}
