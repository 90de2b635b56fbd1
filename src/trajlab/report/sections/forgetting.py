"""report.html and plots of a `trajlab forget` run: what was removed, what it cost, and the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trajlab.audit.lira import LiraResult
from trajlab.audit.trajauditor import AuditResult
from trajlab.core.rundir import RunDirectory
from trajlab.report import Report
from trajlab.report.plots import plot_bars

MAX_PLOTTED_TRAJECTORIES = 40


def write_forget_report(run_dir: RunDirectory, result: dict[str, Any], certificate: dict[str, Any],
                        audit: AuditResult | LiraResult | None) -> list[str]:
    """Write the plots and report.html; returns the plot paths."""
    from trajlab.report.sections.membership import lira_section, roc_plot, score_plot

    lira = audit if isinstance(audit, LiraResult) else None
    grubbs = None if lira is not None else audit
    plots = [path for path in (_value_plot(run_dir, result), _return_plot(run_dir, result),
                               _time_plot(run_dir, result), audit_plot(run_dir.plots / "audit.png", grubbs),
                               roc_plot(run_dir.plots / "lira_roc.png", lira),
                               score_plot(run_dir.plots / "lira_scores.png", lira))
             if path is not None]
    report = Report(f"Trajectory forgetting: {result['method']} on {result['algo']}")
    report.key_values(_summary(result, certificate))
    if result["values"] is not None:
        values = result["values"]
        report.heading("Values on the forgotten and the remaining states")
        report.paragraph("Mean Q(s, pi(s)) of the agent before and after forgetting. Forgetting should lower the "
                         "values on the forgotten trajectories' states and leave the others close.")
        report.table(["states", "original", "unlearned"],
                     [[part, values[f"{part}_original"], values[f"{part}_unlearned"]]
                      for part in ("forget", "remaining")])
    if result["evaluation"] is not None:
        _evaluation_section(report, result["evaluation"])
    if grubbs is not None:
        audit_section(report, grubbs)
    if lira is not None:
        lira_section(report, lira)
    for path in plots:
        report.image(path, Path(path).stem.replace("_", " "))
    report.heading("Deletion certificate")
    report.paragraph("certificate.json lists every forgotten episode with the sha256 of its arrays "
                     f"({', '.join(certificate['hash_fields'])}).")
    hashes = certificate["forgotten_trajectory_sha256"]
    report.table(["episode id", "sha256"], [[key, digest] for key, digest in list(hashes.items())[:50]])
    report.write(run_dir.path / "report.html")
    return [str(path) for path in plots]


def _summary(result: dict[str, Any], certificate: dict[str, Any]) -> dict[str, Any]:
    summary = {"method": result["method"], "algorithm": result["algo"],
               "forgotten episodes": result["num_forgotten_episodes"],
               "forgotten transitions": result["num_forgotten_transitions"],
               "wall time (s)": result["wall_time_s"],
               "original checkpoint sha256": certificate["original_checkpoint_sha256"]}
    if result["relative_time"] is not None:
        summary["time relative to retraining"] = result["relative_time"]
    if result.get("audit_test") == "lira":
        summary["membership test (lira) verdict"] = result["audit_verdict"]
        summary["judged non-members (lira, 1% FPR threshold)"] = result["audit_forgotten_rate"]
    elif result["audit_forgotten_rate"] is not None:
        summary["judged forgotten by TrajAuditor"] = result["audit_forgotten_rate"]
    if result["audit_control_forgotten_rate"] is not None and result.get("audit_test") != "lira":
        summary["control episodes judged forgotten"] = result["audit_control_forgotten_rate"]
        summary["audit specificity"] = result["audit_specificity"]
    return summary


def _evaluation_section(report: Report, evaluation: dict[str, Any]) -> None:
    report.heading(f"Returns in {evaluation['env_id']}")
    def score(row: dict[str, Any], key: str) -> Any:
        return "" if row.get(key) is None else row[key]

    rows = [[name, evaluation[name]["mean_return"], evaluation[name]["std_return"],
             score(evaluation[name], "normalized_score"), score(evaluation[name], "behaviour_normalized_score")]
            for name in ("original", "unlearned", "retrained") if evaluation.get(name)]
    report.table(["agent", "mean return", "std", "D4RL normalised score",
                  "score vs the dataset's behaviour policies"], rows)
    if evaluation.get("retrain_wall_time_s"):
        report.paragraph(f"Retraining time: {evaluation['retrain_wall_time_s']:.1f} s "
                         f"({evaluation['retrain_time_source']}).")


def audit_section(report: Report, audit: AuditResult) -> None:
    """TrajAuditor's verdict tables (shared with `trajlab audit`)."""
    report.heading("TrajAuditor")
    report.paragraph(f"{len(audit.forgotten_ids)} of {len(audit.verdicts)} trajectories judged forgotten "
                     f"(rate {audit.forgotten_rate:.3f}); {audit.config.num_shadows} shadow agents x "
                     f"{audit.config.noisy_evaluations} noisy evaluations, Grubbs alpha {audit.config.alpha:g}.")
    _verdict_table(report, audit.verdicts)
    if audit.control:
        specificity = audit.specificity()
        report.heading("TrajAuditor: control group")
        report.paragraph(
            f"{sum(v.forgotten for v in audit.control)} of {len(audit.control)} episodes of the remaining data "
            f"(which the agent still carries) judged forgotten (rate {audit.control_forgotten_rate:.3f}). "
            f"Specificity: {specificity['specificity']} (one-sided Fisher test, p = "
            f"{specificity['specificity_p_value']:.3g}): verdicts count as evidence of forgetting only where the "
            "controls stay retained.")
        _verdict_table(report, audit.control)


