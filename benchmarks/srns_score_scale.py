"""Why SRNS's memory refresh ``softmax(score / tau)`` (Eq. 3) is nearly uniform on RecBole's MF at tau = 1:
the raw-score scale of MF against the GMF of the SRNS paper (section 2: ``r = beta^T (p_u * q_i)``), trained
the same way on the synthetic ml-100k split (``SRNS_syn/ml-100k``, train.pkl).

Two small models written here (not the plugin's backbones), each trained with BPR, one negative per positive
outside the user's training and test items (the code's fresh candidates): uniform, or with ``--hard H`` the
highest-scored of H uniform candidates (a stand-in for SRNS's argmax over its memory, which pushes the hardest
items down as SRNS does), Adam lr 1e-3, batch 1000, F 32, no l2, for ``--epochs`` epochs:

* MF as RecBole's BPR model: xavier-normal embeddings, ``score = p . q``, loss averaged over the batch;
* GMF as the authors' ``SRNS_syn/Model.py`` describes it: truncated-normal(0.01) embeddings, a learned vector h
  (uniform +-sqrt(6 / (F + 1))), ``score = (p * q) . h``, loss summed over the batch.

Every ``--every`` epochs, per user with test items: the mean raw score of the user's top-20 eligible items
(outside training and test items), the mean over all eligible items, their std, and what a softmax at tau = 1
over 20 random + 20 top items would give the top half (``top_mass``: 0.5 = uniform). Results per checkpoint to
JSON; the table is written to ``benchmarks/results/srns_score_scale.md``.

    python -m benchmarks.srns_score_scale --epochs 400 --every 10 --hard 20
    python -m benchmarks.srns_score_scale --from-json benchmarks/results/srns_score_scale.json
"""

import argparse
import json
import math
import os
import pickle
import time

import numpy as np
import torch

from benchmarks import _data

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def load(data_dir):
    source = os.path.join(os.path.abspath(data_dir), "SRNS_syn", "ml-100k")
    with open(os.path.join(source, "train.pkl"), "rb") as f:
        train = np.asarray(pickle.load(f))
    with open(os.path.join(source, "test.pkl"), "rb") as f:
        test = np.asarray(pickle.load(f))
    users = int(max(train[:, 0].max(), test[:, 0].max())) + 1
    items = int(max(train[:, 1].max(), test[:, 1].max())) + 1
    seen = torch.zeros((users, items), dtype=torch.bool)
    seen[train[:, 0], train[:, 1]] = True
    heldout = torch.zeros_like(seen)
    heldout[test[:, 0], test[:, 1]] = True
    return torch.as_tensor(train, dtype=torch.long), seen, heldout


class Model(torch.nn.Module):
    def __init__(self, kind, users, items, dim):
        super().__init__()
        self.kind = kind
        self.p = torch.nn.Embedding(users, dim)
        self.q = torch.nn.Embedding(items, dim)
        if kind == "gmf":
            torch.nn.init.trunc_normal_(self.p.weight, std=0.01, a=-0.02, b=0.02)
            torch.nn.init.trunc_normal_(self.q.weight, std=0.01, a=-0.02, b=0.02)
            bound = math.sqrt(6 / (dim + 1))
            self.h = torch.nn.Parameter(torch.empty(dim).uniform_(-bound, bound))
        else:
            torch.nn.init.xavier_normal_(self.p.weight)
            torch.nn.init.xavier_normal_(self.q.weight)
            self.h = None

    def score(self, u, i):
        prod = self.p(u) * self.q(i)
        return prod @ self.h if self.h is not None else prod.sum(-1)

    def table(self):
        q = self.q.weight if self.h is None else self.q.weight * self.h
        return self.p.weight @ q.T


@torch.no_grad()
def scale(model, eligible, users):
    scores = model.table()[users]
    mask = eligible[users]
    masked = scores.masked_fill(~mask, float("-inf"))
    top = masked.topk(20, dim=1).values
    n = mask.sum(1).float()
    mean = (scores * mask).sum(1) / n
    std = (((scores - mean[:, None]) ** 2 * mask).sum(1) / n).sqrt()
    # softmax at tau 1 over the top 20 and 20 items at the eligible mean: the top half's share
    top_mass = torch.exp(top).sum(1) / (torch.exp(top).sum(1) + 20 * torch.exp(mean))
    return {"top20": float(top.mean()), "mean": float(mean.mean()), "std": float(std.mean()),
            "gap_in_std": float(((top.mean(1) - mean) / std).mean()), "top_mass_tau1": float(top_mass.mean())}


