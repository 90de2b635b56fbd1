"""Atari Pong single-point episodes (ale-py ships the ROM): from a reset until a point is scored or `max_steps`,
labelled lost (0), none (1) or won (2).

The victim is a controller that moves its paddle towards the ball, read from the ALE RAM (ball y at byte 54, the
agent's paddle y at byte 51), and takes a uniformly random action with probability `epsilon`, so that it wins
and loses points. Frames: the playing field (rows 34..193) max-pooled over `stride` x `stride` blocks, RGB
uint8. Pong has no ground-truth critical frames.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from trajlab.data.frames import EpisodeVideo

ENV_ID = "pong"
CLASS_NAMES = ("lost", "none", "won")
NOOP, UP, DOWN = 0, 2, 3
BALL_Y, PADDLE_Y = 54, 51


@dataclass(frozen=True)
class PongConfig:
    """How Pong episodes are drawn."""

    max_steps: int = 200
    """Longest episode in agent steps (the paper: 200)."""
    frame_skip: int = 4
    """Emulator frames per agent step."""
    epsilon: float = 0.3
    """Probability of a random action instead of the controller's."""
    stride: int = 4
    """Downsampling of the 160x160 playing field (4: 40x40 frames)."""


def make_env(config: PongConfig) -> object:
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    with _quiet_stdout():  # ALE prints a banner on the process's stdout, which would spoil `--json`
        return gym.make("ALE/Pong-v5", frameskip=config.frame_skip, repeat_action_probability=0.0)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the block (C++ output does not go through sys.stdout)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def controller_action(ram: np.ndarray, rng: np.random.Generator, epsilon: float) -> int:
    """Track the ball's height (y grows downwards); random with probability epsilon."""
    if rng.random() < epsilon:
        return int(rng.integers(0, 6))
    ball, paddle = int(ram[BALL_Y]), int(ram[PADDLE_Y])
    if ball == 0:  # no ball on the field
        return NOOP
    return UP if ball < paddle + 8 else DOWN


def frame_shape(config: PongConfig) -> tuple[int, int, int]:
    """(height, width, 3) of the frames `config` gives (the 160x160 playing field pooled `stride` times)."""
    return 160 // config.stride, 160 // config.stride, 3


def _frame(observation: np.ndarray, stride: int) -> np.ndarray:
    """The playing field, each `stride` x `stride` block reduced to its channel-wise maximum. Taking every
    stride-th pixel instead loses the ball (2 pixels wide, at odd columns) in about 95% of frames at stride 4;
    the maximum keeps it, white on the brown field, in every frame it is on the screen."""
    field = observation[34:194]
    rows, cols = field.shape[0] // stride, field.shape[1] // stride
    blocks = field[:rows * stride, :cols * stride].reshape(rows, stride, cols, stride, field.shape[2])
    return np.ascontiguousarray(blocks.max(axis=(1, 3)))


def play_point(env: object, seed: int, config: PongConfig, rng: np.random.Generator,
               overrides: dict[int, int] | None = None) -> tuple[list[np.ndarray], list[int], int]:
    """(frames, actions, label) of one point from `reset(seed)`; `overrides` replaces the action at given steps
    (the attack), every other draw of `rng` stays as it was."""
    observation, _ = env.reset(seed=seed)
    frames, actions = [_frame(observation, config.stride)], []
    label = 1
    for step in range(config.max_steps):
        action = controller_action(env.unwrapped.ale.getRAM(), rng, config.epsilon)
        action = (overrides or {}).get(step, action)
        observation, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        frames.append(_frame(observation, config.stride))
        if reward != 0 or terminated or truncated:
            label = 2 if reward > 0 else 0 if reward < 0 else 1
            break
    return frames, actions, label


def collect_episode(env: object, seed: int, config: PongConfig, rng: np.random.Generator,
                    split: str = "train") -> EpisodeVideo:
    frames, _, label = play_point(env, seed, config, rng)
    return EpisodeVideo(np.stack(frames), label, (), split)
