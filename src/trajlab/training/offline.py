"""`trajlab train` and `trajlab eval`: train an offline agent on a dataset into a run directory, evaluate it.

A run directory holds config.yaml, metrics.csv (+ TensorBoard), checkpoints/step_<n>.safetensors every
`checkpoint_every` updates, checkpoints/final.safetensors, and result.json once finished. Step checkpoints also
carry the sampler's and torch's random states (a `ResumeState`), so `--resume` continues an interrupted run with
the batches and noise it would have drawn without the interruption. One step of the `Loop` is one update.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trajlab.algos.base import (
    AGENTS,
    AgentBase,
    RuntimeOptions,
    load_agent,
    new_agent,
    save_agent,
    split_runtime_options,
)
from trajlab.core.checkpoint import read_checkpoint_metadata
from trajlab.core.config import load_preset, to_dict
from trajlab.core.devices import check_device
from trajlab.core.errors import TrajlabError
from trajlab.core.io import write_json_atomic
from trajlab.core.progress import update_bar
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.data.dataset import TransitionDataset
from trajlab.data.sampler import TensorSampler
from trajlab.training.loop import Cadence, EvalSummary, Loop, MetricWindow, Periodic, WallClock, evaluated_at
from trajlab.training.resume import ResumeState, restore_torch_random_states, torch_random_states
from trajlab.training.steps import dataset_masks

RESULT_KEYS = ("algo", "preset", "dataset", "env_id", "steps", "seed", "device", "wall_time_s", "updates_per_s",
               "final_metrics", "eval_mean_return", "eval_std_return", "eval_normalized_score",
               "eval_behaviour_normalized_score", "eval_episodes", "checkpoint", "run_dir", "resumed_from_step")
"""Keys of result.json: always present (None where a value does not apply), so scripts can rely on them.
eval_normalized_score is D4RL's (trajlab.eval.scores), eval_behaviour_normalized_score the score against the
dataset's own behaviour policies."""

_SAME_ON_RESUME = ("algo", "dataset", "preset", "overrides", "seed", "steps", "env_id")


