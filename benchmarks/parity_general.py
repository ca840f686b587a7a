"""Parity check: does the plugin's uniform sampler + BPR loss reproduce RecBole's own training of general models?

RecBole's own pair-wise training of BPR and LightGCN draws one uniform negative per (user, item) row from the
items the user has not interacted with in training. The plugin with ``sampler: uniform, loss: bpr,
neg_sample_num: 1, neg_exclude: history`` is meant to be the same estimator on its own code path (sampling in
the model's training step, the LightGCN adapter adding RecBole's L2 on the ego embeddings). Everything else is
one shared config dict. If the two paths agree within sampling noise over seeds, the plugin's training path
adds no bias of its own, and every other plugin sampler can be compared against this baseline.

Run from the repository root (RecBole's saved/ and log/ go to --workdir), e.g.
    python -m benchmarks.parity_general --seeds 5 --epochs 100
"""

import argparse
import time

from benchmarks import _common as common

NAME = "parity_general"
MODELS = ("BPR", "LightGCN")
PLUGIN = {"sampler": "uniform", "loss": "bpr", "neg_sample_num": 1, "neg_exclude": "history"}


def base_config(epochs, seed):
    """The one config both paths get; RecBole's defaults for everything not named here."""
    return {
        "seed": seed,
        "epochs": epochs,
        "stopping_step": 10,
        "eval_step": 1,
        "valid_metric": "NDCG@10",
        "metrics": ["Recall", "NDCG", "Hit"],
        "topk": [10],
        "train_batch_size": 2048,
    }


def main():
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), NAME,
                                    seeds=5, epochs=100)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = 1, 2
    out, _, log = common.start(args, NAME)

    paths = [("RecBole (own)", common.run_recbole_own, {}), ("recbole-negs uniform", common.run_plugin, PLUGIN)]
    results = {}  # (model, path label) -> [result per seed]
    started = time.time()
    for model in args.models:
        for seed in range(args.seeds):
            for label, runner, extra in paths:
                config = dict(base_config(args.epochs, seed), **extra)
                r = common.timed_run(log, f"{model} | {label} | seed {seed}", runner, model, "ml-100k", config)
                results.setdefault((model, label), []).append(r)
                print(f"[{time.time() - started:7.0f}s] {model:8s} {label:22s} seed {seed}: "
                      f"test ndcg@10 {r['test_result']['ndcg@10']:.4f} recall@10 {r['test_result']['recall@10']:.4f}"
                      f" best epoch {r['best_epoch']} of {r['epochs_run']}, {r['sec_per_epoch']:.2f} s/epoch",
                      flush=True)

    body = [f"ml-100k, RecBole's default split and full-ranking evaluation; {args.seeds} seed(s) (0..{args.seeds - 1}),"
            f" at most {args.epochs} epochs, early stopping after 10 epochs without a better valid NDCG@10.",
            "Shared config: " + ", ".join(f"`{k}: {v}`" for k, v in base_config(args.epochs, 0).items()
                                          if k != "seed") + "; RecBole's defaults for everything else.",
            "Plugin rows add: " + ", ".join(f"`{k}: {v}`" for k, v in PLUGIN.items()) + ".",
            "Test metrics are of the best-valid checkpoint; mean ± standard error over seeds. Best epoch is "
            "0-based. s/epoch = median of the trainer's logged training time per epoch (sampling included, "
            "validation excluded), averaged over seeds; the machine is a shared 2-core CPU, so timings are rough.",
            ""]
    for model in args.models:
        own, plug = results[(model, paths[0][0])], results[(model, paths[1][0])]
        rows = []
        for label, runs in ((paths[0][0], own), (paths[1][0], plug)):
            rows.append([label,
                         common.fmt_mean_se([r["test_result"]["ndcg@10"] for r in runs]),
                         common.fmt_mean_se([r["test_result"]["recall@10"] for r in runs]),
                         common.fmt_mean_se([r["best_epoch"] for r in runs], 1),
                         common.fmt_mean_se([r["epochs_run"] for r in runs], 1),
                         f"{sum(r['sec_per_epoch'] for r in runs) / len(runs):.2f}"])
        body.append(f"## {model}\n")
        body.append(common.markdown_table(
            ["path", "test NDCG@10", "test Recall@10", "best-valid epoch", "epochs run", "s/epoch"], rows))
        body.append("")
        for metric, key in (("NDCG@10", "ndcg@10"), ("Recall@10", "recall@10")):
            a = [r["test_result"][key] for r in own]
            b = [r["test_result"][key] for r in plug]
            body.append(f"- {metric} difference (plugin - own): {common.diff_verdict(a, b)}")
        body.append("")
        body.append("Per seed (test NDCG@10 own / plugin): " + ", ".join(
            f"{i}: {o['test_result']['ndcg@10']:.4f} / {p['test_result']['ndcg@10']:.4f}"
            for i, (o, p) in enumerate(zip(own, plug))))
        body.append("")
    body.append(f"Total wall time: {(time.time() - started) / 60:.1f} min.")
    common.write_result(out, "Parity: RecBole's own training vs recbole-negs uniform + BPR (general models)",
                        "\n".join(body))


if __name__ == "__main__":
    main()
