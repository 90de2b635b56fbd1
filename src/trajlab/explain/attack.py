"""The Pong attack of Deep State Identifier: at the k steps the detector scores highest in an episode, replace the
victim's action with a different random one and replay the same point (same reset seed, same controller draws);
compare the win rate with the clean replay and with k random steps attacked the same way.

Frame t is the view before action t, so the score of frame t ranks action t (the last frame has no action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajlab.core.seeding import derive_seed
from trajlab.data.frames import EpisodeVideo, FrameStore
from trajlab.explain.dsi import DSIModel, mask_scores
from trajlab.explain.pong import CLASS_NAMES, PongConfig, play_point

WON = CLASS_NAMES.index("won")


@dataclass(frozen=True)
class AttackConfig:
    """The attack's size."""

    episodes: int = 500
    """Seeded points played clean, attacked at critical steps and attacked at random steps."""
    steps: int = 30
    """Actions replaced per episode (the paper: 30; fewer when the clean point is shorter)."""


def _replaced(actions: list[int], steps: np.ndarray, rng: np.random.Generator) -> dict[int, int]:
    """A different random action at each chosen step."""
    return {int(t): int((actions[t] + rng.integers(1, 6)) % 6) for t in steps}


def attack_episode(env: object, dsi: DSIModel, seed: int, pong: PongConfig, steps: int) -> dict[str, int]:
    """Won (1/0) clean, attacked at the top-scored steps, attacked at as many random steps, and the steps used."""
    controller = derive_seed(seed, "controller")
    frames, actions, label = play_point(env, seed, pong, np.random.default_rng(controller))
    store = FrameStore.from_episodes([EpisodeVideo(np.stack(frames), label)], env_id=dsi.env_id,
                                     class_names=dsi.class_names)
    scores = mask_scores(dsi, store, [0])[0][:len(actions)]
    count = min(steps, len(actions))
    pick = np.random.default_rng(derive_seed(seed, "attack"))
    critical = np.argsort(-scores, kind="stable")[:count]
    random_steps = pick.choice(len(actions), size=count, replace=False)
    won = {"clean": int(label == WON), "steps": count}
    for name, chosen in (("critical", critical), ("random", random_steps)):
        _, _, attacked = play_point(env, seed, pong, np.random.default_rng(controller),
                                    overrides=_replaced(actions, chosen, pick))
        won[name] = int(attacked == WON)
    return won


def summarise(rows: list[dict[str, int]]) -> dict[str, float]:
    """Win rates, drops, and the 95% normal interval of (random-step win rate - critical-step win rate), paired."""
    table = {name: np.array([row[name] for row in rows], dtype=float) for name in ("clean", "critical", "random")}
    gap = table["random"] - table["critical"]
    half = 1.96 * gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
    return {"episodes": len(rows), "win_rate_clean": float(table["clean"].mean()),
            "win_rate_critical": float(table["critical"].mean()), "win_rate_random": float(table["random"].mean()),
            "drop_critical": float(table["clean"].mean() - table["critical"].mean()),
            "drop_random": float(table["clean"].mean() - table["random"].mean()),
            "critical_minus_random_drop": float(gap.mean()),
            "critical_minus_random_drop_ci95": [float(gap.mean() - half), float(gap.mean() + half)],
            "mean_steps_attacked": float(np.mean([row["steps"] for row in rows]))}
