"""Policy rollouts: batched evaluation over several environment copies, and frame capture for GIFs.

Evaluation steps `episodes` environment copies side by side and asks the agent for all their actions in one
`act` call, which is where the time goes for neural policies. `rollouts_by_copy` does the same with a policy
told which copy each observation comes from, so many policies (for example one member mask per experience group,
PIToD) are evaluated side by side in one batched call per step, optionally recording every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajlab.envs.registry import env_info, make, make_many
from trajlab.eval.scores import behaviour_normalized_score, normalized_score


@dataclass(frozen=True)
class EvalResult:
    """Returns of evaluation episodes and their summary."""

    env_id: str
    returns: np.ndarray
    lengths: np.ndarray
    normalized_scores: np.ndarray | None = None
    """D4RL normalised scores per episode (None where D4RL has no reference for the environment)."""
    behaviour_normalized_scores: np.ndarray | None = None
    """Scores against the dataset's behaviour policies (None without their returns in the metadata)."""
    costs: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def mean_normalized_score(self) -> float | None:
        return None if self.normalized_scores is None else float(np.mean(self.normalized_scores))

    @property
    def mean_behaviour_normalized_score(self) -> float | None:
        scores = self.behaviour_normalized_scores
        return None if scores is None else float(np.mean(scores))

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "env_id": self.env_id,
            "episodes": int(len(self.returns)),
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "mean_length": float(np.mean(self.lengths)),
            "returns": [float(r) for r in self.returns],
        }
        if self.normalized_scores is not None:
            summary["normalized_score"] = self.mean_normalized_score
        if self.behaviour_normalized_scores is not None:
            summary["behaviour_normalized_score"] = self.mean_behaviour_normalized_score
        if self.costs is not None:
            summary["mean_cost"] = float(np.mean(self.costs))
        return summary


def evaluate(agent: Any, env_id: str, *, episodes: int = 10, seed: int = 0, deterministic: bool = True,
             metadata: dict[str, Any] | None = None, max_steps: int | None = None) -> EvalResult:
    """Run `episodes` episodes (one per environment copy, seeds seed..seed+episodes-1), all in lock step."""
    envs = make_many(env_id, episodes, seed=seed)
    try:
        reset_seeds = [seed + index for index in range(episodes)]
        returns, lengths, costs = _run_lockstep(envs, lambda batch, _rows, det: agent.act(batch, det), reset_seeds,
                                                deterministic, max_steps)
    finally:
        for env in envs:
            env.close()
    return EvalResult(
        env_id=env_id, returns=returns, lengths=lengths,
        normalized_scores=_scores([normalized_score(r, env_id) for r in returns]),
        behaviour_normalized_scores=_scores([behaviour_normalized_score(r, metadata) for r in returns]),
        costs=costs if costs.any() else None,
    )


def _scores(scores: list[float | None]) -> np.ndarray | None:
    # one reference scores every episode or none of them
    return None if not scores or scores[0] is None else np.asarray(scores, dtype=np.float64)


RowPolicy = Callable[[np.ndarray, np.ndarray, bool], np.ndarray]
"""act(observations [N, obs_dim], the environment copy of each row [N], deterministic) -> actions [N, ...]."""


@dataclass(frozen=True)
class CopyRollouts:
    """One episode per environment copy: returns, lengths and, when recorded, every step of each episode."""

    returns: np.ndarray
    lengths: np.ndarray
    steps: list[dict[str, np.ndarray]] | None = None
    """Per copy: observations [T, obs], actions [T, ...], rewards [T], terminals [T] (None unless recorded)."""


def rollouts_by_copy(act: RowPolicy, env_id: str, reset_seeds: list[int], *, deterministic: bool = True,
                     max_steps: int | None = None, record: bool = False) -> CopyRollouts:
    """One episode per reset seed, each in its own environment copy, all in lock step (policies compared on the
    same seeds then start from the same states)."""
    copies = len(reset_seeds)
    envs = make_many(env_id, copies, seed=min(reset_seeds, default=0))
    recorder = _StepRecorder(copies) if record else None
    try:
        returns, lengths, _ = _run_lockstep(envs, act, reset_seeds, deterministic, max_steps, recorder)
    finally:
        for env in envs:
            env.close()
    return CopyRollouts(returns, lengths, None if recorder is None else recorder.arrays())


