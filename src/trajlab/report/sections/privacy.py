"""Plots and report.html of `trajlab synth evaluate`: real vs synthetic marginals and the fidelity scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import transition_matrix
from trajlab.privacy.fidelity import column_names
from trajlab.report import Report
from trajlab.report.plots import save_figure

MAX_PANELS = 36
"""At most this many dimensions get a panel (Hopper's 27 columns fit; larger spaces show the first ones)."""


def plot_marginals(real: TransitionDataset, synthetic: TransitionDataset, path: str | Path, *,
                   title: str = "Marginals: real vs synthetic") -> Path:
    """One histogram panel per dimension of [s, a, r, s', done], real and synthetic overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = column_names(real.observation_dim, real.action_dim)[:MAX_PANELS]
    rows = [transition_matrix(ds) for ds in (real, synthetic)]
    columns = min(6, len(names))
    lines = -(-len(names) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(2.2 * columns, 1.8 * lines), dpi=100, squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(names):
            axis.axis("off")
            continue
        values = [part[:, index] for part in rows]
        bins = np.histogram_bin_edges(np.concatenate(values), bins=30)
        for label, value in zip(("real", "synthetic"), values):
            axis.hist(value, bins=bins, density=True, alpha=0.5, label=label)
        axis.set_title(names[index], fontsize=8)
        axis.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def write_synth_report(path: str | Path, result: dict[str, Any], plots: list[str]) -> Path:
    """report.html of an evaluation: the guarantee the data carries, the fidelity scores, the plots."""
    report = Report("Synthetic transitions: fidelity")
    report.key_values({"synthetic data": result["synthetic"], "real data": result["real"],
                       "epsilon": result["epsilon"], "delta": result["delta"], "accountant": result["accountant"],
                       "column shapes (KS / TV complement)": result["fidelity"]["column_shapes"],
                       "column pair trends (correlation / contingency similarity)":
                           result["fidelity"]["column_pair_trends"]})
    report.heading("Per-dimension marginal similarity")
    report.table(["column", "score"], [[name, score] for name, score in result["fidelity"]["per_column"].items()])
    for plot in plots:
        report.image(plot, Path(plot).stem.replace("_", " "))
    return report.write(path)


def plot_downstream(summary: dict[str, dict[str, dict[str, Any]]], path: str | Path) -> Path:
    """Mean evaluation return (error bar: standard deviation over seeds) of each algorithm on each dataset."""
    from trajlab.report.plots import plot_bars

    values, errors, groups = {}, {}, {}
    for algo, by_data in summary.items():
        for label, row in by_data.items():
            name = f"{algo} / {label}"
            values[name], errors[name], groups[name] = row["mean_return"], row["std_return"], label
    return plot_bars(values, path, title="Offline RL on real vs synthetic transitions", ylabel="evaluation return",
                     errors=errors, groups=groups)


def write_downstream_report(path: str | Path, result: dict[str, Any]) -> Path:
    """report.html of `trajlab synth downstream`: returns per algorithm and dataset, and their share of real."""
    report = Report("Synthetic transitions: downstream offline RL")
    report.key_values({"real data": result["real"], **{label: file for label, file in result["synthetic"].items()
                                                       if label != "real"}})
    rows = [[algo, label, row["mean_return"], row["std_return"], row["mean_normalized_score"], row["share_of_real"]]
            for algo, by_data in result["summary"].items() for label, row in by_data.items()]
    report.table(["algorithm", "data", "mean return", "std", "D4RL score", "share of real"], rows)
    for plot in result["plots"]:
        report.image(plot, Path(plot).stem.replace("_", " "))
    return report.write(path)
