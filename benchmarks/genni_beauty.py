"""GenNi Table 1 on Beauty: SASRec with uniform negatives vs GenNi (Table 1's beta 1.0, alpha 2.5, k 1; the
speed elbow beta 0.1; the self-adjusted curriculum), beside RecBole's own full-softmax CE SASRec and the
plugin's best sampled configuration (sampled softmax over a few hundred negatives).

Protocol (GenNi builds on S3-Rec's code): the 5-core, time-ordered Beauty of S3-Rec, leave-one-out, full
ranking with the user's earlier items masked (``eval_mask_history``), HR/NDCG@5,10, the best-validation
(NDCG@10) model on test; uniform negatives exclude the user's whole training sequence as S3-Rec's sampler does,
GenNi excludes only the target (Eq. 5).

    python -m benchmarks.genni_beauty                # the documented full run (see benchmarks/README.md)
    python -m benchmarks.genni_beauty --quick        # 1 seed, 1 epoch, 2,000 users: checks the pipeline
"""

import argparse
import json
import os
import time

from benchmarks import _common as common
from benchmarks import _data
from benchmarks import _experiment as ex

NAME = "genni_beauty"
METRICS = ["hit@5", "ndcg@5", "hit@10", "ndcg@10"]

# GenNi Table 1, Beauty, SASRec backbone (HR@5, NDCG@5, HR@10, NDCG@10 as the paper prints them).
PAPER_UNIFORM = {"hit@10": 0.061, "ndcg@10": 0.032}
PAPER_GENNI = {"hit@10": 0.088, "ndcg@10": 0.053}
UNIFORM = "uniform, BCE, k=1 (paper's SASRec)"


