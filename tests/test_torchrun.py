"""Launching with the standard tooling: two processes started by torchrun (gloo on CPU) run the plugin's
command line, each trains its own shard, and both end with the same parameters; RecBole's multi-machine keys
(one command per machine: --world_size, --group_offset, --ip, --port) form one job from two commands."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from recbole_negs import distributed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--model=BPR", "--dataset=ml-100k", "--sampler=dns", "--epochs=2", "--embedding_size=16",
        "--train_batch_size=2048", "--eval_batch_size=4096", "--show_progress=False", "--state=WARNING",
        "--metrics=['NDCG','Hit']", "--topk=[10]", "--valid_metric=NDCG@10", "--seed=7"]

# Runs the plugin's command line in one of torchrun's processes and keeps that process's model: the parameters
# it ends with go to rank<RANK>.pt, the shard of users it trained on to shard<RANK>.pt.
WORKER = """
import os, sys, torch
import recbole_negs.quick_start as quick_start
from recbole_negs.cli import main

kept = {}
real = quick_start.prepare_run

def keeping(config):
    out = real(config)
    kept["model"], kept["train_data"] = out[1], out[2]
    return out

quick_start.prepare_run = keeping
code = main(sys.argv[1:])
rank = os.environ["RANK"]
torch.save({k: v.clone() for k, v in kept["model"].state_dict().items()}, f"rank{rank}.pt")
kept["train_data"].sampler.set_epoch(0)
torch.save(sorted(kept["train_data"].sampler), f"shard{rank}.pt")
sys.exit(code)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_torchrun_environment_becomes_recbole_keys(monkeypatch):
    for name, value in {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
                        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29400"}.items():
        monkeypatch.setenv(name, value)
    assert distributed.torchrun_keys() == {"local_rank": 1, "offset": 4, "world_size": 8, "nproc": 4,
                                           "ip": "10.0.0.1", "port": "29400"}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.torchrun_keys() is None, "a single torchrun process trains as a plain run"
    monkeypatch.delenv("RANK")
    assert distributed.torchrun_keys() is None


@pytest.mark.slow
def test_two_torchrun_processes_end_with_equal_parameters(in_tmp):
    (in_tmp / "worker.py").write_text(WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
               "--master_addr=localhost", f"--master_port={_free_port()}", "worker.py", *TINY]
    done = subprocess.run(command, cwd=in_tmp, env=_env(), capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(in_tmp / f"rank{r}.pt") for r in (0, 1))
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), f"{name} differs between the processes"
    shards = [set(torch.load(in_tmp / f"shard{r}.pt")) for r in (0, 1)]
    assert len(shards[0] & shards[1]) <= 1 and len(shards[0]) > 100, "each process trains its own shard"
    assert len(list((in_tmp / "saved").glob("*.pth"))) >= 1, "rank 0 wrote the checkpoint"


@pytest.mark.slow
def test_one_command_per_machine_with_recbole_keys(in_tmp):
    """Two 'machines' of one process each: the second command joins the first's job through --ip/--port and
    --group_offset, as RecBole's own multi-machine launch does."""
    port = _free_port()
    script = os.path.join(REPO, "run_recbole_negs.py")
    machines = [subprocess.Popen([sys.executable, script, *TINY, "--nproc=1", "--world_size=2", "--ip=localhost",
                                  f"--port={port}", f"--group_offset={offset}"],
                                 cwd=in_tmp, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for offset in (0, 1)]
    try:
        outputs = [machine.communicate(timeout=420) for machine in machines]
    finally:
        for machine in machines:
            machine.kill()
    for machine, (_, err) in zip(machines, outputs):
        assert machine.returncode == 0, err[-3000:]
    logs = sorted((in_tmp / "log" / "BPR").glob("*.log"))
    assert logs, "the job logged"
