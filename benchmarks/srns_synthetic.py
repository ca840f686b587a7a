"""SRNS section 4.2 (Ding et al., NeurIPS 2020): the synthetic ml-100k experiment, run as the authors' SRNS_syn
code runs it, and the label error ratio of four samplers.

Part 1, variance vs difficulty-only selection at each sigma. The fixed 4:1 random split of ``SRNS_syn/ml-100k``
(no validation, no model selection); MF (RecBole's BPR model) with embedding 32, batches of 1000, Adam lr 1e-3,
no l2, BPR loss, one negative; ``srns_mode: synthetic`` (stale epoch-start raw scores, std over the last five
epoch-start snapshots), tau 1, S1 = S2 = 20, T0 = 50, alpha 10 (variance) against alpha 0 (difficulty only).
Every batch one of the user's known false negatives (``fn_sigma_<sigma>.pkl``, a subset of the user's test
items) sits in memory slot 0 (``sampler.set_false_negatives``). As in the authors' code, fresh candidates come
from the items outside the user's training *and* test items (the script hands the sampler a history of
train + test; see ``exclude_test_items``), so the injected item is the only held-out positive SRNS can pick.
After every epoch the script ranks every item outside the user's training items for the 456 users with test
items and computes Recall@k = hits in the top k / min(k, |test items|), k in {1, 3}; the reported number of a
run is its mean over the last epochs (the paper: the last 50 of 400 epochs, 5 runs).

Part 2, label error ratio: the share of chosen negatives that are held-out positives (test items), per epoch,
for uniform, DNS, GenNi and SRNS (synthetic mode) with the same exclusions (the user's training items) and no
injection; then SRNS with its injection against DNS with one of its H uniform candidates replaced by the user's
known false negative every batch (the same injection, expressed in each sampler's own candidate set).

    python -m benchmarks.srns_synthetic            # the 60-epoch run (about 30 minutes on 2 shared cores)
    python -m benchmarks.srns_synthetic --epochs 400 --tail 50 --sigmas 2 10 --seeds 1 --le-seeds 0 \
        --budget 100000                            # the paper's length, part 1 only (4 runs, ~1-3 h here)
    python -m benchmarks.srns_synthetic --from-json benchmarks/results/srns_synthetic.json   # re-tabulate
    python -m benchmarks.srns_synthetic --quick    # smoke test, about a minute

Every part-1 run is saved to the JSON after every epoch, so a stopped run loses nothing; ``--from-json``
tabulates a finished or running JSON (a run in progress is averaged over the epochs it has).
"""

import argparse
import dataclasses
import json
import math
import os
import pickle
import time

import numpy as np
import scipy.sparse as sp
import torch

from benchmarks import _common as common
from benchmarks import _data, _experiment, _plots
from recbole.utils import init_logger
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.errors import ConfigError
from recbole_negs.history import UserHistory
from recbole_negs.quick_start import prepare_run

NAME = "srns_synthetic"
DATASET = "srns-ml-100k"
SIGMAS = (2, 4, 6, 8, 10)
KS = (1, 3)
LE_SIGMA = 4  # sigma whose known false negatives are injected in the label-error comparison

# The paper's synthetic protocol as RecBole / plugin keys (DESIGN.md, SRNS synthetic bullet).
SHARED = {
    "embedding_size": 32,
    "train_batch_size": 1000,
    "learning_rate": 0.001,
    "weight_decay": 0.0,  # no l2 (RecBole's BPR model adds none; the plugin's MF backbone neither)
    "loss": "bpr",
    "neg_sample_num": 1,
    "neg_exclude": "history",
    "eval_step": 1,  # the callback that computes the paper's metric runs after every validation
    "stopping_step": 10 ** 9,  # no early stopping
    "metrics": ["Recall"],
    "topk": [3],
    "valid_metric": "Recall@3",  # RecBole's validation is replaced by the paper's Recall (run_one)
    "show_progress": False,
    "state": "INFO",
}
SRNS = {"sampler": "srns", "srns_mode": "synthetic", "srns_tau": 1.0, "srns_s1": 20, "srns_s2": 20,
        "srns_warmup": 50}
VARIANTS = {"variance (alpha 10)": 10.0, "difficulty only (alpha 0)": 0.0}
LE_SAMPLERS = {
    "uniform": {"sampler": "uniform"},
    "DNS (H 16)": {"sampler": "dns", "dns_candidates": 16},
    "GenNi (alpha 2.5, beta 1)": {"sampler": "genni", "genni_alpha": 2.5, "genni_beta": 1.0},
    "SRNS synthetic (alpha 10)": dict(SRNS, srns_alpha=10.0),
}
LE_INJECTED = {
    "SRNS synthetic (alpha 10) + FN in memory slot 0": dict(SRNS, srns_alpha=10.0),
    "DNS (H 16) + FN as one of the 16 candidates": {"sampler": "dns", "dns_candidates": 16},
}


