"""The online training loop (`train_online`) and `trajlab train-online` (`run`).

One environment, one replay buffer: `learning_starts` uniform random actions, then the agent acts and is
updated `utd_ratio` times per env step on minibatches from the buffer. One step of the `Loop` is one env step
with its updates; evaluations, metrics rows (metrics.csv + TensorBoard), a caller's `callback` and checkpoints
come in between. What the environment reports is kept: a `cost` in its step info goes into the replay buffer
(and so into sampled batches), and `on_env_step` sees every step whole (`EnvStep`, info included).

Checkpoints are taken at the first episode end at or after each multiple of `checkpoint_every`: an agent
checkpoint (`checkpoints/step_<n>.safetensors`, loadable with `load_agent`, carrying the loop's `ResumeState`
with its random states) and the replay buffer (`checkpoints/replay_<n>.npz`). Because the environment is between
episodes there, `resume=True` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.algos.base import AGENTS, AgentBase, RuntimeOptions, new_agent, save_agent, split_runtime_options
from trajlab.core.config import configs_root, from_dict, load_preset, to_dict
from trajlab.core.devices import check_device
from trajlab.core.errors import TrajlabError
from trajlab.core.progress import update_bar
from trajlab.core.rundir import RunDirectory
from trajlab.core.seeding import derive_seed, set_threads
from trajlab.core.spec import SpaceSpec
from trajlab.data.replay import ReplayBuffer
from trajlab.envs.registry import env_info, make
from trajlab.eval.rollouts import EvalResult, evaluate
from trajlab.training.loop import Cadence, EvalSummary, Loop, MetricWindow, Periodic, WallClock, evaluated_at
from trajlab.training.resume import ResumeState, restore_torch_random_states, torch_random_states

Callback = Callable[[int, AgentBase, ReplayBuffer], Any]
"""callback(step, agent, replay): called after env steps that are multiples of `callback_every`."""

RESULT_KEYS = ("algo", "env_id", "preset", "steps", "seed", "updates", "wall_time_s", "env_steps_per_s",
               "updates_per_s", "final_eval", "eval_history", "checkpoint", "run_dir")
"""Keys of result.json, always present; final_eval holds mean_return, std_return, normalized_score
(D4RL's), behaviour_normalized_score (None online: no behaviour dataset), episodes."""

_SAME_ON_RESUME = ("algo", "env_id", "preset", "overrides", "seed", "total_steps", "learning_starts", "batch_size",
                   "buffer_size", "utd_ratio", "reward_scale_steps", "reward_scale")


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
    reward_scale_steps: tuple[int, int] | None = None
    """Env steps [first, last] whose rewards are stored multiplied by reward_scale: a planted harmful group of
    experiences (as PIToD's paper plants one). Only what the agent learns from changes: logged returns and
    evaluations keep the environment's rewards. None: every reward as the environment gives it."""
    reward_scale: float = 1.0
    """Factor of the rewards stored for reward_scale_steps."""


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


def agent_options_for(config: OnlineTrainConfig) -> tuple[Any, RuntimeOptions]:
    """The agent's config and runtime options: the preset's `agent` section with `config.overrides` on top
    (`compile` and `bf16` among them are runtime options)."""
    where = f"online/{config.algo}/{config.preset} agent"
    values = {**_load_preset(config.algo, config.preset).agent, **config.overrides}
    values, runtime = split_runtime_options(values, where=where)
    return from_dict(AGENTS.get(config.algo).config_class, values, where=where), runtime


def agent_config_for(config: OnlineTrainConfig) -> Any:
    """The agent's config: the preset's `agent` section with `config.overrides` on top."""
    return agent_options_for(config)[0]


def build_agent(config: OnlineTrainConfig, agent_config: Any = None, spec: SpaceSpec | None = None,
                runtime: RuntimeOptions | None = None) -> AgentBase:
    """A fresh agent for `config.env_id` (spaces read from the environment) seeded with `config.seed`."""
    agent_config = agent_config if agent_config is not None else agent_config_for(config)
    runtime = runtime if runtime is not None else agent_options_for(config)[1]
    if spec is None:
        env = make(config.env_id)
        spec = SpaceSpec.from_env(env)
        env.close()
    return new_agent(AGENTS.get(config.algo), spec, agent_config, seed=config.seed, device=config.device,
                     runtime=runtime)


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
    if config.total_steps <= config.learning_starts:
        raise TrajlabError(f"total_steps {config.total_steps} <= learning_starts {config.learning_starts}: the run "
                           "would take random actions only and make no update; raise --steps or lower "
                           "--learning-starts")
    for name in ("batch_size", "utd_ratio", "num_threads"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise TrajlabError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.reward_scale_steps is not None:
        first, last = config.reward_scale_steps
        if not 1 <= first <= last <= config.total_steps:
            raise TrajlabError(f"reward_scale_steps {first}..{last} must lie within the run's steps "
                               f"1..{config.total_steps}")
    if not math.isfinite(config.reward_scale):
        raise TrajlabError(f"reward_scale must be a finite number, got {config.reward_scale}")
    check_device(config.device)


# --- the loop ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvStep:
    """One environment step as the online loop took it, with all the environment reported."""

    step: int
    """Env steps taken so far, this one included."""
    observation: np.ndarray
    action: np.ndarray | int
    reward: float
    next_observation: np.ndarray
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    """The environment's step info, as it returned it."""
    cost: float | None
    """info["cost"] (Safety-Gymnasium's convention once wrapped), None when the environment reports none."""


@dataclass
class _OnlineCounters:
    """The online loop's own bookkeeping between steps: the `loop` part of its resume state (JSON-able)."""

    updates: int = 0
    episode_return: float = 0.0
    episode_length: int = 0
    episode_returns: list[list[float]] = field(default_factory=list)
    """[env step at the episode's end, return] of every finished episode."""
    window_returns: list[float] = field(default_factory=list)
    """Returns of the episodes finished since the last metrics row."""
    eval_history: list[list[float]] = field(default_factory=list)
    """[env step, mean evaluation return] of every evaluation."""
    train_time_s: float = 0.0
    """Seconds spent acting, stepping, storing and updating (no evaluation, no checkpoints)."""
    update_time_s: float = 0.0
    """Seconds spent sampling minibatches and updating."""

    def add_reward(self, reward: float) -> None:
        self.episode_return += reward
        self.episode_length += 1

    def finish_episode(self, step: int) -> None:
        self.episode_returns.append([step, self.episode_return])
        self.window_returns.append(self.episode_return)
        self.episode_return, self.episode_length = 0.0, 0


class _OnlineTraining:
    """One `train_online` call: the env step with its updates, and what the loop does between steps."""

    def __init__(self, agent: AgentBase, config: OnlineTrainConfig, run: RunDirectory | None,
                 callback: Callback | None, callback_every: int,
                 on_env_step: Callable[[EnvStep], Any] | None) -> None:
        self.agent, self.config, self.run = agent, config, run
        self.callback, self.callback_every, self.on_env_step = callback, callback_every, on_env_step
        self.env = make(config.env_id, seed=config.seed)
        self.spec = SpaceSpec.from_env(self.env)
        _check_agent_fits(agent, self.spec, config.env_id)
        # an agent with turn-over dropout masks (masked_sac) names how its transitions get them
        self.replay = ReplayBuffer(self.spec.observation_dim, self.spec.action_dim, config.buffer_size,
                                   self.spec.discrete, group_masks=getattr(agent, "group_masks", None))
        self.batch_size = int(config.batch_size or getattr(agent.config, "batch_size", 256))
        self.utd_ratio = int(config.utd_ratio or getattr(agent.config, "utd_ratio", 1))
        self.rng = np.random.default_rng(derive_seed(config.seed, "online-trainer"))  # random actions, minibatches
        self.eval_seed = derive_seed(config.seed, "eval") % 2**31
        self.metric_names = tuple(getattr(agent, "metric_names", ()))
        self.step = 0
        self.counters = _OnlineCounters()
        self.window = MetricWindow()
        self.clock = WallClock()
        self.last_eval: EvalSummary | None = None
        self.last_eval_result: EvalResult | None = None  # this session's, with the returns of every episode
        self.last_checkpoint = 0
        self.observation: np.ndarray | None = None
        self.episode_done = False
        self.resumed_from: int | None = None

    # --- one step: act, step the environment, store, update -------------------------------------------
    def _take_step(self, step: int) -> None:
        start = time.perf_counter()
        self._env_step(step)
        self._train(step)
        self.counters.train_time_s += time.perf_counter() - start

    def _env_step(self, step: int) -> None:
        if self.observation is None:  # reset lazily: a checkpoint between episodes then resumes exactly
            self.observation, _ = self.env.reset(seed=self.config.seed) if step == 1 else self.env.reset()
        action = self._random_action() if step <= self.config.learning_starts else \
            self.agent.act(self.observation, deterministic=False)
        next_observation, reward, terminated, truncated, info = self.env.step(action)
        cost = None if info.get("cost") is None else float(info["cost"])
        self.replay.add(self.observation, action, float(reward) * self._reward_factor(step), next_observation,
                        terminated, truncated, cost)
        self.step = step
        self.counters.add_reward(float(reward))
        if self.on_env_step is not None:
            self.on_env_step(EnvStep(step, self.observation, action, float(reward), next_observation,
                                     bool(terminated), bool(truncated), info, cost))
        self.observation = next_observation
        self.episode_done = bool(terminated or truncated)
        if self.episode_done:
            self.counters.finish_episode(step)
            self.observation = None

    def _reward_factor(self, step: int) -> float:
        window = self.config.reward_scale_steps
        return self.config.reward_scale if window is not None and window[0] <= step <= window[1] else 1.0

    def _random_action(self) -> np.ndarray | int:
        if self.spec.discrete:
            return int(self.rng.integers(self.spec.action_dim))
        low, high = np.asarray(self.spec.action_low), np.asarray(self.spec.action_high)
        return self.rng.uniform(low, high).astype(np.float32)

    def _train(self, step: int) -> None:
        """`utd_ratio` updates once the random-action phase is over."""
        if step <= self.config.learning_starts:
            return
        start = time.perf_counter()
        for _ in range(self.utd_ratio):
            batch = self.replay.sample(self.batch_size, self.rng)
            if self.agent.device.type != "cpu":
                batch = batch.to(self.agent.device)
            self.window.add(self.agent.update(batch))
        self.counters.updates += self.utd_ratio
        self.counters.update_time_s += time.perf_counter() - start

    # --- between steps ------------------------------------------------------------------------------------
    def _loop(self) -> Loop:
        config, run, callback = self.config, self.run, self.callback
        calls = None if callback is None else \
            Periodic(Cadence(self.callback_every), lambda step: callback(step, self.agent, self.replay))
        checkpoints = run is not None and config.checkpoint_every > 0
        return Loop(self._take_step, config.total_steps,
                    evaluate=Periodic(Cadence(config.eval_every), self._evaluate),
                    log=Periodic(Cadence(config.log_every), self._log) if run is not None else None,
                    callback=calls,
                    checkpoint=Periodic(self._checkpoint_due, self._save_checkpoint) if checkpoints else None)

    def _evaluate(self, step: int) -> None:
        self.last_eval_result = evaluate(self.agent, self.config.env_id, episodes=self.config.eval_episodes,
                                         seed=self.eval_seed)
        self.last_eval = EvalSummary.of(step, self.last_eval_result)
        self.counters.eval_history.append([step, self.last_eval.mean_return])

    def _log(self, step: int) -> None:
        counters = self.counters
        row = {name: math.nan for name in self.metric_names}  # the first row fixes the columns, so name them all
        row.update(self.window.averages())
        row["episode_return"] = float(np.mean(counters.window_returns)) if counters.window_returns else math.nan
        evaluated = evaluated_at(step, self.last_eval)
        row["eval_return"] = math.nan if evaluated is None else evaluated.mean_return
        row["updates"] = counters.updates
        row["env_steps_per_s"] = step / counters.train_time_s if counters.train_time_s > 0 else math.nan
        assert self.run is not None
        self.run.log_metrics(step, row)
        self.window.clear()
        counters.window_returns = []

    def _status(self) -> str:
        """The progress bar's text: the last training episode's return and the latest evaluation."""
        returns = self.counters.episode_returns
        parts = [f"return {returns[-1][1]:.1f}" if returns else "", self.last_eval.status() if self.last_eval else ""]
        return "  ".join(part for part in parts if part)

    # --- checkpoints ----------------------------------------------------------------------------------------
    def _checkpoint_due(self, step: int) -> bool:
        """At the first episode end at or after each multiple of `checkpoint_every`."""
        return self.episode_done and Cadence(self.config.checkpoint_every).passed_since(self.last_checkpoint, step)

    def _save_checkpoint(self, step: int) -> None:
        assert self.run is not None
        replay_path = self.run.checkpoints / f"replay_{step}.npz"
        self.replay.save(replay_path)  # before the agent checkpoint, which is what marks the step as resumable
        random = {"trainer": self.rng.bit_generator.state,
                  "env": self.env.unwrapped.np_random.bit_generator.state, **torch_random_states()}
        state = ResumeState(kind="online", step=step, elapsed_s=self.clock.elapsed_s(),
                            metric_window=self.window.state(),
                            last_eval=None if self.last_eval is None else asdict(self.last_eval),
                            random=random, loop=asdict(self.counters))
        state.write(self.run.checkpoint_path(f"step_{step}"), self.agent, {"step": step, "env_id": self.config.env_id})
        for older in self.run.checkpoints.glob("replay_*.npz"):
            if older != replay_path:
                older.unlink()
        self.last_checkpoint = step

    def restore(self) -> None:
        """Continue from the run's latest step checkpoint (from the start when none was written)."""
        assert self.run is not None
        latest = self.run.latest_checkpoint("step_")
        if latest is not None:
            saved = ResumeState.read_into(self.agent, latest, kind="online", device=str(self.agent.device))
            self.step = self.last_checkpoint = saved.step
            self.counters = _OnlineCounters(**saved.loop)
            self.window = MetricWindow.from_state(saved.metric_window)
            self.last_eval = None if saved.last_eval is None else EvalSummary(**saved.last_eval)
            self.clock.earlier_s = saved.elapsed_s
            self.replay.load(self.run.checkpoints / f"replay_{saved.step}.npz")
            self.rng.bit_generator.state = saved.random["trainer"]
            self.env.unwrapped.np_random.bit_generator.state = saved.random["env"]
            restore_torch_random_states(saved.random)
        self.resumed_from = self.step
        self.run.truncate_metrics(self.step)

    # --- the whole run ----------------------------------------------------------------------------------------
    def train(self, progress: bool) -> OnlineTrainResult:
        """Run to `total_steps`."""
        self.clock.start_session()
        with update_bar(f"{self.config.algo} {self.config.env_id}", self.config.total_steps, completed=self.step,
                        enabled=progress, unit="steps", status=self._status) as show:
            self._loop().run(self.step, show)
        return self.result()

    def result(self) -> OnlineTrainResult:
        counters = self.counters
        return OnlineTrainResult(
            agent=self.agent, replay=self.replay,
            eval_history=[(int(s), float(r)) for s, r in counters.eval_history],
            wall_time_s=self.clock.elapsed_s(),
            env_steps_per_s=self.step / counters.train_time_s if counters.train_time_s > 0 else 0.0,
            updates_per_s=counters.updates / counters.update_time_s if counters.update_time_s > 0 else 0.0,
            steps=self.step, updates=counters.updates,
            episode_returns=[(int(s), float(r)) for s, r in counters.episode_returns],
            last_eval=self.last_eval_result if evaluated_at(self.step, self.last_eval) else None,
        )


def train_online(agent: AgentBase, config: OnlineTrainConfig, *, run: RunDirectory | None = None,
                 callback: Callback | None = None, progress: bool = True, resume: bool = False,
                 callback_every: int | None = None,
                 on_env_step: Callable[[EnvStep], Any] | None = None) -> OnlineTrainResult:
    """Train `agent` online in `config.env_id` for `config.total_steps` env steps.

    With `run`, metrics go to its metrics.csv/TensorBoard and checkpoints to its checkpoints/ folder; `resume`
    restores the latest checkpoint there (agent, replay buffer, step counter, random states; metric rows after
    it are dropped). `callback(step, agent, replay)` is called after every env step that is a multiple of
    `callback_every` (default: `config.callback_every`), after that step's updates and evaluation.
    `on_env_step(env_step)` is called after every env step, before its updates, with all the environment
    returned (`EnvStep`: reward, cost, terminated, truncated, info).
    """
    check_config(config)
    if resume and run is None:
        raise TrajlabError("resume needs the run directory of the interrupted run")
    set_threads(config.num_threads)
    training = _OnlineTraining(agent, config, run, callback, callback_every or config.callback_every, on_env_step)
    try:
        if resume:
            training.restore()
        return training.train(progress)
    finally:
        training.env.close()
        if run is not None:
            run.close()


def _check_agent_fits(agent: AgentBase, spec: SpaceSpec, env_id: str) -> None:
    have = (agent.spec.observation_dim, agent.spec.action_dim, agent.spec.discrete)
    need = (spec.observation_dim, spec.action_dim, spec.discrete)
    if have != need:
        raise TrajlabError(f"agent built for (obs_dim, act_dim, discrete)={have}, but {env_id} has {need}")


# --- trajlab train-online --------------------------------------------------------------------------------------
def default_run_path(config: OnlineTrainConfig) -> Path:
    return Path("runs") / f"{config.algo}_{config.env_id}_seed{config.seed}"


def run(config: OnlineTrainConfig, *, out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
        progress: bool = True,
        after_training: Callable[[RunDirectory, OnlineTrainResult, OnlineTrainConfig], Any] | None = None,
        callback: Callback | None = None) -> dict[str, Any]:
    """Train, evaluate and write a run directory; returns the content of result.json (keys: RESULT_KEYS).

    `after_training(run_dir, result, config)` runs before result.json is written (the command layer draws the
    learning curve there: plotting is above training); `callback` goes to `train_online`, called every
    `config.callback_every` steps (influence estimates during training)."""
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
    result = train_online(agent, config, run=run_dir, progress=progress, resume=resume, callback=callback)
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
                       "behaviour_normalized_score": final_eval.mean_behaviour_normalized_score,
                       "episodes": int(len(final_eval.returns))},
        "eval_history": [list(item) for item in result.eval_history],
        "checkpoint": str(checkpoint), "run_dir": str(run_dir.path),
    }
    run_dir.write_result(summary)
    return summary


def _check_same_run(run_dir: RunDirectory, stored: dict[str, Any]) -> None:
    saved = run_dir.config()
    defaults = to_dict(OnlineTrainConfig())  # a run from before a setting existed has it at its default
    for name in _SAME_ON_RESUME:
        before = saved.get("train", {}).get(name, defaults[name])
        if before != stored["train"][name]:
            raise TrajlabError(f"{run_dir.path}: cannot resume with a different {name} "
                               f"(run has {before!r}, given {stored['train'][name]!r})")
    if split_runtime_options(saved.get("agent") or {})[0] != stored["agent"]:  # older runs stored compile/bf16 there
        raise TrajlabError(f"{run_dir.path}: cannot resume with different agent options "
                           f"(run has {saved.get('agent')!r})")
