"""How the samplers' cost per batch and their memory grow with the catalog: synthetic data with n_users =
n_items = N for N in 10^4, 10^5, 10^6, built in memory (no dataset, no model: a random item table and random
queries stand in for the encoder, scored through the plugin's ``CandidateScorer``).

* sequential batch: 256 sequences x 50 positions = 12,800 targets (uniform, DNS H16, GenNi beta 0.1 per batch
  and per position, GenNi beta 1, and UFNRec's mining with its 100 uniform negatives per position);
* general batch: 2,048 (user, item) rows (uniform, DNS H64, SRNS real mode);
* the loss step each feeds (sampled softmax over K negatives, forward + backward) against the full-softmax CE
  over the catalog (RecBole's ``loss_type: CE``), whose logits are computed by formula where they do not fit;
* memory: the exact bytes of every sampler's state tensors, and the peak resident memory above the baseline
  while the sampler was built, initialised and timed (``VmHWM`` of /proc/self/status, reset through
  /proc/self/clear_refs before each sampler).

Each timing is the median of ``--reps`` calls after a warm-up call. A configuration whose full batch would take
longer than ``--cap`` seconds for all its calls is timed on its first R rows (whole sequences) and scaled by
12,800 / R (or 2,048 / R); the tables mark those with a dagger and give R. Every chunked sampler processes rows
independently, so its cost is linear in the rows.
"""

import argparse
import gc
import json
import math
import os
import re
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks._common import add_common_args, markdown_table, resolve_out, set_threads, use_scratch_dir, write_result
from benchmarks._plots import line_plot

from recbole.utils import ModelType
from recbole_negs.scoring import CandidateScorer
from recbole_negs.history import UserHistory
from recbole_negs.losses import sampled_softmax
from recbole_negs.config.properties import all_defaults, property_file, read_yaml
from recbole_negs import registry
from recbole_negs.samplers import SamplingContext, Targets
from recbole_negs.samplers import srns as srns_module
from recbole_negs.trainers.ufnrec.mining import FalseNegativeMiner

DIM = 64
PER_USER = 50  # interactions per user (about: repeats of a random draw are merged); one full 50-long sequence
SEQ_USERS, SEQ_LEN = 256, 50
GENERAL_ROWS = 2048
GIB = 2 ** 30
RECBOLE_BATCH = 2048  # RecBole's default train_batch_size: its own SASRec CE scores the last position of each row

SEQUENTIAL = [
    ("uniform", "uniform", {}),
    ("dns H16", "dns", {"dns_candidates": 16}),
    ("genni b0.1 per_batch", "genni", {"genni_beta": 0.1, "genni_preselect": "per_batch"}),
    ("genni b0.1 per_position", "genni", {"genni_beta": 0.1, "genni_preselect": "per_position"}),
    ("genni b1", "genni", {"genni_beta": 1.0}),
]
GENERAL = [
    ("uniform", "uniform", {}),
    ("dns H64", "dns", {"dns_candidates": 64}),
    ("srns", "srns", {}),
]


