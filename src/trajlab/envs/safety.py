"""Safety-Gymnasium tasks with their cost kept end to end, vectorised, and drawn top-down for GIFs.

`make_safety_env` gives the task's own six-value API (obs, reward, cost, terminated, truncated, info);
`SafetyVectorEnv` steps several copies and returns costs beside rewards (Gymnasium's vector envs and standard
wrappers drop the cost); `GymnasiumCostEnv` is the five-value Gymnasium API with the cost in `info["cost"]`,
which `trajlab.envs.make` returns so the rest of trajlab (the online loop's replay buffer) keeps it too.
MuJoCo rendering of these tasks fails on current mujoco, so `draw_top_down` paints agent, goal, hazards and
trail from the simulator's state with numpy alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError

SAFETY_ENVS = ("SafetyPointGoal1-v0",)
"""The Safety-Gymnasium tasks trajlab registers (envs/registry.py lists them in the `safety` family)."""


def check_safety_env(env_id: str) -> None:
    """A one-line error for an id that is not a registered Safety-Gymnasium task."""
    from trajlab.envs.registry import env_info

    if env_info(env_id).family != "safety" or env_id not in SAFETY_ENVS:
        raise TrajlabError(f"{env_id} is not a Safety-Gymnasium task (it has no cost signal); "
                           f"use one of {', '.join(SAFETY_ENVS)}")


def make_safety_env(env_id: str, *, seed: int | None = None) -> Any:
    """The raw task (six-value step), reset once with `seed`."""
    check_safety_env(env_id)
    try:
        from trajlab.envs.safety_compat import install

        install()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its Box bounds overflow float32 casts: harmless, noisy
            import safety_gymnasium

            env = safety_gymnasium.make(env_id, apply_api_compatibility=False, disable_env_checker=True,
                                        autoreset=False)
    except ImportError as error:
        raise TrajlabError(f"environment {env_id} cannot be created: {error} "
                           "(pip install --no-deps safety-gymnasium==1.0.0 xmltodict)") from None
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def check_finite(observations: np.ndarray, where: str) -> np.ndarray:
    """Observations as float32; NaN or infinite entries are a one-line error (a broken env or input file)."""
    array = np.asarray(observations, dtype=np.float32)
    if not np.isfinite(array).all():
        raise TrajlabError(f"{where}: observations hold NaN or infinite values")
    return array


class GymnasiumCostEnv:
    """The five-value Gymnasium API over a safety task, with the step's cost in `info["cost"]`."""

    def __init__(self, env_id: str, seed: int | None = None) -> None:
        import gymnasium as gym

        self.env = make_safety_env(env_id, seed=seed)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, self.env.observation_space.shape, np.float64)
        self.action_space = self.env.action_space
        self.spec = None
        self.metadata: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, cost, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), bool(terminated), bool(truncated), {**info, "cost": float(cost)}

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def close(self) -> None:
        self.env.close()


@dataclass
class VectorStep:
    """One step of every copy; `final_*` are set for copies whose episode ended (and were reset)."""

    observations: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    goal_met: np.ndarray
    final_observations: dict[int, np.ndarray] = field(default_factory=dict)


class SafetyVectorEnv:
    """`count` copies stepped in turn in this process, reset as each episode ends; costs kept per step.

    In-process copies beat worker processes here: one step is ~0.8 ms of MuJoCo, less than a pipe round trip
    costs on two shared cores (see benchmarks/safety_env_throughput.py)."""

    def __init__(self, env_id: str, count: int, *, seed: int = 0) -> None:
        if count < 1:
            raise TrajlabError(f"number of environments must be at least 1, got {count}")
        self.envs = [make_safety_env(env_id, seed=seed + index) for index in range(count)]
        self.count = count
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space, self.action_space = self.single_observation_space, self.single_action_space
        self._seed = seed

    def reset(self) -> np.ndarray:
        return check_finite(np.stack([env.reset(seed=self._seed + i)[0] for i, env in enumerate(self.envs)]),
                            "reset")

    def step(self, actions: np.ndarray) -> VectorStep:
        rows, finals = [], {}
        for index, (env, action) in enumerate(zip(self.envs, np.asarray(actions), strict=True)):
            obs, reward, cost, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
            if terminated or truncated:
                finals[index] = obs
                obs, _ = env.reset()
            rows.append((obs, reward, cost, terminated, truncated, bool(info.get("goal_met", False))))
        obs, rewards, costs, terminated, truncated, goals = (np.array(column) for column in zip(*rows, strict=True))
        return VectorStep(check_finite(obs, "step"), rewards.astype(np.float32), costs.astype(np.float32),
                          terminated.astype(bool), truncated.astype(bool), goals.astype(bool),
                          {index: check_finite(value, "step") for index, value in finals.items()})

    def close(self) -> None:
        for env in self.envs:
            env.close()


# --- top-down pictures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where things are in one step (world x, y), read from the simulator."""

    agent: np.ndarray
    goal: np.ndarray
    goal_size: float
    hazards: np.ndarray
    hazard_size: float
    vases: np.ndarray


def layout_of(env: Any) -> Layout:
    """The current positions of agent, goal, hazards and vases of a safety task."""
    task = env.unwrapped.task
    vases = np.array(task.vases.pos)[:, :2] if getattr(task, "vases", None) is not None else np.zeros((0, 2))
    return Layout(np.array(task.agent.pos[:2]), np.array(task.goal.pos[:2]), float(task.goal.size),
                  np.array(task.hazards.pos)[:, :2], float(task.hazards.size), vases)


def draw_top_down(layout: Layout, trail: np.ndarray, *, size: int = 160, extent: float = 2.0) -> np.ndarray:
    """An RGB frame [size, size, 3]: hazards blue, goal green, vases cyan, trail grey, agent red."""
    frame = np.full((size, size, 3), 245, dtype=np.uint8)
    ys, xs = np.mgrid[0:size, 0:size]
    world_x = (xs + 0.5) / size * 2 * extent - extent
    world_y = extent - (ys + 0.5) / size * 2 * extent

    def disc(centre: np.ndarray, radius: float, colour: tuple[int, int, int]) -> None:
        inside = (world_x - centre[0]) ** 2 + (world_y - centre[1]) ** 2 <= radius**2
        frame[inside] = colour

    for hazard in layout.hazards:
        disc(hazard, layout.hazard_size, (90, 120, 230))
    for vase in layout.vases:
        disc(vase, 0.1, (60, 200, 200))
    disc(layout.goal, layout.goal_size, (60, 180, 60))
    for point in trail[-200:]:
        disc(point, 0.025, (150, 150, 150))
    disc(layout.agent, 0.08, (220, 40, 40))
    return frame
