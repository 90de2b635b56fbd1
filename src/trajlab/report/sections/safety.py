"""report.html and plots of `trajlab safe ...`: learning curves, the policy suite, relearn counts, probes."""

from __future__ import annotations

from typing import Any

from trajlab.core.rundir import RunDirectory
from trajlab.report import Report
from trajlab.report.plots import plot_bars, plot_curves


def write_safety_report(run: RunDirectory, result: dict[str, Any], title: str) -> list[str]:
    """Write the plots that `result` has data for and report.html; returns the plot paths relative to the run."""
    plots = []
    report = Report(title)
    report.key_values({key: value for key, value in result.items() if isinstance(value, (int, float, str))})
    if result.get("curve"):
        plots += _curves(run, result["curve"])
    if result.get("policies"):
        plots += _policy_bars(run, result["policies"])
        rows = [[name, s["return"], s["cost"], s["cost_rate"], s["goals"], s.get("kl_to_oracle", "")]
                for name, s in result["policies"].items()]
        report.heading("Policy suite (deterministic episodes, same env seeds)")
        report.table(["policy", "return", "cost", "cost per step", "goals", "KL to oracle"], rows)
    if result.get("relearn"):
        counts = {name: float(entry["updates"]) for name, entry in result["relearn"].items()}
        plots.append(_relative(run, plot_bars(counts, run.plots / "relearn.png", title="updates to relearn the "
                                              "unsafe cost", ylabel="iterations")))
        report.paragraph(f"Iterations of reward-only fine-tuning until the rollout cost rate exceeded "
                         f"{result['threshold']:.4f} (max {result['max_updates']}; max + 1 = never).")
    if result.get("models"):
        rows = [[name, m["probe_accuracy"], m["hazard_shift"], m["cka"]] for name, m in result["models"].items()]
        report.heading("Hazard probes")
        report.table(["model", "probe accuracy", "shift along hazard direction", "CKA to expert"], rows)
    for path in plots:
        report.image(run.path / path, path)
    for name, gif in (result.get("gifs") or {}).items():
        report.image(run.path / gif, f"{name} (top-down: hazards blue, goal green, agent red)")
    report.write(run.path / "report.html")
    return plots


def _relative(run: RunDirectory, path: Any) -> str:
    return str(path.relative_to(run.path))


def _curves(run: RunDirectory, curve: list[dict[str, Any]]) -> list[str]:
    steps = [row["env_steps"] for row in curve]
    reward = plot_curves({"reward per step": (steps, [row["rollout_reward_per_step"] for row in curve])},
                         run.plots / "reward.png", title="rollout reward", xlabel="env steps", ylabel="per step")
    cost = plot_curves({"cost per step": (steps, [row["rollout_cost_rate"] for row in curve]),
                        "lambda / 10": (steps, [row["lagrange"] / 10 for row in curve])},
                       run.plots / "cost.png", title="rollout cost rate", xlabel="env steps", ylabel="per step")
    return [_relative(run, reward), _relative(run, cost)]


def _policy_bars(run: RunDirectory, policies: dict[str, dict[str, float]]) -> list[str]:
    returns = plot_bars({n: s["return"] for n, s in policies.items()}, run.plots / "returns.png",
                        title="return per episode", ylabel="return",
                        errors={n: s["return_std"] for n, s in policies.items()})
    costs = plot_bars({n: s["cost"] for n, s in policies.items()}, run.plots / "costs.png",
                      title="cost per episode", ylabel="cost", errors={n: s["cost_std"] for n, s in policies.items()})
    return [_relative(run, returns), _relative(run, costs)]
