"""The Pong attack: the same seed replays the same point, overrides change only the chosen steps, the summary."""

from __future__ import annotations

import numpy as np
import pytest

from trajlab.explain.attack import _replaced, summarise
from trajlab.explain.pong import PongConfig, make_env, play_point


def test_same_seed_replays_the_same_point_and_overrides_apply_only_where_asked():
    env, config = make_env(PongConfig(max_steps=30)), PongConfig(max_steps=30)
    frames, actions, label = play_point(env, 7, config, np.random.default_rng(1))
    again = play_point(env, 7, config, np.random.default_rng(1))
    assert again[1] == actions and again[2] == label and np.array_equal(np.stack(again[0]), np.stack(frames))
    overrides = _replaced(actions, np.array([3, 10]), np.random.default_rng(0))
    assert all(overrides[t] != actions[t] for t in (3, 10))
    _, attacked, _ = play_point(env, 7, config, np.random.default_rng(1), overrides=overrides)
    assert attacked[:3] == actions[:3] and attacked[3] == overrides[3] and attacked[10] == overrides[10]


def test_summary_by_hand():
    rows = [{"clean": 1, "critical": 0, "random": 1, "steps": 30}, {"clean": 1, "critical": 1, "random": 1,
                                                                    "steps": 20}]
    out = summarise(rows)
    assert out["win_rate_clean"] == 1.0 and out["win_rate_critical"] == 0.5 and out["drop_critical"] == 0.5
    assert out["drop_random"] == 0.0 and out["critical_minus_random_drop"] == 0.5
    half = 1.96 * np.std([1, 0], ddof=1) / np.sqrt(2)
    assert out["critical_minus_random_drop_ci95"] == pytest.approx([0.5 - half, 0.5 + half])
    assert out["mean_steps_attacked"] == 25
