"""The benchmark helpers that turn runs into verdicts and timings (benchmarks/_common.py, _experiment.py)."""

import logging

from benchmarks import _common as common
from benchmarks import _experiment as ex


def test_verdict_calls_a_gain_only_beyond_two_standard_errors():
    base = [0.10, 0.11, 0.09]  # mean 0.10, SE 0.0058
    assert "noise" in ex.verdict(base, [0.11, 0.12, 0.10])  # +0.01: 1.2 SE of the difference
    assert "**gain**" in ex.verdict(base, [0.13, 0.14, 0.12])  # +0.03: 3.7 SE
    assert "**loss**" in ex.verdict(base, [0.07, 0.08, 0.06])
    assert "1 seed" in ex.verdict([0.1], [0.2])


def test_epoch_seconds_include_the_samplers_epoch_end_work():
    """SRNS's pools and snapshots run after the trainer's epoch line; the benchmarks count them in the epoch."""
    log = common.RunLog.__new__(common.RunLog)
    logging.Handler.__init__(log)
    log.messages = [
        "epoch 0 training [time: 2.00s, train loss: 1.0]",
        "epoch 0 sampler epoch end [time: 0.50s]",
        "epoch 0 sampler [mean_gap: 0.1000, share_outscoring: 0.2000]",
        "epoch 0 evaluating [time: 1.00s, valid_score: 0.300000]",
        "epoch 1 training [time: 3.00s, train loss: 0.9]",
        "epoch 1 evaluating [time: 1.00s, valid_score: 0.250000]",
    ]
    assert log.train_seconds() == [2.5, 3.0]
    assert log.seconds_to_epoch(0) == 3.5 and log.seconds_to_epoch(1) == 7.5
    assert log.best_valid_epoch() == 0
    assert log.sampler_statistics() == [(0, {"mean_gap": 0.1, "share_outscoring": 0.2})]


def test_quality_table_compares_each_row_with_the_baseline():
    run = lambda v: {"test_result": {"ndcg@10": v}, "seconds_to_best": 10.0, "best_epoch": 3,  # noqa: E731
                     "sec_per_epoch": 2.0}
    rows = [ex.Row("base", "BPR"), ex.Row("hard", "BPR", paper={"ndcg@10": 0.5})]
    results = {"base": [run(0.10), run(0.11), run(0.09)], "hard": [run(0.13), run(0.14), run(0.12)]}
    table = ex.quality_table(results, rows, ["ndcg@10"], "ndcg@10", "base", "uniform").splitlines()
    assert "ndcg@10 vs uniform" in table[0]
    assert table[2].startswith("| base | 3 | 0.1000 ± 0.0058 | — | — |")
    assert "ndcg@10 0.5" in table[3] and "**gain**" in table[3]
