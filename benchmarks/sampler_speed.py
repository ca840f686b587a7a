"""Seconds per training epoch of each sampler divided by uniform's, measured side by side in one run (issue:
model-aware samplers must score candidates from the encoding the step already computed). Epochs of the
configurations are interleaved round-robin so that a noisy, shared machine slows them alike; the table gives
the median over the repetitions. Epoch-end sampler work (SRNS's snapshots) is included in the time.

RecBole's own `dynamic: True` DNS (which re-encodes the batch H times in its data loader) is timed against
RecBole's own one-uniform-negative training of the same model, with the same H.
"""

import argparse
import statistics
import time

from benchmarks._common import RunLog, add_common_args, markdown_table, resolve_out, set_threads, use_scratch_dir, write_result

import recbole_negs  # noqa: F401
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.quick_start import prepare_run

H = 16
SEQUENTIAL = {"hidden_size": 64, "inner_size": 128, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50,
              "train_batch_size": 128, "seq_batch_size_unit": "rows"}
SMALL_SEQUENTIAL = {"hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1, "MAX_ITEM_LIST_LENGTH": 20,
                    "train_batch_size": 1024}
GENERAL = {"embedding_size": 64, "train_batch_size": 2048}
RECBOLE_UNIFORM = {"sampler": "none", "loss_type": "BPR",
                   "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}
RECBOLE_DNS = {"sampler": "none", "loss_type": "BPR",
               "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "dynamic": True,
                                         "candidate_num": H}}

# (label, config); the first row of each family is its reference
PLUGIN = {
    "SASRec": [
        ("uniform", {"sampler": "uniform"}),
        ("dns H16", {"sampler": "dns", "dns_candidates": H}),
        ("genni beta 0.1, per_batch (fast)", {"sampler": "genni", "genni_beta": 0.1, "genni_preselect": "per_batch"}),
        ("genni beta 0.1, per_position (faithful)", {"sampler": "genni", "genni_beta": 0.1}),
        ("genni beta 1.0", {"sampler": "genni", "genni_beta": 1.0}),
    ],
    "LightGCN": [
        ("uniform", {"sampler": "uniform"}),
        ("dns H16 (pdns)", {"method": "pdns", "dns_candidates": H}),
        ("srns", {"method": "srns"}),
        ("genni beta 0.1, per_position", {"sampler": "genni", "genni_beta": 0.1, "loss": "bpr"}),
    ],
    "BPR": [
        ("uniform", {"sampler": "uniform"}),
        ("dns H16 (pdns)", {"method": "pdns", "dns_candidates": H}),
        ("srns", {"method": "srns"}),
    ],
}
RECBOLE = [("RecBole uniform (1 negative)", RECBOLE_UNIFORM), (f"RecBole dynamic DNS H{H}", RECBOLE_DNS)]


# --quick only: users with at most 40 interactions (a pipeline check, not a timing)
QUICK_DATA = {"user_inter_num_interval": "[0,40]"}


def prepare(model, overrides, dataset, quick=False):
    """A ready (trainer, train_data) on the plugin's path (sampler none: RecBole's own training)."""
    base = SEQUENTIAL if model == "SASRec" else GENERAL
    if model == "SASRec" and overrides.get("sampler") == "none":
        base = SMALL_SEQUENTIAL  # RecBole's prefix rows: 97k per epoch on ml-100k, each encoded 1 + H times
    base = dict(base, **(QUICK_DATA if quick else {}))
    config = NegsConfig(model=model, dataset=dataset, config_dict={
        **base, **overrides, "show_progress": False, "state": "INFO", "epochs": 1000, "seed": 0})
    _, net, train_data, _, _, trainer = prepare_run(config)
    trainer.eval_collector.data_collect(train_data)
    if config["train_neg_sample_args"].get("dynamic", False):
        train_data.get_model(net)
    trainer.on_train_start(train_data)
    return {"trainer": trainer, "data": train_data, "epoch": 0, "seconds": []}


def time_epoch(run):
    trainer, epoch = run["trainer"], run["epoch"]
    start = time.perf_counter()
    trainer._train_epoch(run["data"], epoch)
    if trainer.sampler is not None:
        trainer.sampler.on_epoch_end(epoch, trainer)
    run["seconds"].append(time.perf_counter() - start)
    run["epoch"] += 1


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__), "sampler_speed", 1, 3)
    parser.add_argument("--models", default="SASRec,LightGCN,BPR")
    parser.add_argument("--dataset", default="ml-100k")
    args = parser.parse_args()
    repetitions = 1 if args.quick else args.epochs
    out = resolve_out(args, "sampler_speed")
    set_threads(args.threads)
    use_scratch_dir(args.workdir)
    RunLog.install()

    sections = []
    for model in args.models.split(","):
        rows = [(label, cfg, "plugin") for label, cfg in PLUGIN[model]] + [(l, c, "recbole") for l, c in RECBOLE]
        runs = [(label, family, prepare(model, cfg, args.dataset, args.quick)) for label, cfg, family in rows]
        for run in runs if not args.quick else ():  # one warm-up epoch each, not timed
            time_epoch(run[2])
            run[2]["seconds"].clear()
        for _ in range(repetitions):
            for _, _, run in runs:
                time_epoch(run)
        reference = {family: statistics.median(run["seconds"]) for label, family, run in runs
                     if label in ("uniform", RECBOLE[0][0])}
        table = []
        for label, family, run in runs:
            median = statistics.median(run["seconds"])
            table.append((label, f"{median:.2f}", f"{median / reference[family]:.2f}x",
                          "plugin uniform" if family == "plugin" else "RecBole uniform"))
        sections.append(f"## {model}\n\n" + markdown_table(
            ["sampler", "s / epoch (median)", "ratio", "ratio to"], table))
    body = (f"ml-100k (`--dataset`), {repetitions} timed epochs per configuration after one warm-up epoch, "
            "interleaved; sequential models: hidden 64, 2 layers, 2 heads, L 50, all-position rows, 128 users "
            "per batch; RecBole's own SASRec rows (its prefix rows, re-encoded H times by its dynamic DNS) use a small "
            "SASRec (hidden 16, 1 layer, L 20, 1024 prefixes per batch), as they would take minutes per epoch at "
            "full size; general models: 64 dims, batch 2048.\n\n"
            + "\n\n".join(sections))
    write_result(out or "sampler_speed.md", "Sampler speed: seconds per epoch relative to uniform", body)


if __name__ == "__main__":
    main()
