"""`trajlab poison`: plant a backdoor, train on it, then remove it by unlearning the poisoned trajectories.

1. a poisoned copy of the dataset (`poison_dataset`) is written into the run;
2. an agent is trained on it with `trajlab train`'s own code (a nested run directory, `agent/`);
3. its return is measured in the normal and in the triggered scenario (trigger added to what it observes);
4. each unlearning method forgets exactly the poisoned episodes, and the same two returns are measured again.

Recovery = 1 - (normal - triggered return after unlearning) / (normal - triggered return of the poisoned
agent): 1 means the trigger no longer changes the agent's behaviour, 0 that unlearning left the backdoor as it
was. Recovery vs retraining = (triggered return after - poisoned agent's) / (retrained agent's - poisoned
agent's), when retrain is among the methods. Clean retention = normal return after unlearning / normal return
of the poisoned agent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.commands.algorithms import check_offline_algorithm
from trajlab.commands.progress import counted_updates_bar
from trajlab.core.config import load_nested_preset, load_preset, to_dict
from trajlab.core.devices import check_device
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import updates_of
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.data.dataset import TransitionDataset
from trajlab.poison.poison import PoisonConfig, TriggeredAgent, poison_dataset, poison_metadata
from trajlab.unlearning.base import METHODS, check_trajectory_method, method_updates
from trajlab.unlearning.finetune import FinetuneConfig
from trajlab.unlearning.random_reward import RandomRewardConfig
from trajlab.unlearning.retrain import RetrainConfig
from trajlab.unlearning.trajdeleter import TrajDeleterConfig


@dataclass(frozen=True)
class PoisonRunConfig:
    """One poisoning experiment (presets: configs/poison/<preset>.yaml)."""

    dataset: str
    """Clean dataset (trajlab HDF5) of a known environment."""
    out: str
    """Run directory to write."""
    algo: str = "td3_bc"
    """Offline algorithm trained on the poisoned data."""
    agent_preset: str = "quick"
    """The algorithm's preset (configs/offline/<algo>/<agent_preset>.yaml)."""
    train_steps: int = 5_000
    """Updates of the poisoned agent."""
    preset: str = "quick"
    """Preset: configs/poison/<preset>.yaml (quick: CPU minutes; paper: the paper's scale)."""
    poison: PoisonConfig = PoisonConfig()
    """How the dataset is poisoned."""
    methods: tuple[str, ...] = ("trajdeleter", "finetune", "random-reward", "retrain")
    """Unlearning methods to compare."""
    trajdeleter: TrajDeleterConfig = TrajDeleterConfig()
    """TrajDeleter's settings."""
    finetune: FinetuneConfig = FinetuneConfig()
    """Fine-tuning baseline's settings."""
    random_reward: RandomRewardConfig = RandomRewardConfig()
    """Random-reward baseline's settings."""
    retrain: RetrainConfig = RetrainConfig()
    """Retraining's settings."""
    eval_episodes: int = 5
    """Episodes per evaluation (normal and triggered)."""
    seed: int = 0
    """Seed of the poisoning, the training, the unlearning and the evaluations."""
    device: str = "cpu"
    """Torch device: cpu or cuda."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run (finished or interrupted) already in `out`."""
    progress: bool = True
    """Show progress bars on stderr, on a terminal: the poisoned agent's training, then each method's updates."""


def load_poison_config(preset: str, **overrides: Any) -> PoisonRunConfig:
    """PoisonRunConfig from configs/poison/<preset>.yaml with command-line values on top."""
    return load_nested_preset(PoisonRunConfig, "poison", preset, overrides)


