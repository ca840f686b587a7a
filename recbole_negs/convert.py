"""Convert the papers' published data formats to RecBole atomic files:

    python -m recbole_negs.convert sequences Beauty/Beauty.txt --out dataset --name beauty
    python -m recbole_negs.convert lightgcn gowalla/light_gcn_gowalla.zip --out dataset --name gowalla
    python -m recbole_negs.convert srns SRNS_syn/ml-100k --out dataset --name srns-ml-100k

- ``sequences`` (S3-Rec / GenNi / CL4SRec: one user per line, ``uid i1 i2 ...`` in time order) gives
  ``<name>.inter`` whose ``timestamp`` is each item's index in its user's sequence, so RecBole's time ordering
  (``order: TO``) and leave-one-out split reproduce the papers' split.
- ``lightgcn`` (``train.txt`` / ``test.txt``, or a zip of them: ``uid i1 i2 ...``) and ``srns`` (``train.pkl`` /
  ``test.pkl`` arrays of ``[user, item]``) have fixed published splits: they give RecBole's
  ``benchmark_filename`` files ``<name>.train.inter``, ``<name>.valid.inter`` and ``<name>.test.inter``. The
  validation part is carved from the training part per user (``--valid-share``, seeded); with
  ``--valid-share 0`` (the SRNS synthetic protocol has no validation) the valid file repeats the test split so
  that RecBole runs, and must not be used to select a model. Use the files with
  ``benchmark_filename: [train, valid, test]``.

Nothing is overwritten: an existing output folder is an error.
"""

import argparse
import io
import os
import pickle
import sys
import zipfile

import numpy as np

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"


def _write(path, users, items, times):
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER)
        f.writelines(f"{u}\t{i}\t{t}\n" for u, i, t in zip(users, items, times))


def _parse_lines(text):
    """``uid i1 i2 ...`` per line -> (users, items, position in the line)."""
    users, items, times = [], [], []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        users += [parts[0]] * (len(parts) - 1)
        items += parts[1:]
        times += range(len(parts) - 1)
    return np.array(users), np.array(items), np.array(times)


def _output_folder(out, name):
    folder = os.path.join(out, name)
    if os.path.exists(folder):
        sys.exit(f"recbole-negs convert: {folder} exists; nothing is overwritten (choose another --out or --name)")
    os.makedirs(folder)
    return folder


def convert_sequences(source, out, name):
    with open(source, encoding="utf-8") as f:
        users, items, times = _parse_lines(f.read())
    folder = _output_folder(out, name)
    _write(os.path.join(folder, f"{name}.inter"), users, items, times)
    return folder


def _read_lightgcn(source):
    """(train, test) text of a LightGCN-style split: a folder with train.txt/test.txt or a zip holding them."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = {os.path.basename(n): n for n in archive.namelist()}
            return tuple(io.TextIOWrapper(archive.open(names[f"{part}.txt"]), encoding="utf-8").read()
                         for part in ("train", "test"))
    return tuple(open(os.path.join(source, f"{part}.txt"), encoding="utf-8").read() for part in ("train", "test"))


def read_lightgcn_split(source):
    """(train, test) as (users, items) arrays from a LightGCN-style folder or zip."""
    return tuple(_parse_lines(text)[:2] for text in _read_lightgcn(source))


def read_srns_split(source):
    parts = []
    for part in ("train", "test"):
        with open(os.path.join(source, f"{part}.pkl"), "rb") as f:
            pairs = np.asarray(pickle.load(f))
        parts.append((pairs[:, 0].astype(str), pairs[:, 1].astype(str)))
    return parts


def split_validation(users, share, seed):
    """Boolean mask: a random ``share`` of each user's training interactions (at least one for users with two
    or more, none for users with one), seeded."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(users), dtype=bool)
    order = np.argsort(users, kind="stable")
    boundaries = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1], True])
    for start, end in zip(boundaries[:-1], boundaries[1:]):
        size = end - start
        take = 0 if size < 2 else max(1, int(round(share * size)))
        mask[order[start + rng.permutation(size)[:take]]] = True
    return mask


def convert_fixed_split(train, test, out, name, valid_share, seed):
    (train_users, train_items), (test_users, test_items) = train, test
    folder = _output_folder(out, name)
    if valid_share > 0:
        valid = split_validation(train_users, valid_share, seed)
        parts = {"train": (train_users[~valid], train_items[~valid]), "valid": (train_users[valid], train_items[valid])}
    else:
        parts = {"train": (train_users, train_items), "valid": (test_users, test_items)}
    parts["test"] = (test_users, test_items)
    for part, (users, items) in parts.items():
        _write(os.path.join(folder, f"{name}.{part}.inter"), users, items, np.zeros(len(users), dtype=int))
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_negs.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=("sequences", "lightgcn", "srns"))
    parser.add_argument("source", help="the file (sequences), folder or zip (lightgcn), or folder (srns)")
    parser.add_argument("--out", default="dataset", help="RecBole data_path to write into (default: dataset)")
    parser.add_argument("--name", required=True, help="dataset name: the folder and file prefix")
    parser.add_argument("--valid-share", type=float, default=0.1,
                        help="fixed splits: share of each user's training interactions held out for validation")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args(argv)
    if args.format == "sequences":
        folder = convert_sequences(args.source, args.out, args.name)
    else:
        if args.format == "lightgcn":
            train, test = read_lightgcn_split(args.source)
        else:
            train, test = read_srns_split(args.source)
        folder = convert_fixed_split(train, test, args.out, args.name, args.valid_share, args.seed)
    print(f"written: {folder} (use --dataset={args.name} --data_path={args.out})")


if __name__ == "__main__":
    main()
