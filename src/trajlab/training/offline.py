"""`trajlab train` and `trajlab eval`: train an offline agent on a dataset into a run directory, evaluate it.

A run directory holds config.yaml, metrics.csv (+ TensorBoard), checkpoints/step_<n>.safetensors every
`checkpoint_every` updates, checkpoints/final.safetensors, and result.json once finished. Step checkpoints also
carry the sampler's and torch's random states, so `--resume` continues an interrupted run with the batches and
noise it would have drawn without the interruption.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trajlab.algos.base import AGENTS, AgentBase, load_agent, save_agent
from trajlab.core.checkpoint import load_checkpoint, read_checkpoint_metadata
from trajlab.core.config import load_preset, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.io import write_json_atomic
from trajlab.core.progress import update_bar
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.data.dataset import TransitionDataset
from trajlab.data.sampler import TensorSampler

RESULT_KEYS = ("algo", "preset", "dataset", "env_id", "steps", "seed", "device", "wall_time_s", "updates_per_s",
               "final_metrics", "eval_mean_return", "eval_std_return", "eval_normalized_score", "eval_episodes",
               "checkpoint", "run_dir", "resumed_from_step")
"""Keys of result.json: always present (None where a value does not apply), so scripts can rely on them."""

_SAME_ON_RESUME = ("algo", "dataset", "preset", "overrides", "seed", "steps")


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
    eval_every: int = 0
    """Evaluate in the dataset's environment every this many updates and at the end (0: never)."""
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
    agent_config = load_preset(agent_class.config_class, f"offline/{config.algo}", config.preset, **config.overrides)
    dataset = TransitionDataset.load(config.dataset)
    set_threads(config.threads)
    agent, sampler = prepare_training(agent_class, agent_config, dataset, seed=config.seed, device=config.device)
    env_id = _evaluation_env(dataset, config)
    stored = {**_plain_config(config), "agent_config": to_dict(agent_config)}
    run_dir = RunDirectory.create(config.run_path(), stored, command="train", resume=config.resume,
                                  overwrite=config.overwrite)
    if config.resume:
        _check_same_run(run_dir, stored)
    loop = _TrainingLoop(config, run_dir, agent, sampler, dataset, env_id)
    if config.resume:
        loop.restore()
    return loop.run()


def prepare_training(agent_class: type[AgentBase], agent_config: Any, dataset: TransitionDataset, *, seed: int,
                     device: str = "cpu", spec: SpaceSpec | None = None) -> tuple[AgentBase, TensorSampler]:
    """A new agent with the data's statistics and its batch sampler, seeded as every trajlab training run is.

    `trajlab train` and exact unlearning (retraining) both start here, so retraining on `dataset.without(ids)`
    reproduces `trajlab train` on the same data bit for bit.
    """
    agent = agent_class(spec or dataset.spec, agent_config, device=device, seed=seed)
    agent.prepare(dataset)
    return agent, dataset.sampler(device=device, seed=derive_seed(seed, "sampler"))


