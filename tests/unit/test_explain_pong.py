"""Pong frames: block max-pooling keeps the 2-pixel ball that taking every stride-th pixel would drop."""

from __future__ import annotations

import numpy as np

from trajlab.explain.pong import PongConfig, _frame, frame_shape, make_env, play_point

FIELD, BALL = (144, 72, 17), (236, 236, 236)


def test_pooling_keeps_a_ball_between_sampled_columns():
    observation = np.zeros((210, 160, 3), dtype=np.uint8)
    observation[:] = FIELD
    observation[102:106, 57:59] = BALL  # one pooled block; columns 57-58: none of them a multiple of 4
    assert not (observation[34:194:4, ::4] == 236).all(-1).any()  # the old subsampling loses it
    frame = _frame(observation, 4)
    assert frame.shape == frame_shape(PongConfig(stride=4)) == (40, 40, 3)
    assert (frame == 236).all(-1).sum() == 1 and tuple(frame[0, 0]) == FIELD


def test_played_frames_have_the_configured_shape():
    config = PongConfig(max_steps=5, stride=8)
    frames, actions, _ = play_point(make_env(config), 3, config, np.random.default_rng(0))
    assert len(frames) == len(actions) + 1 and all(f.shape == frame_shape(config) == (20, 20, 3) for f in frames)
