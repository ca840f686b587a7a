"""Run every benchmark's ``--quick`` mode (every ``benchmarks/<name>.py`` whose name does not start with ``_``),
one after another in fresh processes, and print the wall time of each. Exits non-zero if any fails.

    python -m benchmarks._check_quick [--data-dir ../shared/data] [--workdir /tmp/recbole_negs_quick]

A check of the pipelines end to end (data conversion, training, evaluation, tables, plots), not of results:
quick runs write their markdown into the scratch directory, never into benchmarks/results/.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from benchmarks._common import REPO_ROOT
from benchmarks._data import DEFAULT_DATA_DIR

BENCHMARKS_DIR = os.path.join(REPO_ROOT, "benchmarks")


def benchmark_names():
    return sorted(name[:-3] for name in os.listdir(BENCHMARKS_DIR)
                  if name.endswith(".py") and not name.startswith("_"))


def takes_data_dir(name):
    with open(os.path.join(BENCHMARKS_DIR, f"{name}.py"), encoding="utf-8") as f:
        return "add_data_args" in f.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "recbole_negs_quick"))
    parser.add_argument("--only", nargs="*", default=None, help="run only these benchmarks")
    args = parser.parse_args()
    names = [n for n in benchmark_names() if not args.only or n in args.only]
    timings, failed = [], []
    started = time.time()
    for name in names:
        command = [sys.executable, "-m", f"benchmarks.{name}", "--quick", "--workdir", os.path.join(args.workdir, name)]
        if takes_data_dir(name):
            command += ["--data-dir", args.data_dir]
        t0 = time.time()
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        seconds = time.time() - t0
        timings.append((name, seconds, done.returncode))
        print(f"{name:24s} {seconds:6.0f} s  {'ok' if done.returncode == 0 else 'FAILED'}", flush=True)
        if done.returncode != 0:
            failed.append(name)
            print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
    print(f"{'total':24s} {time.time() - started:6.0f} s  ({len(names) - len(failed)} of {len(names)} ok)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