def _check_options(config: TrainConfig) -> None:
    for name in ("steps", "log_every", "checkpoint_every", "eval_episodes"):
        if getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.eval_every < 0:
        raise TrajlabError(f"eval_every must be 0 (never) or positive, got {config.eval_every}")
    if config.resume and config.overwrite:
        raise TrajlabError("--resume and --overwrite exclude each other")
    try:
        device = torch.device(config.device)
    except RuntimeError:
        raise TrajlabError(f"unknown device {config.device!r}; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrajlabError("--device cuda: no CUDA GPU is available to this torch build")
    if not Path(config.dataset).is_file():
        raise TrajlabError(f"{config.dataset}: dataset file not found")


def _evaluation_env(dataset: TransitionDataset, config: TrainConfig) -> str | None:
    """The dataset's environment if trajlab knows it and evaluation is on, else None (with a note why)."""
    from trajlab.envs import ENVIRONMENTS

    env_id = dataset.metadata.get("env_id")
    if config.eval_every == 0:
        return env_id if env_id in ENVIRONMENTS else None
    if env_id not in ENVIRONMENTS:
        print(f"note: no evaluation; the dataset's env_id {env_id!r} is not a known environment", file=sys.stderr)
        return None
    return env_id


def _plain_config(config: TrainConfig) -> dict[str, Any]:
    values = to_dict(config)
    values["dataset"] = str(Path(config.dataset).resolve())
    return values


def _check_same_run(run_dir: RunDirectory, stored: dict[str, Any]) -> None:
    saved = run_dir.config()
    for name in (*_SAME_ON_RESUME, "agent_config"):
        if saved.get(name) != stored.get(name):
            raise TrajlabError(f"{run_dir.path}: cannot resume with a different {name} "
                               f"(run has {saved.get(name)!r}, given {stored.get(name)!r})")


class _TrainingLoop:
    """The update loop and its bookkeeping: metrics, checkpoints, evaluation, timing, progress bar."""

    def __init__(self, config: TrainConfig, run_dir: RunDirectory, agent: AgentBase, sampler: TensorSampler,
                 dataset: TransitionDataset, env_id: str | None) -> None:
        self.config, self.run_dir, self.agent, self.sampler = config, run_dir, agent, sampler
        self.dataset, self.env_id = dataset, env_id
        self.evaluating = env_id is not None and config.eval_every > 0
        self.batch_size = int(agent.config.batch_size)
        self.step = 0
        self.resumed_from: int | None = None
        self.earlier_sessions_s = 0.0
        self.session_start = time.perf_counter()
        self.update_time_s = 0.0
        self.last_eval: dict[str, Any] | None = None
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last_metrics: dict[str, float] = {}

    def restore(self) -> None:
        """Continue from the latest step checkpoint (from scratch if none was written)."""
        latest = self.run_dir.latest_checkpoint()
        if latest is not None:
            state, _ = load_checkpoint(latest, device=self.config.device)
            if "run_state" not in state:
                raise TrajlabError(f"{latest}: checkpoint has no run state to resume from")
            self.agent.load_state_dict(state)
            saved = state["run_state"]
            self.sampler.set_state(saved["sampler"].cpu())
            torch.set_rng_state(saved["torch_rng"].cpu())
            self.step, self.earlier_sessions_s = int(saved["step"]), float(saved["elapsed_s"])
            self.last_eval = saved.get("last_eval")
            self.sums, self.counts = dict(saved["metric_sums"]), dict(saved["metric_counts"])
        self.resumed_from = self.step
        self.run_dir.truncate_metrics(self.step)

    def run(self) -> dict[str, Any]:
        self.session_start = time.perf_counter()
        try:
            with update_bar(self.config.algo, self.config.steps, completed=self.step,
                            enabled=self.config.progress) as advance:
                while self.step < self.config.steps:
                    self._one_update()
                    self._after_update()
                    advance(self.step)
        except KeyboardInterrupt:
            self._save_step_checkpoint()  # keep what was learned since the last checkpoint
            self.run_dir.close()
            raise
        return self._finish()

    def _one_update(self) -> None:
        tick = time.perf_counter()
        metrics = self.agent.update(self.sampler.sample(self.batch_size))
        self.update_time_s += time.perf_counter() - tick
        self.step += 1
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def _after_update(self) -> None:
        last = self.step == self.config.steps
        evaluate = self.evaluating and (self.step % self.config.eval_every == 0 or last)
        if evaluate:
            self.last_eval = self._evaluate()
        if evaluate or last or self.step % self.config.log_every == 0:
            self._log(evaluated=evaluate)
        if last or self.step % self.config.checkpoint_every == 0:
            self._save_step_checkpoint()

    def _log(self, evaluated: bool) -> None:
        row = {name: self.sums[name] / self.counts[name] for name in self.sums}
        self.last_metrics = dict(row) or self.last_metrics
        row["updates_per_s"] = self._updates_per_s() or math.nan
        if self.evaluating:  # columns are fixed by the first row, so they are always there
            result = self.last_eval if evaluated and self.last_eval else {}
            row["eval_return"] = result.get("mean_return", math.nan)
            score = result.get("normalized_score")
            row["eval_normalized_score"] = math.nan if score is None else score
        self.run_dir.log_metrics(self.step, row)
        self.sums, self.counts = {}, {}

    def _updates_per_s(self) -> float | None:
        done = self.step - (self.resumed_from or 0)
        return done / self.update_time_s if self.update_time_s > 0 else None

    def _evaluate(self) -> dict[str, Any]:
        from trajlab.eval import evaluate

        assert self.env_id is not None
        result = evaluate(self.agent, self.env_id, episodes=self.config.eval_episodes,
                          seed=derive_seed(self.config.seed, "eval") % 2**31, metadata=self.dataset.metadata)
        return {"mean_return": result.mean_return, "std_return": result.std_return,
                "normalized_score": result.mean_normalized_score, "episodes": int(len(result.returns))}

    def _save_step_checkpoint(self) -> None:
        path = self.run_dir.checkpoint_path(f"step_{self.step}")
        if self.step == 0 or path.exists():
            return
        run_state = {"step": self.step, "sampler": self.sampler.get_state(), "torch_rng": torch.get_rng_state(),
                     "elapsed_s": self._wall_time_s(), "last_eval": self.last_eval,
                     "metric_sums": self.sums, "metric_counts": self.counts}  # a partly averaged log interval
        save_agent(path, self.agent, self._checkpoint_metadata(), run_state=run_state)

    def _wall_time_s(self) -> float:
        return self.earlier_sessions_s + (time.perf_counter() - self.session_start)

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
            "wall_time_s": self._wall_time_s(), "updates_per_s": self._updates_per_s(),
            "final_metrics": self.last_metrics,
            "eval_mean_return": evaluated["mean_return"] if evaluated else None,
            "eval_std_return": evaluated["std_return"] if evaluated else None,
            "eval_normalized_score": evaluated["normalized_score"] if evaluated else None,
            "eval_episodes": evaluated["episodes"] if evaluated else 0,
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
               "normalized_score": result.mean_normalized_score}
    write_json_atomic(run.path / "eval.json", summary)
    return summary