# --------------------------------------------------------------------------- data
def load_raw(data_dir):
    """Raw 0-based test pairs and the known false negatives per sigma (lists by raw user id)."""
    source = os.path.join(os.path.abspath(data_dir), "SRNS_syn", "ml-100k")
    with open(os.path.join(source, "test.pkl"), "rb") as f:
        test = np.asarray(pickle.load(f))
    fns = {}
    for sigma in SIGMAS:
        with open(os.path.join(source, f"fn_sigma_{sigma}.pkl"), "rb") as f:
            fns[sigma] = [[int(x) for x in items] for items in pickle.load(f)]
    return test, fns


class Split:
    """Dense [users, items] masks in RecBole's internal ids: training items, held-out (test) items and the
    known false negatives of one sigma; built once per dataset (the ids are the same in every run)."""

    def __init__(self, dataset, train_dataset, test, fns):
        uid, iid = dataset.uid_field, dataset.iid_field
        self.n_users, self.n_items = dataset.user_num, dataset.item_num
        self.uid, self.iid = uid, iid
        coo = train_dataset.inter_matrix(form="coo")
        self.train = torch.zeros((self.n_users, self.n_items), dtype=torch.bool)
        self.train[torch.as_tensor(coo.row, dtype=torch.long), torch.as_tensor(coo.col, dtype=torch.long)] = True
        users = torch.as_tensor(dataset.token2id(uid, test[:, 0].astype(str)), dtype=torch.long)
        items = torch.as_tensor(dataset.token2id(iid, test[:, 1].astype(str)), dtype=torch.long)
        self.test_users, self.test_items = users, items
        self.heldout = torch.zeros_like(self.train)
        self.heldout[users, items] = True
        self.heldout &= ~self.train
        self.n_test = self.heldout.sum(dim=1)
        self.eval_users = torch.nonzero(self.n_test > 0)[:, 0]
        self._dataset = dataset
        self.fn_tables = {sigma: self._fn_table(rows) for sigma, rows in fns.items()}

    def summary(self):
        """What the tables need of the split, kept in the JSON (``--from-json`` tabulates without the data)."""
        return {"n_users": self.n_users, "n_items": self.n_items, "n_eval": len(self.eval_users),
                "fn_per_user": {str(sigma): float((t > 0).sum(dim=1)[self.eval_users].float().mean())
                                for sigma, t in self.fn_tables.items()}}

    def _fn_table(self, rows):
        """[n_users, F] internal item ids of the known false negatives (0 = none)."""
        width = max(1, max(len(r) for r in rows))
        table = torch.zeros((self.n_users, width), dtype=torch.long)
        for raw_user, items in enumerate(rows):
            if items:
                u = int(self._dataset.token2id(self.uid, str(raw_user)))
                table[u, :len(items)] = torch.as_tensor(self._dataset.token2id(self.iid, [str(i) for i in items]))
        assert bool(self.heldout.gather(1, table).masked_fill(table == 0, True).all()), \
            "known false negatives must be test items of their user"
        return table

    def train_and_test_history(self, device):
        """UserHistory of train + test items: what the authors' code excludes from fresh SRNS candidates."""
        both = (self.train | self.heldout).to_sparse_coo()
        rows, cols = both.indices().numpy()
        matrix = sp.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=both.shape)
        return UserHistory.from_matrix(matrix, device)


@torch.no_grad()
def paper_recall(model, split):
    """Per user with test items: Recall@k over min(k, |test items|) for k in KS, full ranking of the items
    outside the user's training items (the other test items compete); the metric is the mean over users."""
    scores = model.backbone.user_scorer().score_catalog(split.eval_users)  # [U, n_items]
    scores.masked_fill_(split.train[split.eval_users], float("-inf"))
    scores[:, 0] = float("-inf")
    top = scores.topk(max(KS), dim=1).indices
    hits = split.heldout[split.eval_users].gather(1, top).float()
    n_test = split.n_test[split.eval_users].float()
    return {f"recall@{k}": hits[:, :k].sum(dim=1) / n_test.clamp(max=k) for k in KS}  # [U] per user


