"""Which environments trajlab knows, how to make them, and their reference returns.

Only registered ids are accepted, so a typo fails at once with the list of known ids instead of deep inside
Gymnasium. Families that need an optional extra (MiniGrid, Safety-Gymnasium, ALE) register themselves here
when their issue lands, with the extra named in the error when it is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from trajlab.core.errors import TrajlabError


@dataclass(frozen=True)
class EnvInfo:
    """One known environment."""

    env_id: str
    """The id trajlab users type (also the Gymnasium id)."""
    family: str
    """mujoco, classic, minigrid, safety or atari."""
    max_episode_steps: int
    """Episode length cap (timeouts in datasets come from it)."""
    reference_random: float | None = None
    """D4RL's reference return of a random policy (for normalised scores), where D4RL has one."""
    reference_expert: float | None = None
    """D4RL's reference return of an expert policy, where D4RL has one."""
    extra: str | None = None
    """The pip extra that provides this family (None: core dependencies)."""


# D4RL v2 reference returns (REF_MIN_SCORE / REF_MAX_SCORE), the usual normalisation for the v5 envs too.
ENVIRONMENTS: dict[str, EnvInfo] = {
    info.env_id: info
    for info in [
        EnvInfo("Hopper-v5", "mujoco", 1000, -20.272305, 3234.3),
        EnvInfo("HalfCheetah-v5", "mujoco", 1000, -280.178953, 12135.0),
        EnvInfo("Walker2d-v5", "mujoco", 1000, 1.629008, 4592.3),
        EnvInfo("Pendulum-v1", "classic", 200),
        EnvInfo("CartPole-v1", "classic", 500),
        EnvInfo("MountainCarContinuous-v0", "classic", 999),
        EnvInfo("Acrobot-v1", "classic", 500),
        EnvInfo("SafetyPointGoal1-v0", "safety", 1000, extra="safety"),
    ]
}


def known_env_ids() -> list[str]:
    return sorted(ENVIRONMENTS)


def env_info(env_id: str) -> EnvInfo:
    """The registry entry for `env_id`; an unknown id is a user error that lists the known ones."""
    if env_id not in ENVIRONMENTS:
        raise TrajlabError(f"unknown environment {env_id!r}; known: {', '.join(known_env_ids())}")
    return ENVIRONMENTS[env_id]


def make(env_id: str, *, seed: int | None = None, render_mode: str | None = None, **kwargs: Any) -> Any:
    """A Gymnasium environment for a known id, reset once with `seed` so its RNG is seeded."""
    info = env_info(env_id)
    if info.family == "safety" and info.extra == "safety":  # Safety-Gymnasium: its cost goes into info["cost"]
        from trajlab.envs.safety import GymnasiumCostEnv

        return GymnasiumCostEnv(env_id, seed)
    if render_mode == "rgb_array" and info.family == "mujoco":
        os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    try:
        env = gym.make(env_id, render_mode=render_mode, max_episode_steps=info.max_episode_steps, **kwargs)
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        hint = f" (pip install 'trajlab[{info.extra}]')" if info.extra else ""
        raise TrajlabError(f"environment {env_id} cannot be created: {error}{hint}") from None
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_many(env_id: str, count: int, *, seed: int = 0, **kwargs: Any) -> list[Any]:
    """`count` independent copies seeded seed, seed+1, ... (for batched evaluation)."""
    return [make(env_id, seed=seed + index, **kwargs) for index in range(count)]
