"""``plot: True``: one PNG per run, next to RecBole's log file, with the curves a person reads the log for.

The validation score, the training loss and every per-epoch statistic of the sampler (hardness as the mean
score gap positive - negative, the share of negatives that outscore their positive, UFNRec's reversals and
mining counts, GenNi's alpha and beta, SRNS's alpha_t and std) against the epoch: the same numbers the log
prints, taken from the trainer rather than parsed back from the text.
"""

import logging
import math
import os

# Titles for the statistics a reader looks for first; the others keep their log names.
TITLES = {
    "mean_gap": "hardness: mean score gap, positive - negative",
    "share_outscoring": "share of negatives outscoring their positive",
    "reversed": "reversals: label-reversed placements (UFNRec)",
    "mined": "mined false negatives (UFNRec)",
}
FIRST = ("mean_gap", "share_outscoring", "reversed")


def series(config, trainer):
    """``{title: (epochs, values)}`` in plotting order: validation, training loss, then the statistics."""
    out = {}
    if trainer.valid_score_history:
        out[f"validation {config['valid_metric']}"] = _curve(trainer.valid_score_history)
    if trainer.train_loss_dict:
        out["training loss"] = _curve(trainer.train_loss_dict)
    names = [name for history in trainer.statistics_history.values() for name in history]
    ordered = [n for n in FIRST if n in names] + sorted(set(names) - set(FIRST))
    for name in ordered:
        points = {epoch: stats[name] for epoch, stats in trainer.statistics_history.items() if name in stats}
        out[TITLES.get(name, name)] = _curve(points)
    return out


def _curve(points):
    epochs = sorted(points)
    return epochs, [float(points[epoch]) for epoch in epochs]


def draw(curves, title):
    """A figure with one small panel per curve (no pyplot: nothing global changes, no display needed)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    columns = min(3, max(len(curves), 1))
    rows = max(math.ceil(len(curves) / columns), 1)
    figure = Figure(figsize=(4.2 * columns, 2.9 * rows + 0.5), layout="constrained")
    figure.suptitle(title)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, (epochs, values)) in zip(axes, curves.items()):
        ax.plot(epochs, values, marker="o", markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    return figure


def log_file():
    """The file RecBole's init_logger writes this run's log into, or None."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def png_path(config, trainer):
    """Beside the log file, with its name. Where this process already drew one there (RecBole's logger keeps
    writing into the first run's file when one process runs several), a numbered one; with no log file (a
    caller's own logging), log/<model>/ with the name of the run's checkpoint."""
    log = log_file()
    if log is None:
        run = os.path.splitext(os.path.basename(trainer.saved_model_file))[0]
        return os.path.join("log", config["model"], run + ".png")
    stem, number = os.path.splitext(log)[0], 1
    path = stem + ".png"
    while os.path.exists(path):
        number += 1
        path = f"{stem}-{number}.png"
    return path


def plot_run(config, trainer, path=None):
    """Write the run's PNG (beside RecBole's log file, see png_path) and return its path."""
    path = path or png_path(config, trainer)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure = draw(series(config, trainer), f"{config['model']} on {config['dataset']}: {_training(config)}")
    figure.savefig(path, dpi=110)
    return path


def _training(config):
    if config["method"] != "none":
        return f"method {config['method']}"
    if config["sampler"] == "none":
        return "RecBole's own training"
    trainer = f", trainer {config['trainer']}" if config["trainer"] != "negs" else ""
    return f"sampler {config['sampler']}, loss {config['loss']}{trainer}"
