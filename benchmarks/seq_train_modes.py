"""What the plugin's sequential training modes cost and buy, side by side on one SASRec config.

RecBole trains SASRec on one row per prefix (each prefix re-encoded, one target per row) with a full-catalog
cross-entropy. The plugin can keep those prefix rows with sampled negatives, or train on all-position rows
(one row per user sequence or window of MAX_ITEM_LIST_LENGTH, every position a target, as the SASRec paper
does), either covering the whole sequence (``seq_long_policy: windows``) or only its last window (``last``).
This script runs every mode in one invocation for a fixed number of epochs, so seconds per epoch, training
targets per epoch and test quality can be read off as ratios on the same machine at the same time.

The model is deliberately small (hidden 32, 2 layers, MAX_ITEM_LIST_LENGTH 20): RecBole's prefix rows re-encode
~97k prefixes per epoch, which at hidden 64 / length 50 took ~9 minutes per epoch on the shared 2-core CPU
this was written on (~1.5 minutes at hidden 32 / length 20), so a fixed-epoch comparison of every mode has to
be small to finish at all. ``--quick`` is a smoke test on a filtered subset of users, not a result.

Run from a scratch directory, e.g.
    python -m benchmarks.seq_train_modes --seeds 1 --epochs 10
"""

import argparse
import time

from benchmarks import _common as common

NAME = "seq_train_modes"

# (label, runner name, config on top of the shared one); train_batch_size counts rows: prefixes or users/windows.
MODES = [
    ("(a) RecBole own CE, prefix rows", "own",
     {"loss_type": "CE", "train_neg_sample_args": None, "train_batch_size": 2048}),
    ("(b) uniform + bpr, prefix rows", "plugin",
     {"sampler": "uniform", "loss": "bpr", "neg_sample_num": 1, "seq_train_mode": "prefix",
      "train_batch_size": 2048}),
    ("(c) uniform + bpr, all_positions windows", "plugin",
     {"sampler": "uniform", "loss": "bpr", "neg_sample_num": 1, "seq_train_mode": "all_positions",
      "seq_long_policy": "windows", "train_batch_size": 128}),
    ("(d) uniform + bpr, all_positions last", "plugin",
     {"sampler": "uniform", "loss": "bpr", "neg_sample_num": 1, "seq_train_mode": "all_positions",
      "seq_long_policy": "last", "train_batch_size": 128}),
    ("(e) uniform + sampled_softmax K=100, all_positions windows", "plugin",
     {"sampler": "uniform", "loss": "sampled_softmax", "neg_sample_num": 100, "seq_train_mode": "all_positions",
      "seq_long_policy": "windows", "train_batch_size": 128}),
]
# --quick only: users with at most 40 interactions (about 1/3 of ml-100k's users, ~10% of its interactions)
QUICK_DATA = {"user_inter_num_interval": "[0,40]"}
RUNNERS = {"own": common.run_recbole_own, "plugin": common.run_plugin}


def base_config(epochs, seed):
    return {
        "seed": seed,
        "epochs": epochs,
        "stopping_step": 10 ** 6,  # no early stopping: every mode trains the same number of epochs
        "eval_step": 1,  # validation every epoch, only to keep the best-valid checkpoint for the test
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "valid_metric": "NDCG@10",
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "hidden_size": 32,
        "inner_size": 128,
        "n_layers": 2,
        "n_heads": 2,
        "MAX_ITEM_LIST_LENGTH": 20,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "learning_rate": 1e-3,
        "loss_type": "CE",  # the SASRec module's own loss; the plugin rows replace it with theirs
    }


def count_targets(config_dict):
    """Training rows and targets per epoch of every mode, computed from the data alone (a cross-check of what
    the runs log): RecBole's prefix rows, and the plugin's build_rows for both long-sequence policies."""
    from recbole.data import create_dataset, data_preparation
    from recbole_negs.config.configurator import NegsConfig
    from recbole_negs.sequence_rows import build_rows

    counts = {}
    for policy in ("windows", "last"):
        config = NegsConfig(model="SASRec", dataset="ml-100k",
                            config_dict=dict(config_dict, sampler="uniform", seq_train_mode="all_positions",
                                             seq_long_policy=policy, **common.QUIET))
        train, _, _ = data_preparation(config, create_dataset(config))
        counts["prefix"] = (len(train._dataset), len(train._dataset))
        rows, targets = build_rows(train._dataset, config, 1)
        counts[policy] = (len(rows), targets)
    return counts


