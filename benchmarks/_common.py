"""Shared pieces of the benchmark scripts, kept in one place so each script stays about its own question.

* ``RunLog``: a root log handler installed before RecBole's ``init_logger`` (whose ``basicConfig`` then does
  nothing), so runs print nothing to the console; it keeps every message and parses what the tables need
  (training time per epoch, validation score per epoch, the plugin's all-position row counts).
* ``run_recbole_own``: RecBole's own training without ``recbole.quick_start`` (which imports ray), with the
  best checkpoint loaded by hand because RecBole's ``torch.load`` fails on torch >= 2.6 (``weights_only``).
* ``run_plugin``: ``recbole_negs.run_recbole_negs`` under the same log capture.
* mean / standard-error formatting and the markdown result file (command line and date included).
"""

import logging
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import datetime

import recbole_negs  # noqa: F401  (first: applies the numpy-2 / scipy / torch compat layer)
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed
from recbole_negs import run_recbole_negs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _revision():
    """The repository's commit when the run started (the code a run uses is the code imported then)."""
    try:
        out = subprocess.run(["git", "-C", REPO_ROOT, "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


REVISION = _revision()
RESULTS_DIR = os.path.join(REPO_ROOT, "benchmarks", "results")

# Settings that change nothing in the training itself: quiet, and no progress bars.
QUIET = {"show_progress": False, "state": "INFO"}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRAIN = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s")
_VALID = re.compile(r"epoch (\d+) evaluating \[time: ([\d.]+)s, valid_score: ([-\d.eE+]+)\]")
_STATS = re.compile(r"epoch (\d+) sampler \[(.*)\]")
_EPOCH_END = re.compile(r"epoch (\d+) sampler epoch end \[time: ([\d.]+)s\]")
_ROWS = re.compile(r"all-position rows \((\w+)\): (\d+) rows, (\d+) training targets per epoch")


# --------------------------------------------------------------------------- logs
class RunLog(logging.Handler):
    """Collects the log of one run; ``install()`` once per process, ``start()`` before each run."""

    _installed = None

    def __init__(self, path):
        super().__init__(logging.INFO)
        self.messages = []
        self.file = open(path, "a", encoding="utf-8")

    @classmethod
    def install(cls, path="bench.log"):
        """Route RecBole's and the plugin's logging to ``path`` (and this collector), not to the console."""
        if cls._installed is None:
            # RecBole 1.2.1 on pandas 2 / torch 2.x warns on every run (fillna inplace, GradScaler, sparse
            # constructors); none of it bears on the numbers.
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            handler = cls(path)
            root = logging.getLogger()
            for old in list(root.handlers):
                root.removeHandler(old)
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            cls._installed = handler
        return cls._installed

    def emit(self, record):
        msg = _ANSI.sub("", record.getMessage())
        self.messages.append(msg)
        self.file.write(f"{record.levelname} {msg}\n")
        self.file.flush()

    def start(self, title):
        self.messages = []
        self.file.write(f"\n===== {title} =====\n")

    def train_seconds(self):
        """Seconds of each training epoch as the trainer logged them (the epoch loop, plus the sampler's own
        epoch-end work such as SRNS's pools and snapshots, logged separately; no validation)."""
        end = {int(m.group(1)): float(m.group(2)) for m in map(_EPOCH_END.search, self.messages) if m}
        return [float(m.group(2)) + end.get(int(m.group(1)), 0.0) for m in map(_TRAIN.search, self.messages) if m]

    def valid_scores(self):
        return [(int(m.group(1)), float(m.group(3))) for m in map(_VALID.search, self.messages) if m]

    def sampler_statistics(self):
        """[(epoch, {name: value})] from the plugin's per-epoch sampler log line."""
        out = []
        for m in map(_STATS.search, self.messages):
            if m:
                pairs = (item.split(": ") for item in m.group(2).split(", "))
                out.append((int(m.group(1)), {k: float(v) for k, v in pairs}))
        return out

    def seconds_to_epoch(self, epoch):
        """Training plus validation seconds of epochs 0..epoch (the time a user waits for that checkpoint)."""
        train = [(int(m.group(1)), float(m.group(2))) for m in map(_TRAIN.search, self.messages) if m]
        valid = [(int(m.group(1)), float(m.group(2))) for m in map(_VALID.search, self.messages) if m]
        end = [(int(m.group(1)), float(m.group(2))) for m in map(_EPOCH_END.search, self.messages) if m]
        return sum(sec for e, sec in train + valid + end if e <= epoch)

    def best_valid_epoch(self, bigger=True):
        """The epoch whose checkpoint was kept: the first strict best, as RecBole's early_stopping updates."""
        best_epoch, best = None, None
        for epoch, score in self.valid_scores():
            if best is None or (score > best if bigger else score < best):
                best_epoch, best = epoch, score
        return best_epoch

    def all_position_rows(self):
        """(rows, targets per epoch) from the plugin's SequenceRowsDataLoader log line, or None."""
        for m in map(_ROWS.search, self.messages):
            if m:
                return int(m.group(2)), int(m.group(3))
        return None


def set_threads(n):
    """torch's intra-op thread count (see --threads); set before any work."""
    torch.set_num_threads(n)
    torch.set_num_interop_threads(n)


def use_scratch_dir(path):
    """chdir into a scratch directory (RecBole writes saved/, log/ and log_tensorboard/ into the cwd)."""
    path = os.path.abspath(path or os.path.join(tempfile.gettempdir(), "recbole_negs_bench"))
    if os.path.commonpath([path, REPO_ROOT]) == REPO_ROOT:
        sys.exit(f"--workdir {path} is inside the repository; pick a scratch directory")
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    return path


# --------------------------------------------------------------------------- runners
def _plain(result):
    return None if result is None else {k: float(v) for k, v in result.items()}


def load_own_checkpoint(trainer, path):
    """RecBole's evaluate(load_best_model=True) calls torch.load with torch's default weights_only=True, which
    refuses the Config object in the checkpoint on torch >= 2.6; this loads the run's own file instead."""
    checkpoint = torch.load(path, map_location=trainer.device, weights_only=False)
    trainer.model.load_state_dict(checkpoint["state_dict"])
    trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
    return checkpoint


def run_recbole_own(model, dataset, config_dict, saved=True):
    """RecBole's own data pipeline, model, Trainer and early stopping; the same dict as run_recbole_negs.
    Returns (result, config) so callers can read e.g. the number of training rows."""
    config = Config(model=model, dataset=dataset, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    ds = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, ds)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    # RecBole names the file <model>-<time to the second>.pth; make it unique per run.
    trainer.saved_model_file = os.path.join(config["checkpoint_dir"], f"{model}-own-{uuid.uuid4().hex[:8]}.pth")
    best_score, best_result = trainer.fit(train_data, valid_data, saved=saved, show_progress=False)
    if saved:
        load_own_checkpoint(trainer, trainer.saved_model_file)
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    result = {
        "best_valid_score": float(best_score),
        "valid_score_bigger": bool(config["valid_metric_bigger"]),
        "best_valid_result": _plain(best_result),
        "test_result": _plain(test_result),
        "train_rows": len(train_data._dataset),
    }
    return result


def run_plugin(model, dataset, config_dict, saved=True):
    return run_recbole_negs(model=model, dataset=dataset, config_dict=config_dict, saved=saved)


def timed_run(log, title, runner, model, dataset, config_dict):
    """One run with its log captured: the result dict plus ``sec_per_epoch`` (median of the trainer's logged
    training time per epoch: the epoch loop with its sampling, no validation), ``epochs_run``,
    ``best_epoch``, ``valid_curve`` [(epoch, score)], ``seconds_to_best`` (training and validation up to the
    best epoch), ``wall_seconds`` and (all-position rows) ``rows`` / ``targets``."""
    log.start(title)
    started = time.time()
    result = runner(model, dataset, dict(config_dict, **QUIET))
    result["wall_seconds"] = time.time() - started
    seconds = log.train_seconds()
    result["epochs_run"] = len(seconds)
    # the median of the run's epochs: robust to the odd slow epoch on a shared machine (the first one, say)
    result["sec_per_epoch"] = statistics.median(seconds) if seconds else float("nan")
    result["best_epoch"] = log.best_valid_epoch(result["valid_score_bigger"])
    result["valid_curve"] = log.valid_scores()
    result["sampler_statistics"] = log.sampler_statistics()
    result["seconds_to_best"] = None if result["best_epoch"] is None else log.seconds_to_epoch(result["best_epoch"])
    rows = log.all_position_rows()
    if rows is not None:
        result["rows"], result["targets"] = rows
    return result


# --------------------------------------------------------------------------- statistics and formatting
def mean_se(values):
    """Mean and standard error of the mean (sample sd / sqrt(n)); se is nan for one value."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def fmt_mean_se(values, digits=4):
    mean, se = mean_se(values)
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def diff_verdict(a, b, digits=4, k=2.0):
    """'b - a' with the standard error of the difference sqrt(se_a^2 + se_b^2) and whether |diff| <= k SE."""
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    diff = mb - ma
    se = math.sqrt(sa ** 2 + sb ** 2)
    if math.isnan(se):
        return f"{diff:+.{digits}f} (one seed: no standard error)"
    verdict = f"within {k:g} SE" if abs(diff) <= k * se else f"NOT within {k:g} SE"
    ratio = abs(diff) / se if se > 0 else float("inf")
    return f"{diff:+.{digits}f}, SE of difference {se:.{digits}f} ({ratio:.2f} SE): {verdict}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line():
    env = "".join(f"{k}={shlex.quote(os.environ[k])} " for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
                  if k in os.environ)
    argv = list(sys.argv)
    script = os.path.abspath(argv[0])
    if os.path.dirname(script) == os.path.join(REPO_ROOT, "benchmarks"):  # run as python -m benchmarks.<name>
        argv[0:1] = ["-m", "benchmarks." + os.path.splitext(os.path.basename(script))[0]]
    return env + "python " + " ".join(shlex.quote(a) for a in argv)


def write_result(out, title, body):
    """Print the markdown and write it, with the command line, the working directory and the date."""
    text = (f"# {title}\n\n"
            f"Command (from the repository root; scratch files in `{os.getcwd()}`):\n\n```\n{command_line()}\n```\n\n"
            f"Date: {datetime.now().strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads, CPU; recbole-negs at `{REVISION}` when the run started."
            f"\n\n{body.rstrip()}\n")
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"written: {out}")


def resolve_out(args, name):
    """The result file as an absolute path (call before use_scratch_dir changes the cwd); a --quick run
    without --out writes into the scratch directory, never over the real results."""
    if args.out:
        return os.path.abspath(args.out)
    if args.quick:
        return None
    return os.path.join(RESULTS_DIR, f"{name}.md")


def start(args, name):
    """The usual start of a benchmark: (result markdown path, scratch directory, RunLog). Sets the torch
    threads, moves into the scratch directory and routes the runs' logging to ``<workdir>/<name>.log``; a
    ``--quick`` run without ``--out`` writes ``<workdir>/<name>-quick.md``."""
    out = resolve_out(args, name)
    set_threads(args.threads)
    workdir = use_scratch_dir(args.workdir)
    log = RunLog.install(os.path.join(workdir, f"{name}.log"))
    out = out or os.path.join(workdir, f"{name}-quick.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)  # the JSON beside it is written before the markdown
    return out, workdir, log


def add_common_args(parser, name, seeds, epochs):
    parser.add_argument("--seeds", type=int, default=seeds, help=f"seeds 0..N-1 (default {seeds})")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"max training epochs (default {epochs})")
    parser.add_argument("--out", default=None,
                        help=f"markdown result file (default benchmarks/results/{name}.md; with --quick, the workdir)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 2 epochs, not for results")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a shared 2-core machine two OpenMP threads "
                        "spin against other processes and ran BPR 10-20x slower here; results are the same)")
    parser.add_argument("--workdir", default=None, help="scratch directory for saved/ and log/ "
                        "(default: <tmp>/recbole_negs_bench)")
    return parser
