"""Many training runs at once on one machine (made for one short shot on a GPU machine), with per-evaluation
results that survive a cut, and their tables.

    python -m benchmarks.device_runs --spec genni_table1,pdns_gowalla --parallel 14 --budget-s 480 \\
        --out /tmp/runs --tar $OUT/runs.tar.gz [--data-dir .devcarry/dataset] [--device cuda|cpu] [--quick]
    python -m benchmarks.device_runs --tabulate runs.tar.gz      # or the folder
    python -m benchmarks.device_runs --tabulate runs.tar.gz --plot results/run   # also validation-curve PNGs

Every (row, seed) of the named specs (``benchmarks/device_specs.py``) is its own process (``--parallel`` at a
time, one torch thread each, ``gpu_id`` 0 when CUDA is there). A process writes ``<out>/<run>.json`` after
EVERY evaluation (epoch, seconds since its start and since training started, train loss, seconds per epoch,
validation metrics, GPU memory), so a killed run still leaves its curve; at the end it tests the
best-validation checkpoint under each protocol of its spec (RecBole's: ``eval_mask_history`` False; ``masked``:
True, the user's earlier items never ranked) and saves the rank of every held-out test item per protocol in
``<run>.npz`` (``<protocol>_user``, ``<protocol>_rank``: 1 + the number of items scored above it), from which
the tables compute per-user metrics for a paired bootstrap between rows on the same users.

``--budget-s`` is the wall-clock budget of the whole command: every run stops itself at an evaluation when the
next evaluation period plus its final test would not fit before the deadline (the best checkpoint so far is
tested), runs are not started with less than ``--min-start-s`` left, and whatever still runs at the deadline
plus ``--grace-s`` is killed (its JSON keeps the curve). ``<out>`` is packed into one ``--tar`` file (default
``<out>.tar.gz``) every minute and at the end, so a command killed from outside still returns its runs.

Nothing is installed here: on the device machine first
``pip install --no-index --no-deps --target /tmp/site .devcarry/whl/*.whl; export PYTHONPATH=/tmp/site:$PWD``
(``benchmarks.device_pack`` fills ``.devcarry``). Tabulating needs only numpy.
"""

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, ".devcarry", "dataset")
N_BOOT = 1000


# =========================================================================== per-user metrics and statistics
def parse_metric(name):
    """'ndcg@10' -> ('ndcg', 10)."""
    kind, k = name.lower().split("@")
    if kind not in ("ndcg", "hit", "recall", "precision", "mrr"):
        raise ValueError(f"no per-user form for metric {name!r}")
    return kind, int(k)


def per_user_metric(users, ranks, metric):
    """Per-user values of a top-K metric from the rank of each held-out item (one entry per (user, item);
    rank = 1 + items scored above it, so the other held-out items count): ``(sorted user ids, values)``, the
    same numbers RecBole's metric averages (ties aside)."""
    kind, k = parse_metric(metric)
    users = np.asarray(users)
    ranks = np.asarray(ranks, dtype=np.float64)
    uniq, inverse = np.unique(users, return_inverse=True)
    n_pos = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    hit = ranks <= k
    hits = np.bincount(inverse, weights=hit, minlength=len(uniq))
    if kind == "hit":
        values = (hits > 0).astype(np.float64)
    elif kind == "recall":
        values = hits / n_pos
    elif kind == "precision":
        values = hits / k
    elif kind == "mrr":  # RecBole's MRR: reciprocal rank of the first held-out item in the top k
        first = np.full(len(uniq), np.inf)
        np.minimum.at(first, inverse, np.where(hit, ranks, np.inf))
        values = np.where(np.isfinite(first), 1.0 / first, 0.0)
    else:  # ndcg
        dcg = np.bincount(inverse, weights=np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0), minlength=len(uniq))
        ideal_terms = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
        idcg = ideal_terms[np.minimum(n_pos, k).astype(int) - 1]
        values = dcg / idcg
    return uniq, values


