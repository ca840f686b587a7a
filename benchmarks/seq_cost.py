"""What a sequential training epoch costs, configuration by configuration, side by side in one run (issue 17).

Part 1, full Beauty (22,363 users, 12,101 items), SASRec hidden 64, 2 layers, 2 heads, L50, RecBole's stock
train_batch_size 2048 for every row (the plugin's all-position rows count it in targets, so every row makes
about RecBole's 65 steps per epoch): each configuration runs in a fresh process, takes ``--warmup`` steps, then
times ``--steps`` optimizer steps (forward, sampling, loss, backward, Adam) in CPU time of its one torch
thread, so the other jobs of a shared machine do not inflate them. Seconds per epoch = median step x steps per
epoch. Peak memory = the rise of the process's peak resident size (VmHWM) over its size once data and model
are built, through the warm-up and timed steps.

Part 2, synthetic catalogs of 10^5 and 10^6 items, 12,800 targets per batch (256 sequences x 50): one loss
step (forward + backward, gradients to the queries and the item table) of the exact full-softmax CE, written out
in chunks of rows (the least an exact full softmax costs; RecBole's own CE holds the whole [12,800, N] logits
and does not fit 24 GB at 10^6), against logQ-corrected sampled softmax over K 1024 shared uniform negatives.

    python -m benchmarks.seq_cost                   # both parts (about 15 minutes on 2 shared cores)
    python -m benchmarks.seq_cost --part synthetic  # part 2 only
    python -m benchmarks.seq_cost --quick           # smoke test: 2 steps per row, 10^4 and 10^5 items
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch

from benchmarks import _data
from benchmarks._common import markdown_table, resolve_out, set_threads, use_scratch_dir, write_result
from benchmarks.scale import full_ce_chunked, peak_since, reset_peak

SASREC = {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "hidden_dropout_prob": 0.5,
          "attn_dropout_prob": 0.5, "MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 2048, "learning_rate": 1e-3,
          "show_progress": False, "state": "ERROR", "reproducibility": False}
SS = {"loss": "sampled_softmax"}
ROWS = [  # (label, plugin keys)
    ("RecBole CE (prefix rows)", {"sampler": "none", "loss_type": "CE"}),
    ("plugin full softmax (all positions)", {"loss": "full_softmax"}),
    ("uniform BCE K 1", {"sampler": "uniform", "loss": "bce", "neg_sample_num": 1}),
    ("uniform BCE K 1, reproducibility True", {"sampler": "uniform", "loss": "bce", "neg_sample_num": 1,
                                               "reproducibility": True}),
    ("uniform sampled softmax K 256, per target", {**SS, "neg_sample_num": 256}),
    ("uniform sampled softmax K 256, shared per sequence", {**SS, "neg_sample_num": 256, "neg_share": "sequence"}),
    ("uniform sampled softmax K 256, shared per batch", {**SS, "neg_sample_num": 256, "neg_share": "batch"}),
    ("uniform sampled softmax K 1024, shared per batch", {**SS, "neg_sample_num": 1024, "neg_share": "batch"}),
    ("uniform sampled softmax K 4096, shared per batch", {**SS, "neg_sample_num": 4096, "neg_share": "batch"}),
    ("in-batch (K 1024)", {"sampler": "in_batch", "neg_sample_num": 1024}),
    ("mixed (1024 in-batch + 1024 uniform)", {"sampler": "mixed"}),
    ("GenNi beta 1 (BCE K 1)", {"sampler": "genni", "genni_beta": 1.0}),
    ("GenNi beta 0.1, per position (grouped sets)", {"sampler": "genni", "genni_beta": 0.1}),
    ("GenNi beta 0.1, per position (independent sets)", {"sampler": "genni", "genni_beta": 0.1,
                                                         "genni_group_rows": 1}),
    ("GenNi beta 0.1, per batch", {"sampler": "genni", "genni_beta": 0.1, "genni_preselect": "per_batch"}),
    ("DNS H 64, shared pool (BCE K 1)", {"sampler": "dns", "loss": "bce", "dns_candidates": 64,
                                         "neg_share": "batch"}),
]
BASELINE = "uniform BCE K 1"
# Part 3: BPR/MF on Gowalla (29,858 users, 40,981 items, 810k training interactions, batch 2048: about 400
# steps per epoch, so per-batch fixed costs do not dominate as they do on ml-100k's 40 steps)
MF = {"embedding_size": 64, "train_batch_size": 2048, "learning_rate": 1e-3, "show_progress": False,
      "state": "ERROR", "reproducibility": False}
GENERAL_ROWS = [
    ("MF uniform BPR", {"sampler": "uniform", "loss": "bpr"}),
    ("MF uniform BPR, reproducibility True", {"sampler": "uniform", "loss": "bpr", "reproducibility": True}),
    ("MF DNS H 16, per target", {"sampler": "dns", "loss": "bpr", "dns_candidates": 16}),
    ("MF DNS H 16, shared pool", {"sampler": "dns", "loss": "bpr", "dns_candidates": 16, "neg_share": "batch"}),
    ("MF DNS H 64, per target", {"sampler": "dns", "loss": "bpr", "dns_candidates": 64}),
    ("MF SRNS (pool 300)", {"method": "srns", "srns_pool_size": 300, "train_batch_size": 2048,
                            "learning_rate": 1e-3, "embedding_size": 64}),
]
GENERAL_BASELINE = "MF uniform BPR"


# --------------------------------------------------------------------------- part 1: one row, in its process
def time_row(label, keys, data, warmup, steps, general=False):
    from recbole_negs.config.configurator import NegsConfig
    from recbole_negs.quick_start import prepare_run

    model_name, dataset, base = ("BPR", "gowalla", MF) if general else ("SASRec", "beauty", SASREC)
    config = NegsConfig(model=model_name, dataset=dataset, config_dict={**base, **data, **keys})
    _, model, train_data, _, _, trainer = prepare_run(config)
    model.train()
    optimizer = trainer.optimizer
    batches = iter(train_data)
    times = []
    base = reset_peak()  # after the data and the model are built: what training adds
    for i in range(warmup + steps):
        batch = next(batches).to(config["device"])
        start = time.thread_time()
        optimizer.zero_grad()
        loss = model.calculate_loss(batch)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        loss.backward()
        optimizer.step()
        if hasattr(trainer, "after_optimizer_step") and getattr(trainer, "sampler", None) is not None:
            trainer.after_optimizer_step(loss.item())
        if i >= warmup:
            times.append(time.thread_time() - start)
    step = statistics.median(times)
    epoch_end = 0.0
    if getattr(trainer, "sampler", None) is not None:  # SRNS: new pools and every user's snapshot
        start = time.thread_time()
        trainer.sampler.on_epoch_end(0, trainer.user_scores)
        epoch_end = time.thread_time() - start
    return {"label": label, "epoch_end_s": epoch_end, "steps_per_epoch": len(train_data), "step_s": step,
            "epoch_s": step * len(train_data) + epoch_end, "peak_mb": peak_since(base) / 2 ** 20,
            "targets_per_step": getattr(train_data, "targets_per_epoch", len(train_data._dataset)) / len(train_data)}


def part_rows(args, general=False):
    data = _data.dataset_config("gowalla" if general else "beauty", args.data_dir, ".")
    results = []
    for label, keys in (GENERAL_ROWS if general else ROWS):
        if args.rows and label not in args.rows:
            continue
        out = f"row-{len(results)}.json"
        cmd = [sys.executable, "-m", "benchmarks.seq_cost", "--one", label, "--one-out", out,
               "--warmup", str(args.warmup), "--steps", str(args.steps), "--data-json", json.dumps(data)]
        cmd += ["--general"] if general else []
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _common_root()}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            results.append({"label": label, "error": done.stderr.strip().splitlines()[-1]})
            continue
        results.append(json.load(open(out)))
        print(results[-1], flush=True)
    return results


def _common_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- part 2: synthetic catalogs
def shared_softmax_step(queries, table, positives, k):
    """logQ-corrected sampled softmax over K uniform negatives shared by every target (one matmul), with the
    shared candidates that equal a target's positive masked; forward + backward."""
    from recbole_negs.losses import sampled_softmax

    q = queries.detach().requires_grad_()
    table = table.detach().requires_grad_()
    shared = torch.randint(1, len(table), (k,))
    pos = (q * table[positives]).sum(-1)
    neg = q @ table[shared].T
    valid = shared[None, :] != positives[:, None]
    log_q = torch.full((1, k), -math.log(len(table) - 1))
    sampled_softmax(pos, neg, log_q, valid).backward()