# --------------------------------------------------------------------------- one run
def run_one(log, title, extra, seed, epochs, tail, split_holder, raw, inject_sigma=None,
            exclude_test_items=False, dns_injection=False, progress=None):
    """Train one configuration for ``epochs`` epochs; per epoch the paper's Recall@k, the label error ratio
    of the chosen negatives and the share that are the user's known false negatives (and, for synthetic SRNS,
    ``memory_diagnostics``). Returns a dict, or {"refused": message} when the plugin refuses the
    configuration; ``progress(partial)`` is called after every epoch with the run so far (to save it)."""
    config_dict = dict(SHARED, **extra, seed=seed, epochs=epochs, **split_holder["data_config"])
    log.start(title)
    started = time.time()
    try:
        config = NegsConfig(model="BPR", dataset=DATASET, config_dict=config_dict)
        init_logger(config)
        dataset, model, train_data, valid_data, _test_data, trainer = prepare_run(config)
    except ConfigError as error:
        return {"refused": str(error)}
    if split_holder.get("split") is None:
        split_holder["split"] = Split(dataset, train_data._dataset, *raw)
    split = split_holder["split"]
    sampler = model.sampler
    fn_table = split.fn_tables[inject_sigma if inject_sigma is not None else LE_SIGMA]
    fn_mask = torch.zeros_like(split.heldout)
    fn_mask.scatter_(1, fn_table, True)
    fn_mask[:, 0] = False

    if exclude_test_items:  # the authors' code draws fresh candidates outside train + test items
        sampler.context = dataclasses.replace(sampler.context, history=split.train_and_test_history(sampler.device))
    if inject_sigma is not None and not dns_injection:
        sampler.set_false_negatives(fn_table)
    if dns_injection:  # one of the H uniform candidates of a user with known false negatives is one of them
        fn_count = (fn_table > 0).sum(dim=1)
        draw = sampler.draw_uniform

        def draw_with_fn(targets, num, replacement=True):
            candidates = draw(targets, num, replacement)
            count = fn_count[targets.users]
            rows = torch.nonzero(count > 0)[:, 0]
            if len(rows):
                pick = (torch.rand(len(rows)) * count[rows]).long().clamp_(max=count[rows] - 1)
                candidates[rows, 0] = fn_table[targets.users[rows], pick]
            return candidates

        sampler.draw_uniform = draw_with_fn

    counts = {"chosen": 0, "heldout": 0, "known_fn": 0}
    sample = sampler.sample

    def counted(targets):
        out = sample(targets)
        users = targets.users[:, None].expand_as(out.ids)
        counts["chosen"] += out.ids.numel()
        counts["heldout"] += int(split.heldout[users, out.ids].sum())
        counts["known_fn"] += int(fn_mask[users, out.ids].sum())
        return out

    sampler.sample = counted
    curve = {f"recall@{k}": [] for k in KS}
    curve.update(label_error=[], known_fn_share=[], chosen_std=[], seconds=[])
    last = [time.time()]

    latest, tail_sums = {}, {}

    def valid_epoch(_valid_data, show_progress=False):
        # RecBole's own full-sort validation on the test split is replaced by the paper's metric: nothing is
        # selected on it (saved=False, no early stopping), and it would only cost a second ranking per epoch
        latest.clear()
        for key, per_user in paper_recall(trainer.model, split).items():
            latest[key] = float(per_user.mean())
            if sampler.epoch >= epochs - tail:  # per-user sums over the averaged epochs (paired SE)
                tail_sums[key] = tail_sums.get(key, 0) + per_user.double()
        return latest["recall@3"], dict(latest)

    trainer._valid_epoch = valid_epoch

    def callback(epoch_idx, _valid_score):
        for key, value in latest.items():
            curve[key].append(value)
        chosen = max(counts["chosen"], 1)
        curve["label_error"].append(counts["heldout"] / chosen)
        curve["known_fn_share"].append(counts["known_fn"] / chosen)
        stats = getattr(trainer, "last_statistics", {}) or {}
        curve["chosen_std"].append(float(stats.get("chosen_std", float("nan"))))
        for key, value in memory_diagnostics(sampler, split, fn_table).items():
            curve.setdefault(key, [None] * (len(curve["seconds"])))
            curve[key].append(value)
        for key in counts:
            counts[key] = 0
        now = time.time()
        curve["seconds"].append(now - last[0])
        last[0] = now
        if progress is not None:
            progress({"curve": curve, "partial": True, "wall_seconds": now - started})

    trainer.fit(train_data, valid_data, saved=False, show_progress=False, callback_fn=callback)
    n_tail = min(tail, epochs)
    per_user = {key: [round(float(x) / n_tail, 5) for x in total] for key, total in tail_sums.items()}
    return {"curve": curve, "per_user_tail": per_user, "wall_seconds": time.time() - started}


