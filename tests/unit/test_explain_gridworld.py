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
    negative_episode,
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


def _faces_ball_marker(env: object, tile_size: int) -> np.ndarray:
    """A 1-pixel frame that says whether the agent faces the ball in it (255) or not (0)."""
    facing = tuple(int(v) for v in env.front_pos) == tuple(int(v) for v in env.obj.cur_pos)
    return np.full((1, 1, 3), 255 if facing else 0, dtype=np.uint8)


def test_negatives_that_unlock_the_door_never_end_facing_the_ball(monkeypatch):
    from trajlab.explain import gridworld

    monkeypatch.setattr(gridworld, "_frame", _faces_ball_marker)
    config = GridWorldConfig(key_then_wander_fraction=1.0, key_then_door_fraction=1.0, match_lengths=False)
    faced = 0
    for seed in range(200, 280):  # 208, 248 and 263 reach the ball in their last step
        episode = collect_episode(seed, False, config, np.random.default_rng(seed))
        marks = episode.frames[:, 0, 0, 0]
        assert marks[-1] == 0 and episode.label == 0
        faced += int(marks.any())
    assert faced > 0  # the walks do reach the ball, so the turn-away is exercised


def test_unlock_door_negative_opens_the_locked_door():
    env = _env()
    env.reset(seed=2)
    door = _find(env, "door")
    frames = negative_episode(env, 4, 60, True, np.random.default_rng(0), unlock_door=True)
    assert not env.grid.get(*door).is_locked and env.carrying is not None and env.carrying.type == "key"
    assert len(frames) in (60, 61)


def test_default_mix_draws_no_extra_random_numbers():
    """key_then_door_fraction 0 must leave the random stream (and so the quick datasets) as they were."""
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    collect_episode(4, False, GridWorldConfig(key_then_wander_fraction=1.0), a)
    collect_episode(4, False, GridWorldConfig(key_then_wander_fraction=1.0, key_then_door_fraction=0.0), b)
    assert a.random() == b.random()
