"""Every method on its backbone on ml-100k (ships inside the recbole wheel, so anyone can rerun it): SASRec
with uniform, GenNi and UFNRec beside RecBole's CE and the plugin's full-softmax CE (loss full_softmax); MF
(RecBole's BPR model) and LightGCN with uniform, DNS,
SRNS and PDNS; each table with RecBole's own training of the same model as the reference row.

Protocols: SASRec leave-one-out (time order), full ranking with the user's history masked; MF and LightGCN
RecBole's default ml-100k split (random 8:1:1), full ranking. Test metrics of the best-validation model.

    python -m benchmarks.ml100k_methods              # the documented full run
    python -m benchmarks.ml100k_methods --quick      # 1 seed, 1 epoch per row: checks the pipeline
"""

import argparse
import json
import os
import time

from benchmarks import _common as common
from benchmarks import _experiment as ex
from benchmarks import _plots

NAME = "ml100k_methods"
METRICS = ["recall@10", "ndcg@10"]
SEQUENTIAL = {  # a small SASRec: RecBole's CE reference trains one row per prefix (97k rows of L50 per epoch)
    "hidden_size": 32, "inner_size": 128, "n_layers": 1, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256, "seq_batch_size_unit": "rows", "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                                           "mode": "full"}, "eval_mask_history": True,
}
GENERAL = {"embedding_size": 64, "train_batch_size": 2048}
UNIFORM = "plugin uniform"


def backbones(args):
    """backbone -> (rows, shared config)."""
    seq_uniform = {"sampler": "uniform", "loss": "bce", "neg_sample_num": 1, "neg_exclude": "history"}
    pair_uniform = {"sampler": "uniform", "loss": "bpr", "neg_sample_num": 1, "neg_exclude": "history"}
    general_rows = lambda model: [  # noqa: E731
        ex.Row(f"RecBole {model} (own training, reference)", model, runner="own"),
        ex.Row(UNIFORM, model, pair_uniform),
        ex.Row("DNS, H=16", model, dict(pair_uniform, sampler="dns", dns_candidates=16)),
        ex.Row("SRNS (method srns)", model, {"method": "srns"}),
        ex.Row("PDNS (method pdns, Table 6 values)", model, {"method": "pdns"}),
    ]
    return {
        "SASRec": ([
            ex.Row("RecBole SASRec, full-softmax CE (reference)", "SASRec",
                   {"sampler": "none", "loss_type": "CE", "epochs": args.ce_epochs or args.epochs}, seeds=args.ce_seeds),
            ex.Row("plugin full-softmax CE, all positions (loss full_softmax)", "SASRec", {"loss": "full_softmax"}),
            ex.Row(UNIFORM, "SASRec", seq_uniform),
            ex.Row("GenNi (method genni: beta 1, alpha 2.5)", "SASRec", {"method": "genni"}),
            ex.Row("UFNRec (method ufnrec, warm-up 5 epochs, m=2)", "SASRec",
                   {"method": "ufnrec", "ufn_warmup_epochs": 5, "ufn_reverse_threshold": 2}),
        ], SEQUENTIAL),
        "BPR": (general_rows("BPR"), GENERAL),
        "LightGCN": (general_rows("LightGCN"), GENERAL),
    }