class _StepRecorder:
    """Collects the steps of lock-step episodes, copy by copy."""

    def __init__(self, copies: int) -> None:
        self.rows: list[dict[str, list[Any]]] = [
            {"observations": [], "actions": [], "rewards": [], "terminals": []} for _ in range(copies)]

    def add(self, index: int, observation: np.ndarray, action: Any, reward: float, terminated: bool) -> None:
        row = self.rows[index]
        row["observations"].append(observation)
        row["actions"].append(action)
        row["rewards"].append(reward)
        row["terminals"].append(terminated)

    def arrays(self) -> list[dict[str, np.ndarray]]:
        return [{key: np.asarray(value) for key, value in row.items()} for row in self.rows]


def _run_lockstep(envs: list[Any], act: RowPolicy, reset_seeds: list[int], deterministic: bool, max_steps: int | None,
                  recorder: _StepRecorder | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = len(envs)
    observations = [env.reset(seed=reset_seed)[0] for reset_seed, env in zip(reset_seeds, envs)]
    returns, costs = np.zeros(count), np.zeros(count)
    lengths = np.zeros(count, dtype=np.int64)
    active = np.ones(count, dtype=bool)
    while active.any():
        running = np.flatnonzero(active)
        batch = np.stack([np.asarray(observations[i], dtype=np.float32).ravel() for i in running])
        actions = np.asarray(act(batch, running, deterministic))
        for row, (action, index) in enumerate(zip(actions, running)):
            observation, reward, terminated, truncated, info = envs[index].step(action)
            if recorder is not None:
                recorder.add(int(index), batch[row], action, float(reward), bool(terminated))
            observations[index] = observation
            returns[index] += float(reward)
            costs[index] += float(info.get("cost", 0.0))
            lengths[index] += 1
            if terminated or truncated or (max_steps is not None and lengths[index] >= max_steps):
                active[index] = False
    return returns, lengths, costs


def policy_rollout(act: Callable[..., np.ndarray], env_id: str, *, seed: int = 0, deterministic: bool = True,
                   render: bool = False, max_steps: int | None = None, render_every: int = 1,
                   render_size: int = 160) -> dict[str, Any]:
    """One episode with its observations, actions, rewards and (if `render`) RGB frames."""
    size = {"width": render_size, "height": render_size} if render and env_info(env_id).family == "mujoco" else {}
    env = make(env_id, seed=seed, render_mode="rgb_array" if render else None, **size)
    try:
        observation, _ = env.reset(seed=seed)
        record: dict[str, list[Any]] = {"observations": [], "actions": [], "rewards": [], "frames": []}
        done, step = False, 0
        while not done and (max_steps is None or step < max_steps):
            if render and step % render_every == 0:
                record["frames"].append(env.render())
            flat = np.asarray(observation, dtype=np.float32).ravel()
            action = np.asarray(act(flat[None], deterministic))[0]
            observation, reward, terminated, truncated, _ = env.step(action)
            record["observations"].append(flat)
            record["actions"].append(action)
            record["rewards"].append(float(reward))
            done, step = terminated or truncated, step + 1
    finally:
        env.close()
    return {key: np.asarray(value) for key, value in record.items()}


def capture_frames(agent: Any, env_id: str, *, seed: int = 0, max_steps: int = 200, render_every: int = 2,
                   render_size: int = 160) -> np.ndarray:
    """RGB frames [T, H, W, 3] of one deterministic episode (rendering is slow: keep max_steps small)."""
    return policy_rollout(agent.act, env_id, seed=seed, render=True, max_steps=max_steps,
                          render_every=render_every, render_size=render_size)["frames"]
