"""A named quality experiment: rows (a method on a backbone) x seeds on one dataset and protocol, run through
the plugin (or RecBole's own pipeline for reference rows), then a markdown table of test metrics as mean ±
standard error beside the paper's numbers, a verdict against the baseline row (a gain only beyond 2 standard
errors), seconds to the best validation epoch, a JSON file of every run and a PNG of the validation curves.

Runs are ordered seed by seed (every row of seed 0, then seed 1, ...) and the JSON is rewritten after each run,
so an interrupted experiment keeps whole seeds and can be tabulated.
"""

import json
import math
import os
import time
from dataclasses import dataclass, field

from benchmarks import _common as common
from benchmarks import _plots


@dataclass
class Row:
    label: str
    model: str
    config: dict = field(default_factory=dict)  # on top of the experiment's shared config
    runner: str = "plugin"  # "plugin", or "own": RecBole's own data pipeline, model and Trainer, no plugin code
    paper: dict = field(default_factory=dict)  # metric -> the paper's number for this row under this protocol
    seeds: int = None  # fewer seeds than the experiment's for a costly row (the table's seeds column says so)


RUNNERS = {"plugin": common.run_plugin, "own": common.run_recbole_own}


def run_rows(log, rows, seeds, dataset, shared, json_path=None, meta=None):
    """Every row for seeds 0..seeds-1; returns {label: [result per seed]}."""
    results = {row.label: [] for row in rows}
    started = time.time()
    ordered = [r for r in rows if r.seeds is None] + [r for r in rows if r.seeds is not None]  # costly rows last
    for seed in range(seeds):
        for row in ordered:
            if row.seeds is not None and seed >= row.seeds:
                continue
            config = dict(shared, **row.config, seed=seed)
            r = common.timed_run(log, f"{row.label} | seed {seed}", RUNNERS[row.runner], row.model, dataset, config)
            results[row.label].append(r)
            key = next(iter(r["test_result"]))
            print(f"[{time.time() - started:7.0f}s] {row.label:40s} seed {seed}: test {key} "
                  f"{r['test_result'][key]:.4f}, best epoch {r['best_epoch']} of {r['epochs_run']}, "
                  f"{r['sec_per_epoch']:.2f} s/epoch", flush=True)
            if json_path:
                save_json(json_path, results, meta)
    return results


def save_json(path, results, meta=None):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"meta": meta or {}, "results": results}, f, indent=1)


def load_json(path):
    """(results, meta) of a saved experiment, to tabulate whole seeds of an interrupted run again."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["results"], data.get("meta", {})


def _values(runs, metric, part="test_result"):
    return [r[part][metric] for r in runs if r.get(part) and metric in r[part]]


def verdict(base, other, k=2.0):
    """'gain' / 'loss' when the mean difference exceeds k standard errors of the difference, else 'noise'."""
    (mb, sb), (mo, so) = common.mean_se(base), common.mean_se(other)
    se = math.sqrt(sb ** 2 + so ** 2) if not (math.isnan(sb) or math.isnan(so)) else float("nan")
    diff = mo - mb
    if math.isnan(se):
        return f"{diff:+.4f} (1 seed)"
    word = "noise" if abs(diff) <= k * se else ("**gain**" if diff > 0 else "**loss**")
    return f"{diff:+.4f} ({abs(diff) / se:.1f} SE): {word}" if se > 0 else f"{diff:+.4f}: {word}"


def quality_table(results, rows, metrics, main_metric, baseline, baseline_name=None):
    """Markdown: one line per row with the test metrics (mean ± SE), the paper's numbers, the difference from
    the row labelled ``baseline`` on ``main_metric``, the best-validation epoch, seconds to it and seconds per
    epoch."""
    header = (["row", "seeds"] + [f"test {m}" for m in metrics] +
              ["paper", f"{main_metric} vs {baseline_name or baseline}", "best epoch", "s to best", "s/epoch"])
    base = _values(results.get(baseline, []), main_metric)
    lines = []
    for row in rows:
        runs = results.get(row.label, [])
        if not runs:
            continue
        paper = ", ".join(f"{m} {v}" for m, v in row.paper.items()) or "—"
        against = "—" if row.label == baseline or not base else verdict(base, _values(runs, main_metric))
        seconds = [r["seconds_to_best"] for r in runs if r.get("seconds_to_best") is not None]
        lines.append([row.label, len(runs)] + [common.fmt_mean_se(_values(runs, m)) for m in metrics] +
                     [paper, against,
                      common.fmt_mean_se([r["best_epoch"] for r in runs if r["best_epoch"] is not None], 1),
                      common.fmt_mean_se(seconds, 0) if seconds else "—",
                      f"{sum(r['sec_per_epoch'] for r in runs) / len(runs):.1f}"])
    return common.markdown_table(header, lines)


def plot_valid_curves(path, title, results, ylabel):
    """Validation metric per epoch, mean over seeds, one line per row."""
    series = {label: [r["valid_curve"] for r in runs] for label, runs in results.items() if runs}
    return _plots.line_plot(path, title, series, "epoch", ylabel)


def plot_valid_seconds(path, title, results, ylabel, logx=False):
    """Validation metric against training seconds, mean over seeds, one line per row: epoch e is placed at
    (e + 1) x the row's mean seconds per epoch, so rows that differ in cost per epoch compare at equal time."""
    series = {}
    for label, runs in results.items():
        if runs:
            per_epoch = sum(r["sec_per_epoch"] for r in runs) / len(runs)
            series[label] = [[((epoch + 1) * per_epoch, value) for epoch, value in r["valid_curve"]] for r in runs]
    return _plots.line_plot(path, title, series, "training seconds (epochs x mean seconds per epoch)", ylabel,
                            logx=logx)


def output_paths(out, name):
    """(markdown, json, png stem) beside each other: results/<name>.md, .json, <name>-*.png."""
    stem = os.path.splitext(out)[0]
    return out, stem + ".json", stem