@torch.no_grad()
def memory_diagnostics(sampler, split, fn_table):
    """Per epoch end (synthetic SRNS only), mean over the users with test items: the epoch-start raw scores
    the memory refresh used (ring slot ``taken - 2``) of the memory items (the false-negative slot left out),
    of the user's top-20 eligible items (outside training and test items: the best memory the refresh could
    reach) and of all eligible items (a uniform memory); ``hardness`` = (memory - eligible) / (top-20 -
    eligible), 0 for a uniform memory, 1 for the top 20. Then the std of the raw scores over the five latest
    snapshots (what the next epoch's selection uses, Eq. 5) of the known false negatives, of the top-20
    eligible items, of the memory items and of all eligible items."""
    if getattr(sampler, "mode", None) != "synthetic" or sampler.taken < 2:
        return {}
    users = split.eval_users
    eligible = ~(split.train | split.heldout)[users]
    eligible[:, 0] = False
    start = sampler.snaps[users, :, (sampler.taken - 2) % 5]  # [U, items]
    n = eligible.sum(1).float()
    mean = (start * eligible).sum(1) / n
    spread = (((start - mean[:, None]) ** 2 * eligible).sum(1) / n).sqrt()
    top = start.masked_fill(~eligible, float("-inf")).topk(20, dim=1)
    memory = sampler.memory[users]
    has_fn = sampler.fn_count[users] > 0
    keep = torch.ones_like(memory, dtype=torch.bool)
    keep[:, 0] = ~has_fn
    mem = (start.gather(1, memory) * keep).sum(1) / keep.sum(1)
    out = {"mem_score": float(mem.mean()), "top20_score": float(top.values.mean()),
           "eligible_score": float(mean.mean()), "eligible_spread": float(spread.mean()),
           "hardness": float(((mem - mean) / (top.values.mean(1) - mean).clamp(min=1e-12)).mean())}
    if sampler.taken >= 5:
        window = sampler.snaps[users]  # [U, items, 5]
        std = (window - window.mean(-1, keepdim=True)).square().mean(-1).sqrt()  # [U, items]
        fn = fn_table[users]
        fn_ok = fn > 0
        per_user_fn = (std.gather(1, fn) * fn_ok).sum(1) / fn_ok.sum(1).clamp(min=1)
        with_fn = fn_ok.any(1)
        out.update(fn_std=float(per_user_fn[with_fn].mean()), top20_std=float(std.gather(1, top.indices).mean()),
                   mem_std=float(((std.gather(1, memory) * keep).sum(1) / keep.sum(1)).mean()),
                   eligible_std=float(((std * eligible).sum(1) / n).mean()),
                   fn_score=float(((start.gather(1, fn) * fn_ok).sum(1) / fn_ok.sum(1).clamp(min=1))[with_fn].mean()))
    return out


def tail_mean(values, n):
    values = values[-n:]
    return sum(values) / len(values)


# --------------------------------------------------------------------------- tables
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(parser, NAME, seeds=3, epochs=60)
    _data.add_data_args(parser)
    parser.add_argument("--tail", type=int, default=10, help="Recall@k is averaged over the last N epochs "
                        "(default 10; the paper: 50 of 400)")
    parser.add_argument("--sigmas", type=int, nargs="+", default=list(SIGMAS), choices=SIGMAS)
    parser.add_argument("--le-epochs", type=int, default=30, help="epochs of the label-error runs (default 30)")
    parser.add_argument("--le-seeds", type=int, default=2, help="seeds of the label-error runs (default 2)")
    parser.add_argument("--budget", type=float, default=28.0, help="minutes: a seed round starts only if the "
                        "previous round's duration says it ends within this (default 28)")
    parser.add_argument("--tau", type=float, default=SRNS["srns_tau"], help="srns_tau of the SRNS runs (default "
                        f"{SRNS['srns_tau']}, the code's --temperature; docs/srns.md on tau and MF's score scale)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--from-json", type=os.path.abspath, nargs="+", default=None,
                        help="write the tables from saved JSONs (finished or still running) without training; "
                        "several (e.g. seed 0 and a --first-seed 1 run) are merged, the first one's settings kept")
    parser.add_argument("--first-seed", type=int, default=0, help="part 1 runs seeds first-seed .. first-seed + "
                        "seeds - 1 (to add seeds in a second process or later; merge with --from-json)")
    args = parser.parse_args()
    if args.from_json:
        return tabulate(args)
    SRNS["srns_tau"] = args.tau
    if args.quick:
        args.seeds, args.epochs, args.tail, args.sigmas, args.le_epochs, args.le_seeds = 1, 8, 3, [4], 3, 1
    out, workdir, log = common.start(args, NAME)
    md_path, json_path, stem = _experiment.output_paths(out, NAME)
    holder = {"data_config": _data.dataset_config(DATASET, args.data_dir, workdir), "split": None}
    raw = load_raw(args.data_dir)
    tail = min(args.tail, args.epochs)

    meta = {"epochs": args.epochs, "seeds": args.seeds, "tail": tail, "sigmas": args.sigmas,
            "le_epochs": args.le_epochs, "le_seeds": args.le_seeds, "le_sigma": LE_SIGMA,
            "shared": SHARED, "srns": SRNS, "revision": common.REVISION, "args": vars(args),
            "command": common.command_line()}
    results = {"part1": {}, "label_error": {}, "label_error_injected": {}}

    def save():
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)

    started = time.time()

    def report(label, r):
        if "refused" in r:
            print(f"[{time.time() - started:7.0f}s] {label}: REFUSED {r['refused']}", flush=True)
            return
        c = r["curve"]
        print(f"[{time.time() - started:7.0f}s] {label}: R@1 {tail_mean(c['recall@1'], tail):.4f} "
              f"R@3 {tail_mean(c['recall@3'], tail):.4f} label error {tail_mean(c['label_error'], tail):.4f} "
              f"known FN {tail_mean(c['known_fn_share'], tail):.4f}, {r['wall_seconds']:.0f} s", flush=True)

    # Rounds: round s = part 1 with seed s, then the label-error runs with seed s, so that a run cut short by
    # the time budget keeps whole seeds of both parts. A round starts only when the last one says it fits.
    timing = {"part1": 0.0, "label_error": 0.0}
    skipped = []
    round_seconds = 0.0
    for seed in range(max(args.seeds, args.le_seeds)):
        elapsed = time.time() - started
        if seed > 0 and elapsed + round_seconds > args.budget * 60:
            skipped = list(range(seed, max(args.seeds, args.le_seeds)))
            print(f"[{elapsed:7.0f}s] budget: the last round took {round_seconds:.0f} s, seeds {skipped} would "
                  f"end past {args.budget} min; stopping", flush=True)
            break
        round_start = time.time()
        if seed < args.seeds:  # part 1: variance vs difficulty only (seeds first_seed ..)
            run_seed = args.first_seed + seed
            for sigma in args.sigmas:
                for variant in args.variants:
                    alpha = VARIANTS[variant]
                    label = f"sigma {sigma} | {variant} | seed {run_seed}"
                    runs = results["part1"].setdefault(str(sigma), {}).setdefault(variant, [])
                    runs.append({})

                    def progress(partial, runs=runs, run_seed=run_seed):  # every epoch: nothing is lost
                        runs[-1] = dict(partial, seed=run_seed)
                        if holder.get("split") is not None:
                            meta["split"] = holder["split"].summary()
                        save()

                    r = run_one(log, label, dict(SRNS, srns_alpha=alpha), run_seed, args.epochs, tail, holder, raw,
                                inject_sigma=sigma, exclude_test_items=True, progress=progress)
                    runs[-1] = dict(r, seed=run_seed)
                    report(label, r)
                    save()
        part2_start = time.time()
        timing["part1"] += part2_start - round_start
        if seed < args.le_seeds:  # part 2: label error ratio
            for label, extra in LE_SAMPLERS.items():
                r = run_one(log, f"LE | {label} | seed {seed}", extra, seed, args.le_epochs, tail, holder, raw)
                results["label_error"].setdefault(label, []).append(r)
                report(f"LE {label} seed {seed}", r)
                save()
            for label, extra in LE_INJECTED.items():
                r = run_one(log, f"LE+FN | {label} | seed {seed}", extra, seed, args.le_epochs, tail, holder, raw,
                            inject_sigma=LE_SIGMA, dns_injection=label.startswith("DNS"))
                results["label_error_injected"].setdefault(label, []).append(r)
                report(f"LE+FN {label} seed {seed}", r)
                save()
        timing["label_error"] += time.time() - part2_start
        round_seconds = time.time() - round_start
    timing["total"] = time.time() - started
    meta["timing_seconds"], meta["skipped_seeds"] = timing, skipped
    save()

    meta["split"] = holder["split"].summary()
    save()
    body = write_body(args, tail, results, meta["split"], stem, timing, skipped)
    common.write_result(md_path, title(results), body)
    print(f"json: {json_path}")


