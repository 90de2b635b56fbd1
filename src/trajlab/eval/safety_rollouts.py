"""Rollouts of a policy in a safety task with every step's cost: per-episode records and labelled states.

Both the unlearning methods (hazard states for a probe) and the audits (the policy suite) roll policies out
here; the policy is anything with `act(observations, deterministic)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.envs.safety import SafetyVectorEnv


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluation episode."""

    episode: int
    ret: float
    cost: float
    length: int
    goals: int

    @property
    def cost_rate(self) -> float:
        return self.cost / max(self.length, 1)


def run_episodes(policy: Any, env_id: str, episodes: int, *, seed: int, num_envs: int = 4,
                 deterministic: bool = True, max_steps: int | None = None) -> list[EpisodeRecord]:
    """`episodes` whole episodes (env copies seeded seed, seed+1, ...), or cut at `max_steps` steps each."""
    envs = SafetyVectorEnv(env_id, min(num_envs, episodes), seed=seed)
    obs, records = envs.reset(), []
    running = np.zeros((envs.count, 4))
    active = np.ones(envs.count, dtype=bool)
    started = envs.count
    while active.any():
        step = envs.step(policy.act(obs, deterministic))
        running += np.stack([step.rewards, step.costs, np.ones(envs.count), step.goal_met], axis=1) * active[:, None]
        cut = running[:, 2] >= max_steps if max_steps else np.zeros(envs.count, dtype=bool)
        for index in np.flatnonzero((step.terminated | step.truncated | cut) & active):
            ret, cost, length, goals = running[index]
            records.append(EpisodeRecord(len(records), float(ret), float(cost), int(length), int(goals)))
            running[index] = 0.0
            active[index] = started < episodes
            started += int(active[index])
        obs = step.observations
    envs.close()
    return records


def labelled_states(policy: Any, env_id: str, steps: int, *, seed: int, num_envs: int = 4,
                    deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(observations [S, obs_dim], in_hazard [S] bool): the states a policy visits and whether the step from each
    cost (the agent was inside a hazard)."""
    envs = SafetyVectorEnv(env_id, num_envs, seed=seed)
    obs, states, labels = envs.reset(), [], []
    for _ in range(max(1, steps // num_envs)):
        step = envs.step(policy.act(obs, deterministic))
        states.append(obs)
        labels.append(step.costs > 0)
        obs = step.observations
    envs.close()
    return np.concatenate(states), np.concatenate(labels)


def top_down_frames(policy: Any, env_id: str, steps: int, *, seed: int, every: int = 2,
                    deterministic: bool = True) -> np.ndarray:
    """Top-down RGB frames [F, H, W, 3] of one episode (every `every`-th step), trail included."""
    from trajlab.envs.safety import draw_top_down, layout_of, make_safety_env

    env = make_safety_env(env_id)
    obs, _ = env.reset(seed=seed)
    trail, frames = [], []
    for step in range(steps):
        layout = layout_of(env)
        trail.append(layout.agent)
        if step % every == 0:
            frames.append(draw_top_down(layout, np.array(trail)))
        obs, _, _, terminated, truncated, _ = env.step(policy.act(obs[None].astype(np.float32), deterministic)[0])
        if terminated or truncated:
            break
    env.close()
    return np.stack(frames)