def _verdict_table(report: Report, verdicts: list) -> None:
    report.table(["episode id", "distance", "Grubbs G", "threshold", "decision"],
                 [[v.episode_id, v.distance, v.statistic, v.threshold, "forgotten" if v.forgotten else "retained"]
                  for v in verdicts])


def audit_plot(path: Path, audit: AuditResult | None) -> Path | None:
    """Grubbs statistic per trajectory against the threshold (the first 40 audited trajectories, then the
    control group's, in another colour)."""
    if audit is None or not audit.verdicts:
        return None
    shown = audit.verdicts[:MAX_PLOTTED_TRAJECTORIES]
    controls = audit.control[:MAX_PLOTTED_TRAJECTORIES]
    values = {str(v.episode_id): v.statistic for v in shown}
    values.update({f"c{v.episode_id}": v.statistic for v in controls})
    groups = {**{str(v.episode_id): "audited" for v in shown},
              **{f"c{v.episode_id}": "control (still trained on)" for v in controls}}
    return plot_bars(values, path, title="TrajAuditor: Grubbs statistic per trajectory", ylabel="G",
                     reference=("threshold (above: forgotten)", shown[0].threshold),
                     groups=groups if controls else None)


def _value_plot(run_dir: RunDirectory, result: dict[str, Any]) -> Path | None:
    values = result["values"]
    if values is None:
        return None
    return plot_bars({f"{part} {name}": values[f"{part}_{name}"] for part in ("forget", "remaining")
                      for name in ("original", "unlearned")}, run_dir.plots / "values.png",
                     title="Mean Q(s, pi(s)) before and after forgetting", ylabel="Q")


def _return_plot(run_dir: RunDirectory, result: dict[str, Any]) -> Path | None:
    evaluation = result["evaluation"]
    if evaluation is None:
        return None
    names = [name for name in ("original", "unlearned", "retrained") if evaluation.get(name)]
    return plot_bars({name: evaluation[name]["mean_return"] for name in names}, run_dir.plots / "returns.png",
                     title=f"Returns in {evaluation['env_id']}", ylabel="mean return",
                     errors={name: evaluation[name]["std_return"] for name in names})


def _time_plot(run_dir: RunDirectory, result: dict[str, Any]) -> Path | None:
    if not result["retrain_wall_time_s"]:
        return None
    return plot_bars({result["method"]: result["wall_time_s"], "retrain": result["retrain_wall_time_s"]},
                     run_dir.plots / "wall_time.png", title="Wall time", ylabel="seconds")
