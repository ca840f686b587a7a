"""Fill ``.devcarry/`` (repository root, git-ignored through .git/info/exclude) with what a GPU machine without
internet needs for ``benchmarks.device_runs``:

* ``.devcarry/whl/``: wheels for CPython 3.12 on manylinux x86_64 of RecBole 1.2.1 and of every runtime
  dependency of RecBole and the plugin that the machine's image lacks (see ``WHEELS``), installed there with
  ``pip install --no-index --no-deps --target /tmp/site .devcarry/whl/*.whl``;
* ``.devcarry/dataset/``: full Beauty (sequences, leave-one-out) and Gowalla (NGCF/LightGCN fixed split, a
  seeded ninth of each user's training items as validation) as RecBole atomic files, converted with the
  plugin's own converter (``benchmarks._data``, i.e. ``python -m recbole_negs.convert``);
* ``.devcarry/MANIFEST.json``: the wheels, the dataset files and the total size.

    python -m benchmarks.device_pack [--data-dir ../shared/data] [--skip-wheels] [--skip-data]

The image of the device machine (Python 3.12, torch 2.11) already holds numpy, scipy, scikit-learn, pyyaml,
tqdm, tensorboard, tabulate, psutil, matplotlib and colorama. RecBole's own requirements it lacks are colorlog
(==4.7.2, RecBole's pin), texttable and thop; plotly (only RecBole's case-study/plot helpers) and ray
(``recbole.quick_start``, which the plugin never imports) are not needed at run time. pandas is carried
because the image's version is unknown and pandas 3 breaks RecBole silently: 2.3.3, the version the plugin is
tested with here (< 3, as pyproject pins), with pandas 2's own pure-python dependencies (pytz, tzdata,
python-dateutil; pandas 3 no longer needs pytz, so an image with pandas 3 may lack it).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARRY = os.path.join(REPO_ROOT, ".devcarry")
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")

# name==version: the versions installed and tested in this repository's venv (python 3.11, CPU)
WHEELS = [
    "recbole==1.2.1",
    "colorlog==4.7.2",
    "texttable==1.7.2",
    "thop==0.1.1.post2209072238",
    "pandas==2.3.3",
    "pytz==2026.6",
    "tzdata==2026.6",
    "python-dateutil==4.0.0",
]
PLATFORM_ARGS = ["--python-version", "3.12", "--implementation", "cp",
                 "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                 "--platform", "manylinux2014_x86_64"]
DATASETS = ("beauty", "gowalla")
LIMIT_MB = 50


def exclude_from_git():
    """``/.devcarry/`` in the common git dir's info/exclude (worktrees share it): never committed, yet it still
    travels to the device machine when named in the run's ``carry``."""
    try:
        common = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--git-common-dir"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        print("not a git checkout: .devcarry not excluded")
        return
    path = os.path.join(REPO_ROOT, common, "info", "exclude") if not os.path.isabs(common) else \
        os.path.join(common, "info", "exclude")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) else []
    if "/.devcarry/" not in lines:
        with open(path, "a", encoding="utf-8") as f:
            f.write("/.devcarry/\n")
        print(f"added /.devcarry/ to {path}")


def download_wheels(folder):
    os.makedirs(folder, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *PLATFORM_ARGS,
           "-d", folder, *WHEELS]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    wanted = {w.split("==")[0].lower().replace("-", "_") for w in WHEELS}
    for name in os.listdir(folder):  # drop wheels of an earlier pack that are no longer wanted
        if name.endswith(".whl") and name.split("-")[0].lower() not in wanted:
            os.remove(os.path.join(folder, name))


def convert_datasets(data_dir):
    from benchmarks import _data  # imports recbole: only needed here, on the packing machine

    out = {}
    for name in DATASETS:
        config = _data.dataset_config(name, data_dir, CARRY)
        out[name] = {k: v for k, v in config.items() if k != "data_path"}
    return out


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--skip-wheels", action="store_true")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--clean", action="store_true", help="remove .devcarry first")
    args = parser.parse_args()
    if args.clean and os.path.isdir(CARRY):
        shutil.rmtree(CARRY)
    os.makedirs(CARRY, exist_ok=True)
    exclude_from_git()
    if not args.skip_wheels:
        download_wheels(os.path.join(CARRY, "whl"))
    datasets = {} if args.skip_data else convert_datasets(args.data_dir)
    files = {}
    for root, _, names in os.walk(CARRY):
        for name in sorted(names):
            path = os.path.join(root, name)
            if name != "MANIFEST.json":
                files[os.path.relpath(path, CARRY)] = {"bytes": os.path.getsize(path), "sha256": sha256(path)}
    total = folder_size(CARRY)
    manifest = {"wheels": WHEELS, "platform": PLATFORM_ARGS, "datasets": datasets, "files": files,
                "total_mb": round(total / 2 ** 20, 1)}
    with open(os.path.join(CARRY, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    for rel, info in sorted(files.items()):
        print(f"{info['bytes'] / 2 ** 20:8.2f} MB  {rel}")
    print(f"total {total / 2 ** 20:.1f} MB in {CARRY}")
    if total > LIMIT_MB * 2 ** 20:
        sys.exit(f".devcarry is {total / 2 ** 20:.1f} MB, over the {LIMIT_MB} MB this pack must stay under")


if __name__ == "__main__":
    main()
