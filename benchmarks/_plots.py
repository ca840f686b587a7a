"""PNG plots of benchmark results (matplotlib, from the ``bench`` extra), drawn without a display."""

import math


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def mean_curve(curves):
    """Per x, the mean over the seeds that reached it: [(x, [(x, y), ...] per seed)] -> (xs, ys)."""
    by_x = {}
    for curve in curves:
        for x, y in curve:
            by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    return xs, [sum(by_x[x]) / len(by_x[x]) for x in xs]


def line_plot(path, title, series, xlabel, ylabel, logx=False, logy=False):
    """One line per label; ``series`` maps a label to a list of curves (one per seed), each [(x, y), ...];
    the line is the mean over seeds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, curves in series.items():
        xs, ys = mean_curve(curves)
        if xs:
            ax.plot(xs, ys, marker="o" if len(xs) < 15 else None, markersize=3, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bar_plot(path, title, values, ylabel):
    """Horizontal bars: ``values`` maps a label to (mean, standard error or nan)."""
    plt = _pyplot()
    labels = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    means = [values[k][0] for k in labels]
    errors = [0 if math.isnan(values[k][1]) else values[k][1] for k in labels]
    ax.barh(range(len(labels)), means, xerr=errors, color="#4C72B0", alpha=0.85)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
