"""`trajlab synth downstream`: does offline RL still work on the released data?

The same offline algorithms, at the same settings and seeds, train once on the real data and once on each
synthetic dataset; every agent is evaluated in the environment the data came from. The headline is each
synthetic dataset's mean evaluation return as a share of the real data's (per algorithm), beside the
D4RL-normalised scores where the environment has D4RL references. Every training run is an ordinary
`trajlab train` run directory under RUN/<algo>/<data>-seed<seed>, so it can be inspected or evaluated again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory
from trajlab.data.dataset import TransitionDataset


@dataclass(frozen=True)
class DownstreamConfig:
    """Offline agents trained on real and on synthetic transitions (section `downstream`)."""

    synthetic: tuple[str, ...]
    """Synthetic datasets (from `trajlab synth sample`), comma-separated: e.g. the non-DP and the epsilon = 1 and
    10 releases."""
    real: str
    """The real dataset they stand in for (the private data)."""
    out: str
    """Run directory to write (result.json, plots/downstream.png, report.html, one train run per agent)."""
    algos: tuple[str, ...] = ("iql", "td3_bc")
    """Offline algorithms to train on every dataset (comma-separated)."""
    steps: int = 20_000
    """Updates of every training run."""
    agent_preset: str = "quick"
    """The algorithms' preset (configs/offline/<algo>/<agent_preset>.yaml)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds, comma-separated; every dataset is trained on with each."""
    eval_episodes: int = 10
    """Evaluation episodes of every trained agent."""
    env_id: str | None = None
    """Environment to evaluate in (default: the real dataset's env_id)."""
    preset: str = "quick"
    """Preset: configs/synth/<preset>.yaml."""
    device: str = "cpu"
    """Torch device for training."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    progress: bool = True
    """Progress bars on stderr (when it is a terminal)."""
    overwrite: bool = False
    """Replace a run already in `out`."""


def check_downstream(config: DownstreamConfig) -> dict[str, TransitionDataset]:
    """Every dataset loads, fits the real one's spaces and can be evaluated (before anything trains)."""
    from trajlab.algos import AGENTS
    from trajlab.envs.registry import env_info

    if not config.synthetic:
        raise TrajlabError("give at least one synthetic dataset")
    if config.steps <= 0 or not config.seeds or config.eval_episodes <= 0:
        raise TrajlabError("steps, seeds and eval_episodes must be positive and non-empty")
    for algo in config.algos:
        AGENTS.get(algo)
    datasets = {"real": TransitionDataset.load(config.real)}
    for path in config.synthetic:
        synthetic = TransitionDataset.load(path)
        datasets[data_label(path, synthetic, datasets)] = synthetic
    for label, dataset in datasets.items():
        if dataset.spec != datasets["real"].spec:
            raise TrajlabError(f"{label}: its spaces differ from the real data's ({dataset.spec} vs "
                               f"{datasets['real'].spec})")
    env_id = config.env_id or datasets["real"].metadata.get("env_id")
    if env_id is None:
        raise TrajlabError(f"{config.real}: the dataset names no environment; give --env")
    env_info(env_id)
    return datasets


def data_label(path: str, dataset: TransitionDataset, taken: dict[str, Any]) -> str:
    """A short unique name for a synthetic dataset: its epsilon if it carries one, else its file name."""
    epsilon = dataset.metadata.get("epsilon")
    label = f"synthetic-eps{epsilon:g}" if isinstance(epsilon, int | float) else f"synthetic-{Path(path).stem}"
    while label in taken:
        label += "+"
    return label


def run_downstream(config: DownstreamConfig) -> dict[str, Any]:
    from trajlab.report.sections.privacy import plot_downstream, write_downstream_report

    datasets = check_downstream(config)
    run_dir = RunDirectory.create(config.out, config, command="synth downstream", overwrite=config.overwrite)
    started = time.perf_counter()
    paths = {"real": config.real, **dict(zip(list(datasets)[1:], config.synthetic))}
    runs = {algo: {label: [_train(config, run_dir, algo, label, path, seed) for seed in config.seeds]
                   for label, path in paths.items()} for algo in config.algos}
    summary = {algo: summarise(by_data) for algo, by_data in runs.items()}
    plot = plot_downstream(summary, run_dir.plots / "downstream.png")
    result = {"run_dir": str(run_dir.path), "real": config.real, "synthetic": dict(paths), "summary": summary,
              "runs": runs, "plots": [str(plot)], "wall_time_s": time.perf_counter() - started,
              "epsilon": {label: datasets[label].metadata.get("epsilon") for label in datasets}}
    write_downstream_report(run_dir.path / "report.html", result)
    run_dir.write_result(result)
    return result


def _train(config: DownstreamConfig, run_dir: RunDirectory, algo: str, label: str, path: str,
           seed: int) -> dict[str, Any]:
    from trajlab.training.offline import TrainConfig
    from trajlab.training.offline import run as train

    trained = train(TrainConfig(algo=algo, dataset=path, steps=config.steps, preset=config.agent_preset, seed=seed,
                                device=config.device, env_id=config.env_id, eval_every=config.steps,
                                eval_episodes=config.eval_episodes, threads=config.threads,
                                out=str(run_dir.path / algo / f"{label}-seed{seed}"), progress=config.progress))
    return {"seed": seed, "return": trained["eval_mean_return"], "normalized_score": trained["eval_normalized_score"],
            "run_dir": trained["run_dir"], "wall_time_s": trained["wall_time_s"]}


def summarise(by_data: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per dataset: mean and standard deviation over seeds of the return (and of the D4RL score where there is
    one), and the mean return as a share of the real data's."""
    real_mean = float(np.mean([run["return"] for run in by_data["real"]]))
    summary = {}
    for label, runs in by_data.items():
        returns = np.array([run["return"] for run in runs], dtype=float)
        scores = [run["normalized_score"] for run in runs if run["normalized_score"] is not None]
        summary[label] = {
            "mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "mean_normalized_score": float(np.mean(scores)) if scores else None,
            "share_of_real": float(returns.mean() / real_mean) if real_mean > 0 else None}
    return summary
