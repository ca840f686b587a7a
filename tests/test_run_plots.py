"""plot: True writes one PNG next to RecBole's log file, and what it draws is what the log says: the
validation score, the training loss and the sampler's per-epoch statistics (UFNRec's reversals included)."""

import logging
import re

import pytest

pytest.importorskip("matplotlib")

from recbole_negs import run_plots, run_recbole_negs  # noqa: E402
from recbole_negs.errors import ConfigError  # noqa: E402

from conftest import SMALL, small_config  # noqa: E402


def _logged(log_text):
    """Per-epoch numbers as RecBole's log file prints them: {name: {epoch: value}}."""
    out = {}
    for epoch, body in re.findall(r"epoch (\d+) sampler \[([^\]]*)\]", log_text):
        for name, value in re.findall(r"(\w+): ([-\d.e]+)", body):
            out.setdefault(name, {})[int(epoch)] = float(value)
    for epoch, value in re.findall(r"epoch (\d+) evaluating \[.*valid_score: ([-\d.]+)\]", log_text):
        out.setdefault("valid_score", {})[int(epoch)] = float(value)
    for epoch, body in re.findall(r"epoch (\d+) training \[([^\]]*)\]", log_text):
        # one loss, or its parts (UFNRec: BCE and consistency), which the plot shows summed
        parts = re.findall(r"train[ _]loss\d*: ([-\d.]+)", body)
        out.setdefault("loss", {})[int(epoch)] = sum(float(part) for part in parts)
    return out


def _run_keeping_figure(monkeypatch, model, config):
    drawn = {}
    real = run_plots.draw

    def keeping(curves, title):
        drawn["figure"] = real(curves, title)
        return drawn["figure"]

    monkeypatch.setattr(run_plots, "draw", keeping)
    # as in a command-line run, RecBole's init_logger gets an empty root logger (pytest's handlers would make
    # its basicConfig a no-op, and the log file would stay empty)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    run_recbole_negs(model=model, dataset="ml-100k", config_dict={**SMALL, "state": "INFO", "plot": True, **config})
    panels = {ax.get_title(): (list(ax.lines[0].get_xdata()), list(ax.lines[0].get_ydata()))
              for ax in drawn["figure"].axes if ax.get_visible()}
    return panels


def _close(plotted, logged, places):
    epochs, values = plotted
    assert epochs == sorted(logged), "one point per logged epoch"
    assert values == pytest.approx([logged[e] for e in epochs], abs=0.6 * 10 ** -places)


@pytest.mark.slow
def test_ufnrec_plot_shows_the_logged_numbers(in_tmp, monkeypatch):
    panels = _run_keeping_figure(monkeypatch, "SASRec", {
        "method": "ufnrec", "ufn_warmup_epochs": 0, "ufn_reverse_threshold": 1, "neg_sample_num": 4,
        "train_batch_size": 128, "epochs": 3})
    (log,) = (in_tmp / "log" / "SASRec").glob("*.log")
    assert log.with_suffix(".png").is_file() and log.with_suffix(".png").stat().st_size > 10_000
    logged = _logged(log.read_text())
    assert len(logged["valid_score"]) == 3 and len(logged["mean_gap"]) == 3
    _close(panels["validation NDCG@10"], logged["valid_score"], 6)
    _close(panels["training loss"], logged["loss"], 3.6)  # two parts, each rounded to 4 places
    _close(panels[run_plots.TITLES["mean_gap"]], logged["mean_gap"], 4)
    _close(panels[run_plots.TITLES["share_outscoring"]], logged["share_outscoring"], 4)
    _close(panels[run_plots.TITLES["reversed"]], logged["reversed"], 4)
    assert max(panels[run_plots.TITLES["reversed"]][1]) > 0, "mining reversed some labels"
    assert f"plot: {log.with_suffix('.png')}" in log.read_text(), "the log names the picture"


def test_plot_without_a_sampler_draws_validation_and_loss(in_tmp, monkeypatch):
    panels = _run_keeping_figure(monkeypatch, "BPR", {"sampler": "none", "epochs": 2, "train_batch_size": 2048})
    assert sorted(panels) == ["training loss", "validation NDCG@10"]
    (log,) = (in_tmp / "log" / "BPR").glob("*.log")
    assert log.with_suffix(".png").is_file()
    _close(panels["validation NDCG@10"], _logged(log.read_text())["valid_score"], 6)


def test_plot_is_off_by_default_and_checked(in_tmp):
    assert small_config("BPR")["plot"] is False
    with pytest.raises(ConfigError, match="'plot'"):
        small_config("BPR", plot="yes")