def main():
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), NAME,
                                    seeds=1, epochs=10)
    parser.add_argument("--skip-e", action="store_true", help="leave out mode (e), sampled softmax K=100")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = 1, 2
    shared = dict(QUICK_DATA) if args.quick else {}
    out, _, log = common.start(args, NAME)
    modes = MODES[:4] if args.skip_e else MODES

    started = time.time()
    counts = count_targets(dict(base_config(args.epochs, 0), **shared))
    results = {label: [] for label, _, _ in modes}
    for seed in range(args.seeds):
        for label, runner, extra in modes:
            config = dict(base_config(args.epochs, seed), **shared, **extra)
            r = common.timed_run(log, f"SASRec | {label} | seed {seed}", RUNNERS[runner], "SASRec", "ml-100k", config)
            results[label].append(r)
            print(f"[{time.time() - started:7.0f}s] {label:58s} seed {seed}: test ndcg@10 "
                  f"{r['test_result']['ndcg@10']:.4f} hit@10 {r['test_result']['hit@10']:.4f}, best epoch "
                  f"{r['best_epoch']}, {r['sec_per_epoch']:.2f} s/epoch, rows/targets "
                  f"{r.get('rows', r.get('train_rows'))}/{r.get('targets', r.get('train_rows'))}", flush=True)

    rows = []
    for label, runner, extra in modes:
        runs = results[label]
        first = runs[0]
        if "targets" in first:  # logged by the plugin's SequenceRowsDataLoader
            n_rows, targets = first["rows"], first["targets"]
            expect = counts[extra["seq_long_policy"]]
        else:  # prefix rows: one target per row
            n_rows = targets = first.get("train_rows", counts["prefix"][0])
            expect = counts["prefix"]
        check = "" if (n_rows, targets) == expect else f" (data says {expect[0]}/{expect[1]}!)"
        sec = sum(r["sec_per_epoch"] for r in runs) / len(runs)
        rows.append([label, f"{sec:.2f}", f"{n_rows}{check}", targets, f"{targets / sec:,.0f}",
                     common.fmt_mean_se([r["test_result"]["ndcg@10"] for r in runs]),
                     common.fmt_mean_se([r["test_result"]["hit@10"] for r in runs]),
                     common.fmt_mean_se([r["best_epoch"] for r in runs], 1)])
    config_text = ", ".join(f"`{k}: {v}`" for k, v in dict(base_config(args.epochs, 0), **shared).items()
                            if k != "seed")
    body = "\n".join([
        f"SASRec on ml-100k, leave-one-out split (last item test, second-last valid), full-ranking evaluation; "
        f"{args.seeds} seed(s) (0..{args.seeds - 1}), every mode trained exactly {args.epochs} epochs.",
        f"Shared config: {config_text}. Per mode: see the labels; `train_batch_size` 2048 for prefix rows, "
        "128 for all-position rows (users, or windows of MAX_ITEM_LIST_LENGTH).",
        "",
        "s/epoch = median of the trainer's logged training time per epoch (the training loop with its sampling; "
        "validation excluded), averaged over seeds; shared 2-core CPU, so timings are rough. Rows and targets "
        "are per epoch: prefix rows have one target each; all-position counts are the ones the plugin's "
        "SequenceRowsDataLoader logs (checked against `build_rows` on the same split). Test metrics are of the "
        "best-valid checkpoint (valid NDCG@10 every epoch); mean ± standard error over seeds when more than one.",
        "",
        common.markdown_table(["mode", "s/epoch", "training rows", "training targets", "targets/s",
                               "test NDCG@10", "test HR@10", "best-valid epoch"], rows),
        "",
        "Per seed (test NDCG@10): " + "; ".join(
            f"{label.split(')')[0]})" + " " + ", ".join(f"{r['test_result']['ndcg@10']:.4f}" for r in results[label])
            for label, _, _ in modes),
        "",
        f"Total wall time: {(time.time() - started) / 60:.1f} min.",
    ])
    common.write_result(out, "SASRec: RecBole's prefix rows vs the plugin's all-position training", body)


if __name__ == "__main__":
    main()