def tabulate(args):
    """``--from-json``: the markdown beside the JSON's own result path (or ``--out``), from the saved runs; a
    run still in progress is tabulated over the epochs it has (its tail is its last ``tail`` epochs)."""
    saved = []
    for path in args.from_json:
        with open(path, encoding="utf-8") as f:
            saved.append(json.load(f))
    meta, results = saved[0]["meta"], saved[0]["results"]
    for other in saved[1:]:  # append the other files' runs, part by part, row by row
        for part, rows in other["results"].items():
            for key, value in rows.items():
                if isinstance(value, dict):  # part 1: sigma -> variant -> runs
                    for variant, runs in value.items():
                        results[part].setdefault(key, {}).setdefault(variant, []).extend(runs)
                else:
                    results[part].setdefault(key, []).extend(value)
    run_args = argparse.Namespace(**meta["args"])
    run_args.from_json = args.from_json
    stem = os.path.splitext(os.path.abspath(args.out) if args.out else args.from_json[0])[0]
    md_path = stem + ".md"
    timing = meta.get("timing_seconds") or {"part1": 0.0, "label_error": 0.0, "total": 0.0}
    body = write_body(run_args, meta["tail"], results, meta["split"], stem, timing, meta.get("skipped_seeds", []))
    runs = "; ".join(f"`{o['meta'].get('command', '?')}` (recbole-negs at `{o['meta'].get('revision', '?')}`)"
                     for o in saved)
    body = (f"Tabulated (`--from-json`) from the JSON of the run(s) {runs}; the numbers and settings are "
            "theirs.\n\n" + body)
    common.write_result(md_path, title(results), body)


def title(results):
    part2 = any(results["label_error"].values()) or any(results["label_error_injected"].values())
    return "SRNS section 4.2: synthetic ml-100k (variance vs difficulty" + ("; label error ratio)" if part2 else ")")


PAPER_DIRECTION = "variance > difficulty (Fig. 2; no numbers in the text)"
DIAG_EPOCHS = (10, 50, 100, 200, 300, 400)


