"""MiniGrid tasks for on-policy learners, with the agent's view kept as frames for a critical-state detector.

`MiniGridVectorEnv` steps `count` copies in this process with the interface of `SafetyVectorEnv` (so the
on-policy loop of `trajlab.training.onpolicy` drives it unchanged): the observation is the agent's 7x7 symbolic
view flattened (147 numbers), the cost is always 0 and `goal_met` marks a success (the episode ended with a
positive reward). With `record_frames` each copy also keeps its episode as rendered frames, the agent's point of
view as GridWorld-S draws it (`trajlab.explain.gridworld`), and `drain()` hands over, for the steps since the
last call, which episode and frame each step was and the frames of every episode that finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.envs.safety import VectorStep

MINIGRID_TASKS = ("MiniGrid-KeyCorridorS3R1-v0", "MiniGrid-KeyCorridorS3R2-v0", "MiniGrid-KeyCorridorS3R3-v0",
                  "MiniGrid-KeyCorridorS4R3-v0", "MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-6x6-v0",
                  "MiniGrid-Empty-5x5-v0")
"""Tasks the on-policy MiniGrid learner accepts (the KeyCorridor family is the one GridWorld-S frames show)."""


def make_minigrid(env_id: str, *, seed: int) -> Any:
    """The raw MiniGrid env for a known task id, reset once with `seed`."""
    if env_id not in MINIGRID_TASKS:
        raise TrajlabError(f"unknown MiniGrid task {env_id!r}; known: {', '.join(MINIGRID_TASKS)}")
    try:
        import gymnasium as gym
        import minigrid  # noqa: F401 (registers the MiniGrid ids with Gymnasium)
    except ImportError as error:
        raise TrajlabError(f"environment {env_id} cannot be created: {error} (pip install minigrid)") from None
    env = gym.make(env_id).unwrapped
    env.reset(seed=seed)
    return env


@dataclass
class StepTrace:
    """What `MiniGridVectorEnv.drain` hands over: per step since the last drain, [T, N] arrays."""

    episode: np.ndarray
    """Serial number of the episode each step belongs to (unique over the env's life)."""
    frame: np.ndarray
    """Index, within its episode, of the frame the step's action was taken in."""
    finished: dict[int, np.ndarray] = field(default_factory=dict)
    """Serial -> frames [L, H, W, 3] (uint8; the views before each action and the final view) of every episode
    that finished since the last drain."""
    successes: dict[int, bool] = field(default_factory=dict)
    """Serial -> whether that finished episode succeeded."""


class MiniGridVectorEnv:
    """`count` MiniGrid copies stepped in turn, reset as each episode ends (copy i's first layout: seed + i)."""

    def __init__(self, env_id: str, count: int, *, seed: int = 0, record_frames: bool = False,
                 tile_size: int = 4) -> None:
        if count < 1:
            raise TrajlabError(f"number of environments must be at least 1, got {count}")
        self.envs = [make_minigrid(env_id, seed=seed + index) for index in range(count)]
        self.count, self.env_id, self._seed = count, env_id, seed
        self.record_frames, self.tile_size = record_frames, tile_size
        import gymnasium as gym

        self.single_observation_space = gym.spaces.Box(0.0, 255.0, (147,), np.float32)
        self.single_action_space = gym.spaces.Discrete(int(self.envs[0].action_space.n))
        self.observation_space, self.action_space = self.single_observation_space, self.single_action_space
        self._serial = np.arange(count)
        self._next_serial = count
        self._position = np.zeros(count, dtype=np.int64)
        self._frames: list[list[np.ndarray]] = [[] for _ in range(count)]
        self._trace_episode: list[np.ndarray] = []
        self._trace_frame: list[np.ndarray] = []
        self._finished: dict[int, np.ndarray] = {}
        self._successes: dict[int, bool] = {}

    def reset(self) -> np.ndarray:
        observations = []
        for index, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self._seed + index)
            observations.append(_flat(obs))
            self._position[index] = 0
            self._frames[index] = [self._render(env)] if self.record_frames else []
        return np.stack(observations)

    def step(self, actions: np.ndarray) -> VectorStep:
        rows, finals = [], {}
        actions = np.asarray(actions).reshape(self.count)
        if self.record_frames:
            self._trace_episode.append(self._serial.copy())
            self._trace_frame.append(self._position.copy())
        self._position += 1
        for index, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, terminated, truncated, _ = env.step(int(action))
            success = bool(terminated and reward > 0)
            if self.record_frames:
                self._frames[index].append(self._render(env))
            if terminated or truncated:
                finals[index] = _flat(obs)
                self._finish(index, success)
                obs, _ = env.reset()
                if self.record_frames:
                    self._frames[index] = [self._render(env)]
            rows.append((_flat(obs), float(reward), terminated, truncated, success))
        obs, rewards, terminated, truncated, goals = (np.array(column) for column in zip(*rows, strict=True))
        return VectorStep(obs.astype(np.float32), rewards.astype(np.float32), np.zeros(self.count, np.float32),
                          terminated.astype(bool), truncated.astype(bool), goals.astype(bool), finals)

    def _finish(self, index: int, success: bool) -> None:
        serial = int(self._serial[index])
        if self.record_frames:
            self._finished[serial] = np.stack(self._frames[index])
        self._successes[serial] = success
        self._serial[index] = self._next_serial
        self._next_serial += 1
        self._position[index] = 0

    def _render(self, env: Any) -> np.ndarray:
        return env.get_frame(highlight=False, tile_size=self.tile_size, agent_pov=True)

    def drain(self) -> StepTrace:
        """The steps since the last drain (or reset) and the episodes that finished in them; then forget them."""
        if not self._trace_episode:
            empty = np.zeros((0, self.count), dtype=np.int64)
            return StepTrace(empty, empty.copy())
        trace = StepTrace(np.stack(self._trace_episode), np.stack(self._trace_frame), self._finished,
                          self._successes)
        self._trace_episode, self._trace_frame, self._finished, self._successes = [], [], {}, {}
        return trace

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _flat(observation: dict[str, Any]) -> np.ndarray:
    return np.asarray(observation["image"], dtype=np.float32).reshape(-1)
