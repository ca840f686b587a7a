"""The benchmark datasets as RecBole atomic files: converted once from ``--data-dir`` (default
``../shared/data`` beside the repository) into ``<workdir>/dataset`` with the plugin's own converter, the
command any user runs on their own copy (``python -m recbole_negs.convert ...``).

``dataset_config(name, data_dir, workdir)`` returns the RecBole keys that point a run at the converted files.
"""

import os
import sys

from recbole_negs import convert
from benchmarks._common import REPO_ROOT

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")

# name -> (converter format, source path under the data dir, validation share of the fixed split)
SOURCES = {
    "beauty": ("sequences", "Beauty/Beauty.txt", None),
    # PDNS on Gowalla: NGCF's fixed split; a random ninth of each user's training items becomes validation
    "gowalla": ("lightgcn", "gowalla/light_gcn_gowalla.zip", 1 / 9),
    # SRNS section 4.2: a fixed 4:1 split and no validation (the valid file repeats the test split)
    "srns-ml-100k": ("srns", "SRNS_syn/ml-100k", 0.0),
}


def add_data_args(parser):
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help=f"the raw benchmark data (default {DEFAULT_DATA_DIR}; layout of its README)")
    return parser


def source_path(name, data_dir):
    path = os.path.join(os.path.abspath(data_dir), SOURCES[name][1])
    if not os.path.exists(path):
        sys.exit(f"benchmark data not found: {path} (give the folder holding {SOURCES[name][1]} with --data-dir)")
    return path


def first_users(source, max_users, folder):
    """A copy of a one-user-per-line file with its first ``max_users`` lines (a smaller dataset, named so)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{os.path.basename(source)}.first{max_users}")
    with open(source, encoding="utf-8") as f:
        lines = f.readlines()[:max_users]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def dataset_name(name, max_users=None):
    return f"{name}-u{max_users}" if max_users else name


def dataset_config(name, data_dir, workdir, max_users=None):
    """Convert ``name`` into ``<workdir>/dataset/<name>`` unless it is there already (with ``max_users``, a
    sequence dataset cut to its first users, named ``dataset_name(name, max_users)``); returns the RecBole keys
    that point a run at the files."""
    form, _, valid_share = SOURCES[name]
    if max_users and form != "sequences":
        raise ValueError(f"max_users applies to one-user-per-line data only, not {name}")
    out = os.path.join(os.path.abspath(workdir), "dataset")
    dataset = dataset_name(name, max_users)
    if not os.path.isdir(os.path.join(out, dataset)):
        source = source_path(name, data_dir)
        os.makedirs(out, exist_ok=True)
        if max_users:
            source = first_users(source, max_users, os.path.join(os.path.abspath(workdir), "raw"))
        if form == "sequences":
            convert.convert_sequences(source, out, dataset)
        else:
            reader = convert.read_lightgcn_split if form == "lightgcn" else convert.read_srns_split
            convert.convert_fixed_split(*reader(source), out, name, valid_share, seed=2020)
    # RecBole loads only user and item ids of a dataset it has no yaml for; the timestamp orders the sequences
    config = {"data_path": out, "load_col": {"inter": ["user_id", "item_id", "timestamp"]}}
    if form != "sequences":
        config["benchmark_filename"] = ["train", "valid", "test"]
    return config