def part_synthetic(args):
    rows = []
    for n in args.catalogs:
        g = torch.Generator().manual_seed(0)
        table = torch.randn((n, 64), generator=g) * 0.1
        positives = torch.randint(1, n, (12_800,), generator=g)
        queries = 0.25 * table[positives] + 0.1 * torch.randn((12_800, 64), generator=g)
        out = {"N": n}
        for name, call in (("shared", lambda: shared_softmax_step(queries, table, positives, 1024)),
                           ("full", lambda: full_ce_chunked(queries, table, positives,
                                                            max(1, (1 << 24) // n)))):
            call()  # warm-up
            base = reset_peak()
            start = time.thread_time()
            reps = 3 if name == "shared" else 1
            for _ in range(reps):
                call()
            out[f"{name}_s"] = (time.thread_time() - start) / reps
            out[f"{name}_peak_mb"] = peak_since(base) / 2 ** 20
        rows.append(out)
        print(out, flush=True)
    return rows


# --------------------------------------------------------------------------- report
def report(beauty, synthetic, general, args):
    parts = []
    if beauty:
        base = next((r for r in beauty if r["label"] == BASELINE and "error" not in r), None)
        ce = next((r for r in beauty if r["label"].startswith("RecBole CE") and "error" not in r), None)
        table = []
        for r in beauty:
            if "error" in r:
                table.append([r["label"], "failed: " + r["error"], "", "", "", "", ""])
                continue
            table.append([r["label"], r["steps_per_epoch"], f"{r['targets_per_step']:.0f}", f"{r['step_s']:.3f}",
                          f"{r['epoch_s']:.1f}", f"{r['epoch_s'] / base['epoch_s']:.2f}x" if base else "",
                          f"{r['epoch_s'] / ce['epoch_s']:.2f}" if ce else "", f"{r['peak_mb']:.0f}"])
        parts.append("## Part 1: full Beauty, SASRec h64 / 2 layers / L50, stock train_batch_size 2048\n\n" +
                     markdown_table(["configuration", "steps / epoch", "targets / step", "CPU s / step",
                                     "CPU s / epoch", "vs uniform BCE K 1", "vs RecBole CE",
                                     "training peak memory (MB)"], table) +
                     f"\n\nMedian of {args.steps} steps after {args.warmup} warm-up steps, one torch thread, CPU time "
                     "of the process's thread.")
    if synthetic:
        table = [[f"{r['N']:,}", f"{r['full_s']:.2f}", f"{r['full_peak_mb']:.0f}", f"{r['shared_s'] * 1000:.1f}",
                  f"{r['shared_peak_mb']:.0f}", f"{r['full_s'] / r['shared_s']:.0f}x"] for r in synthetic]
        parts.append("## Part 2: one loss step, 12,800 targets, synthetic catalogs\n\n" +
                     markdown_table(["items", "full CE, chunked (s)", "full CE peak rise (MB)",
                                     "shared sampled softmax K 1024 (ms)", "shared peak rise (MB)",
                                     "full CE / shared"], table))
    if general:
        base = next((r for r in general if r["label"] == GENERAL_BASELINE and "error" not in r), None)
        table = [[r["label"], "failed: " + r.get("error", "")] if "error" in r else
                 [r["label"], r["steps_per_epoch"], f"{r['step_s']:.3f}", f"{r['epoch_end_s']:.1f}",
                  f"{r['epoch_s']:.1f}", f"{r['epoch_s'] / base['epoch_s']:.2f}x" if base else "",
                  f"{r['peak_mb']:.0f}"] for r in general]
        parts.append("## Part 3: BPR/MF on Gowalla, batch 2048\n\n" +
                     markdown_table(["configuration", "steps / epoch", "CPU s / step", "epoch-end CPU s",
                                     "CPU s / epoch", "vs uniform", "training peak memory (MB)"], table))
    return "\n\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _data.add_data_args(parser)
    parser.add_argument("--part", choices=["all", "beauty", "synthetic", "general"], default="all")
    parser.add_argument("--general", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rows", nargs="*", help="labels of part 1 to run (default: all)")
    parser.add_argument("--catalogs", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", default=None, help="scratch directory (default: the system temp dir)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--one-out", help=argparse.SUPPRESS)
    parser.add_argument("--data-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    set_threads(1)
    if args.one:
        rows = dict(GENERAL_ROWS if args.general else ROWS)
        result = time_row(args.one, rows[args.one], json.loads(args.data_json), args.warmup, args.steps,
                          args.general)
        with open(args.one_out, "w") as f:
            json.dump(result, f)
        return
    if args.quick:
        args.steps, args.warmup, args.catalogs = 2, 1, [10_000, 100_000]
    out = resolve_out(args, "seq_cost")
    use_scratch_dir(args.workdir)
    beauty = part_rows(args) if args.part in ("all", "beauty") else []
    synthetic = part_synthetic(args) if args.part in ("all", "synthetic") else []
    general = part_rows(args, general=True) if args.part in ("all", "general") else []
    with open("seq_cost.json", "w") as f:
        json.dump({"beauty": beauty, "synthetic": synthetic, "general": general}, f, indent=1)
    write_result(out or os.path.abspath("seq_cost-quick.md"),
                 "Training cost: shared, in-batch and mixed negatives against the full softmax; MF overheads",
                 report(beauty, synthetic, general, args))


if __name__ == "__main__":
    main()
