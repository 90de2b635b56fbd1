"""Matplotlib figures for reports (Agg backend, PNG files written atomically)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.io import atomic_path


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns (missing cells become NaN)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    columns = {name: np.full(len(rows), np.nan) for name in rows[0]}
    for index, row in enumerate(rows):
        for name, value in row.items():
            if value not in (None, ""):
                columns[name][index] = float(value)
    return columns


def plot_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, *,
                title: str, xlabel: str = "step", ylabel: str = "return") -> Path:
    """One line per named (x, y) curve; NaN points are skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=110)
    for label, (xs, ys) in curves.items():
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        axis.plot(x[keep], y[keep], label=label, marker="o" if keep.sum() < 30 else None, markersize=3)
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    if len(curves) > 1:
        axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_bars(values: Mapping[str, float], path: str | Path, *, title: str, ylabel: str,
              errors: Mapping[str, float] | None = None, reference: tuple[str, float] | None = None,
              groups: Mapping[str, str] | None = None) -> Path:
    """A bar per named value (optional error bars, optional (label, y) horizontal reference line, optional
    group label per bar: one colour and one legend entry per group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=110)
    names = list(values)
    bar_errors = None if errors is None else [errors.get(n, 0.0) for n in names]
    group_names = list(dict.fromkeys(groups[n] for n in names)) if groups else []
    palette = {group: f"C{index}" for index, group in enumerate(group_names)}
    bars = axis.bar(names, [values[n] for n in names], yerr=bar_errors, capsize=4,
                    color=[palette[groups[n]] for n in names] if groups else None)
    for group in group_names:  # one labelled bar per group makes the legend entry
        bars[[groups[n] for n in names].index(group)].set_label(group)
    if sum(len(name) for name in names) > 60:  # long labels would run into each other
        axis.tick_params(axis="x", labelrotation=20)
        plt.setp(axis.get_xticklabels(), ha="right")
    if reference is not None:
        axis.axhline(reference[1], color="tab:red", linestyle="--", label=reference[0])
    if reference is not None or groups:
        axis.legend()
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure: Any, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (a reader never sees half a file) and close it."""
    import matplotlib.pyplot as plt

    target = Path(path)
    with atomic_path(target) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)
    return target
