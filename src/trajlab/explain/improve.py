"""Policy improvement from critical states: PPO on a MiniGrid task, its reward given a bonus where a trained
Deep State Identifier marks each episode's critical frames.

Each finished training episode's frames (the agent's view, drawn as GridWorld-S draws it) go through the
detector, and action frame i (every frame but the final view) earns weight * m_i / sum_j m_j, m the detector's
mask. Every episode so receives exactly `weight` in bonus, success or not (or, with `bonus_episodes:
successes`, every success and no failure): lingering in states that look critical earns nothing more, and the
bonus only decides which steps the credit goes to. The control arm `shuffled` gives the same episode's mask
values to its frames in a random order: the same amounts, as concentrated, with nothing about where. A
difference between `critical` and `shuffled` is then the detector's placement, not more reward.

The bonus reaches a step when its episode finishes inside the rollout that holds the step (the detector reads
the whole episode); steps of an episode collected in an earlier rollout were trained on without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from trajlab.algos.online.ppo_lagrangian import PPOLagrangianConfig
from trajlab.core.errors import TrajlabError
from trajlab.data.frames import EpisodeVideo, FrameStore
from trajlab.envs.minigrid import MiniGridVectorEnv, StepTrace
from trajlab.explain.dsi import DSIModel, check_fits, mask_scores
from trajlab.training.onpolicy import Rollout

BONUS_EPISODES = ("all", "successes")
ARMS = ("plain", "critical", "shuffled")
"""plain: PPO on the task's reward; critical: plus the detector-placed bonus; shuffled: the same bonus values
at random frames of the same episode (the control)."""


@dataclass(frozen=True)
class LearnerConfig:
    """The MiniGrid task and the PPO learner of every arm (section `improve` of configs/critical/<preset>.yaml)."""

    env: str = "MiniGrid-KeyCorridorS3R1-v0"
    """MiniGrid task (trajlab.envs.minigrid.MINIGRID_TASKS); its views must match the model's frames."""
    envs: int = 8
    """Env copies per rollout."""
    horizon: int = 128
    """Steps of every copy per policy iteration."""
    iterations: int = 100
    """Policy iterations per run (env steps = iterations x envs x horizon)."""
    bonus: float = 0.1
    """Bonus per episode (the task's success reward is 1 - 0.9 x steps / max_steps, between 0.1 and 1)."""
    bonus_episodes: str = "all"
    """Which finished episodes earn it: all, or successes (then the detector only says where a success's extra
    credit goes, and a failure earns nothing)."""
    ppo: PPOLagrangianConfig = PPOLagrangianConfig(use_cost=False, lr=1e-3, entropy_coef=0.01, epochs=4,
                                                   batch_size=256)
    """The PPO settings (the cost constraint is always off here)."""

    def __post_init__(self) -> None:
        for name in ("envs", "horizon", "iterations"):
            if getattr(self, name) < 1:
                raise TrajlabError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bonus < 0:
            raise TrajlabError(f"bonus must be 0 or positive, got {self.bonus}")
        if self.bonus_episodes not in BONUS_EPISODES:
            raise TrajlabError(f"bonus_episodes must be one of {', '.join(BONUS_EPISODES)}, "
                               f"got {self.bonus_episodes!r}")


def episode_bonus(mask: np.ndarray, weight: float) -> np.ndarray:
    """Bonus per action frame of one episode: `weight` spread in proportion to the mask (evenly where it is 0)."""
    action_frames = np.asarray(mask, dtype=np.float64)[:-1]
    if len(action_frames) == 0:
        return action_frames
    total = action_frames.sum()
    if total <= 0:
        return np.full(len(action_frames), weight / len(action_frames))
    return weight * action_frames / total