def main():
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), NAME,
                                    seeds=5, epochs=40)
    parser.add_argument("--backbones", nargs="+", default=["BPR", "LightGCN", "SASRec"],
                        choices=["BPR", "LightGCN", "SASRec"])
    parser.add_argument("--ce-seeds", type=int, default=2,
                        help="seeds of RecBole's CE SASRec row (its prefix rows cost ~20x a plugin epoch)")
    parser.add_argument("--ce-epochs", type=int, default=None, help="max epochs of that row (default --epochs)")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--rows", nargs="*", default=None, help="only rows whose label contains one of these")
    parser.add_argument("--sasrec-batch", type=int, default=256,
                        help="SASRec's train_batch_size: sequences per step for the plugin's rows (each brings all "
                        "its positions), prefixes per step for RecBole's CE row")
    parser.add_argument("--from-json", type=os.path.abspath, default=None,
                        help="tabulate a saved run (its .json) instead of training")
    args = parser.parse_args()
    saved = {}
    if args.from_json:  # the run's own settings, for the tables' text
        saved, meta = ex.load_json(args.from_json)
        vars(args).update({k: v for k, v in meta["args"].items() if k not in ("from_json", "out", "workdir")})
        args.backbones = list(saved)
    if args.quick:
        args.seeds, args.epochs, args.ce_seeds = 1, 1, 1
        SEQUENTIAL.update(hidden_size=16, inner_size=32, n_layers=1, MAX_ITEM_LIST_LENGTH=20)  # a pipeline check
    out, workdir, log = common.start(args, NAME)
    md, json_path, stem = ex.output_paths(out, NAME)

    started = time.time()
    body = [f"ml-100k; {args.seeds} seeds (RecBole's CE SASRec row: {args.ce_seeds}, see `seeds`: its prefix rows "
            "cost about 20 plugin epochs each on this CPU); at most "
            f"{args.epochs} epochs, early stopping after {args.patience} epochs without a better valid NDCG@10; "
            "test metrics of the best-validation model, mean ± standard error over seeds; `vs uniform` is the "
            "difference of test NDCG@10 from the plugin's uniform row (a gain or loss only beyond 2 SE); "
            "`s to best` = training + validation seconds until the best epoch. Method presets as shipped "
            "(`--method=...`, properties/method/); everything else RecBole's defaults.", ""]
    if args.from_json:
        body.insert(0, f"Tabulated (`--from-json`) from `{os.path.relpath(args.from_json, common.REPO_ROOT)}`, saved by "
                    f"the run with arguments {json.dumps(meta['args'])}; the numbers and wall time are that run's.\n")
    all_results = {}
    for name in args.backbones:
        rows, config = backbones(args)[name]
        rows = [row for row in rows if not args.rows or any(key in row.label for key in args.rows)]
        if name == "SASRec":
            config = dict(config, train_batch_size=args.sasrec_batch)
        if args.quick:  # a pipeline check: users with at most 40 interactions
            config = dict(config, user_inter_num_interval="[0,40]")
        shared = dict(config, epochs=args.epochs, stopping_step=args.patience, eval_step=1, metrics=["Recall", "NDCG"],
                      topk=[10], valid_metric="NDCG@10")
        if args.from_json:
            results = saved[name]
        else:
            results = ex.run_rows(log, rows, args.seeds, "ml-100k", shared, meta={"args": vars(args)})
            ex.save_json(json_path, dict(all_results, **{name: results}), {"args": vars(args)})
        all_results[name] = results
        png, seconds_png = f"{stem}-{name}.png", f"{stem}-{name}-seconds.png"
        ex.plot_valid_curves(png, f"ml-100k, {name}: validation NDCG@10 (mean over seeds)", results, "valid NDCG@10")
        ex.plot_valid_seconds(f"{stem}-{name}-valid-seconds.png", f"ml-100k, {name}: validation NDCG@10 against "
                              "training seconds (mean over seeds)", results, "valid NDCG@10")
        _plots.bar_plot(seconds_png, f"ml-100k, {name}: seconds per training epoch (mean ± SE over seeds)",
                        {label: common.mean_se([r["sec_per_epoch"] for r in runs]) for label, runs in results.items()},
                        "seconds per training epoch")
        protocol = (f"leave-one-out, full ranking, history masked; SASRec h{SEQUENTIAL['hidden_size']}, "
                    f"{SEQUENTIAL['n_layers']} layer(s), L{SEQUENTIAL['MAX_ITEM_LIST_LENGTH']}, "
                    f"batch {args.sasrec_batch} (method presets' "
                    "model sizes are overridden so that every row trains the same SASRec); "
                    f"RecBole's CE row: at most {args.ce_epochs or args.epochs} epochs"
                    if name == "SASRec" else "RecBole's random 8:1:1 split, full ranking; embedding 64, batch 2048")
        body += [f"## {name}", "", protocol, "", ex.quality_table(results, rows, METRICS, "ndcg@10", UNIFORM, "uniform"),
                 "", f"![{name} validation curves]({os.path.basename(png)})",
                 f"![{name} seconds per epoch]({os.path.basename(seconds_png)})", ""]
    minutes = (sum(r["wall_seconds"] for results in all_results.values() for runs in results.values() for r in runs)
               / 60 if args.from_json else (time.time() - started) / 60)
    body.append(f"Wall time: {minutes:.0f} min" + (" (the sum of the saved runs' wall times)." if args.from_json else "."))
    common.write_result(md, "Every method on ml-100k beside RecBole's own training", "\n".join(body))


if __name__ == "__main__":
    main()