def run(config: PoisonRunConfig) -> dict[str, Any]:
    """Run the experiment, write the run directory, return result.json's content."""
    check_device(config.device)
    set_threads(config.threads)
    clean, env_id, untrained = _check_request(config)
    poisoned = poison_dataset(clean, replace(config.poison, seed=config.seed))
    _preflight(config, untrained)
    run_dir = RunDirectory.create(config.out, config, command="poison", overwrite=config.overwrite)
    poisoned_path = poisoned.save(run_dir.path / "poisoned.hdf5")
    agent, train_time = _train_poisoned(config, poisoned_path, run_dir)
    ids, offsets = poison_metadata(poisoned)
    scenario = _Scenario(env_id, offsets, config.eval_episodes, derive_seed(config.seed, "poison-eval") % 2**31,
                         dict(clean.metadata))
    baseline = scenario.returns(agent)
    methods = {method: _unlearn(config, method, agent, poisoned, ids, scenario) for method in config.methods}
    for row in methods.values():
        row.update(_recovery(baseline, row))
    _recovery_against_retraining(baseline, methods)
    result = {"algo": config.algo, "env_id": env_id, "poisoned_episode_ids": ids.tolist(),
              "num_poisoned_episodes": int(len(ids)), "trigger_offsets": offsets.tolist(),
              "train_wall_time_s": train_time, "poisoned_agent": baseline, "methods": methods,
              "poisoned_dataset": str(poisoned_path), "run_dir": str(run_dir.path)}
    result["plots"] = _report(run_dir, result)
    run_dir.write_result(result)
    return result


def _check_request(config: PoisonRunConfig) -> tuple[TransitionDataset, str, Any]:
    """What can be checked before any work: methods, algorithm, counts, output, dataset and its environment.
    Returns the clean dataset, its environment and an untrained agent of the chosen algorithm."""
    from trajlab.algos import AGENTS
    from trajlab.envs import env_info

    for method in config.methods:
        check_trajectory_method(method)
    check_offline_algorithm(config.algo)
    agent_class = AGENTS.get(config.algo)
    agent_config = load_preset(agent_class.config_class, f"offline/{config.algo}", config.agent_preset)
    if config.train_steps < 1 or config.eval_episodes < 1:
        raise TrajlabError("train_steps and eval_episodes must be at least 1")
    out = Path(config.out)
    if out.is_dir() and any(out.iterdir()) and not config.overwrite:
        raise TrajlabError(f"--out {config.out}: already holds files (use --overwrite or another --out)")
    clean = TransitionDataset.load(config.dataset)
    env_id = clean.metadata.get("env_id")
    if env_id is None:
        raise TrajlabError(f"{config.dataset}: the dataset names no environment (metadata env_id)")
    env_info(env_id)
    return clean, env_id, agent_class(clean.spec, agent_config, device=config.device, seed=config.seed)


def _preflight(config: PoisonRunConfig, untrained: Any) -> None:
    """Method settings that would otherwise fail after training (checked on an untrained agent)."""
    from trajlab.training.steps import check_steps
    from trajlab.unlearning.trajdeleter import check_config

    for method in config.methods:
        chosen = _method_config(config, method)
        if method == "trajdeleter":
            check_config(untrained, chosen)
        elif method in ("finetune", "random-reward"):
            check_steps(steps=chosen.steps)


def _train_poisoned(config: PoisonRunConfig, dataset_path: Path, run_dir: RunDirectory) -> tuple[Any, float]:
    from trajlab.algos.base import start_from_checkpoint
    from trajlab.training.offline import TrainConfig
    from trajlab.training.offline import run as train

    trained = train(TrainConfig(algo=config.algo, dataset=str(dataset_path), steps=config.train_steps,
                                preset=config.agent_preset, seed=config.seed, device=config.device,
                                out=str(run_dir.path / "agent"), progress=config.progress, threads=config.threads))
    return start_from_checkpoint(trained["checkpoint"], device=config.device), float(trained["wall_time_s"])


def _unlearn(config: PoisonRunConfig, method: str, agent: Any, poisoned: TransitionDataset, ids: np.ndarray,
             scenario: _Scenario) -> dict[str, Any]:
    """Forget the poisoned episodes with `method`; its two returns and its wall time (unlearning only)."""
    chosen = _method_config(config, method)
    updates = method_updates(method, to_dict(chosen), updates_of(agent))
    with counted_updates_bar(f"poison: unlearning with {method}", updates, enabled=config.progress):
        started = time.perf_counter()
        unlearned = METHODS.get(method).function(agent, poisoned, ids, chosen)
        wall_time = time.perf_counter() - started
    return {**scenario.returns(unlearned), "wall_time_s": wall_time}


