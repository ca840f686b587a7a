"""Same seed, same metrics: one short ml-100k run of every sampler, loss and trainer, printed as JSON.

A refactor that claims "behaviour unchanged" runs this on the commit before and after and compares the two
files (``--compare before.json after.json``): every test metric must be equal to the last digit.

    python -m benchmarks.identical_metrics --out after.json
    python -m benchmarks.identical_metrics --compare before.json after.json
"""

import argparse
import json
import os
import sys
import tempfile

SHORT = {"epochs": 2, "train_batch_size": 512, "seq_batch_size_unit": "rows", "eval_batch_size": 4096, "hidden_size": 16, "inner_size": 32,
         "n_layers": 1, "n_heads": 1, "embedding_size": 16, "MAX_ITEM_LIST_LENGTH": 20, "seed": 3,
         "reproducibility": True, "show_progress": False, "state": "ERROR", "metrics": ["NDCG", "Hit"],
         "topk": [10], "valid_metric": "NDCG@10", "eval_max_users": 300}

# (label, model, plugin keys): every sampler, every loss, both trainers, RecBole's own training
ROWS = [
    ("none", "SASRec", {"sampler": "none"}),
    ("uniform+bpr", "BPR", {"sampler": "uniform", "loss": "bpr"}),
    ("popularity+bce", "BPR", {"sampler": "popularity", "loss": "bce", "neg_sample_num": 4}),
    ("dns+soft_bpr", "BPR", {"sampler": "dns", "loss": "soft_bpr"}),
    ("srns", "BPR", {"sampler": "srns", "srns_pool_size": 50}),
    ("uniform+sampled_softmax", "SASRec", {"sampler": "uniform", "loss": "sampled_softmax", "neg_sample_num": 64}),
    ("uniform+gbce", "SASRec", {"sampler": "uniform", "loss": "gbce", "neg_sample_num": 16}),
    ("genni per_position", "SASRec", {"sampler": "genni", "genni_beta": 0.3}),
    ("genni per_batch curriculum", "SASRec", {"sampler": "genni", "genni_preselect": "per_batch",
                                              "genni_curriculum": True}),
    ("dns+bce SASRec", "SASRec", {"sampler": "dns", "loss": "bce", "neg_sample_num": 2}),
    ("full softmax", "SASRec", {"loss": "full_softmax"}),
    ("full softmax BPR", "BPR", {"loss": "full_softmax"}),
    ("ufnrec", "SASRec", {"method": "ufnrec", "ufn_warmup_epochs": 1, "ufn_reverse_threshold": 1,
                          "neg_sample_num": 20}),
    ("ufnrec fcr", "SASRec", {"method": "ufnrec", "ufn_warmup_epochs": 1, "ufn_reverse_threshold": 1,
                              "neg_sample_num": 20, "ufn_variant": "fcr"}),
    ("LightGCN dns", "LightGCN", {"sampler": "dns"}),
    ("BERT4Rec uniform", "BERT4Rec", {"sampler": "uniform", "loss": "bce"}),
]


def run_all(rows):
    import torch

    from recbole_negs import run_recbole_negs

    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for label, model, keys in rows:
                out = run_recbole_negs(model=model, dataset="ml-100k", config_dict={**SHORT, **keys})
                results[label] = {k: float(v) for k, v in out["test_result"].items()}
                print(label, results[label], flush=True)
        finally:
            os.chdir(cwd)
    return results


def compare(before, after):
    a, b = json.load(open(before)), json.load(open(after))
    print("| run | before NDCG@10 | after NDCG@10 | before HR@10 | after HR@10 | identical |")
    print("|---|---|---|---|---|---|")
    same = True
    for label in a:
        x, y = a[label], b.get(label, {})
        ok = x == y
        same &= ok
        print(f"| {label} | {x.get('ndcg@10')} | {y.get('ndcg@10')} | {x.get('hit@10')} | {y.get('hit@10')} | "
              f"{'yes' if ok else 'NO'} |")
    return same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the metrics JSON here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--rows", nargs="*", help="labels to run (default: all)")
    args = parser.parse_args(argv)
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    rows = [r for r in ROWS if not args.rows or r[0] in args.rows]
    results = run_all(rows)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