def scale_paragraph(args, tail, n_seeds, sec):
    full = args.epochs >= 400 and tail >= 50
    text = ("- **Scale: the paper's length** (400 epochs, mean of the last 50; the paper repeats 5 runs). "
            if full else "- **Scale (reduced from the paper)**: the paper trains 400 epochs, averages the last 50, "
            "5 runs. ")
    text += (f"Here {args.epochs} epochs, mean of the last {tail} (epochs {args.epochs - tail}.."
             f"{args.epochs - 1}, 0-based), {n_seeds} seed(s), both variants with the same seeds, sigma in "
             f"{args.sigmas}; T0 = 50, so alpha_t reaches its full value at epoch 50. A median epoch took "
             f"{sec:.2f} s (one torch thread on a shared 2-core machine).")
    if not full:
        text += " A difference not seen here is *not shown at this budget*, not a failure to reproduce."
    return text


def diagnostics_section(args, results, tail):
    """Memory hardness and the false negatives' std against the top-20 eligible items', per epoch."""
    rows = []
    for sigma in args.sigmas:
        for variant in VARIANTS:
            for r in results["part1"].get(str(sigma), {}).get(variant, []):
                c = r.get("curve", {})
                if "hardness" not in c:
                    continue
                for e in DIAG_EPOCHS:
                    if e - 1 < len(c["hardness"]) and c["hardness"][e - 1] is not None:
                        g = lambda k: c.get(k, [None] * e)[e - 1]  # noqa: E731
                        f = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
                        rows.append([sigma, variant, e, f(g("mem_score")), f(g("top20_score")), f(g("eligible_score")),
                                     f(g("eligible_spread")), f(g("hardness")), f(g("fn_score")), f(g("fn_std")),
                                     f(g("top20_std")), f(g("mem_std")), f(g("eligible_std")),
                                     f(g("recall@3"))])
                break  # the first seed
    if not rows:
        return []
    header = ["sigma", "variant", "epoch", "memory score", "top-20 eligible score", "eligible mean",
              "eligible spread (std over items)", "hardness", "known FN score", "known FN std (5 snapshots)",
              "top-20 eligible std", "memory std", "eligible std", "Recall@3"]
    return ["## Memory hardness and the false negatives' variance (first seed)", "",
            "At the epoch end, mean over the 456 users with test items, from the epoch-start raw scores the "
            "memory refresh used: the memory items' score (the false-negative slot left out), the user's top-20 "
            "eligible items' (outside training and test items: the best memory the refresh could hold), all "
            "eligible items' mean and spread; hardness = (memory - eligible mean) / (top-20 - eligible mean), 0 "
            "for a uniform memory, 1 for the top 20. Then the std of the raw scores over the five latest "
            "epoch-start snapshots (Eq. 5, what the next epoch's selection adds alpha_t times) of the user's known "
            "false negatives, of the top-20 eligible items (the hard true negatives), of the memory and of all "
            "eligible items. SRNS's premise (section 2, Fig. 1(d)) is that false negatives have a *lower* std "
            "than hard true negatives; the softmax refresh (Eq. 3) is near-uniform while the eligible spread is "
            "small against tau (docs/srns.md, \"tau and the score scale\").", "",
            common.markdown_table(header, rows), ""]


def paired_users(v, d, key):
    """Per user, variance minus difficulty of the tail-mean recall (same seed paired, averaged over seeds):
    mean ± SE over users and its z. Measures the noise of the 456 test users given the training runs, not the
    noise of training seeds."""
    pairs = [(a["per_user_tail"][key], b["per_user_tail"][key]) for a, b in zip(v, d)
             if a.get("per_user_tail") and b.get("per_user_tail")]
    if not pairs:
        return "—"
    diff = np.mean([np.asarray(a) - np.asarray(b) for a, b in pairs], axis=0)
    mean, se = float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))
    z = abs(mean) / se if se > 0 else float("inf")
    word = "noise" if z <= 2 else ("**gain**" if mean > 0 else "**loss**")
    return f"{mean:+.4f} ± {se:.4f} ({z:.1f} SE): {word}"