def mean_se(values):
    """(mean, standard error of the mean); se is nan for fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def paired_bootstrap(diff, n_boot=N_BOOT, seed=0):
    """Users resampled with replacement ``n_boot`` times: (mean difference, bootstrap SE, 2.5%, 97.5%)."""
    diff = np.asarray(diff, dtype=np.float64)
    n = len(diff)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // n))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(means.std(ddof=1)), float(lo), float(hi)


def verdict(seed_diff, seed_se, boot_diff, boot_se, k=2.0):
    """'gain' / 'loss' only where the seed SE and the paired bootstrap SE both put the difference beyond k SE
    (same sign); 'noise' otherwise; with one seed (no seed SE) no verdict is given."""
    if boot_se is None or math.isnan(boot_se):
        return "n/a"
    if seed_se is None or math.isnan(seed_se):
        return "n/a (1 seed)"
    beyond_seed = abs(seed_diff) > k * seed_se
    beyond_boot = abs(boot_diff) > k * boot_se
    if beyond_seed and beyond_boot and (seed_diff > 0) == (boot_diff > 0):
        return "**gain**" if seed_diff > 0 else "**loss**"
    return "noise"


# =========================================================================== data
def dataset_keys(data_path, name):
    """RecBole keys of a converted dataset: ids and the timestamp (orders sequences); a fixed split when the
    folder holds <name>.train/.valid/.test.inter."""
    keys = {"data_path": os.path.abspath(data_path), "load_col": {"inter": ["user_id", "item_id", "timestamp"]}}
    if os.path.exists(os.path.join(data_path, name, f"{name}.train.inter")):
        keys["benchmark_filename"] = ["train", "valid", "test"]
    return keys


def quick_dataset(data_dir, name, max_users, dest):
    """A copy of ``data_dir/name`` with the first ``max_users`` users (in file order, all their rows), under
    the same name in ``dest``; returns ``dest``."""
    src = os.path.join(data_dir, name)
    out = os.path.join(dest, name)
    if os.path.isdir(out):
        return dest
    files = sorted(f for f in os.listdir(src) if f.endswith(".inter"))
    first = f"{name}.train.inter" if f"{name}.train.inter" in files else files[0]
    keep = []
    with open(os.path.join(src, first), encoding="utf-8") as f:
        next(f)
        seen = set()
        for line in f:
            user = line.split("\t", 1)[0]
            if user not in seen:
                if len(seen) == max_users:
                    break
                seen.add(user)
        keep = seen
    os.makedirs(out + ".tmp", exist_ok=True)
    for fname in files:
        with open(os.path.join(src, fname), encoding="utf-8") as f, \
                open(os.path.join(out + ".tmp", fname), "w", encoding="utf-8") as g:
            g.write(next(f))
            g.writelines(line for line in f if line.split("\t", 1)[0] in keep)
    os.replace(out + ".tmp", out)
    return dest


# =========================================================================== one run (a child process)
def _save_json(path, record):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, default=float)
    os.replace(tmp, path)


def _plain(result):
    return None if result is None else {k: float(v) for k, v in result.items()}


def _loss_value(loss):
    if loss is None:
        return None
    return float(sum(loss)) if isinstance(loss, (tuple, list)) else float(loss)


def worker(task_file):
    with open(task_file, encoding="utf-8") as f:
        task = json.load(f)
    started = time.time()
    record = {k: task[k] for k in ("run", "spec", "row", "seed", "model", "dataset", "config", "protocols",
                                   "quick")}
    record.update(status="starting", host=platform.node(), pid=os.getpid(), launched=task["launched"],
                  deadline_in_s=task["deadline"] - started, epochs=[], evals=[], test={}, errors=None)
    json_path = task["json"]
    _save_json(json_path, record)
    try:
        _train_and_test(task, record, started)
    except BaseException as error:  # noqa: BLE001 (also KeyboardInterrupt / SystemExit: the JSON says so)
        record["status"] = "error"
        record["errors"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-6000:]
        _save_json(json_path, record)
        print(record["errors"], file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        shutil.rmtree(os.path.join(task["workdir"], "saved"), ignore_errors=True)  # checkpoints: not results
    _save_json(json_path, record)


def _train_and_test(task, record, started):
    json_path = task["json"]
    import torch

    torch.set_num_threads(1)
    os.makedirs(task["workdir"], exist_ok=True)
    os.chdir(task["workdir"])  # RecBole writes log/, log_tensorboard/ and saved/ into the cwd
    import recbole_negs  # noqa: F401  (first: the compat layer)
    from recbole.utils import init_logger
    from recbole_negs.config.configurator import NegsConfig
    from recbole_negs.quick_start import prepare_run
    from benchmarks._common import REVISION, RunLog

    RunLog.install(task["log"])
    cuda = task["device"] == "cuda" or (task["device"] == "auto" and torch.cuda.is_available())
    config_dict = dict(task["config"], **dataset_keys(task["data_path"], task["dataset"]),
                       seed=task["seed"], checkpoint_dir=os.path.join(task["workdir"], "saved"),
                       show_progress=False, state="INFO", gpu_id="0" if cuda else "", use_gpu=cuda)
    config = NegsConfig(model=task["model"], dataset=task["dataset"], config_dict=config_dict)
    init_logger(config)
    record.update(revision=REVISION, torch=torch.__version__, device=str(config["device"]),
                  gpu=torch.cuda.get_device_name(0) if cuda else None, status="loading")
    _save_json(json_path, record)
    mode = config["eval_args"]["mode"]  # RecBole turns it into {"valid": ..., "test": ...}
    sampled_eval = any(not str(m).startswith("full") for m in (mode.values() if isinstance(mode, dict) else [mode]))
    if sampled_eval and task["model"] == "SASRec":
        # RecBole's sampled evaluation encodes the user's sequence once per candidate; this encodes each
        # distinct sequence once (the same dot products; see benchmarks/ufnrec_tables.py)
        from recbole.model.sequential_recommender.sasrec import SASRec
        from benchmarks.ufnrec_tables import predict_once_per_sequence

        SASRec.predict = predict_once_per_sequence
    dataset, model, train_data, valid_data, test_data, trainer = prepare_run(config)
    record["load_s"] = time.time() - started
    record["n_users"], record["n_items"] = int(dataset.user_num), int(dataset.item_num)
    record["status"] = "training"
    _save_json(json_path, record)

    deadline = task["deadline"]
    row_deadline = min(deadline, started + task["row_budget_s"]) if task.get("row_budget_s") else deadline
    state = {"epoch_start": None, "last_valid": None, "train0": None, "stopped_by": None}
    n_final = len(task["protocols"]) + (1 if hasattr(trainer, "teacher") else 0)
    test_factor = 1.0
    if config["eval_max_users"]:  # validation on a subset, test on every user
        test_factor = max(1.0, dataset.user_num / config["eval_max_users"])

    def gpu_mb():
        return round(torch.cuda.max_memory_allocated() / 2 ** 20) if cuda else None

    original_train_epoch = trainer._train_epoch

    def train_epoch(train_data, epoch_idx, loss_func=None, show_progress=False):
        state["epoch_start"] = time.time()
        return original_train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)

    original_valid_epoch = trainer._valid_epoch

    def valid_epoch(valid_data, show_progress=False):
        t = time.time()
        score, result = original_valid_epoch(valid_data, show_progress=show_progress)
        state["last_valid"] = (float(score), _plain(result), time.time() - t)
        return score, result

    original_validate = trainer._validate

    def validate(epoch_idx, valid_data, verbose, saved, show_progress, callback_fn):
        now = time.time()
        epoch_s = now - state["epoch_start"]
        stats = getattr(trainer, "last_statistics", None)
        record["epochs"].append({"epoch": epoch_idx, "loss": _loss_value(trainer.train_loss_dict.get(epoch_idx)),
                                 "train_s": epoch_s, "t_train": now - state["train0"],
                                 "stats": {k: float(v) for k, v in stats.items()} if stats else None})
        per_epoch = statistics.median(e["train_s"] for e in record["epochs"])
        eval_s = state["last_valid"][2] if state["last_valid"] else max(per_epoch, 2.0)
        reserve = 1.5 * eval_s * n_final * test_factor + 20.0
        step = max(trainer.eval_step, 1)
        is_eval = (epoch_idx + 1) % step == 0
        last_epoch = epoch_idx == trainer.epochs - 1
        force = not is_eval and (last_epoch or row_deadline - now < per_epoch + eval_s + reserve)
        if force:
            trainer.eval_step = 1
        try:
            stop = original_validate(epoch_idx, valid_data, verbose, saved, show_progress, callback_fn)
        finally:
            trainer.eval_step = step
        if is_eval or force:
            score, result, valid_s = state["last_valid"]
            t = time.time()
            record["evals"].append({"epoch": epoch_idx, "t_wall": t - started, "t_train": t - state["train0"],
                                    "loss": record["epochs"][-1]["loss"], "sec_per_epoch": per_epoch,
                                    "valid_s": valid_s, "valid_score": score, "valid": result, "gpu_mb": gpu_mb()})
            _save_json(json_path, record)
            left = row_deadline - time.time()
            if stop:
                state["stopped_by"] = "early_stopping"
            elif force and not last_epoch:
                state["stopped_by"] = "budget"
                stop = True
            elif not last_epoch and left < step * per_epoch + valid_s + reserve:
                state["stopped_by"] = "budget"
                stop = True
        return stop

    trainer._train_epoch, trainer._valid_epoch, trainer._validate = train_epoch, valid_epoch, validate

    # ranks of the held-out test items, captured from the scores RecBole's evaluation computes anyway
    capture = {"on": False, "users": [], "ranks": [], "batch_users": None}
    uid = config["USER_ID_FIELD"]
    original_full, original_sampled = trainer._full_sort_batch_eval, trainer._neg_sample_batch_eval

    def full_sort(batched_data):
        out = original_full(batched_data)
        if capture["on"]:
            capture["batch_users"] = out[0][uid]
        return out

    def sampled(batched_data):
        out = original_sampled(batched_data)
        if capture["on"]:
            interaction, row_idx, positive_u, _ = batched_data
            users = torch.zeros(int(positive_u[-1]) + 1, dtype=torch.long)
            users[row_idx.cpu()] = interaction[uid].cpu()
            capture["batch_users"] = users
        return out

    original_collect = trainer.eval_collector.eval_batch_collect

    def collect(scores, interaction, positive_u, positive_i):
        if capture["on"]:
            users = capture["batch_users"].to(scores.device)
            capture["users"].append(users[positive_u].cpu())
            capture["ranks"].append(held_out_ranks(scores, positive_u, positive_i).cpu())
        return original_collect(scores, interaction, positive_u, positive_i)

    trainer._full_sort_batch_eval, trainer._neg_sample_batch_eval = full_sort, sampled
    trainer.eval_collector.eval_batch_collect = collect

    state["train0"] = time.time()
    record["train_started_s"] = state["train0"] - started
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    record["train_s"] = time.time() - state["train0"]
    record["stopped_by"] = state["stopped_by"] or "epochs"
    record["epochs_run"] = len(record["epochs"])
    bigger = bool(config["valid_metric_bigger"])
    best = None
    for e in record["evals"]:  # RecBole keeps the first strict best
        if best is None or (e["valid_score"] > best["valid_score"] if bigger else e["valid_score"] < best["valid_score"]):
            best = e
    record["best"] = best and {k: best[k] for k in ("epoch", "t_wall", "t_train", "valid_score", "valid")}
    record["status"] = "testing"
    _save_json(json_path, record)

    # ---- the test of the best-validation model under each protocol
    has_best = os.path.exists(trainer.saved_model_file)
    mask0, users0 = config["eval_mask_history"], config["eval_max_users"]
    config["eval_max_users"] = None  # the test ranks every user: rows are paired on the same users
    arrays, checks = {}, {}
    loaded = False
    try:
        for proto in task["protocols"]:
            config["eval_mask_history"] = proto == "masked"
            capture.update(on=True, users=[], ranks=[])
            t = time.time()
            result = _plain(trainer.evaluate(test_data, load_best_model=has_best and not loaded,
                                             show_progress=False))
            loaded = True
            capture["on"] = False
            users = torch.cat(capture["users"]).numpy().astype(np.int32)
            ranks = torch.cat(capture["ranks"]).numpy().astype(np.int32)
            arrays[f"{proto}_user"], arrays[f"{proto}_rank"] = users, ranks
            checks[proto] = max((abs(float(per_user_metric(users, ranks, m)[1].mean()) - v)
                                 for m, v in result.items() if _has_per_user(m)), default=0.0)
            record["test"][proto] = result
            record.setdefault("test_s", {})[proto] = time.time() - t
        if getattr(trainer, "teacher", None) is not None and trainer.mining:
            config["ufn_evaluate"], config["eval_mask_history"] = "student", task["protocols"][0] == "masked"
            record["test_student"] = _plain(trainer.evaluate(test_data, load_best_model=False, show_progress=False))
            config["ufn_evaluate"] = "teacher"
            record["best_checkpoint_mining"] = True
    finally:
        config["eval_mask_history"], config["eval_max_users"] = mask0, users0
    record["tested_checkpoint"] = "best" if has_best else "last (no validation before the budget ran out)"
    record["rank_check_max_abs_diff"] = checks  # per-user metrics from ranks vs RecBole's (ties only)
    np.savez_compressed(task["npz"], **arrays)
    if sampled_eval and task["model"] == "SASRec":
        from benchmarks.ufnrec_tables import PREDICT_CHECK

        record["predict_check"] = dict(PREDICT_CHECK)  # patched vs RecBole's predict on the first batch
    record["gpu_mb"] = gpu_mb()
    record["total_s"] = time.time() - started
    record["status"] = "done"


def held_out_ranks(scores, positive_u, positive_i):
    """1 + the number of items scored strictly above each held-out item (row ``positive_u``, item
    ``positive_i`` of ``scores``): held-out items x catalog comparisons, in chunks of about 2^24 scores."""
    import torch

    values = scores[positive_u, positive_i]
    ranks = torch.empty_like(positive_u)
    chunk = max(1, (1 << 24) // scores.shape[1])
    for start in range(0, len(positive_u), chunk):
        part = slice(start, start + chunk)
        ranks[part] = (scores[positive_u[part]] > values[part, None]).sum(dim=1) + 1
    return ranks


def _has_per_user(metric):
    try:
        parse_metric(metric)
        return True
    except ValueError:
        return False


# =========================================================================== the parent: many runs
def _run_name(spec, row, seed):
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in row)
    return f"{spec}__{safe}__s{seed}"


def _quick_config(config, epochs=2):
    out = dict(config, epochs=epochs, eval_step=1)
    if out.get("eval_max_users"):
        out["eval_max_users"] = min(out["eval_max_users"], 200)
    return out


def _pack(out_dir, tar_path):
    """Pack the finished files; a run's ``*.tmp`` (being written and renamed right now) is left out, and a file
    that vanishes while the folder is walked is skipped instead of ending the whole command."""
    tmp = f"{tar_path}.tmp"
    base = os.path.basename(os.path.normpath(out_dir))
    with tarfile.open(tmp, "w:gz") as tar:
        for folder, _, files in os.walk(out_dir):
            for name in sorted(files):
                if name.endswith(".tmp"):
                    continue
                path = os.path.join(folder, name)
                try:
                    tar.add(path, arcname=os.path.join(base, os.path.relpath(path, out_dir)))
                except FileNotFoundError:
                    continue
    os.replace(tmp, tar_path)


def _gpu_line():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_all(args):
    from benchmarks import device_specs

    started = time.time()
    deadline = started + args.budget_s
    out_dir = os.path.abspath(args.out)
    tar_path = os.path.abspath(args.tar or out_dir.rstrip("/") + ".tar.gz")
    device_out = os.environ.get("OUT")
    if device_out and os.path.commonpath([out_dir, os.path.abspath(device_out)]) == os.path.abspath(device_out):
        # the device machine returns only a few files from $OUT: keep the folder outside, return only the tar
        out_dir = os.path.join(tempfile.gettempdir(), "device_runs_out", os.path.basename(out_dir.rstrip("/")))
        print(f"--out is inside $OUT: results kept in {out_dir}, packed into {tar_path}", flush=True)
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="device_runs_"))
    os.makedirs(os.path.join(out_dir, "logs"), exist_ok=True)
    os.makedirs(work, exist_ok=True)
    runs = device_specs.expand(args.spec.split(","))
    if args.rows:
        wanted = args.rows.split(",")
        runs = [r for r in runs if r[1]["name"] in wanted]
    if args.max_seeds:
        runs = [r for r in runs if r[1]["seeds"].index(r[2]) < args.max_seeds]
    tasks = []
    for spec_name, row, seed in runs:
        spec = device_specs.SPECS[spec_name]
        data_path = os.path.abspath(args.data_dir)
        config = dict(spec["shared"], **row["config"])
        if args.quick:
            data_path = quick_dataset(data_path, spec["dataset"], args.quick_users, os.path.join(work, "quickdata"))
            config = _quick_config(config, args.quick_epochs)
        name = _run_name(spec_name, row["name"], seed)
        tasks.append({
            "run": name, "spec": spec_name, "row": row["name"], "seed": seed, "model": row["model"],
            "dataset": spec["dataset"], "config": config, "protocols": spec["protocols"], "quick": args.quick,
            "data_path": data_path, "device": args.device, "deadline": deadline, "row_budget_s": args.row_budget_s,
            "json": os.path.join(out_dir, f"{name}.json"), "npz": os.path.join(out_dir, f"{name}.npz"),
            "log": os.path.join(out_dir, "logs", f"{name}.log"), "workdir": os.path.join(work, name),
        })
    specs_used = {t["spec"] for t in tasks}
    plan = {"argv": sys.argv, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "budget_s": args.budget_s,
            "parallel": args.parallel, "host": platform.node(), "cpus": os.cpu_count(), "gpu_at_start": _gpu_line(),
            "specs": {name: device_specs.SPECS[name] for name in specs_used},
            "runs": [t["run"] for t in tasks]}
    _save_json(os.path.join(out_dir, "plan.json"), plan)
    print(f"{len(tasks)} runs, {args.parallel} at a time, budget {args.budget_s:.0f} s; out {out_dir}, tar {tar_path}",
          flush=True)

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUBLAS_WORKSPACE_CONFIG=":4096:8",
               PYTHONPATH=os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p))
    pending, running, finished, skipped = list(tasks), {}, {}, []
    gpu_log = open(os.path.join(out_dir, "gpu.csv"), "a", encoding="utf-8")
    gpu_log.write("t_s,util_pct,mem_used_mb,mem_total_mb\n")
    last_pack = last_gpu = time.time()
    killed_at = None
    while pending or running:
        now = time.time()
        while pending and len(running) < args.parallel:
            task = pending.pop(0)
            if deadline - now < args.min_start_s:
                skipped.append(task["run"])
                continue
            task["launched"] = now - started
            task_file = os.path.join(work, f"{task['run']}.task.json")
            _save_json(task_file, task)
            out = open(os.path.join(out_dir, "logs", f"{task['run']}.out"), "w", encoding="utf-8")
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.device_runs", "--worker", task_file],
                                    cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            running[task["run"]] = (proc, out, now)
            print(f"[{now - started:6.0f}s] start {task['run']}", flush=True)
        for name, (proc, out, t0) in list(running.items()):
            rc = proc.poll()
            if rc is not None:
                out.close()
                finished[name] = rc
                del running[name]
                print(f"[{time.time() - started:6.0f}s] end   {name}: rc {rc}, {time.time() - t0:.0f} s, "
                      f"{_status_line(os.path.join(out_dir, name + '.json'))}", flush=True)
        now = time.time()
        if running and now > deadline + args.grace_s and killed_at is None:
            killed_at = now
            for name, (proc, out, _) in running.items():
                print(f"[{now - started:6.0f}s] past the deadline: SIGTERM {name}", flush=True)
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if killed_at is not None and now > killed_at + 10:
            for name, (proc, out, _) in running.items():
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if now - last_gpu > 15:
            line = _gpu_line()
            if line:
                gpu_log.write(f"{now - started:.0f},{line.replace(' ', '')}\n")
                gpu_log.flush()
            last_gpu = now
        if now - last_pack > 60:
            _pack(out_dir, tar_path)
            last_pack = now
        time.sleep(1.0)
    gpu_log.close()
    plan.update(finished=finished, skipped=skipped, wall_s=time.time() - started, gpu_at_end=_gpu_line())
    _save_json(os.path.join(out_dir, "plan.json"), plan)
    try:
        print(tabulate(out_dir))
    except Exception:  # noqa: BLE001 (the tar matters more than the table)
        traceback.print_exc()
    _pack(out_dir, tar_path)
    print(f"packed {tar_path} ({os.path.getsize(tar_path) / 2 ** 20:.1f} MB) after {time.time() - started:.0f} s")


def _status_line(json_path):
    try:
        with open(json_path, encoding="utf-8") as f:
            r = json.load(f)
    except (OSError, ValueError):
        return "no JSON"
    best = r.get("best") or {}
    test = r.get("test") or {}
    first = next(iter(test.values()), {})
    main = next(iter(first.items()), None)
    return (f"{r.get('status')}, {len(r.get('epochs', []))} epochs ({r.get('stopped_by')}), best epoch "
            f"{best.get('epoch')}, " + (f"test {main[0]} {main[1]:.4f}" if main else "no test"))


# =========================================================================== tables
def load_runs(path):
    """{run name: record} of a result folder or its tar.gz (records with their per-user arrays loaded lazily)."""
    tmp = None
    if os.path.isfile(path):
        tmp = tempfile.mkdtemp(prefix="device_runs_tab_")
        with tarfile.open(path) as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # a Python without extraction filters
                tar.extractall(tmp)
        folders = [os.path.join(tmp, d) for d in os.listdir(tmp)]
        path = folders[0] if len(folders) == 1 and os.path.isdir(folders[0]) else tmp
    runs = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".json") and name != "plan.json":
            with open(os.path.join(path, name), encoding="utf-8") as f:
                record = json.load(f)
            npz = os.path.join(path, name[:-5] + ".npz")
            if os.path.exists(npz):
                with np.load(npz) as data:
                    record["_arrays"] = {k: data[k] for k in data.files}
            runs[record["run"]] = record
    plan = None
    if os.path.exists(os.path.join(path, "plan.json")):
        with open(os.path.join(path, "plan.json"), encoding="utf-8") as f:
            plan = json.load(f)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return runs, plan


def seed_averaged_users(runs, proto, metric):
    """{user: metric averaged over the runs (seeds)} over the users every run tested."""
    per_run = []
    for r in runs:
        arrays = r.get("_arrays", {})
        if f"{proto}_user" in arrays:
            per_run.append(dict(zip(*per_user_metric(arrays[f"{proto}_user"], arrays[f"{proto}_rank"], metric))))
    if not per_run:
        return {}
    common = set.intersection(*(set(d) for d in per_run))
    return {u: sum(d[u] for d in per_run) / len(per_run) for u in common}


def compare(base_runs, runs, proto, metric, n_boot=N_BOOT):
    """The row against the baseline on one protocol and metric: the seed-level difference with its SE, the
    paired per-user bootstrap on the common users (seed-averaged per-user values) and the verdict."""
    (mb, sb) = mean_se([r["test"][proto][metric] for r in base_runs])
    (mr, sr) = mean_se([r["test"][proto][metric] for r in runs])
    seed_se = math.sqrt(sb ** 2 + sr ** 2) if not (math.isnan(sb) or math.isnan(sr)) else float("nan")
    a, b = seed_averaged_users(runs, proto, metric), seed_averaged_users(base_runs, proto, metric)
    users = sorted(set(a) & set(b))
    diff = np.array([a[u] - b[u] for u in users])
    boot = paired_bootstrap(diff, n_boot) if len(users) else (float("nan"),) * 4
    return {"seed_diff": mr - mb, "seed_se": seed_se, "boot_diff": boot[0], "boot_se": boot[1],
            "boot_lo": boot[2], "boot_hi": boot[3], "users": len(users),
            "verdict": verdict(mr - mb, seed_se, boot[0], boot[1])}


def _fmt(values, digits=4):
    mean, se = mean_se(values)
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _in_se(diff, se):
    if math.isnan(se):
        return ""
    return f" ({abs(diff) / se:.1f} SE)" if se > 0 else " (SE 0)"


def _fmt_compare(c):
    seed = f"{c['seed_diff']:+.4f}" + _in_se(c["seed_diff"], c["seed_se"])
    boot = "—"
    if not math.isnan(c["boot_se"]):
        boot = f"{c['boot_diff']:+.4f} [{c['boot_lo']:+.4f}, {c['boot_hi']:+.4f}]" + _in_se(c["boot_diff"], c["boot_se"])
    return seed, boot, c["verdict"]


def spec_table(spec_name, spec, runs, n_boot=N_BOOT):
    """Markdown for one spec: one line per row with what finished."""
    protocols, metrics, main, baseline = spec["protocols"], spec["metrics"], spec["main"], spec["baseline"]
    by_row = {}
    for r in runs.values():
        if r["spec"] == spec_name:
            by_row.setdefault(r["row"], []).append(r)
    order = [row["name"] for row in spec["rows"]]
    order += sorted(set(by_row) - set(order))
    header = ["row", "seeds tested", "epochs run", "best epoch"]
    header += [f"{p} {m}" for p in protocols for m in metrics]
    header += ["paper", "s/epoch", "s to best", f"valid {main} peak→last"]
    for p in protocols:
        header += [f"Δ{main} {p} seeds", f"Δ{main} {p} paired bootstrap [95%]", f"verdict {p}"]
    base = [r for r in by_row.get(baseline, []) if r.get("status") == "done"]
    lines, notes = [], []
    for name in order:
        all_runs = by_row.get(name, [])
        if not all_runs:
            continue
        done = [r for r in all_runs if r.get("status") == "done"]
        cut = [r for r in all_runs if r.get("status") != "done"]
        if cut:
            notes.append(f"- {name}: " + ", ".join(f"seed {r['seed']} {r.get('status')} after "
                                                   f"{len(r.get('epochs', []))} epochs" for r in cut))
        budget = sum(1 for r in done if r.get("stopped_by") == "budget")
        seeds = f"{len(done)}/{len(all_runs)}" + (f" ({budget} cut by budget)" if budget else "")
        cells = [name, seeds, _fmt([len(r["epochs"]) for r in done], 0),
                 _fmt([r["best"]["epoch"] for r in done if r.get("best")], 1)]
        for p in protocols:
            for m in metrics:
                cells.append(_fmt([r["test"][p][m] for r in done if m in r["test"].get(p, {})]))
        paper = spec.get("paper", {}).get(name, {})
        cells.append(", ".join(f"{k} {v}" for k, v in paper.items()) or "—")
        cells.append(_fmt([statistics.median(e["train_s"] for e in r["epochs"]) for r in done if r["epochs"]], 1))
        cells.append(_fmt([r["best"]["t_train"] for r in done if r.get("best")], 0))
        drops = []
        for r in done:
            scores = [e["valid_score"] for e in r["evals"]]
            if scores:
                drops.append(max(scores) - scores[-1])
        cells.append(_fmt(drops))
        for p in protocols:
            if name == baseline or not base or not done:
                cells += ["—", "—", "—"]
            else:
                cells += list(_fmt_compare(compare(base, done, p, main, n_boot)))
        lines.append(cells)
    table = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    table += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    text = [f"### {spec_name} ({spec['dataset']}; baseline {baseline}; protocols {', '.join(protocols)})", ""]
    text += table
    if notes:
        text += ["", "Runs without a test (their curves are in the JSON):"] + notes
    return "\n".join(text)


def tabulate(path, n_boot=N_BOOT):
    """Markdown tables, one per spec, of a result folder or tar.gz. Specs come from the run's plan.json (as
    they were when it ran), else from device_specs."""
    runs, plan = load_runs(path)
    specs = (plan or {}).get("specs") or {}
    if not specs:
        from benchmarks import device_specs
        specs = {name: device_specs.SPECS[name] for name in {r["spec"] for r in runs.values()}}
    out = []
    if plan:
        out.append(f"Runs of `{' '.join(plan.get('argv', []))}` started {plan.get('started')} on {plan.get('host')} "
                   f"({plan.get('cpus')} CPUs, GPU {plan.get('gpu_at_start')}); wall {plan.get('wall_s', 0):.0f} s"
                   + (f"; not started (budget): {', '.join(plan['skipped'])}" if plan.get("skipped") else "") + ".")
    for name in sorted(specs):
        out += ["", spec_table(name, specs[name], runs, n_boot)]
    out += ["", "seeds tested = runs with a test / runs started; s/epoch = median training seconds per epoch "
            "(sampler epoch-end work included, validation excluded); s to best = seconds from the start of "
            "training to the end of the best validation; peak→last = best minus last validation score. Δ = row "
            "minus baseline on the same test users: seeds = difference of seed means (SE of the difference), "
            f"paired bootstrap = {n_boot} resamples of the users common to both rows, each user's metric averaged "
            "over that row's seeds; a gain or loss only where both exceed 2 SE."]
    return "\n".join(out)


def plot_curves(path, prefix):
    """Per spec, ``<prefix>-<spec>-epochs.png`` and ``<prefix>-<spec>-seconds.png``: the validation metric of
    every evaluation against the epoch and against seconds since training started (validation included), one
    thin line per seed, one colour per row. Returns the paths written."""
    from benchmarks._plots import _pyplot

    plt = _pyplot()
    runs, plan = load_runs(path)
    specs = (plan or {}).get("specs") or {}
    written = []
    for spec_name in sorted({r["spec"] for r in runs.values()}):
        if spec_name not in specs:
            from benchmarks import device_specs
            specs[spec_name] = device_specs.SPECS[spec_name]
        spec = specs[spec_name]
        order = [row["name"] for row in spec["rows"]]
        metric = spec["shared"].get("valid_metric", "valid score")
        masked = " (history masked)" if spec["shared"].get("eval_mask_history") else ""
        for x_key, x_label, tag in (("epoch", "epoch (0-based, as in the JSON)", "epochs"),
                                    ("t_train", "seconds since training started (validation included)",
                                     "seconds")):
            fig, ax = plt.subplots(figsize=(7, 4.2))
            for i, row in enumerate(order):
                seeds = [r for r in runs.values() if r["spec"] == spec_name and r["row"] == row and r.get("evals")]
                for j, r in enumerate(sorted(seeds, key=lambda r: r["seed"])):
                    ax.plot([e[x_key] for e in r["evals"]], [e["valid_score"] for e in r["evals"]],
                            color=f"C{i % 10}", lw=0.9, alpha=0.85, marker="o", markersize=2.5,
                            label=row if j == 0 else None)
            ax.set_title(f"{spec_name}: validation {metric}{masked}, one line per seed", fontsize=10)
            ax.set_xlabel(x_label)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            written.append(f"{prefix}-{spec_name}-{tag}.png")
            fig.savefig(written[-1], dpi=110)
            plt.close(fig)
    return written


# =========================================================================== command line
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", help="spec names, comma-separated (benchmarks/device_specs.py)")
    parser.add_argument("--rows", default=None, help="only these row names (comma-separated)")
    parser.add_argument("--out", help="result folder (JSON, npz, logs)")
    parser.add_argument("--tar", default=None, help="the packed result (default <out>.tar.gz)")
    parser.add_argument("--work", default=None, help="scratch folder for checkpoints (default: a new temp dir)")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget of the whole command")
    parser.add_argument("--row-budget-s", type=float, default=None, help="also cap each run at this many seconds")
    parser.add_argument("--grace-s", type=float, default=30.0, help="runs still alive this long after the budget "
                        "are killed")
    parser.add_argument("--min-start-s", type=float, default=90.0, help="do not start a run with less time left")
    parser.add_argument("--quick", action="store_true", help="pipeline check: 2 epochs on the first --quick-users "
                        "users of each dataset")
    parser.add_argument("--quick-users", type=int, default=300)
    parser.add_argument("--quick-epochs", type=int, default=2)
    parser.add_argument("--max-seeds", type=int, default=None, help="only the first N seeds of every row")
    parser.add_argument("--tabulate", metavar="DIR_OR_TAR", help="print the tables of a result folder or tar.gz")
    parser.add_argument("--plot", metavar="PREFIX", help="with --tabulate: also write validation curves per spec "
                        "to PREFIX-<spec>-epochs.png and PREFIX-<spec>-seconds.png (matplotlib)")
    parser.add_argument("--bootstrap", type=int, default=N_BOOT, help="bootstrap resamples for --tabulate")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.tabulate:
        print(tabulate(args.tabulate, args.bootstrap))
        if args.plot:
            for png in plot_curves(args.tabulate, args.plot):
                print(f"wrote {png}", file=sys.stderr)
        return None
    if not args.spec or not args.out:
        parser.error("--spec and --out are required (or --tabulate)")
    return run_all(args)


if __name__ == "__main__":
    main()