def run(kind, train, seen, heldout, epochs, every, seed, log, hard=1):
    torch.manual_seed(seed)
    users, items = seen.shape
    model = Model(kind, users, items, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    eligible = ~(seen | heldout)
    free = [torch.nonzero(eligible[u])[:, 0] for u in range(users)]
    free_count = torch.tensor([len(f) for f in free])
    free_table = torch.zeros((users, int(free_count.max())), dtype=torch.long)
    for u, f in enumerate(free):
        free_table[u, :len(f)] = f
    eval_users = torch.nonzero(heldout.any(1))[:, 0]
    out = []
    for epoch in range(epochs):
        order = torch.randperm(len(train))
        for a in range(0, len(train), 1000):
            batch = train[order[a:a + 1000]]
            u, i = batch[:, 0], batch[:, 1]
            cand = free_table[u[:, None], (torch.rand(len(u), hard) * free_count[u, None]).long()]  # [B, H]
            if hard > 1:  # DNS: the highest-scored of H uniform candidates (SRNS's argmax over its memory)
                with torch.no_grad():
                    pick = (model.p(u)[:, None, :] * model.q(cand) * (1 if model.h is None else model.h)).sum(-1)
                cand = cand.gather(1, pick.argmax(1, keepdim=True))
            j = cand[:, 0]
            diff = model.score(u, i) - model.score(u, j)
            loss = torch.nn.functional.softplus(-diff)
            loss = loss.sum() if kind == "gmf" else loss.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if (epoch + 1) % every == 0 or epoch == 0:
            row = dict(epoch=epoch + 1, **scale(model, eligible, eval_users))
            if model.h is not None:
                row["h_abs_mean"] = float(model.h.detach().abs().mean())
            out.append(row)
            log(kind, row)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _data.add_data_args(parser)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard", type=int, default=1, help="negatives: the highest-scored of H uniform candidates "
                        "(default 1: uniform)")
    parser.add_argument("--out", default=os.path.join(OUT, "srns_score_scale.json"))
    parser.add_argument("--from-json", default=None, help="rewrite the table from a saved JSON")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            return write_table(json.load(f), os.path.splitext(args.from_json)[0] + ".md")
    torch.set_num_threads(1)
    train, seen, heldout = load(args.data_dir)
    results = {"meta": {"epochs": args.epochs, "every": args.every, "seed": args.seed, "hard": args.hard}}
    started = time.time()

    def log(kind, row):
        print(f"[{time.time() - started:6.0f}s] {kind} {row}", flush=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)

    for kind in ("mf", "gmf"):
        results[kind] = []
        results[kind] = run(kind, train, seen, heldout, args.epochs, args.every, args.seed,
                            lambda k, r: (results[k].append(r), log(k, r)), hard=args.hard)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    write_table(results, os.path.splitext(args.out)[0] + ".md")


def negatives(hard):
    return "uniform negatives" if hard <= 1 else f"DNS negatives: the highest-scored of {hard} uniform candidates"


def write_table(results, path):
    lines = ["# SRNS: raw-score scale of MF and GMF on the synthetic ml-100k split", "",
             "Command: `python -m benchmarks.srns_score_scale --epochs "
             f"{results['meta']['epochs']} --every {results['meta']['every']} --hard {results['meta'].get('hard', 1)}`"
             f" ({negatives(results['meta'].get('hard', 1))}, BPR, Adam 1e-3, batch 1000, F 32, no l2; seed "
             f"{results['meta']['seed']}). Per user with test items, mean over "
             "users: the top-20 eligible items' mean raw score, the eligible items' mean and std, the top-20 gap in "
             "stds, and the share a softmax at tau 1 gives 20 top items against 20 average ones (0.5 = uniform).",
             "", "| epoch | MF top-20 | MF mean | MF std | MF top mass (tau 1) | GMF top-20 | GMF mean | GMF std | "
             "GMF top mass (tau 1) | GMF mean abs h |", "|---|---|---|---|---|---|---|---|---|---|"]
    for a, b in zip(results["mf"], results["gmf"]):
        lines.append(f"| {a['epoch']} | {a['top20']:.3f} | {a['mean']:.3f} | {a['std']:.3f} | "
                     f"{a['top_mass_tau1']:.3f} | {b['top20']:.3f} | {b['mean']:.3f} | {b['std']:.3f} | "
                     f"{b['top_mass_tau1']:.3f} | {b.get('h_abs_mean', float('nan')):.3f} |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