def shared_config(args):
    """The SASRec of the issue's CE measurement (h64, 2 layers, L50, dropout 0.5), the paper's optimiser."""
    return {
        "hidden_size": args.hidden, "inner_size": 4 * args.hidden, "n_layers": args.layers, "n_heads": 2,
        "MAX_ITEM_LIST_LENGTH": 50, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
        "train_batch_size": 256, "seq_batch_size_unit": "rows", "learning_rate": 1e-3, "epochs": args.epochs, "stopping_step": args.patience,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "eval_mask_history": True, "metrics": ["Hit", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10",
        "eval_batch_size": 2048,
    }


def rows(args):
    batch = {"train_batch_size": args.train_batch}
    uniform = {"sampler": "uniform", "loss": "bce", "neg_sample_num": 1, "neg_exclude": "history", **batch}
    genni = {"method": "genni", **batch}  # Table 1: beta 1.0, alpha 2.5, k 1, BCE, target-only exclusion
    out = [
        ex.Row("RecBole SASRec, full-softmax CE (reference)", "SASRec", {"sampler": "none", "loss_type": "CE"},
               seeds=args.ce_seeds),
        ex.Row("plugin full-softmax CE, all positions (loss full_softmax)", "SASRec", {"loss": "full_softmax", **batch}),
        ex.Row(UNIFORM, "SASRec", uniform, paper=PAPER_UNIFORM),
        ex.Row("GenNi beta=1.0 alpha=2.5 k=1 (Table 1)", "SASRec", genni, paper=PAPER_GENNI),
        ex.Row("GenNi beta=0.1 (per position)", "SASRec", dict(genni, genni_beta=0.1)),
        ex.Row("GenNi beta=1.0 + curriculum", "SASRec", dict(genni, genni_curriculum=True)),
        ex.Row(f"uniform, sampled softmax (logQ), K={args.k}", "SASRec",
               {"sampler": "uniform", "loss": "sampled_softmax", "neg_sample_num": args.k, "neg_exclude": "target",
                **batch}),
    ]
    return [row for row in out if not args.rows or any(key in row.label for key in args.rows)]


def main():
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]), NAME,
                                    seeds=3, epochs=30)
    _data.add_data_args(parser)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--patience", type=int, default=5, help="early stopping: epochs without a better valid NDCG@10")
    parser.add_argument("--k", type=int, default=256, help="negatives of the sampled-softmax row")
    parser.add_argument("--max-users", type=int, default=None,
                        help="train and evaluate on the first N users only (a smaller Beauty; the table says so)")
    parser.add_argument("--ce-seeds", type=int, default=1,
                        help="seeds of RecBole's CE row (its prefix rows cost several plugin epochs each)")
    parser.add_argument("--from-json", type=os.path.abspath, default=None,
                        help="tabulate a saved run (its .json) instead of training; whole seeds only")
    parser.add_argument("--train-batch", type=int, default=32,
                        help="sequences per step of the plugin's rows (each brings all its positions); 32 on "
                        "3,000 users gives about as many steps per epoch (94) as the paper's 256 on 22,363 (87); "
                        "RecBole's CE row keeps 256 prefixes per step")
    parser.add_argument("--reuse-json", type=os.path.abspath, default=None,
                        help="take the rows not selected by --rows from this earlier run's JSON (same data and "
                        "protocol), e.g. the costly RecBole CE row")
    parser.add_argument("--rows", nargs="*", default=None, help="only rows whose label contains one of these")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.ce_seeds, args.max_users = 1, 1, 1, args.max_users or 1000
    out, workdir, log = common.start(args, NAME)
    md, json_path, stem = ex.output_paths(out, NAME)

    args.rows_run = args.rows  # the rows this run trained (with --reuse-json the others come from that file)
    if args.from_json:  # the run's own settings, for the table's text
        results, meta = ex.load_json(args.from_json)
        vars(args).update({k: v for k, v in meta["args"].items() if k not in ("from_json", "out", "workdir")})
        args.rows_run = meta["args"].get("rows")
    table_rows = rows(args)
    started = time.time()
    if args.from_json:
        seeds = min(len(runs) for label, runs in results.items() if "RecBole" not in label)
        results = {label: runs[:seeds] for label, runs in results.items()}
        minutes = sum(r["wall_seconds"] for runs in results.values() for r in runs) / 60
        args.seeds = seeds
    else:
        dataset = _data.dataset_name("beauty", args.max_users)
        shared = dict(shared_config(args), **_data.dataset_config("beauty", args.data_dir, workdir, args.max_users))
        results = ex.run_rows(log, table_rows, args.seeds, dataset, shared, json_path,
                              meta={"args": vars(args), "shared": shared})
        minutes = (time.time() - started) / 60
        if args.reuse_json:
            earlier = ex.load_json(args.reuse_json)[0]
            results.update({label: runs for label, runs in earlier.items() if label not in results})
            ex.save_json(json_path, results, {"args": vars(args), "shared": shared, "reused": args.reuse_json})
    args.rows = None  # the table shows every row that has runs (reused ones included)
    table_rows = rows(args)

    users = f"the first {args.max_users} users" if args.max_users else "all 22,363 users"
    source = []
    if args.from_json:
        source.append(f"Tabulated (`--from-json`) from `{os.path.relpath(args.from_json, common.REPO_ROOT)}`, saved by "
                      f"the run with arguments {json.dumps(meta['args'])}; the numbers are that run's, the wall time the sum of "
                      "its runs' (reused rows included).\n")
    if args.reuse_json:
        reused = [row.label for row in table_rows if args.rows_run and not any(k in row.label for k in args.rows_run)]
        source.append(f"Rows taken from the earlier run `{os.path.relpath(args.reuse_json, common.REPO_ROOT)}` "
                      f"(same data, model and protocol; see its settings there): {', '.join(reused)}.\n")
    body = source + [
        f"Beauty (S3-Rec's 5-core copy, {users}), leave-one-out, full ranking with the user's history masked; "
        f"{args.seeds} seed(s); at most {args.epochs} epochs, early stopping after {args.patience} epochs "
        "without a better valid NDCG@10; test metrics of the best-validation model, mean ± standard error.",
        f"SASRec: hidden {args.hidden}, {args.layers} layer(s), 2 heads, L 50, dropout 0.5, Adam lr 1e-3; the plugin's "
        f"rows take {getattr(args, 'train_batch', 256)} sequences per step (all their positions), RecBole's CE row "
        "256 prefixes per step. "
        "Plugin rows train every position of each training sequence (all-position windows); RecBole's CE row "
        f"trains its own prefix rows ({args.ce_seeds} seed: several times the cost of a plugin epoch); the plugin's "
        "catalog row is the same full-softmax objective on all positions, with every seed.",
        "The paper: 4 seeds, early stopping after 40 epochs without gain (so trained far longer than here); "
        "its numbers are the paper's Table 1 for the same data and protocol.",
        "`vs uniform` is the difference of test NDCG@10 from the uniform row with its standard error; a gain or "
        "loss only beyond 2 SE. `s to best` = training + validation seconds until the best epoch.",
        "",
        ex.quality_table(results, table_rows, METRICS, "ndcg@10", UNIFORM, "uniform"),
        "",
        f"![validation NDCG@10 per epoch]({os.path.basename(stem)}-valid.png)",
        "",
        f"Wall time: {minutes:.0f} min.",
    ]
    ex.plot_valid_curves(stem + "-valid.png", "Beauty, SASRec: validation NDCG@10 (mean over seeds)", results,
                         "valid NDCG@10")
    ex.plot_valid_seconds(stem + "-valid-seconds.png", "Beauty, SASRec: validation NDCG@10 against training "
                          "seconds (mean over seeds)", results, "valid NDCG@10", logx=True)
    common.write_result(md, "GenNi Table 1 on Beauty (SASRec)", "\n".join(body))


if __name__ == "__main__":
    main()
