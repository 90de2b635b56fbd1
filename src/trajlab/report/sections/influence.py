"""report.html and plots of `trajlab influence estimate`: the influence of every experience group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trajlab.core.rundir import RunDirectory
from trajlab.report import Report
from trajlab.report.plots import plot_bars, save_figure

TOP = 5
"""Groups listed as most harmful and most helpful."""


def write_influence_report(run_dir: RunDirectory, result: dict[str, Any]) -> list[str]:
    """Write a bar plot per score (influence per group) and report.html; returns the plot paths."""
    plots = [str(influence_plot(run_dir.plots / f"influence_{score}.png", result, score))
             for score in result["scores"]]
    report = Report(f"Experience influence (PIToD) on {result['env_id']}")
    coupling = {"independent": "independently, each its own agent", "mean": "on their masked mean (the paper's)"}
    report.key_values({"groups": len(result["groups"]), "group size": result["group_size"],
                       "members (K)": result["num_members"],
                       **({"members trained": coupling[result["member_coupling"]]} if "member_coupling" in result
                          else {}),
                       **{f"all-member {k}": v for k, v in result["base"].items()}})
    against = "its own mask (the sub-networks that did)" if _baseline(result) == "own" else "all sub-networks"
    report.paragraph("Influence of a group = score with the flipped mask of the group (the sub-networks that never "
                     f"trained on it) minus the score with {against}. On the return, a positive influence "
                     "means the agent does better without the group: the group is harmful.")
    if "return" in result["scores"]:
        ranked = sorted(result["groups"], key=lambda group: -group["influence"]["return"])
        rows = [[g["group"], f"{g['transition_ids'][0]}-{g['transition_ids'][1]}", g["influence"]["return"]]
                for g in ranked[:TOP]]
        report.heading("Most harmful groups (removal raises the return most)")
        report.table(["group", "transition ids", "influence on return"], rows)
    for path in plots:
        report.image(path, Path(path).stem.replace("_", " "))
    report.write(run_dir.path / "report.html")
    return plots


def influence_plot(path: Path, result: dict[str, Any], score: str, *, planted: int | None = None) -> Path:
    """A bar per group: its influence on `score` (a `planted` group in its own colour)."""
    values = {str(group["group"]): float(group["influence"][score]) for group in result["groups"]}
    groups = None if planted is None else \
        {name: "planted group" if name == str(planted) else "other groups" for name in values}
    return plot_bars(values, path, title=f"influence on {score} per experience group",
                     ylabel=f"{score}(flipped) - {score}({_baseline(result)})", groups=groups)


def _baseline(result: dict[str, Any]) -> str:
    """What an estimate's influences are measured against: "all" members (the paper's) or the group's "own" mask
    (estimates made before the choice existed are "all")."""
    return str((result.get("settings") or {}).get("baseline", "all"))


def influence_heatmap(path: Path, history: list[dict[str, Any]], score: str) -> Path:
    """Influence on `score` per group (rows) at each estimation during training (columns); blank before a group
    existed or after it left the replay buffer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np


    groups = sorted({group for entry in history for group in entry["groups"]})
    grid = np.full((len(groups), len(history)), np.nan)
    for column, entry in enumerate(history):
        for group, value in zip(entry["groups"], entry["influence"].get(score, [])):
            grid[groups.index(group), column] = value
    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=110)
    image = axis.imshow(grid, aspect="auto", cmap="coolwarm", origin="lower", interpolation="nearest")
    axis.set_xticks(range(len(history)), [str(entry["step"]) for entry in history], rotation=30)
    axis.set_yticks(range(len(groups)), [str(group) for group in groups])
    axis.set_xlabel("env step of the estimate")
    axis.set_ylabel("experience group")
    axis.set_title(f"influence on {score} over training")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    return save_figure(figure, path)
