"""GridWorld-S episodes: shortest paths by BFS, critical frames aligned with the key, door and ball."""

from __future__ import annotations

import numpy as np

from trajlab.explain.gridworld import (
    FORWARD,
    GridWorldConfig,
    _env,
    _find,
    _Recorder,
    collect_episode,
    shortest_actions,
)


def test_positive_episode_labels_the_frames_before_pickup_unlock_and_the_last():
    env = _env()
    env.reset(seed=3)
    key, door = _find(env, "key"), _find(env, "door")
    rec = _Recorder(env, 4)
    rec.go(key)
    # the frame the pickup is taken in is the one where the key is straight ahead
    assert tuple(int(v) for v in env.front_pos) == key
    episode = collect_episode(3, True, GridWorldConfig(), np.random.default_rng(0))
    key_step, door_step, ball_step = episode.critical_steps
    assert key_step == rec.step and 0 < key_step < door_step < ball_step == len(episode.frames) - 1
    assert episode.frames.shape[1:] == (28, 28, 3) and episode.label == 1
    assert env.grid.get(*door).is_locked  # this env was only walked to the key


def test_bfs_path_is_shortest_on_an_open_line():
    env = _env()
    env.reset(seed=0)
    x, y = int(env.agent_pos[0]), int(env.agent_pos[1])
    direction = int(env.agent_dir)
    # the cell straight ahead of the agent: already facing it, so no action is needed
    assert shortest_actions(env, (int(env.front_pos[0]), int(env.front_pos[1]))) == []
    ahead = (x + 2 * (1 if direction == 0 else -1 if direction == 2 else 0),
             y + 2 * (1 if direction == 1 else -1 if direction == 3 else 0))
    if env.grid.get(*env.front_pos) is None:
        assert shortest_actions(env, ahead) == [FORWARD]


def test_negative_episodes_never_end_on_the_ball_and_are_seeded():
    config = GridWorldConfig()
    a = collect_episode(5, False, config, np.random.default_rng(1))
    b = collect_episode(5, False, config, np.random.default_rng(1))
    assert a.label == 0 and a.critical_steps == () and np.array_equal(a.frames, b.frames)
    # as long as the success on the same layout, so an episode's length does not tell its outcome
    assert len(a.frames) == len(collect_episode(5, True, config, np.random.default_rng(1)).frames)
    short = collect_episode(5, False, GridWorldConfig(match_lengths=False), np.random.default_rng(1))
    assert 15 <= len(short.frames) <= config.max_steps // 2
