"""The likelihood-ratio membership test's report section and plots (`trajlab audit --test lira`, and
`trajlab forget --audit --test lira`): its error rates on the calibration, the log-scale ROC curve, and where
the audited and control trajectories' scores fall against the calibration's non-members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trajlab.audit.lira import LiraResult
from trajlab.report import Report
from trajlab.report.plots import save_figure


def lira_section(report: Report, audit: LiraResult) -> None:
    """Error rates, the verdict with its p-values, and the per-trajectory scores."""
    rates, verdict = audit.calibration.to_dict(), audit.verdict()
    report.heading("Membership test (likelihood ratio, LiRA)")
    report.paragraph(
        f"{audit.config.num_shadows} shadow agents trained from scratch on random halves of the trajectories "
        f"({'offline: OUT shadows only' if audit.config.offline else 'online: IN and OUT shadows'}, statistic "
        f"{audit.config.statistic}). On the calibration (each shadow scored against the others: "
        f"{rates['members']} member and {rates['non_members']} non-member scores) the test has AUC "
        f"{rates['auc']:.3f}, TPR {rates['tpr_at_1pct_fpr']:.3f} at 1% FPR and {rates['tpr_at_0.1pct_fpr']:.3f} "
        f"at 0.1% FPR.")
    control = "" if verdict["control_p_value"] is None else \
        f"; the control group's (trajectories the agent still carries) p = {verdict['control_p_value']:.3g}"
    report.paragraph(
        f"Verdict: {verdict['verdict']}. One-sided Mann-Whitney test that the audited trajectories score higher "
        f"than non-members: p = {verdict['p_value']:.3g}{control} (alpha {audit.config.alpha:g}). "
        "'Indistinguishable from retraining' means this test, at the error rates above, finds no trace of them; "
        "it counts only where the controls are still seen as members.")
    rows = [[v.episode_id, "audited", v.statistic, v.score, "member" if v.member else "non-member"]
            for v in audit.verdicts]
    rows += [[v.episode_id, "control", v.statistic, v.score, "member" if v.member else "non-member"]
             for v in audit.control]
    report.table(["episode id", "group", "statistic", "score (LLR)", "decision at the 1% FPR threshold"], rows)


def roc_plot(path: Path, audit: LiraResult | None) -> Path | None:
    """The calibration's ROC curve on log-log axes (what LiRA's error rates at low FPR are read from)."""
    if audit is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roc = audit.calibration.to_dict(roc_points=1000)["roc"]
    floor = 1.0 / max(len(audit.calibration.non_member_scores), 1)
    fpr, tpr = np.maximum(roc["fpr"], floor / 2), np.maximum(roc["tpr"], floor / 2)  # log axes cannot show 0
    figure, axis = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    axis.plot(fpr, tpr, label="likelihood-ratio test")
    axis.plot([floor / 2, 1], [floor / 2, 1], linestyle="--", color="grey", label="chance")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("false-positive rate")
    axis.set_ylabel("true-positive rate")
    axis.set_title("LiRA: ROC of the shadow calibration")
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return save_figure(figure, path)


def score_plot(path: Path, audit: LiraResult | None) -> Path | None:
    """Histograms of the calibration's member and non-member scores with the audited and control scores."""
    if audit is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=110)
    calibration = audit.calibration
    bins = np.histogram_bin_edges(np.concatenate([calibration.member_scores, calibration.non_member_scores]), 40)
    axis.hist(calibration.non_member_scores, bins=bins, alpha=0.5, density=True, label="non-members (calibration)")
    axis.hist(calibration.member_scores, bins=bins, alpha=0.5, density=True, label="members (calibration)")
    _rug(axis, [v.score for v in audit.verdicts], "audited", "black")
    _rug(axis, [v.score for v in audit.control], "control (still trained on)", "tab:green")
    axis.axvline(calibration.threshold, color="red", linestyle=":",
                 label=f"threshold at {calibration.decision_fpr:g} FPR")
    axis.set_xlabel("membership score (log-likelihood ratio; offline: -log p under OUT)")
    axis.set_title("Membership scores")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def _rug(axis: Any, scores: list[float], label: str, colour: str) -> None:
    if scores:
        axis.plot(scores, np.zeros(len(scores)), "|", markersize=18, color=colour, label=label)
