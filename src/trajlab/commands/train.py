"""`trajlab train`, `trajlab eval` and `trajlab train-online` as importable commands: the training runs of
`trajlab.training` plus what the report layer adds to their run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trajlab.core.rundir import RunDirectory
from trajlab.report.plots import plot_curves
from trajlab.training.offline import TrainConfig, evaluate_run
from trajlab.training.offline import run as run_offline
from trajlab.training.online import OnlineTrainConfig, OnlineTrainResult
from trajlab.training.online import run as _run_online

__all__ = ["TrainConfig", "evaluate_run", "run_offline", "run_online"]


def run_online(config: OnlineTrainConfig, *, out: str | Path | None = None, resume: bool = False,
               overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train online into a run directory with its learning curve (plots/learning_curve.png)."""
    return _run_online(config, out=out, resume=resume, overwrite=overwrite, progress=progress,
                       after_training=plot_learning_curve)


def plot_learning_curve(run_dir: RunDirectory, result: OnlineTrainResult, config: OnlineTrainConfig) -> Path:
    curves: dict[str, tuple[list[float], list[float]]] = {}
    if result.episode_returns:
        steps, returns = zip(*result.episode_returns)
        curves["training episodes"] = (list(steps), list(returns))
    if result.eval_history:
        steps, returns = zip(*result.eval_history)
        curves["evaluation (deterministic)"] = (list(steps), list(returns))
    return plot_curves(curves, run_dir.plots / "learning_curve.png",
                       title=f"{config.algo} on {config.env_id} (seed {config.seed})", xlabel="env step")