@dataclass(frozen=True)
class TrainConfig:
    """One offline training run."""

    algo: str
    """Registered algorithm name (bc, td3_bc, iql, awac, cql, ...)."""
    dataset: str
    """Path of a trajlab HDF5 dataset."""
    steps: int
    """Gradient updates to run."""
    preset: str = "quick"
    """Algorithm preset: configs/offline/<algo>/<preset>.yaml (quick or paper)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Algorithm options that replace the preset's values."""
    seed: int = 0
    """Seed of the networks, the batch sampler and the algorithm's noise."""
    device: str = "cpu"
    """Torch device (cpu, cuda, cuda:1)."""
    env_id: str | None = None
    """Environment to evaluate in; default: the dataset's env_id."""
    eval_every: int = 0
    """Evaluate in `env_id` every this many updates and at the end (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    log_every: int = 1000
    """Write averaged training metrics to metrics.csv every this many updates (and at the last one)."""
    checkpoint_every: int = 10_000
    """Write checkpoints/step_<n>.safetensors every this many updates (and at the last one)."""
    out: str | None = None
    """Run directory (default: runs/<algo>_<dataset file name>_seed<seed>)."""
    resume: bool = False
    """Continue the interrupted run in `out` from its latest checkpoint."""
    overwrite: bool = False
    """Replace a finished or interrupted run in `out`."""
    threads: int | None = None
    """Torch intra-op threads (None: torch's default)."""
    progress: bool = True
    """Show a progress bar on stderr (when stderr is a terminal)."""

    def run_path(self) -> Path:
        if self.out is not None:
            return Path(self.out)
        return Path("runs") / f"{self.algo}_{Path(self.dataset).stem}_seed{self.seed}"


def run(config: TrainConfig) -> dict[str, Any]:
    """Train as `config` says, write the run directory and return the content of result.json."""
    _check_options(config)
    agent_class = AGENTS.get(config.algo)
    overrides, runtime = split_runtime_options(config.overrides, where="--set")
    agent_config = load_preset(agent_class.config_class, f"offline/{config.algo}", config.preset, **overrides)
    dataset = TransitionDataset.load(config.dataset)
    env_id = _evaluation_env(dataset, config)
    set_threads(config.threads)
    agent, sampler = prepare_training(agent_class, agent_config, dataset, seed=config.seed, device=config.device,
                                      runtime=runtime)
    stored = {**_plain_config(config), "agent_config": to_dict(agent_config)}
    run_dir = RunDirectory.create(config.run_path(), stored, command="train", resume=config.resume,
                                  overwrite=config.overwrite)
    if config.resume:
        _check_same_run(run_dir, stored)
    training = _OfflineTraining(config, run_dir, agent, sampler, dataset, env_id)
    if config.resume:
        training.restore()
    return training.run()


def prepare_training(agent_class: type[AgentBase], agent_config: Any, dataset: TransitionDataset, *, seed: int,
                     device: str = "cpu", spec: SpaceSpec | None = None,
                     runtime: RuntimeOptions = RuntimeOptions()) -> tuple[AgentBase, TensorSampler]:
    """A new agent with the data's statistics and its batch sampler, seeded as every trajlab training run is.

    `trajlab train` and exact unlearning (retraining) both start here, so retraining on `dataset.without(ids)`
    reproduces `trajlab train` on the same data bit for bit.
    """
    agent = new_agent(agent_class, spec or dataset.spec, agent_config, seed=seed, device=device, runtime=runtime)
    agent.prepare(dataset)
    return agent, dataset.sampler(device=device, seed=derive_seed(seed, "sampler"), masks=dataset_masks(agent, dataset))


def _check_options(config: TrainConfig) -> None:
    for name in ("steps", "log_every", "checkpoint_every", "eval_episodes"):
        if getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.eval_every < 0:
        raise TrajlabError(f"eval_every must be 0 (never) or positive, got {config.eval_every}")
    if config.resume and config.overwrite:
        raise TrajlabError("--resume and --overwrite exclude each other")
    check_device(config.device)
    if not Path(config.dataset).is_file():
        raise TrajlabError(f"{config.dataset}: dataset file not found")


def _evaluation_env(dataset: TransitionDataset, config: TrainConfig) -> str | None:
    """The environment to evaluate in and to record for `trajlab eval`: `config.env_id`, else the dataset's
    env_id if trajlab knows it, else None (with a note on how to evaluate when evaluation was asked for)."""
    from trajlab.envs import ENVIRONMENTS, known_env_ids

    named = dataset.metadata.get("env_id")
    if config.env_id is not None:
        _check_given_env(config.env_id, named, dataset)
        return config.env_id
    if named in ENVIRONMENTS:
        return named
    if config.eval_every > 0:
        reason = "the dataset names no environment" if named is None else \
            f"the dataset's env_id {named!r} is not a known environment"
        print(f"note: no evaluation: {reason}; pass --env with one of {', '.join(known_env_ids())}", file=sys.stderr)
    return None


def _check_given_env(env_id: str, named: str | None, dataset: TransitionDataset) -> None:
    """A given environment must be known, agree with the one the dataset names (when trajlab knows that one
    too) and have the dataset's spaces."""
    from trajlab.envs import ENVIRONMENTS, env_info, make

    env_info(env_id)  # an unknown id is a user error listing the known ones
    if named in ENVIRONMENTS and named != env_id:
        raise TrajlabError(f"--env {env_id} differs from the dataset's environment {named}; drop --env to use it")
    env = make(env_id)
    spaces = SpaceSpec.from_env(env)
    env.close()
    have = (dataset.observation_dim, dataset.action_dim, dataset.discrete)
    need = (spaces.observation_dim, spaces.action_dim, spaces.discrete)
    if have != need:
        raise TrajlabError(f"the dataset has (obs_dim, act_dim, discrete)={have}, but --env {env_id} has {need}")


def _plain_config(config: TrainConfig) -> dict[str, Any]:
    values = to_dict(config)
    values["dataset"] = str(Path(config.dataset).resolve())
    return values


def _check_same_run(run_dir: RunDirectory, stored: dict[str, Any]) -> None:
    saved = run_dir.config()
    # runs started before runtime options had their own block stored compile/bf16 in the agent config
    saved["agent_config"] = split_runtime_options(saved.get("agent_config") or {})[0]
    for name in (*_SAME_ON_RESUME, "agent_config"):
        if saved.get(name) != stored.get(name):
            raise TrajlabError(f"{run_dir.path}: cannot resume with a different {name} "
                               f"(run has {saved.get(name)!r}, given {stored.get(name)!r})")


class _OfflineTraining:
    """One `trajlab train` run: the update step and what the loop does around it (metrics rows, evaluations,
    step checkpoints), timing, and the result."""

    def __init__(self, config: TrainConfig, run_dir: RunDirectory, agent: AgentBase, sampler: TensorSampler,
                 dataset: TransitionDataset, env_id: str | None) -> None:
        self.config, self.run_dir, self.agent, self.sampler = config, run_dir, agent, sampler
        self.dataset, self.env_id = dataset, env_id
        self.evaluating = env_id is not None and config.eval_every > 0
        self.batch_size = int(agent.config.batch_size)
        self.step = 0
        self.resumed_from: int | None = None
        self.clock = WallClock()
        self.update_time_s = 0.0
        self.window = MetricWindow()
        self.last_eval: EvalSummary | None = None
        self.last_metrics: dict[str, float] = {}

    def restore(self) -> None:
        """Continue from the latest step checkpoint (from scratch if none was written)."""
        latest = self.run_dir.latest_checkpoint()
        if latest is not None:
            saved = ResumeState.read_into(self.agent, latest, kind="offline", device=self.config.device)
            self.sampler.set_state(saved.random["sampler"].cpu())
            restore_torch_random_states(saved.random)
            self.step, self.clock.earlier_s = saved.step, saved.elapsed_s
            self.last_eval = None if saved.last_eval is None else EvalSummary(**saved.last_eval)
            self.window = MetricWindow.from_state(saved.metric_window)
        self.resumed_from = self.step
        self.run_dir.truncate_metrics(self.step)

    def run(self) -> dict[str, Any]:
        self.clock.start_session()
        try:
            with update_bar(self.config.algo, self.config.steps, completed=self.step, enabled=self.config.progress,
                            status=self._status) as show:
                self._loop().run(self.step, show)
        except KeyboardInterrupt:
            self._save_step_checkpoint()  # keep what was learned since the last checkpoint
            self.run_dir.close()
            raise
        return self._finish()

    def _loop(self) -> Loop:
        total = self.config.steps
        evaluation = Periodic(Cadence(self.config.eval_every, last=total), self._evaluate)
        return Loop(self._update, total, evaluate=evaluation if self.evaluating else None,
                    log=Periodic(Cadence(self.config.log_every, last=total), self._log),
                    checkpoint=Periodic(Cadence(self.config.checkpoint_every, last=total),
                                        lambda step: self._save_step_checkpoint()))

    def _update(self, step: int) -> None:
        tick = time.perf_counter()
        metrics = self.agent.update(self.sampler.sample(self.batch_size))
        self.update_time_s += time.perf_counter() - tick
        self.step = step
        self.window.add(metrics)

    def _evaluate(self, step: int) -> None:
        from trajlab.eval import evaluate

        assert self.env_id is not None
        result = evaluate(self.agent, self.env_id, episodes=self.config.eval_episodes,
                          seed=derive_seed(self.config.seed, "eval") % 2**31, metadata=self.dataset.metadata)
        self.last_eval = EvalSummary.of(step, result)

    def _log(self, step: int) -> None:
        row = self.window.averages()
        self.last_metrics = dict(row) or self.last_metrics
        row["updates_per_s"] = self._updates_per_s() or math.nan
        if self.evaluating:  # columns are fixed by the first row, so they are always there
            evaluated = evaluated_at(step, self.last_eval)
            row["eval_return"] = math.nan if evaluated is None else evaluated.mean_return
            for column in ("normalized_score", "behaviour_normalized_score"):
                score = None if evaluated is None else getattr(evaluated, column)
                row[f"eval_{column}"] = math.nan if score is None else score
        self.run_dir.log_metrics(step, row)
        self.window.clear()

    def _status(self) -> str:
        return "" if self.last_eval is None else self.last_eval.status()

    def _updates_per_s(self) -> float | None:
        done = self.step - (self.resumed_from or 0)
        return done / self.update_time_s if self.update_time_s > 0 else None

    def _save_step_checkpoint(self) -> None:
        path = self.run_dir.checkpoint_path(f"step_{self.step}")
        if self.step == 0 or path.exists():
            return
        state = ResumeState(kind="offline", step=self.step, elapsed_s=self.clock.elapsed_s(),
                            metric_window=self.window.state(),
                            last_eval=None if self.last_eval is None else asdict(self.last_eval),
                            random={"sampler": self.sampler.get_state(), **torch_random_states()})
        state.write(path, self.agent, self._checkpoint_metadata())

    def _checkpoint_metadata(self) -> dict[str, Any]:
        return {"step": self.step, "dataset": str(Path(self.config.dataset).resolve()), "env_id": self.env_id,
                "dataset_metadata": dict(self.dataset.metadata)}

    def _finish(self) -> dict[str, Any]:
        final = save_agent(self.run_dir.checkpoint_path("final"), self.agent, self._checkpoint_metadata())
        evaluated = self.last_eval if self.evaluating else None
        result = {
            "algo": self.config.algo, "preset": self.config.preset,
            "dataset": str(Path(self.config.dataset).resolve()), "env_id": self.env_id,
            "steps": self.step, "seed": self.config.seed, "device": self.config.device,
            "wall_time_s": self.clock.elapsed_s(), "updates_per_s": self._updates_per_s(),
            "final_metrics": self.last_metrics,
            "eval_mean_return": evaluated.mean_return if evaluated else None,
            "eval_std_return": evaluated.std_return if evaluated else None,
            "eval_normalized_score": evaluated.normalized_score if evaluated else None,
            "eval_behaviour_normalized_score": evaluated.behaviour_normalized_score if evaluated else None,
            "eval_episodes": evaluated.episodes if evaluated else 0,
            "checkpoint": str(final), "run_dir": str(self.run_dir.path), "resumed_from_step": self.resumed_from,
        }
        self.run_dir.write_result(result)
        return result


def evaluate_run(run_dir: str | Path, episodes: int = 10, seed: int = 0, env_id: str | None = None) -> dict[str, Any]:
    """Evaluate a run's final agent (or its latest checkpoint) in its dataset's environment; writes eval.json."""
    from trajlab.envs import env_info
    from trajlab.eval import evaluate

    if episodes < 1:
        raise TrajlabError(f"episodes must be at least 1, got {episodes}")
    run = RunDirectory.open(run_dir)
    checkpoint = run.checkpoint_path("final")
    if not checkpoint.is_file():
        checkpoint = run.latest_checkpoint()
        if checkpoint is None:
            raise TrajlabError(f"{run.path}: no checkpoint to evaluate")
    metadata = read_checkpoint_metadata(checkpoint)
    env_id = env_id or metadata.get("env_id") or metadata.get("dataset_metadata", {}).get("env_id")
    if env_id is None:
        raise TrajlabError(f"{run.path}: the run's dataset names no environment; pass --env")
    env_info(env_id)  # an unknown id is a user error listing the known ones
    agent = load_agent(checkpoint)
    result = evaluate(agent, env_id, episodes=episodes, seed=seed, metadata=metadata.get("dataset_metadata"))
    summary = {**result.to_dict(), "run_dir": str(run.path), "checkpoint": str(checkpoint),
               "algo": metadata.get("algo"), "step": metadata.get("step"), "seed": seed,
               "normalized_score": result.mean_normalized_score,
               "behaviour_normalized_score": result.mean_behaviour_normalized_score}
    write_json_atomic(run.path / "eval.json", summary)
    return summary
