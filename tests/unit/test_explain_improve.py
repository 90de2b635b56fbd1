"""The critical-state bonus (explain/improve.py), the MiniGrid vector env's trace, and discrete PPO on it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from trajlab.core.errors import TrajlabError
from trajlab.envs.minigrid import MiniGridVectorEnv, make_minigrid
from trajlab.explain.dsi import Detector, DSIModel, ModelConfig, Predictor
from trajlab.explain.gridworld import CLASS_NAMES, ENV_ID
from trajlab.explain.improve import CriticalBonus, LearnerConfig, compare_arms, episode_bonus, train_arm
from trajlab.training.onpolicy import Rollout


def tiny_dsi(frame_shape=(28, 28, 3)) -> DSIModel:
    torch.manual_seed(0)
    model = ModelConfig(channels=(4, 4, 4, 4, 8), hidden=8, layers=1)
    return DSIModel(Detector(model), Predictor(2, model), ENV_ID, CLASS_NAMES, frame_shape, model)


def test_episode_bonus_spreads_the_weight_over_the_action_frames_by_the_mask():
    bonus = episode_bonus(np.array([0.0, 3.0, 1.0, 0.9]), 0.2)  # the final view (0.9) takes no bonus
    assert np.allclose(bonus, [0.0, 0.15, 0.05]) and np.isclose(bonus.sum(), 0.2)
    assert np.allclose(episode_bonus(np.zeros(5), 0.4), 0.1)  # no mask at all: evenly
    assert len(episode_bonus(np.array([0.5]), 1.0)) == 0


def test_trace_names_each_step_episode_and_frame():
    envs = MiniGridVectorEnv("MiniGrid-Empty-5x5-v0", 2, seed=0, record_frames=True)
    envs.reset()
    rng = np.random.default_rng(0)
    for _ in range(120):  # Empty-5x5 ends after 100 steps at the latest: every copy finishes an episode
        envs.step(rng.integers(0, 3, size=2))
    trace = envs.drain()
    assert trace.episode.shape == trace.frame.shape == (120, 2)
    for serial, frames in trace.finished.items():
        steps = trace.frame[trace.episode == serial]
        assert frames.shape[1:] == (28, 28, 3)
        if steps.min() == 0:  # the episode started in this trace: one frame per step plus the final view
            assert sorted(steps.tolist()) == list(range(len(frames) - 1))
    assert envs.drain().episode.shape == (0, 2)


def test_bonus_gives_each_finished_episode_exactly_its_weight():
    envs = MiniGridVectorEnv("MiniGrid-Empty-5x5-v0", 2, seed=1, record_frames=True)
    envs.reset()
    for _ in range(150):
        envs.step(np.array([0, 1]))  # turning on the spot never reaches the goal: episodes time out
    trace = envs.drain()
    rewards = np.zeros((150, 2), dtype=np.float32)
    rollout = Rollout(*(np.zeros((150, 2)) for _ in range(8)), last_values=(np.zeros(2), np.zeros(2)))
    rollout.rewards = rewards
    for shuffled in (False, True):
        rollout.rewards = np.zeros((150, 2), dtype=np.float32)
        metrics = CriticalBonus(tiny_dsi(), weight=0.5, shuffled=shuffled, seed=0).apply(rollout, trace)
        assert metrics["bonus_episodes"] == len(trace.finished) >= 2
        for serial in trace.finished:
            assert np.isclose(rollout.rewards[trace.episode == serial].sum(), 0.5, atol=1e-5)
        unfinished = ~np.isin(trace.episode, list(trace.finished))
        assert np.all(rollout.rewards[unfinished] == 0)


def test_with_successes_only_a_failed_episode_earns_nothing():
    envs = MiniGridVectorEnv("MiniGrid-Empty-5x5-v0", 2, seed=1, record_frames=True)
    envs.reset()
    for _ in range(150):
        envs.step(np.array([0, 1]))  # every episode times out
    trace = envs.drain()
    rollout = Rollout(*(np.zeros((150, 2), dtype=np.float32) for _ in range(8)),
                      last_values=(np.zeros(2), np.zeros(2)))
    bonus = CriticalBonus(tiny_dsi(), weight=0.5, shuffled=False, seed=0, successes_only=True)
    assert bonus.apply(rollout, trace)["bonus_episodes"] == 0 and not rollout.rewards.any()
    serial = next(iter(trace.finished))
    success = replace(trace, successes={**trace.successes, serial: True})
    assert bonus.apply(rollout, success)["bonus_episodes"] == 1
    assert np.isclose(rollout.rewards.sum(), 0.5, atol=1e-5)
    assert np.isclose(rollout.rewards[trace.episode == serial].sum(), 0.5, atol=1e-5)


def test_bad_input_is_a_one_line_error():
    with pytest.raises(TrajlabError, match="unknown MiniGrid task"):
        make_minigrid("MiniGrid-Nowhere-v0", seed=0)
    with pytest.raises(TrajlabError, match="bonus"):
        LearnerConfig(bonus=-1.0)
    with pytest.raises(TrajlabError, match="bonus_episodes must be one of all, successes"):
        LearnerConfig(bonus_episodes="failures")
    with pytest.raises(TrajlabError, match="not a MiniGrid agent view"):
        train_arm(LearnerConfig(iterations=1), "critical", 0, tiny_dsi((20, 20, 3)), progress=False)
    with pytest.raises(TrajlabError, match="unknown arm"):
        train_arm(LearnerConfig(iterations=1), "lucky", 0, None, progress=False)


def test_arms_run_deterministically_and_compare_on_paired_seeds():
    config = LearnerConfig(env="MiniGrid-Empty-5x5-v0", envs=2, horizon=32, iterations=2)
    dsi = tiny_dsi()
    first = train_arm(config, "critical", 0, dsi, progress=False)
    again = train_arm(config, "critical", 0, dsi, progress=False)
    assert [r["policy_loss"] for r in first["rows"]] == [r["policy_loss"] for r in again["rows"]]
    assert first["rows"][-1]["env_steps"] == 2 * 2 * 32
    runs = [first, train_arm(config, "plain", 0, None, progress=False),
            {**first, "seed": 1}, {**first, "arm": "plain", "seed": 1}]
    summary = compare_arms(runs)
    assert set(summary["arms"]) == {"critical", "plain"}
    comparison = summary["comparisons"]["critical_vs_plain/success_auc"]
    assert comparison["seeds"] == [0, 1]