class CriticalBonus:
    """Adds the detector-placed (or, `shuffled`, randomly placed) bonus to a rollout's rewards in place."""

    def __init__(self, dsi: DSIModel, *, weight: float, shuffled: bool, seed: int,
                 successes_only: bool = False) -> None:
        self.dsi, self.weight, self.shuffled, self.successes_only = dsi, weight, shuffled, successes_only
        self.rng = np.random.default_rng(seed)

    def masks(self, episodes: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """The detector's mask of each finished episode (serial -> [L])."""
        serials = sorted(episodes)
        videos = [EpisodeVideo(episodes[s], 0) for s in serials]
        store = FrameStore.from_episodes(videos, env_id=self.dsi.env_id, class_names=self.dsi.class_names)
        check_fits(self.dsi, store, "the learner's views")
        return dict(zip(serials, mask_scores(self.dsi, store, range(len(serials))), strict=True))

    def apply(self, rollout: Rollout, trace: StepTrace) -> dict[str, float]:
        """Shape `rollout.rewards` ([T, N]) from `trace` (the same steps); metrics of what was added."""
        if trace.episode.shape != rollout.rewards.shape:
            raise TrajlabError(f"the step trace {trace.episode.shape} does not match the rollout "
                               f"{rollout.rewards.shape}")
        episodes = {serial: frames for serial, frames in trace.finished.items()
                    if trace.successes.get(serial, False) or not self.successes_only}
        if not episodes:
            return {"bonus_per_step": 0.0, "bonus_episodes": 0.0}
        bonuses = {}
        for serial, mask in self.masks(episodes).items():
            values = self.rng.permutation(mask) if self.shuffled else mask
            bonuses[serial] = episode_bonus(values, self.weight)
        added = np.zeros_like(rollout.rewards)
        for t, n in zip(*np.nonzero(np.isin(trace.episode, list(bonuses))), strict=True):
            added[t, n] = bonuses[int(trace.episode[t, n])][int(trace.frame[t, n])]
        rollout.rewards += added.astype(rollout.rewards.dtype)
        return {"bonus_per_step": float(added.mean()), "bonus_episodes": float(len(bonuses))}


def learner_env(config: LearnerConfig, arm: str, seed: int, dsi: DSIModel | None) -> MiniGridVectorEnv:
    """The arm's vectorised task; frames are drawn only where a bonus needs them."""
    tile_size = 4 if dsi is None else _tile_size(dsi)
    return MiniGridVectorEnv(config.env, config.envs, seed=seed, record_frames=arm != "plain",
                             tile_size=tile_size)


def _tile_size(dsi: DSIModel) -> int:
    height, width, _ = dsi.frame_shape
    if height != width or height % 7:
        raise TrajlabError(f"the model's frames are {tuple(dsi.frame_shape)}: not a MiniGrid agent view (7 x 7 "
                           "tiles); train it on `trajlab critical data --env minigrid-keycorridor`")
    return height // 7


def ppo_config(config: LearnerConfig) -> PPOLagrangianConfig:
    return replace(config.ppo, use_cost=False)


def success_curve(rows: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """(env steps, success rate of the episodes that finished in each iteration); iterations without a finished
    episode carry the previous value (0 before the first)."""
    steps, rates, last = [], [], 0.0
    for row in rows:
        rate = row.get("episode_goals", float("nan"))
        last = last if rate != rate else float(rate)  # NaN: no episode finished in this iteration
        steps.append(int(row["env_steps"]))
        rates.append(last)
    return steps, rates


def run_summary(rows: list[dict[str, Any]], tail: float = 0.2) -> dict[str, float]:
    """Area under the success curve (mean over iterations) and the mean success over the last `tail` of them."""
    _, rates = success_curve(rows)
    last = max(1, int(round(len(rates) * tail)))
    return {"success_auc": float(np.mean(rates)), "final_success": float(np.mean(rates[-last:]))}


def train_arm(config: LearnerConfig, arm: str, seed: int, dsi: DSIModel | None, *,
              progress: bool = True) -> dict[str, Any]:
    """One PPO run of one arm: its per-iteration rows, wall time and success summary."""
    from trajlab.algos import AGENTS
    from trajlab.algos.base import new_agent
    from trajlab.core.spec import SpaceSpec
    from trajlab.training.onpolicy import train_onpolicy

    if arm not in ARMS:
        raise TrajlabError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
    if arm != "plain" and dsi is None:
        raise TrajlabError(f"the {arm} arm needs a trained detector")
    envs = learner_env(config, arm, seed, dsi)
    agent = new_agent(AGENTS.get("ppo_lagrangian"), SpaceSpec.from_env(envs), ppo_config(config), seed=seed)
    shaper = None
    if arm != "plain":
        bonus = CriticalBonus(dsi, weight=config.bonus, shuffled=arm == "shuffled", seed=seed,
                              successes_only=config.bonus_episodes == "successes")

        def shaper(rollout: Rollout) -> dict[str, float]:
            return bonus.apply(rollout, envs.drain())

    try:
        history = train_onpolicy(agent, envs, iterations=config.iterations, horizon=config.horizon, seed=seed,
                                 shape_rewards=shaper, progress=progress)
    finally:
        envs.close()
    return {"arm": arm, "seed": seed, "wall_time_s": history.wall_time_s, **run_summary(history.rows),
            "rows": history.rows}


def compare_arms(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm the seeds' success AUC and final success (mean, std, per seed), and the critical arm against each
    other arm on the same seeds: the mean paired difference and a paired t-test's p-value."""
    from scipy import stats

    by_arm: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], {})[run["seed"]] = run
    arms = {}
    for arm, seeds in by_arm.items():
        arms[arm] = {}
        for measure in ("success_auc", "final_success"):
            values = [seeds[s][measure] for s in sorted(seeds)]
            arms[arm][measure] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                                  "per_seed": values}
    comparisons = {}
    for other in (a for a in by_arm if a != "critical" and "critical" in by_arm):
        shared = sorted(set(by_arm["critical"]) & set(by_arm[other]))
        for measure in ("success_auc", "final_success"):
            diff = [by_arm["critical"][s][measure] - by_arm[other][s][measure] for s in shared]
            p = float(stats.ttest_1samp(diff, 0.0).pvalue) if len(diff) > 1 and np.std(diff) > 0 else float("nan")
            comparisons[f"critical_vs_{other}/{measure}"] = {"mean_difference": float(np.mean(diff)),
                                                             "p_value": p, "seeds": shared}
    return {"arms": arms, "comparisons": comparisons}


def mean_curves(runs: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Each arm's success curve averaged over its seeds (the env steps of its first run)."""
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    for run in runs:
        curves.setdefault(run["arm"], []).append(success_curve(run["rows"]))
    return {arm: (runs_[0][0], np.mean([rates for _, rates in runs_], axis=0).tolist())
            for arm, runs_ in curves.items()}