def _method_config(config: PoisonRunConfig, method: str) -> Any:
    chosen = {"trajdeleter": config.trajdeleter, "finetune": config.finetune,
              "random-reward": config.random_reward, "retrain": config.retrain}[method]
    return chosen if method == "retrain" else replace(chosen, seed=config.seed)


@dataclass(frozen=True)
class _Scenario:
    """Normal and triggered evaluation in one environment, with fixed seeds."""

    env_id: str
    offsets: np.ndarray
    episodes: int
    seed: int
    metadata: dict[str, Any]

    def returns(self, agent: Any) -> dict[str, float | None]:
        from trajlab.eval import evaluate

        normal = evaluate(agent, self.env_id, episodes=self.episodes, seed=self.seed, metadata=self.metadata)
        triggered = evaluate(TriggeredAgent(agent, self.offsets), self.env_id, episodes=self.episodes,
                             seed=self.seed, metadata=self.metadata)
        return {"normal_return": normal.mean_return, "triggered_return": triggered.mean_return,
                "normal_std": normal.std_return, "triggered_std": triggered.std_return,
                "normal_normalized_score": normal.mean_normalized_score,
                "normal_behaviour_normalized_score": normal.mean_behaviour_normalized_score,
                "triggered_normalized_score": triggered.mean_normalized_score,
                "triggered_behaviour_normalized_score": triggered.mean_behaviour_normalized_score}


def _recovery(poisoned: dict[str, float], unlearned: dict[str, float]) -> dict[str, float | None]:
    gap_before = poisoned["normal_return"] - poisoned["triggered_return"]
    gap_after = unlearned["normal_return"] - unlearned["triggered_return"]
    return {"recovery": 1.0 - gap_after / gap_before if abs(gap_before) > 1e-9 else None,
            "clean_retention": unlearned["normal_return"] / poisoned["normal_return"]
            if abs(poisoned["normal_return"]) > 1e-9 else None}


def _recovery_against_retraining(poisoned: dict[str, float], methods: dict[str, dict[str, Any]]) -> None:
    """Triggered-return damage undone relative to exact unlearning: (after - poisoned) / (retrained - poisoned).

    A large trigger can hurt any agent, poisoned or not; retraining shows how much of the damage was the
    backdoor's, so this is the fairer recovery measure when retrain is among the methods.
    """
    if "retrain" not in methods:
        return
    undone_by_retraining = methods["retrain"]["triggered_return"] - poisoned["triggered_return"]
    for row in methods.values():
        row["recovery_vs_retrain"] = ((row["triggered_return"] - poisoned["triggered_return"]) / undone_by_retraining
                                      if abs(undone_by_retraining) > 1e-9 else None)


def _report(run_dir: RunDirectory, result: dict[str, Any]) -> list[str]:
    from trajlab.report import Report
    from trajlab.report.plots import plot_bars

    rows = {"poisoned agent": result["poisoned_agent"], **result["methods"]}
    normal = plot_bars({name: row["normal_return"] for name, row in rows.items()}, run_dir.plots / "normal.png",
                       title="Return, normal scenario", ylabel="mean return")
    triggered = plot_bars({name: row["triggered_return"] for name, row in rows.items()},
                          run_dir.plots / "triggered.png", title="Return, triggered scenario", ylabel="mean return")
    report = Report(f"Poisoning and unlearning: {result['algo']} on {result['env_id']}")
    report.key_values({"poisoned episodes": result["num_poisoned_episodes"],
                       "training wall time (s)": result["train_wall_time_s"]})
    report.paragraph("Recovery 1 means the trigger no longer changes the return after unlearning; 0 means the "
                     "backdoor is as strong as before.")
    report.table(["agent", "normal return", "triggered return", "recovery", "recovery vs retraining",
                  "clean retention", "wall time (s)"],
                 [[name, row["normal_return"], row["triggered_return"], _blank(row.get("recovery")),
                   _blank(row.get("recovery_vs_retrain")), _blank(row.get("clean_retention")),
                   _blank(row.get("wall_time_s"))] for name, row in rows.items()])
    report.image(normal, "Return in the normal scenario").image(triggered, "Return with the trigger")
    report.write(run_dir.path / "report.html")
    return [str(normal), str(triggered)]


def _blank(value: float | None) -> Any:
    return "" if value is None else value
