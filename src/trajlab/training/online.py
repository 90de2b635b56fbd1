"""The online training loop (`train_online`) and `trajlab train-online` (`run`).

One environment, one replay buffer: `learning_starts` uniform random actions, then the agent acts and is
updated `utd_ratio` times per env step on minibatches from the buffer. Evaluation, metrics (metrics.csv +
TensorBoard), checkpoints and a caller's `callback` hook in between.

Checkpoints are taken at the first episode end at or after each multiple of `checkpoint_every`: an agent
checkpoint (`checkpoints/step_<n>.safetensors`, loadable with `load_agent`, carrying the trainer's state and
random states) and the replay buffer (`checkpoints/replay_<n>.npz`). Because the environment is between
episodes there, `resume=True` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos.base import AGENTS, AgentBase, save_agent
from trajlab.core.checkpoint import load_checkpoint
from trajlab.core.config import configs_root, from_dict, load_preset, to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.data.replay import ReplayBuffer
from trajlab.envs.registry import env_info, make
from trajlab.eval.rollouts import EvalResult, evaluate

Callback = Callable[[int, AgentBase, ReplayBuffer], Any]
"""callback(step, agent, replay): called after env steps that are multiples of `callback_every`."""

RESULT_KEYS = ("algo", "env_id", "preset", "steps", "seed", "updates", "wall_time_s", "env_steps_per_s",
               "updates_per_s", "final_eval", "eval_history", "checkpoint", "run_dir")
"""Keys of result.json, always present; final_eval holds mean_return, std_return, normalized_score, episodes."""

_SAME_ON_RESUME = ("algo", "env_id", "preset", "overrides", "seed", "total_steps", "learning_starts", "batch_size",
                   "buffer_size", "utd_ratio")


@dataclass(frozen=True)
class OnlineTrainConfig:
    """One online training run (trainer settings; the agent's own options come from its preset)."""

    algo: str = "sac"
    """Registered online algorithm (configs/online/<algo>/ holds its presets)."""
    env_id: str = "Hopper-v5"
    """Environment to train in (a trajlab-registered id)."""
    total_steps: int = 1_000_000
    """Environment steps to take."""
    learning_starts: int = 5_000
    """Uniform random actions for this many first steps; updates start after them."""
    batch_size: int | None = None
    """Minibatch size (None: the agent config's batch_size)."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (oldest transitions are dropped first)."""
    utd_ratio: int | None = None
    """Updates per env step (None: the agent config's utd_ratio, else 1)."""
    eval_every: int = 10_000
    """Evaluate the deterministic policy every this many env steps (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation (run side by side, seeds fixed for the whole run)."""
    checkpoint_every: int = 50_000
    """Checkpoint at the first episode end at or after every multiple of this many steps (0: never)."""
    log_every: int = 1_000
    """Write a metrics.csv/TensorBoard row every this many env steps (and at each evaluation)."""
    callback_every: int = 1
    """Call `train_online`'s callback after every env step that is a multiple of this."""
    seed: int = 0
    """Seed of the networks, the environment, random actions and minibatches."""
    device: str = "cpu"
    """Torch device of the agent (cpu, cuda); the replay buffer stays in host memory."""
    preset: str = "quick"
    """Preset: configs/online/<algo>/<preset>.yaml (quick: CPU minutes; paper: the published setting)."""
    num_threads: int | None = None
    """Torch intra-op threads (None: torch's default). 1 is faster when other jobs share the cores."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Agent options that replace the preset's values (e.g. {"hidden": [64, 64], "critic_dropout": 0.01})."""


@dataclass
class OnlineTrainResult:
    """What `train_online` returns."""

    agent: AgentBase
    replay: ReplayBuffer
    eval_history: list[tuple[int, float]]
    """(env step, mean evaluation return) of every evaluation, in order."""
    wall_time_s: float
    """Seconds of the whole run (all sessions of a resumed run), evaluations and checkpoints included."""
    env_steps_per_s: float
    """Env steps per second of the training loop (acting, stepping, storing and updating; no evaluation)."""
    updates_per_s: float
    """Updates per second spent sampling minibatches and updating (0 when there was none)."""
    steps: int = 0
    updates: int = 0
    episode_returns: list[tuple[int, float]] = field(default_factory=list)
    """(env step at the episode's end, undiscounted return) of every finished training episode."""
    last_eval: EvalResult | None = None
    """The evaluation at the final step, when one happened there."""


# --- presets and agents ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnlinePreset:
    """A preset file configs/online/<algo>/<preset>.yaml: trainer settings and the agent's options."""

    train: dict[str, Any] = field(default_factory=dict)
    """OnlineTrainConfig fields (total_steps, learning_starts, eval_every, ...)."""
    agent: dict[str, Any] = field(default_factory=dict)
    """Fields of the algorithm's config class (e.g. SACConfig)."""


def online_algorithms() -> list[str]:
    """Algorithms with presets under configs/online/."""
    root = configs_root() / "online"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_online_config(algo: str = "sac", preset: str = "quick", **fields: Any) -> OnlineTrainConfig:
    """The preset's trainer settings with `fields` (None values keep the preset's) on top."""
    values = {**_load_preset(algo, preset).train, "algo": algo, "preset": preset}
    values.update({key: value for key, value in fields.items() if value is not None})
    return from_dict(OnlineTrainConfig, values, where=f"online/{algo}/{preset} train")


def agent_config_for(config: OnlineTrainConfig) -> Any:
    """The agent's config: the preset's `agent` section with `config.overrides` on top."""
    agent_class = AGENTS.get(config.algo)
    values = {**_load_preset(config.algo, config.preset).agent, **config.overrides}
    return from_dict(agent_class.config_class, values, where=f"online/{config.algo}/{config.preset} agent")


def build_agent(config: OnlineTrainConfig, agent_config: Any = None, spec: SpaceSpec | None = None) -> AgentBase:
    """A fresh agent for `config.env_id` (spaces read from the environment) seeded with `config.seed`."""
    agent_config = agent_config if agent_config is not None else agent_config_for(config)
    if spec is None:
        env = make(config.env_id)
        spec = SpaceSpec.from_env(env)
        env.close()
    return AGENTS.get(config.algo)(spec, agent_config, device=config.device, seed=config.seed)


def _load_preset(algo: str, preset: str) -> OnlinePreset:
    if algo not in online_algorithms():
        raise TrajlabError(f"unknown online algorithm {algo!r}; known: {', '.join(online_algorithms()) or 'none'}")
    return load_preset(OnlinePreset, f"online/{algo}", preset)


def check_config(config: OnlineTrainConfig) -> None:
    """Reject impossible settings before anything is built or written."""
    env_info(config.env_id)
    for name in ("total_steps", "buffer_size", "eval_episodes", "log_every", "callback_every"):
        if getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("learning_starts", "eval_every", "checkpoint_every"):
        if getattr(config, name) < 0:
            raise TrajlabError(f"{name} must be 0 or positive, got {getattr(config, name)}")
    for name in ("batch_size", "utd_ratio", "num_threads"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")
    try:
        device = torch.device(config.device)
    except RuntimeError:
        raise TrajlabError(f"unknown device {config.device!r}; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrajlabError("--device cuda: no CUDA GPU is available to this torch build")


# --- the loop ------------------------------------------------------------------------------------------------
@dataclass
class _LoopState:
    """Everything the loop carries between steps; JSON-able, so checkpoints store it as metadata."""

    step: int = 0
    updates: int = 0
    episode_return: float = 0.0
    episode_length: int = 0
    episode_returns: list[list[float]] = field(default_factory=list)
    eval_history: list[list[float]] = field(default_factory=list)
    window_returns: list[float] = field(default_factory=list)
    window_sums: dict[str, float] = field(default_factory=dict)
    window_counts: dict[str, int] = field(default_factory=dict)
    train_time_s: float = 0.0
    update_time_s: float = 0.0
    earlier_wall_s: float = 0.0
    next_checkpoint: int = 0
    rng_state: dict[str, Any] = field(default_factory=dict)
    env_rng_state: dict[str, Any] = field(default_factory=dict)

    def finish_episode(self) -> None:
        self.episode_returns.append([self.step, self.episode_return])
        self.window_returns.append(self.episode_return)
        self.episode_return, self.episode_length = 0.0, 0

    def add_metrics(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.window_sums[name] = self.window_sums.get(name, 0.0) + value
            self.window_counts[name] = self.window_counts.get(name, 0) + 1


class _OnlineLoop:
    """State and steps of one `train_online` call."""

    def __init__(self, agent: AgentBase, config: OnlineTrainConfig, run: RunDirectory | None,
                 callback: Callback | None, callback_every: int) -> None:
        self.agent, self.config, self.run, self.callback = agent, config, run, callback
        self.callback_every = callback_every
        self.env = make(config.env_id, seed=config.seed)
        self.spec = SpaceSpec.from_env(self.env)
        _check_agent_fits(agent, self.spec, config.env_id)
        self.replay = ReplayBuffer(self.spec.observation_dim, self.spec.action_dim, config.buffer_size,
                                   self.spec.discrete)
        self.batch_size = int(config.batch_size or getattr(agent.config, "batch_size", 256))
        self.utd_ratio = int(config.utd_ratio or getattr(agent.config, "utd_ratio", 1))
        self.rng = np.random.default_rng(derive_seed(config.seed, "online-trainer"))
        self.eval_seed = derive_seed(config.seed, "eval") % 2**31
        self.state = _LoopState(next_checkpoint=config.checkpoint_every)
        self.metric_names = tuple(getattr(agent, "metric_names", ()))
        self.last_eval: EvalResult | None = None
        self.observation: np.ndarray | None = None
        self.resumed_from: int | None = None

    # --- one env step ---------------------------------------------------------------------------------
    def env_step(self) -> bool:
        """Act, step, store; returns whether the episode ended."""
        if self.observation is None:
            self.observation, _ = self.env.reset(seed=self.config.seed) if self.state.step == 0 else self.env.reset()
        if self.state.step < self.config.learning_starts:
            action = self._random_action()
        else:
            action = self.agent.act(self.observation, deterministic=False)
        next_observation, reward, terminated, truncated, _ = self.env.step(action)
        self.replay.add(self.observation, action, float(reward), next_observation, terminated, truncated)
        self.state.step += 1
        self.state.episode_return += float(reward)
        self.state.episode_length += 1
        self.observation = next_observation
        if terminated or truncated:
            self.state.finish_episode()
            self.observation = None  # reset lazily: a checkpoint in between then resumes exactly
        return terminated or truncated

    def _random_action(self) -> np.ndarray | int:
        if self.spec.discrete:
            return int(self.rng.integers(self.spec.action_dim))
        low, high = np.asarray(self.spec.action_low), np.asarray(self.spec.action_high)
        return self.rng.uniform(low, high).astype(np.float32)

    def train(self) -> None:
        """`utd_ratio` updates once the random-action phase is over."""
        if self.state.step <= self.config.learning_starts:
            return
        start = time.perf_counter()
        for _ in range(self.utd_ratio):
            batch = self.replay.sample(self.batch_size, self.rng)
            if self.agent.device.type != "cpu":
                batch = batch.to(self.agent.device)
            self.state.add_metrics(self.agent.update(batch))
        self.state.updates += self.utd_ratio
        self.state.update_time_s += time.perf_counter() - start

    # --- bookkeeping between steps ----------------------------------------------------------------------
    def after_step(self, episode_done: bool) -> None:
        step, config = self.state.step, self.config
        evaluated = config.eval_every > 0 and step % config.eval_every == 0
        if evaluated:
            self._evaluate()
        if self.run is not None and (evaluated or step % config.log_every == 0):
            self._log(evaluated)
        if self.callback is not None and step % self.callback_every == 0:
            self.callback(step, self.agent, self.replay)
        if episode_done and self.run is not None and config.checkpoint_every and step >= self.state.next_checkpoint:
            self._save_checkpoint()
            self.state.next_checkpoint = (step // config.checkpoint_every + 1) * config.checkpoint_every

    def _evaluate(self) -> None:
        self.last_eval = evaluate(self.agent, self.config.env_id, episodes=self.config.eval_episodes,
                                  seed=self.eval_seed)
        self.state.eval_history.append([self.state.step, self.last_eval.mean_return])

    def _log(self, evaluated: bool) -> None:
        state = self.state
        row = {name: math.nan for name in self.metric_names}
        row.update({name: state.window_sums[name] / state.window_counts[name] for name in state.window_sums})
        row["episode_return"] = float(np.mean(state.window_returns)) if state.window_returns else math.nan
        row["eval_return"] = self.last_eval.mean_return if evaluated and self.last_eval else math.nan
        row["updates"] = state.updates
        row["env_steps_per_s"] = state.step / state.train_time_s if state.train_time_s > 0 else math.nan
        assert self.run is not None
        self.run.log_metrics(state.step, row)
        state.window_returns, state.window_sums, state.window_counts = [], {}, {}

    # --- checkpoints --------------------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        assert self.run is not None
        step = self.state.step
        trainer = {**asdict(self.state), "earlier_wall_s": self.wall_time_s(),
                   "rng_state": self.rng.bit_generator.state,
                   "env_rng_state": self.env.unwrapped.np_random.bit_generator.state}
        replay_path = self.run.checkpoints / f"replay_{step}.npz"
        self.replay.save(replay_path)  # before the agent checkpoint, which is what marks the step as resumable
        metadata = {"step": step, "env_id": self.config.env_id, "trainer": trainer}
        save_agent(self.run.checkpoint_path(f"step_{step}"), self.agent, metadata, run_state=_torch_rng_state())
        for older in self.run.checkpoints.glob("replay_*.npz"):
            if older != replay_path:
                older.unlink()

    def restore(self) -> None:
        """Continue from the run's latest step checkpoint (from the start when none was written)."""
        assert self.run is not None
        latest = self.run.latest_checkpoint("step_")
        if latest is not None:
            state, metadata = load_checkpoint(latest, device=str(self.agent.device))
            if not isinstance(metadata.get("trainer"), dict):
                raise TrajlabError(f"{latest}: not an online-training checkpoint (no trainer state to resume)")
            try:
                self.agent.load_state_dict(state)
            except (RuntimeError, KeyError) as error:
                raise TrajlabError(f"{latest}: does not fit this agent ({str(error).splitlines()[0]})") from None
            self.state = _LoopState(**metadata["trainer"])
            self.replay.load(self.run.checkpoints / f"replay_{self.state.step}.npz")
            self.rng.bit_generator.state = self.state.rng_state
            self.env.unwrapped.np_random.bit_generator.state = self.state.env_rng_state
            _set_torch_rng_state(state.get("run_state", {}))
        self.resumed_from = self.state.step
        self.run.truncate_metrics(self.state.step)

    def wall_time_s(self) -> float:
        return self.state.earlier_wall_s + (time.perf_counter() - self.session_start)

    def loop(self, progress: bool) -> OnlineTrainResult:
        """Run to `total_steps`."""
        self.session_start = time.perf_counter()
        with _progress_bar(progress, self.config, self.state.step) as advance:
            while self.state.step < self.config.total_steps:
                start = time.perf_counter()
                episode_done = self.env_step()
                self.train()
                self.state.train_time_s += time.perf_counter() - start
                self.after_step(episode_done)
                advance(self.state)
        return self.result()

    def result(self) -> OnlineTrainResult:
        state = self.state
        return OnlineTrainResult(
            agent=self.agent, replay=self.replay, eval_history=[(int(s), float(r)) for s, r in state.eval_history],
            wall_time_s=self.wall_time_s(),
            env_steps_per_s=state.step / state.train_time_s if state.train_time_s > 0 else 0.0,
            updates_per_s=state.updates / state.update_time_s if state.update_time_s > 0 else 0.0,
            steps=state.step, updates=state.updates,
            episode_returns=[(int(s), float(r)) for s, r in state.episode_returns],
            last_eval=self.last_eval if state.eval_history and state.eval_history[-1][0] == state.step else None,
        )


def train_online(agent: AgentBase, config: OnlineTrainConfig, *, run: RunDirectory | None = None,
                 callback: Callback | None = None, progress: bool = True, resume: bool = False,
                 callback_every: int | None = None) -> OnlineTrainResult:
    """Train `agent` online in `config.env_id` for `config.total_steps` env steps.

    With `run`, metrics go to its metrics.csv/TensorBoard and checkpoints to its checkpoints/ folder; `resume`
    restores the latest checkpoint there (agent, replay buffer, step counter, random states; metric rows after
    it are dropped). `callback(step, agent, replay)` is called after every env step that is a multiple of
    `callback_every` (default: `config.callback_every`), after that step's updates and evaluation.
    """
    check_config(config)
    if resume and run is None:
        raise TrajlabError("resume needs the run directory of the interrupted run")
    set_threads(config.num_threads)
    loop = _OnlineLoop(agent, config, run, callback, callback_every or config.callback_every)
    try:
        if resume:
            loop.restore()
        return loop.loop(progress)
    finally:
        loop.env.close()
        if run is not None:
            run.close()


def _check_agent_fits(agent: AgentBase, spec: SpaceSpec, env_id: str) -> None:
    have = (agent.spec.observation_dim, agent.spec.action_dim, agent.spec.discrete)
    need = (spec.observation_dim, spec.action_dim, spec.discrete)
    if have != need:
        raise TrajlabError(f"agent built for (obs_dim, act_dim, discrete)={have}, but {env_id} has {need}")


def _torch_rng_state() -> dict[str, torch.Tensor]:
    state = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


def _set_torch_rng_state(state: dict[str, torch.Tensor]) -> None:
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"].cpu())
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"].cpu())


@contextlib.contextmanager
def _progress_bar(enabled: bool, config: OnlineTrainConfig, start: int) -> Iterator[Callable[[_LoopState], None]]:
    """Yield advance(state): a Rich bar on stderr (steps/s, last episode return), or a no-op."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield lambda state: None
        return
    columns = (TextColumn(f"{config.algo} {config.env_id}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[speed]} steps/s  return {task.fields[last_return]}"), TimeRemainingColumn())
    every = max(1, min(100, config.total_steps // 200))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=config.total_steps, completed=start, speed="-", last_return="-")

        def advance(state: _LoopState) -> None:
            if state.step % every == 0:
                speed = f"{state.step / state.train_time_s:,.0f}" if state.train_time_s > 0 else "-"
                last = f"{state.episode_returns[-1][1]:.1f}" if state.episode_returns else "-"
                progress.update(task, completed=state.step, speed=speed, last_return=last)

        yield advance


# --- trajlab train-online --------------------------------------------------------------------------------------
def default_run_path(config: OnlineTrainConfig) -> Path:
    return Path("runs") / f"{config.algo}_{config.env_id}_seed{config.seed}"


def run(config: OnlineTrainConfig, *, out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
        progress: bool = True,
        after_training: Callable[[RunDirectory, OnlineTrainResult, OnlineTrainConfig], Any] | None = None,
        ) -> dict[str, Any]:
    """Train, evaluate and write a run directory; returns the content of result.json (keys: RESULT_KEYS).

    `after_training(run_dir, result, config)` runs before result.json is written (the command layer draws the
    learning curve there: plotting is above training)."""
    check_config(config)
    if resume and overwrite:
        raise TrajlabError("--resume and --overwrite exclude each other")
    agent_config = agent_config_for(config)
    stored = {"train": to_dict(config), "agent": to_dict(agent_config)}
    path = Path(out) if out is not None else default_run_path(config)
    run_dir = RunDirectory.create(path, stored, command="train-online", resume=resume, overwrite=overwrite)
    if resume:
        _check_same_run(run_dir, stored)
    set_threads(config.num_threads)
    agent = build_agent(config, agent_config)
    result = train_online(agent, config, run=run_dir, progress=progress, resume=resume)
    final_eval = result.last_eval or evaluate(agent, config.env_id, episodes=config.eval_episodes,
                                              seed=derive_seed(config.seed, "eval") % 2**31)
    checkpoint = save_agent(run_dir.checkpoint_path("final"), agent, {"step": result.steps, "env_id": config.env_id})
    if after_training is not None:
        after_training(run_dir, result, config)
    summary = {
        "algo": config.algo, "env_id": config.env_id, "preset": config.preset, "steps": result.steps,
        "seed": config.seed, "updates": result.updates, "wall_time_s": result.wall_time_s,
        "env_steps_per_s": result.env_steps_per_s, "updates_per_s": result.updates_per_s,
        "final_eval": {"mean_return": final_eval.mean_return, "std_return": final_eval.std_return,
                       "normalized_score": final_eval.mean_normalized_score,
                       "episodes": int(len(final_eval.returns))},
        "eval_history": [list(item) for item in result.eval_history],
        "checkpoint": str(checkpoint), "run_dir": str(run_dir.path),
    }
    run_dir.write_result(summary)
    return summary


def _check_same_run(run_dir: RunDirectory, stored: dict[str, Any]) -> None:
    saved = run_dir.config()
    for name in _SAME_ON_RESUME:
        if saved.get("train", {}).get(name) != stored["train"][name]:
            raise TrajlabError(f"{run_dir.path}: cannot resume with a different {name} "
                               f"(run has {saved.get('train', {}).get(name)!r}, given {stored['train'][name]!r})")
    if saved.get("agent") != stored["agent"]:
        raise TrajlabError(f"{run_dir.path}: cannot resume with different agent options "
                           f"(run has {saved.get('agent')!r})")