# --------------------------------------------------------------------------- memory
def _status(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


def reset_peak():
    """Reset the peak resident size to the current one (Linux >= 4.0); returns the current resident bytes."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def peak_since(base):
    return _status("VmHWM") - base


def tensor_bytes(obj):
    """Bytes of the distinct tensor storages among an object's attributes."""
    seen, total = set(), 0
    for value in vars(obj).values():
        if isinstance(value, torch.Tensor) and value.untyped_storage().data_ptr() not in seen:
            seen.add(value.untyped_storage().data_ptr())
            total += value.untyped_storage().nbytes()
    return total


def srns_state_bytes(users, items, interactions, pool, s1, s2):
    """SRNS real mode's state by formula, term by term as samplers/srns/real.py allocates it (N = users x items beyond the
    dense-table limit, so no dense tables)."""
    live, window = srns_module.LIVE_POOLS, srns_module.WINDOW
    columns = items if items <= live * pool else live * pool
    item_bytes = 4 if items < 2 ** 31 else 8
    terms = {
        "pools": live * users * pool * item_bytes,
        "snapshots": users * columns * window * 4,
        "positive snapshots": interactions * window * 4,
        "memory, cursor, flags": users * (8 * s1 + 8 + 1 + 8) + 8 * s2,
    }
    if users * items <= srns_module.DENSE_TABLE_LIMIT:
        terms["dense tables"] = users * items * (4 + 4)
    return terms


def largest_pool(users, items, interactions, s1, s2, budget, default):
    """The largest P <= default whose SRNS state fits ``budget`` bytes (None if even P = S1 + 1 does not)."""
    lo, hi = s1 + 1, default
    fits = lambda p: sum(srns_state_bytes(users, items, interactions, p, s1, s2).values()) <= budget  # noqa: E731
    if not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


# --------------------------------------------------------------------------- data
def make_data(n, seed):
    """A random history of about PER_USER distinct items per user, n users, item ids 1..n-1 (0 is padding)."""
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(1, n, (n, PER_USER), generator=g).sort(dim=1).values
    keep = torch.ones_like(draws, dtype=torch.bool)
    keep[:, 1:] = draws[:, 1:] != draws[:, :-1]
    items = draws[keep]
    indptr = torch.zeros(n + 1, dtype=torch.long)
    indptr[1:] = keep.sum(dim=1).cumsum(0)
    del draws, keep
    history = UserHistory(indptr, items, n, n)
    counts = torch.bincount(items, minlength=n)
    context = SamplingContext(history, n, n, counts, torch.device("cpu"))
    context.sequence_offsets, context.n_targets = indptr[:-1].clone(), len(items)  # a sequence per user
    item_table = torch.randn((n, DIM), generator=g) * 0.1
    return context, item_table, g


def sequential_batch(context, item_table, g):
    """256 users x their first 50 items; each position's query leans towards its positive (0.25 v_pos plus
    noise), so that some uniform negatives outscore it, as a model part-way through training."""
    history = context.history
    users = torch.randperm(context.n_users, generator=g)[:SEQ_USERS]
    sizes = history.sizes[users]
    positions = torch.minimum(torch.arange(SEQ_LEN)[None, :], sizes[:, None] - 1).reshape(-1)
    users = users.repeat_interleave(SEQ_LEN)
    positives = history.items[history.indptr[users] + positions]
    queries = 0.25 * item_table[positives] + 0.1 * torch.randn((len(users), DIM), generator=g)
    return users, positives, positions, queries


def general_batch(context, item_table, user_table, g):
    history = context.history
    rows = torch.randint(0, len(history.items), (GENERAL_ROWS,), generator=g)
    users, positives = history.owner[rows], history.items[rows]
    return users, positives, None, user_table[users]


def targets(batch, item_table, rows):
    users, positives, positions, queries = batch
    return Targets(users[:rows], positives[:rows], CandidateScorer(queries[:rows], item_table),
                   None if positions is None else positions[:rows])


def sampler_config(name, model_type, overrides):
    config = dict(all_defaults())
    config.update(read_yaml(property_file("sampler", name)))
    config.update(overrides, MODEL_TYPE=model_type, model="SASRec" if model_type == ModelType.SEQUENTIAL else "BPR")
    return config


# --------------------------------------------------------------------------- timing
def clock(fn, *args):
    """(CPU seconds of this thread, wall seconds) of one call. With one torch thread all the work runs on the
    calling thread, so its CPU time is the cost, whatever else the shared machine runs; wall time is kept too."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn(*args)
    return time.thread_time() - cpu, time.perf_counter() - wall


def time_rows(call, total, reps, cap, step, probe=None):
    """Median CPU seconds of ``call(rows)`` for the whole batch of ``total`` rows: after a probe on at most
    ``probe`` rows (default: one step, at least 32; the warm-up), the whole batch if (reps + 1) calls fit in ``cap`` wall seconds, else the
    first R rows (a multiple of ``step``) scaled by total / R. Returns (CPU s per batch, R, {cpu, wall} raw)."""
    probe = min(total, probe or max(step, 32))
    estimate = clock(call, probe)[1] * total / probe
    if probe == total:
        rows = total
    elif estimate * (reps + 1) <= cap or estimate <= 1.0:  # cheap: never scaled (fixed costs)
        rows = total
        call(rows)  # warm-up at full size
    else:
        rows = int(total * cap / ((reps + 1) * estimate)) // step * step
        rows = min(total, max(probe, rows))
    raw = [clock(call, rows) for _ in range(reps)]
    scale = total / rows
    return (statistics.median(c for c, _ in raw) * scale, rows,
            {"cpu_s": [c for c, _ in raw], "wall_s": [w for _, w in raw], "scale": scale})


# --------------------------------------------------------------------------- losses
def sampled_softmax_step(queries, table, positives, negatives, log_q=None):
    """Forward and backward of sampled softmax over [positive, K negatives], with gradients to the queries
    and to the item table (dense, as nn.Embedding's default)."""
    q = queries.detach().requires_grad_()
    pos = (q * table[positives]).sum(-1)
    neg = torch.einsum("nd,nkd->nk", q, table[negatives])
    sampled_softmax(pos, neg, log_q).backward()
    table.grad = None


def full_ce_chunked(queries, table, positives, rows_per_chunk):
    """Forward and backward of the full-softmax CE over every item, written out by hand in chunks of rows
    (logits, softmax in place, then grad_q = P W and grad_W += P^T q): three products of T x N x d, the least
    an exact full softmax costs, with the logits of one chunk in memory. Returns (loss, grad_q, grad_W)."""
    n_rows = len(queries)
    table_t = table.t().contiguous()
    grad_q = torch.empty_like(queries)
    grad_w = torch.zeros_like(table)
    loss = 0.0
    for a in range(0, n_rows, rows_per_chunk):
        b = min(n_rows, a + rows_per_chunk)
        q, pos = queries[a:b], positives[a:b]
        logits = q @ table_t
        lse = torch.logsumexp(logits, dim=1, keepdim=True)
        loss += float((lse[:, 0] - logits.gather(1, pos[:, None])[:, 0]).sum())
        p = logits.sub_(lse).exp_()
        p[torch.arange(b - a), pos] -= 1.0
        p /= n_rows
        grad_q[a:b] = p @ table
        grad_w.addmm_(p.t(), q)
    return loss / n_rows, grad_q, grad_w


def recbole_ce(queries, table, positives):
    """RecBole's sequential CE: logits = seq_output @ item_embedding^T, CrossEntropyLoss, autograd."""
    q = queries.detach().requires_grad_()
    w = table.detach().requires_grad_()
    F.cross_entropy(q @ w.t(), positives).backward()
    return q.grad, w.grad


def check_full_ce():
    """The hand-written chunked CE equals autograd's on a small case (loss and both gradients)."""
    g = torch.Generator().manual_seed(0)
    q, w = torch.randn((96, 8), generator=g), torch.randn((300, 8), generator=g)
    pos = torch.randint(0, 300, (96,), generator=g)
    loss, gq, gw = full_ce_chunked(q, w, pos, 40)
    qq, ww = q.clone().requires_grad_(), w.clone().requires_grad_()
    ref = F.cross_entropy(qq @ ww.t(), pos)
    ref.backward()
    assert abs(loss - float(ref.detach())) < 1e-4 and torch.allclose(gq, qq.grad, atol=1e-5) and torch.allclose(
        gw, ww.grad, atol=1e-5), "chunked full CE differs from autograd"


# --------------------------------------------------------------------------- one catalog size
def run_size(n, args, log):
    out = {"N": n, "sequential": {}, "general": {}, "loss": {}, "memory": {}}
    started = time.perf_counter()
    base = reset_peak()
    context, item_table, g = make_data(n, args.seed)
    user_table = torch.randn((n, DIM), generator=g) * 0.1
    out["interactions"] = len(context.history.items)
    out["data_bytes"] = peak_since(base)
    seq = sequential_batch(context, item_table, g)
    gen = general_batch(context, item_table, user_table, g)
    n_seq, n_gen = len(seq[0]), len(gen[0])
    log(f"N={n:,}: data built in {time.perf_counter() - started:.1f}s "
        f"({out['interactions']:,} interactions, peak +{out['data_bytes'] / GIB:.2f} GiB)")

    def timed_sampler(label, sampler, batch, total, step, family):
        base = reset_peak()
        sec, rows, raw = time_rows(lambda r: sampler(targets(batch, item_table, r)), total, args.reps, args.cap, step)
        row = {"ms": 1000 * sec, "rows": rows, "total_rows": total, "raw_s": raw,
               "state_bytes": tensor_bytes(sampler), "peak_bytes": peak_since(base)}
        out[family][label] = row
        log(f"  {family} {label}: {row['ms']:.1f} ms/batch" + (f" (on {rows} rows)" if rows < total else "")
            + f", peak +{row['peak_bytes'] / 2 ** 20:.0f} MB")
        return row

    # --- sequential samplers
    for label, name, overrides in SEQUENTIAL:
        config = sampler_config(name, ModelType.SEQUENTIAL, overrides)
        try:
            sampler = registry.load("sampler", name)(config, context)
            timed_sampler(label, sampler, seq, n_seq, SEQ_LEN, "sequential")
        except (RuntimeError, MemoryError) as err:
            out["sequential"][label] = {"error": f"{type(err).__name__}: {str(err)[:120]}"}
        sampler = None
        gc.collect()

    # --- UFNRec: 100 uniform negatives per position (history excluded), then mining (place + update)
    out["ufnrec"] = run_ufnrec(context, item_table, seq, args, log)

    # --- general samplers
    for label, name, overrides in GENERAL:
        config = sampler_config(name, ModelType.GENERAL, overrides)
        try:
            if name == "srns":
                out["general"][label] = run_srns(context, item_table, user_table, gen, config, args, log)
            else:
                sampler = registry.load("sampler", name)(config, context)
                timed_sampler(label, sampler, gen, n_gen, 1, "general")
        except (RuntimeError, MemoryError) as err:
            out["general"][label] = {"error": f"{type(err).__name__}: {str(err)[:120]}"}
        sampler = None
        gc.collect()

    # --- loss steps
    table = torch.nn.Parameter(item_table)
    uniform = registry.load("sampler", "uniform")(sampler_config("uniform", ModelType.SEQUENTIAL, {}), context)
    for k in (1, 100):
        uniform.num = k
        neg = uniform(targets(seq, item_table, n_seq))
        sec, rows, raw = time_rows(
            lambda r: sampled_softmax_step(seq[3][:r], table, seq[1][:r], neg.ids[:r], neg.log_q[:r]),
            n_seq, args.reps, float("inf"), SEQ_LEN, probe=n_seq)  # whole batch: the dense table gradient is per batch
        out["loss"][f"sampled softmax K={k}"] = {"ms": 1000 * sec, "rows": rows, "total_rows": n_seq}
    chunk = max(1, args.ce_chunk_floats // n)
    base = reset_peak()
    sec, rows, raw = time_rows(lambda r: full_ce_chunked(seq[3][:r], item_table, seq[1][:r], chunk),
                               n_seq, args.reps, args.cap, SEQ_LEN)
    out["loss"]["full CE, chunked"] = {"ms": 1000 * sec, "rows": rows, "total_rows": n_seq,
                                       "chunk_rows": chunk, "peak_bytes": peak_since(base)}
    logit_bytes = 4 * n_seq * n
    out["loss"]["logit_bytes"] = logit_bytes
    if logit_bytes <= args.recbole_ce_limit:  # RecBole's unchunked CE, where its logits are small
        base = reset_peak()
        sec, rows, raw = time_rows(lambda r: recbole_ce(seq[3][:r], item_table, seq[1][:r]), n_seq, args.reps,
                                   float("inf"), SEQ_LEN, probe=n_seq)
        out["loss"]["full CE, RecBole (unchunked)"] = {"ms": 1000 * sec, "rows": rows, "total_rows": n_seq,
                                                       "peak_bytes": peak_since(base)}
    log("  losses: " + ", ".join(f"{k} {v['ms']:.0f} ms" + (f" (on {v['rows']} rows)" if v["rows"] < v[
        "total_rows"] else "") for k, v in out["loss"].items() if isinstance(v, dict)))
    out["seconds"] = time.perf_counter() - started
    return out


def run_ufnrec(context, item_table, seq, args, log):
    """UFNRec's per-batch work beyond uniform sampling: place (recorded items first, counts looked up) and
    update (counts added, record rewritten) for the 12,800 targets, with the preset's K = 100 and m = 5.
    The record is [targets, K] int32; when it exceeds the state budget it is not allocated: the miner is
    built with the batch's rows only (keys renumbered), and the full size is given by formula."""
    config = sampler_config("uniform", ModelType.SEQUENTIAL, {})
    config.update(read_yaml(property_file("trainer", "ufnrec")))
    config.update({k: v for k, v in read_yaml(property_file("method", "ufnrec")).items() if k.startswith(("neg_", "ufn_"))})
    k = config["neg_sample_num"]
    users, positives, positions, queries = seq
    record_bytes = context.n_targets * k * 4
    full = record_bytes <= args.state_budget
    keys = (context.sequence_offsets[users] + positions) if full else torch.arange(len(users))
    base = reset_peak()
    uniform = registry.load("sampler", "uniform")(config, context)
    miner = FalseNegativeMiner(config, context.n_items, context.n_targets if full else len(users), torch.device("cpu"))
    scorer = CandidateScorer(queries, item_table)
    pos_logits = scorer.score(positives[:, None])[:, 0]
    batch = targets(seq, item_table, len(users))

    def visit():
        ids = uniform(batch).ids
        t0 = time.thread_time()
        placement = miner.place(keys, ids)
        t1 = time.thread_time()
        neg_logits = scorer.score(placement.ids)
        t2 = time.thread_time()
        miner.update(keys, placement, pos_logits, neg_logits)
        return (t1 - t0) + (time.thread_time() - t2), placement

    visit()  # warm-up: the first visit fills the record
    times, from_record = [], []
    for _ in range(args.reps):
        sec, placement = visit()
        times.append(sec)
        from_record.append(float(placement.from_record.float().mean()))
    uniform_sec, _, _ = time_rows(lambda r: uniform(targets(seq, item_table, r)), len(users), args.reps,
                                  args.cap, SEQ_LEN)
    row = {"k": k, "m": config["ufn_reverse_threshold"], "mining_ms": 1000 * statistics.median(times),
           "uniform_ms": 1000 * uniform_sec, "record_bytes": record_bytes, "record_allocated": full,
           "counts_bytes": miner.placements.nbytes(), "counts_entries": len(miner.placements),
           "visits": args.reps + 1, "from_record_share": statistics.mean(from_record), "mining_cpu_s": times,
           "peak_bytes": peak_since(base), "targets": context.n_targets}
    log(f"  ufnrec mining: {row['mining_ms']:.1f} ms/batch + uniform K={k} {row['uniform_ms']:.1f} ms; "
        f"{100 * row['from_record_share']:.0f}% of placements from the record; record "
        f"{record_bytes / GIB:.2f} GiB{'' if full else ' (not allocated)'}")
    return row


def run_srns(context, item_table, user_table, batch, config, args, log):
    """SRNS real mode with the largest pool size (at most the preset's) whose state fits ``--state-budget``:
    built, initialised (five pools drawn, the pre-training snapshot of every user), one epoch end timed (a new
    pool, a snapshot), then the batch timed with the snapshot ring marked full (the std over five snapshots
    computed at every row, as from epoch 5 on) and alpha_t at its full value."""
    users, items, interactions = context.n_users, context.n_items, len(context.history.items)
    s1, s2, default = config["srns_s1"], config["srns_s2"], config["srns_pool_size"]
    pool = largest_pool(users, items, interactions, s1, s2, args.state_budget, default)
    at_default = sum(srns_state_bytes(users, items, interactions, default, s1, s2).values())
    row = {"pool_size": pool, "default_pool": default, "state_bytes_at_default": at_default}
    if pool is None:
        row["error"] = f"even P = S1 + 1 exceeds the {args.state_budget / GIB:g} GiB budget"
        return row
    config = dict(config, srns_pool_size=pool)
    base = reset_peak()
    sampler = registry.load("sampler", "srns")(config, context)
    scorer = CandidateScorer(user_table, item_table)
    trainer = lambda: scorer  # noqa: E731  (what the trainer hands SRNS: every user's scores)
    row["init_s"], row["init_wall_s"] = clock(sampler.on_train_start, trainer)
    if args.srns_epoch_end:
        row["epoch_end_s"], row["epoch_end_wall_s"] = clock(sampler.on_epoch_end, 0, trainer)
    sampler.taken, sampler.epoch = srns_module.WINDOW + 1, config["srns_warmup"]
    sec, rows, raw = time_rows(lambda r: sampler(targets(batch, item_table, r)), len(batch[0]), args.reps,
                               args.cap, 1)
    row.update(ms=1000 * sec, rows=rows, total_rows=len(batch[0]), raw_s=raw, state_bytes=tensor_bytes(sampler),
               peak_bytes=peak_since(base), formula=srns_state_bytes(users, items, interactions, pool, s1, s2),
               storage=sampler.storage)
    log(f"  general srns P={pool}: init {row['init_s']:.1f}s, "
        f"{row['ms']:.1f} ms/batch, state {row['state_bytes'] / GIB:.2f} GiB, peak +{row['peak_bytes'] / GIB:.2f} GiB")
    return row


# --------------------------------------------------------------------------- report
def slope(points):
    """Least-squares slope of log(cost) against log(N): cost ~ N^slope."""
    pts = [(math.log(x), math.log(y)) for x, y in points if y and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def fmt_ms(row):
    if "error" in row:
        return f"not run: {row['error']}"
    mark = f" † ({row['rows']} rows)" if row["rows"] < row["total_rows"] else ""
    return f"{row['ms']:,.1f}{mark}"


def mb(x):
    x = max(x, 0)
    return f"{x / 2 ** 20:,.0f}" if x >= 2 ** 20 else f"{x / 2 ** 20:.2f}"


def report(results, args, ram):
    sizes = [r["N"] for r in results]
    head = ["family", "sampler"] + [f"N = {n:.0e}".replace("e+0", "e") for n in sizes] + ["ratio to uniform"] + (
        ["growth exponent"] if len(sizes) > 1 else [])
    rows, series = [], {}
    for family, configs in (("sequential", [c[0] for c in SEQUENTIAL]), ("general", [c[0] for c in GENERAL])):
        for label in configs:
            cells = [fmt_ms(r[family][label]) for r in results]
            ratios = []
            for r in results:
                row, ref = r[family][label], r[family]["uniform"]
                ratios.append("-" if "error" in row or "error" in ref else f"{row['ms'] / ref['ms']:,.1f}x")
            points = [(r["N"], r[family][label].get("ms")) for r in results]
            s = slope(points)
            rows.append([family, label] + cells + [" / ".join(ratios)] + ([f"{s:.2f}" if s is not None else "-"]
                                                                          if len(sizes) > 1 else []))
            series[f"{family[:3]}: {label}"] = [[p for p in points if p[1]]]
    # UFNRec
    cells = [f"{r['ufnrec']['mining_ms']:,.1f} (+ uniform K=100: {r['ufnrec']['uniform_ms']:,.1f})" for r in results]
    pts = [(r["N"], r["ufnrec"]["mining_ms"]) for r in results]
    s = slope(pts)
    rows.append(["sequential", "ufnrec mining (K=100, m=5)"] + cells
                + [" / ".join(f"{r['ufnrec']['mining_ms'] / r['sequential']['uniform']['ms']:,.1f}x" for r in results)]
                + ([f"{s:.2f}" if s is not None else "-"] if len(sizes) > 1 else []))
    series["seq: ufnrec mining (K=100)"] = [pts]
    ce_pts = [(r["N"], r["loss"]["full CE, chunked"]["ms"]) for r in results]
    series["seq: full CE step (chunked, fwd+bwd)"] = [ce_pts]
    cost_table = markdown_table(head, rows)

    # loss steps
    factor = None
    if "full CE, RecBole (unchunked)" in results[0]["loss"]:
        factor = results[0]["loss"]["full CE, RecBole (unchunked)"]["peak_bytes"] / results[0]["loss"]["logit_bytes"]
    loss_rows = []
    for r in results:
        L, n = r["loss"], r["N"]
        est = factor * L["logit_bytes"] if factor else None
        rec = L.get("full CE, RecBole (unchunked)")
        loss_rows.append([
            f"{n:,}", fmt_ms(L["sampled softmax K=1"]), fmt_ms(L["sampled softmax K=100"]),
            fmt_ms(L["full CE, chunked"]) + f" ({L['full CE, chunked']['chunk_rows']:,} rows/chunk)",
            f"{L['logit_bytes'] / GIB:,.2f}",
            (f"{est / GIB:,.1f}" if est else "-") + (" (measured " + f"{rec['peak_bytes'] / GIB:.2f})" if rec else ""),
            ("fits" if est and est <= ram else "does not fit" if est else "-"),
            fmt_ms(rec) if rec else "not run (logits above --recbole-ce-limit)",
        ])
    loss_table = markdown_table(
        ["N", "sampled softmax K=1 (ms)", "sampled softmax K=100 (ms)", "full CE, chunked (ms)",
         "full-CE logits [12,800, N] f32 (GiB)", "RecBole CE peak, est. (GiB)", f"in {ram / GIB:.0f} GiB RAM",
         "RecBole CE unchunked (ms)"], loss_rows)
    # memory
    mem_rows = []
    for r in results:
        n = r["N"]
        for family in ("sequential", "general"):
            for label, row in r[family].items():
                if "error" in row:
                    mem_rows.append([f"{n:,}", family, label, row["error"], "-", "-"])
                    continue
                extra = ""
                if label == "srns":
                    extra = (f"P = {row['pool_size']} (preset {row['default_pool']}: "
                             f"{row['state_bytes_at_default'] / GIB:,.1f} GiB); {row['storage']} storage")
                mem_rows.append([f"{n:,}", family, label, mb(row["state_bytes"]),
                                 f"{row['state_bytes'] / n:,.0f}", mb(row["peak_bytes"])] + ([extra] if extra else [""]))
        u = r["ufnrec"]
        mem_rows.append([f"{n:,}", "sequential", "ufnrec miner", mb(u["record_bytes"] + u["counts_bytes"]),
                         f"{u['record_bytes'] / n:,.0f} + counts", mb(u["peak_bytes"]),
                         f"record [{u['targets']:,} targets, {u['k']}] int32 = {u['record_bytes'] / GIB:,.2f} GiB"
                         + ("" if u["record_allocated"] else f" (over the {args.state_budget / GIB:g} GiB budget: not "
                            "allocated, timed with the batch's rows only)")
                         + f"; counts map {u['counts_entries']:,} entries = {mb(u['counts_bytes'])} MB after "
                           f"{u['visits']} visits of one batch"])
    mem_table = markdown_table(["N", "family", "sampler", "state (MB)", "state bytes / user", "peak RSS above "
                                "baseline (MB)", "notes"], mem_rows)

    srns_rows = []
    for r in results:
        row = r["general"]["srns"]
        if "error" in row:
            srns_rows.append([f"{r['N']:,}", "-", row["error"], "-", "-", "-"])
            continue
        terms = ", ".join(f"{k} {v / GIB:.2f}" for k, v in row["formula"].items())
        srns_rows.append([f"{r['N']:,}", f"{row['pool_size']}", terms, f"{row['state_bytes'] / GIB:.2f}",
                          f"{row['init_s']:.1f}", f"{row['epoch_end_s']:.1f}" if "epoch_end_s" in row else "not timed"])
    srns_table = markdown_table(["N", "pool size P", "state by term (GiB)", "state, tensors (GiB)",
                                 "init: 5 pools + snapshot (CPU s)", "one epoch end (CPU s)"], srns_rows)
    return cost_table, loss_table, mem_table, srns_table, series, factor


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__), "scale", 1, 0)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="catalog sizes N (users = items = N)")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per configuration (median)")
    parser.add_argument("--cap", type=float, default=12.0,
                        help="seconds per configuration; beyond it the batch is timed on its first rows and scaled")
    parser.add_argument("--state-budget", type=float, default=4.0, help="GiB of per-user state allowed (SRNS, UFNRec)")
    parser.add_argument("--recbole-ce-limit", type=float, default=1.0,
                        help="GiB of logits up to which RecBole's unchunked CE is run (its peak is a few times that)")
    parser.add_argument("--ce-chunk-floats", type=int, default=1 << 27, help="logits per chunk of the chunked CE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--srns-epoch-end", action="store_true",
                        help="also time one SRNS epoch end (a pool draw and a snapshot of every user: minutes at 1e5+)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.reps, args.cap, args.state_budget = "10000", 1, 2.0, 0.25
    args.state_budget = int(args.state_budget * GIB)
    args.recbole_ce_limit = int(args.recbole_ce_limit * GIB)
    out = resolve_out(args, "scale")
    set_threads(args.threads)
    use_scratch_dir(args.workdir)
    out = out or os.path.abspath("scale.md")
    stem = os.path.splitext(out)[0]
    ram = _status_meminfo()

    wall = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - wall:6.0f}s] {msg}", flush=True)  # noqa: E731
    check_full_ce()
    results = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        results.append(run_size(n, args, log))
        gc.collect()
    elapsed = time.perf_counter() - wall

    cost_table, loss_table, mem_table, srns_table, series, factor = report(results, args, ram)
    png = line_plot(f"{stem}-cost.png", "Cost per batch vs catalog size (users = items = N); seq: 12,800 targets, "
                    "gen: 2,048 rows", series, "N (users = items)", "ms per batch (1 thread)", logx=True, logy=True)
    with open(f"{stem}.json", "w", encoding="utf-8") as f:
        json.dump({"args": {k: v for k, v in vars(args).items()}, "ram_bytes": ram, "wall_seconds": elapsed,
                   "results": results}, f, indent=1)

    n_max = {t: int(ram / (factor * 4 * t)) if factor else None for t in (SEQ_USERS * SEQ_LEN, RECBOLE_BATCH)}
    body = (
        f"Synthetic data built in memory: N users and N item ids (N - 1 items, id 0 is padding), about {PER_USER} "
        f"random distinct items per user (so every sequence fills L = {SEQ_LEN}), a random item table [N, {DIM}] "
        f"(std 0.1) and per-target queries 0.25 v_pos + noise (so that a few uniform negatives outscore the "
        f"positive, as part-way through training). Sequential batch: {SEQ_USERS} users x {SEQ_LEN} positions = "
        f"{SEQ_USERS * SEQ_LEN:,} targets; general batch: {GENERAL_ROWS:,} random (user, item) rows. Each sampler "
        f"runs with the plugin's YAML defaults for its name (uniform and DNS exclude the user's training items, "
        f"GenNi only the target, alpha 2.5) and K = 1; times are the median of {args.reps} calls after a warm-up, "
        f"1 torch thread; ms are CPU time of the calling thread (all torch work runs there with one thread), "
        f"so that the other jobs on this shared 2-core machine do not inflate them (wall times are in the JSON). † = timed on the first R rows of the batch and "
        f"scaled linearly to the whole batch (the configuration would have taken more than {args.cap:g} s for its "
        f"{args.reps + 1} calls). Whole run: {elapsed / 60:.1f} min.\n\n"
        "## Sampler cost per batch (ms)\n\n"
        f"{cost_table}\n\n"
        "Ratios are to uniform of the same family at the same N (N ascending). The growth exponent is the "
        "least-squares slope of log(ms) on log(N): 0 = flat, 1 = linear in the catalog. UFNRec's row is its mining "
        "only (place + update, the scoring of its 100 negatives left out); its uniform draw of 100 negatives is "
        "in brackets. SRNS: per batch with the snapshot window full; its epoch-end work is in the SRNS table.\n\n"
        f"![cost per batch]({os.path.basename(png)})\n\n"
        "## Loss step per batch (12,800 targets, forward + backward, gradients to queries and the item table)\n\n"
        f"{loss_table}\n\n"
        "Sampled softmax: the positive and K uniform negatives per target, with log q. Full CE, chunked: the exact "
        "full-softmax loss and gradients over the catalog written out by hand in chunks of rows (three T x N x d "
        "products, checked against autograd at start-up); RecBole's own CE (`loss_type: CE`: logits = queries "
        "@ item_table^T, then CrossEntropyLoss with autograd) holds the whole [T, N] logits and their gradient. "
        + (f"Its peak measured at N = {sizes_str(results[0]['N'])} is {factor:.1f}x the logits' size; the "
           f"estimates scale that by 4 T N bytes. With this machine's {ram / GIB:.0f} GiB it runs out above "
           f"N = {n_max[SEQ_USERS * SEQ_LEN]:,} items for all-position training ({SEQ_USERS * SEQ_LEN:,} targets "
           f"per batch) and above N = {n_max[RECBOLE_BATCH]:,} for RecBole's own prefix rows at its default "
           f"train_batch_size {RECBOLE_BATCH} (one target per row).\n\n" if factor else "\n\n")
        + "## Memory\n\n"
        f"{mem_table}\n\n"
        "State: the bytes of the sampler's own tensors (exact); per user = state / N. Peak: the resident size's "
        "high-water mark above its value before the sampler was built, over building, initialising and the timed "
        "batches (temporaries included; the data, the item table and the batch are in the baseline).\n\n"
        f"### SRNS: pool size under a {args.state_budget / GIB:g} GiB state budget\n\n"
        f"{srns_table}\n\n"
        "SRNS keeps per user five live pools of P int32 ids (20 P bytes), a float32 snapshot ring of 5 per pool "
        "column (100 P bytes, or 20 n_items when the catalog is no larger than 5 P) and 20 bytes per training "
        "interaction; the pool size is the largest P <= the preset's whose state fits the budget. "
        "Init and epoch end are the work outside the batches (pool draws, scoring every user's live pools and "
        "positives); an epoch end is one pool draw and one snapshot, i.e. the init minus four pool draws "
        "(`--srns-epoch-end` times it).\n"
    )
    write_result(out, "Scale: sampler cost per batch and memory vs catalog size (10^4 to 10^6)", body)
    print(f"wall: {elapsed:.0f}s; written {png}, {stem}.json")


def sizes_str(n):
    return f"{n:,}"


def _status_meminfo():
    with open("/proc/meminfo") as f:
        return int(re.search(r"^MemTotal:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


if __name__ == "__main__":
    main()