def write_body(args, tail, results, split, stem, timing, skipped):
    epoch_seconds = [s for runs in results["part1"].values() for rs in runs.values() for r in rs
                     if "curve" in r for s in r["curve"]["seconds"]]
    sec = sorted(epoch_seconds)[len(epoch_seconds) // 2] if epoch_seconds else float("nan")
    n_seeds = max([len(rs) for runs in results["part1"].values() for rs in runs.values()] or [0])
    n_le_seeds = max([len(rs) for rs in results["label_error"].values()] or [0])
    lines = [
        "## Protocol and scale",
        "",
        f"- Data: `SRNS_syn/ml-100k`, the authors' fixed 4:1 random split ({split['n_users'] - 1} users, "
        f"{split['n_items'] - 1} items; {split['n_eval']} users have test items), converted by "
        "`benchmarks/_data.py` (the valid file repeats the test split; nothing is selected on it).",
        "- Model: MF (RecBole's BPR model), embedding 32, batch 1000, Adam lr 1e-3, no l2 (`weight_decay: 0`, "
        "BPR adds no reg; the code's `run_srns.sh` passes `--regs 0.0`), BPR loss, one negative. SRNS "
        f"`srns_mode: synthetic`, tau {getattr(args, 'tau', 1.0):g}, S1 = S2 = 20, T0 = 50 "
        "(`srns_warmup: 50`); variance = `srns_alpha: 10`, difficulty only = `srns_alpha: 0` (key = stale raw "
        "score; a negative alpha would select by std alone, docs/srns.md).",
        "- Injection: every refresh puts one of the user's known false negatives (`fn_sigma_<sigma>.pkl`, a "
        "subset of the user's test items) into memory slot 0 (`sampler.set_false_negatives`). Fresh "
        "candidates are drawn outside the user's training **and test** items, as the authors' code does: the "
        "script hands the sampler a `UserHistory` of train + test (the sampler itself only knows the training "
        "split), so the injected item is the only held-out positive SRNS can choose in part 1.",
        "- Metric (computed by the script after every epoch from the current weights, in place of RecBole's "
        "own validation, which would select nothing here): rank every item outside the user's training items "
        "(other test items compete), "
        "Recall@k = hits in the top k / min(k, |test items|), k in {1, 3}, mean over the users with test "
        f"items; a run's number is the mean over its last {tail} epochs.",
        scale_paragraph(args, tail, n_seeds, sec),
        "",
        "## Part 1: variance vs difficulty-only selection (Recall@k, mean ± SE over seeds)",
        "",
    ]
    header = ["sigma", "known FN / user", "seeds"]
    for k in KS:
        header += [f"R@{k} variance", f"R@{k} difficulty", f"R@{k} variance - difficulty"]
    header += [f"paired over users: R@{k} variance - difficulty" for k in KS]
    header += ["chosen known FN: variance / difficulty", "paper"]
    rows = []
    variance, difficulty = list(VARIANTS)
    for sigma in args.sigmas:
        runs = results["part1"].get(str(sigma), {})
        v = [r for r in runs.get(variance, []) if "curve" in r]
        d = [r for r in runs.get(difficulty, []) if "curve" in r]
        if not v or not d:
            continue
        fn_per_user = split["fn_per_user"][str(sigma)]
        row = [sigma, f"{fn_per_user:.2f}", min(len(v), len(d))]
        for k in KS:
            a = [tail_mean(r["curve"][f"recall@{k}"], tail) for r in v]
            b = [tail_mean(r["curve"][f"recall@{k}"], tail) for r in d]
            row += [common.fmt_mean_se(a), common.fmt_mean_se(b), _experiment.verdict(b, a)]
        row += [paired_users(v, d, f"recall@{k}") for k in KS]
        fa = [tail_mean(r["curve"]["known_fn_share"], tail) for r in v]
        fb = [tail_mean(r["curve"]["known_fn_share"], tail) for r in d]
        row += [f"{common.fmt_mean_se(fa, 3)} / {common.fmt_mean_se(fb, 3)}", PAPER_DIRECTION]
        rows.append(row)
    lines.append(common.markdown_table(header, rows))
    lines += [
        "",
        "\"variance - difficulty\": the mean difference with its size in standard errors of the difference "
        "(sqrt(SE_v^2 + SE_d^2) over seeds); **gain** / **loss** only beyond 2 SE, else noise. \"paired over "
        "users\": the same difference per test user (each user's recall averaged over the tail epochs, variance "
        "minus difficulty of the same seed, averaged over seeds), mean ± SE over the users: it measures how "
        "much the 456 test users could move the number for these training runs, not the seed-to-seed noise "
        "of training, which only the seed columns measure. \"chosen known FN\": "
        f"share of the chosen negatives (last {tail} epochs) that are the injected false negative.",
        "",
        "Paper column: section 4.2.1 reports the synthetic results only as a figure (Fig. 2: test Recall/NDCG "
        "averaged over the last 50 of 400 epochs, 5 runs) and states a \"consistent improvement of "
        "variance-based strategy with different sigma\"; the text gives no numbers (Table 3 is the real-data "
        "comparison), so the column holds that direction. The paper's sigma is a share of F in [0, 1]; the "
        "code's `fn_sigma_<s>.pkl` files are s / 10 (sigma 10 = all of F). Compare the direction and the gap, "
        "not absolute values.",
        "",
    ]
    lines += diagnostics_section(args, results, tail)
    # plot: Recall@3 per epoch, both variants, at the lowest and highest sigma run
    shown = sorted({min(args.sigmas), max(args.sigmas)})
    series = {}
    for sigma in shown:
        for variant in VARIANTS:
            runs = [r for r in results["part1"].get(str(sigma), {}).get(variant, []) if "curve" in r]
            series[f"sigma {sigma}, {variant}"] = [list(enumerate(r["curve"]["recall@3"])) for r in runs]
    png1 = _plots.line_plot(f"{stem}-recall3.png", "SRNS synthetic ml-100k: Recall@3 per epoch (mean over seeds)",
                            series, "epoch", "Recall@3 (over min(3, |test|))")
    lines += [f"![Recall@3 per epoch]({os.path.basename(png1)})", ""]

    if not any(results["label_error"].values()) and not any(results["label_error_injected"].values()):
        lines.append(f"Per-epoch numbers of every run are in `{os.path.basename(stem)}.json`. The label error "
                     "ratio (part 2) was not run here; its last run (60 epochs) is in "
                     "`srns_synthetic_60epochs.md`.")
        return "\n".join(lines)
    lines += [
        "## Part 2: label error ratio",
        "",
        f"Share of chosen negatives that are held-out positives (the user's test items), per epoch; "
        f"{args.le_epochs} epochs, {n_le_seeds} seed(s), mean ± SE over seeds of the mean over the last "
        f"{min(tail, args.le_epochs)} epochs, and of epochs 0..4 (the start). All samplers exclude only the "
        "user's training items (the same exclusions) and share MF, batch 1000, lr 1e-3, BPR loss, one negative. "
        "DNS: H = 16 (the plugin's default). GenNi: alpha 2.5, beta 1 (the plugin's Table 1 preset), with BPR "
        "and training-item exclusion instead of its preset's BCE / target-only exclusion so that only the "
        "sampler differs. SRNS: synthetic mode, alpha 10, tau 1, S1 = S2 = 20, T0 = 50.",
        "",
        "**Injection.** The paper's false-negative injection puts a known false negative into SRNS's memory. It "
        "has no analogue in uniform sampling (an injected \"candidate\" would simply be the negative) or in "
        "GenNi (which ranks the whole catalog, where every false negative already is), so the first table "
        "compares all four **without** injection (SRNS synthetic with no `set_false_negatives` call). The "
        f"second table gives the injection to the two samplers that choose among a few candidates: SRNS with "
        f"its injection (a sigma-{LE_SIGMA} known false negative in memory slot 0 at every refresh, 1 of 20 "
        "memory items) against DNS with one of its 16 uniform candidates replaced, for every row of a user "
        f"with known false negatives, by one of them drawn at random (the script wraps `draw_uniform`). "
        "Known-FN share = chosen negatives that are the injected false negatives.",
        "",
    ]
    le_tail = min(tail, args.le_epochs)

    def le_table(group):
        rows = []
        for label, runs in group.items():
            refused = [r for r in runs if "refused" in r]
            ok = [r for r in runs if "curve" in r]
            if refused and not ok:
                rows.append([label, "refused: " + refused[0]["refused"][:160], "—", "—", "—"])
                continue
            start = [tail_mean(r["curve"]["label_error"][:5], 5) for r in ok]
            end = [tail_mean(r["curve"]["label_error"], le_tail) for r in ok]
            known = [tail_mean(r["curve"]["known_fn_share"], le_tail) for r in ok]
            r3 = [tail_mean(r["curve"]["recall@3"], le_tail) for r in ok]
            rows.append([label, common.fmt_mean_se(start), common.fmt_mean_se(end), common.fmt_mean_se(known),
                         common.fmt_mean_se(r3)])
        return common.markdown_table(["sampler", "label error, epochs 0-4", f"label error, last {le_tail} epochs",
                                      f"known FN (sigma {LE_SIGMA}) share, last {le_tail}",
                                      f"Recall@3, last {le_tail}"], rows)

    lines += ["### Without injection (same exclusions: training items)", "", le_table(results["label_error"]), "",
              f"### With the sigma-{LE_SIGMA} injection", "", le_table(results["label_error_injected"]), ""]
    series = {}
    for group in ("label_error", "label_error_injected"):
        for label, runs in results[group].items():
            ok = [r for r in runs if "curve" in r]
            if ok:
                series[label] = [list(enumerate(r["curve"]["label_error"])) for r in ok]
    png2 = _plots.line_plot(f"{stem}-label-error.png", "Label error ratio per epoch (share of chosen negatives "
                            "that are test items)", series, "epoch", "label error ratio", logy=True)
    lines += [f"![label error ratio per epoch]({os.path.basename(png2)})", ""]
    if skipped:
        lines.append(f"**Budget**: seeds {skipped} were not run: the previous round would have ended past "
                     f"{args.budget} min; the tables show the seeds that ran (column / table headers).")
    lines.append(f"Wall time: part 1 {timing['part1'] / 60:.1f} min, label error {timing['label_error'] / 60:.1f} "
                 f"min, total {timing['total'] / 60:.1f} min. "
                 "Per-epoch numbers of every run (Recall@1/@3, label error, known-FN share, mean std of the chosen "
                 f"negatives, seconds) are in `{os.path.basename(stem)}.json`.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
