"""The converter turns the papers' formats into RecBole atomic files that RecBole loads with the papers'
splits: the time order of a sequence survives, a fixed train/test split stays fixed, nothing is overwritten."""

import pickle
import zipfile

import numpy as np
import pytest

from recbole_negs import run_recbole_negs
from recbole_negs.convert import main, split_validation

from conftest import SMALL


def test_sequences_keep_their_order_and_leave_one_out_split(tmp_path, in_tmp):
    lines = [f"{u} " + " ".join(str((u * 7 + k) % 30 + 1) for k in range(8)) for u in range(1, 21)]
    (tmp_path / "seq.txt").write_text("\n".join(lines) + "\n")
    main(["sequences", str(tmp_path / "seq.txt"), "--out", str(tmp_path / "ds"), "--name", "seq"])
    rows = (tmp_path / "ds" / "seq" / "seq.inter").read_text().splitlines()[1:]
    first_user = [r.split("\t") for r in rows if r.startswith("1\t")]
    assert [item for _, item, _ in first_user] == lines[0].split()[1:]
    assert [float(t) for _, _, t in first_user] == list(range(8))
    result = run_recbole_negs("SASRec", "seq", config_dict={
        **SMALL, "data_path": str(tmp_path / "ds"), "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "sampler": "uniform", "topk": [10]})
    assert set(result["test_result"]) == {"ndcg@10", "hit@10"}
    with pytest.raises(SystemExit, match="exists; nothing is overwritten"):
        main(["sequences", str(tmp_path / "seq.txt"), "--out", str(tmp_path / "ds"), "--name", "seq"])


def _fixed_split_case(tmp_path, fmt):
    rng = np.random.default_rng(0)
    train = [(u, i) for u in range(15) for i in rng.choice(40, 8, replace=False)]
    test = [(u, 40 + u % 5) for u in range(15)]
    if fmt == "lightgcn":
        def text(pairs):
            by_user = {}
            for u, i in pairs:
                by_user.setdefault(u, []).append(str(i))
            return "\n".join(f"{u} " + " ".join(items) for u, items in by_user.items()) + "\n"
        with zipfile.ZipFile(tmp_path / "split.zip", "w") as archive:
            archive.writestr("data/train.txt", text(train))
            archive.writestr("data/test.txt", text(test))
        return str(tmp_path / "split.zip"), train, test
    folder = tmp_path / "pickles"
    folder.mkdir()
    for name, pairs in (("train", train), ("test", test)):
        with open(folder / f"{name}.pkl", "wb") as f:
            pickle.dump(np.array(pairs), f)
    return str(folder), train, test


@pytest.mark.parametrize("fmt", ["lightgcn", "srns"])
def test_fixed_splits_become_benchmark_files(fmt, tmp_path, in_tmp):
    source, train, test = _fixed_split_case(tmp_path, fmt)
    main([fmt, source, "--out", str(tmp_path / "ds"), "--name", "fixed", "--valid-share", "0.25"])
    read = {part: [tuple(map(int, r.split("\t")[:2])) for r in
                   (tmp_path / "ds" / "fixed" / f"fixed.{part}.inter").read_text().splitlines()[1:]]
            for part in ("train", "valid", "test")}
    assert sorted(read["train"] + read["valid"]) == sorted(map(tuple, train)), "train + valid = the train split"
    assert sorted(read["test"]) == sorted(map(tuple, test)), "the test split is kept as published"
    result = run_recbole_negs("BPR", "fixed", config_dict={
        **SMALL, "data_path": str(tmp_path / "ds"), "load_col": {"inter": ["user_id", "item_id"]},
        "benchmark_filename": ["train", "valid", "test"], "sampler": "uniform"})
    assert set(result["test_result"]) == {"ndcg@10", "hit@10"}


def test_validation_share_per_user():
    users = np.repeat(np.arange(4), [1, 2, 10, 20])
    mask = split_validation(users, 0.1, seed=1)
    assert [int(mask[users == u].sum()) for u in range(4)] == [0, 1, 1, 2]
    assert np.array_equal(mask, split_validation(users, 0.1, seed=1))
