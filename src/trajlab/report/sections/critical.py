"""Figures and report.html of `trajlab critical`: F1@tolerance per method, per-step scores, highlighted GIFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trajlab.report import Report
from trajlab.report.media import save_gif
from trajlab.report.plots import save_figure

PAPER_RANDOM = {"T=1": 56.08, "T=2": 75.18, "T=3": 85.63}
"""The random baseline's F1 (%) reported by Liu et al. on GridWorld-S."""


def plot_f1(methods: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Grouped bars: F1 (%) at T = 1, 2, 3 for each method and protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(f"{name} ({protocol})", values) for name, by_protocol in methods.items()
              for protocol, values in by_protocol.items()]
    tolerances = list(next(iter(methods.values()))["paper"])
    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    width = 0.8 / max(len(series), 1)
    for index, (label, values) in enumerate(series):
        xs = np.arange(len(tolerances)) + index * width
        axis.bar(xs, [values[t]["f1"] for t in tolerances], width, label=label)
    axis.set_xticks(np.arange(len(tolerances)) + 0.4 - width / 2, tolerances)
    axis.set_ylabel("F1 (%)")
    axis.set_ylim(0, 100)
    axis.set_title("Critical states: F1 at tolerance T")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_episode_scores(scores: np.ndarray, truth: np.ndarray, threshold: float, path: str | Path, *,
                        title: str) -> Path:
    """The detector's score per step, the threshold, and the ground-truth critical steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 2.8), dpi=110)
    axis.plot(np.arange(len(scores)), scores, marker="o", markersize=3, label="critical-state score m_t")
    axis.axhline(threshold, color="tab:gray", linestyle="--", label=f"threshold {threshold:g}")
    for index, step in enumerate(truth):
        axis.axvline(step, color="tab:red", alpha=0.5, label="ground truth" if index == 0 else None)
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("step")
    axis.set_ylabel("score")
    axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def highlight_gif(frames: np.ndarray, scores: np.ndarray, threshold: float, path: str | Path, *,
                  fps: int = 4, scale: int = 4) -> Path:
    """The episode enlarged `scale` times, a red border on frames at or above the threshold and a bar under each
    frame as long as its score."""
    big = np.repeat(np.repeat(np.asarray(frames, dtype=np.uint8), scale, axis=1), scale, axis=2)
    height, width = big.shape[1:3]
    border = max(2, scale)
    out = np.full((len(big), height + 2 * border + 6, width + 2 * border, 3), 255, dtype=np.uint8)
    for t, (frame, score) in enumerate(zip(big, scores)):
        if score >= threshold:
            out[t, :height + 2 * border] = (220, 30, 30)
        out[t, border:border + height, border:border + width] = frame
        out[t, -5:-1, :int(round(float(score) * out.shape[2]))] = (30, 90, 200)
    return save_gif(out, path, fps=fps)


def write_critical_report(path: str | Path, result: dict[str, Any]) -> Path:
    """report.html of an evaluation: F1 per method, protocol and tolerance, with the paper's random baseline."""
    report = Report("Critical states (Deep State Identifier): F1 at tolerance")
    report.key_values({"model": result["model"], "data": result["data"],
                       "scored test episodes (successes)": result["scored_test_episodes"],
                       "predictor test accuracy": result["predictor_test_accuracy"]})
    report.paragraph("paper protocol: Liu et al.'s counting (every predicted frame within T of a ground-truth frame "
                     "is a true positive; a missed ground-truth frame is one false negative) at the threshold with "
                     "the best F1 on the test episodes. honest: each ground-truth frame is hit or missed (within T "
                     "of a predicted frame), at the threshold chosen on the validation episodes.")
    if result["methods"]:
        add_f1_table(report, result["methods"])
    report.heading("Fidelity: only the top-k% frames kept (EDGE-style)")
    report.table(["kept", "probability drop (DSI)", "agreement (DSI)", "probability drop (random)",
                  "agreement (random)"],
                 [[k, v["prob_drop"], v["agreement"], v["random_prob_drop"], v["random_agreement"]]
                  for k, v in result["fidelity"].items()])
    for plot in result["plots"]:
        report.image(plot, Path(plot).stem.replace("_", " "))
    return report.write(path)


def add_f1_table(report: Report, methods: dict[str, dict[str, Any]]) -> Report:
    """One row per method and protocol: F1 and threshold at each tolerance (and the paper's random row)."""
    rows = []
    for name, by_protocol in methods.items():
        for protocol, values in by_protocol.items():
            rows.append([name, protocol, *[f"{v['f1']:.2f} (τ={v['threshold']:g})" for v in values.values()]])
    rows.append(["random (Liu et al.)", "paper", *[f"{v:.2f}" for v in PAPER_RANDOM.values()]])
    return report.table(["method", "protocol", "F1@1", "F1@2", "F1@3"], rows)
