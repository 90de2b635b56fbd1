"""GridWorld-S episodes (MiniGrid KeyCorridor, 3 rows, room size 6) rendered from the agent's point of view.

Positive episodes (label 1) follow shortest paths: to the key, pick it up, to the locked door, unlock it, through
it to the ball, ending when the agent faces the ball from the next cell ("reaches" it; the agent still carries
the key, so it could not pick the ball up without a drop, which adds nothing to explain). Negative episodes
(label 0) are mostly random walks of the same length range, some fetch the key and then wander, and of those some
unlock the door first; an episode labelled 0 never ends facing the ball. The authors' data generation has 15% of
the negatives fetch the key and half of those unlock the door (`key_then_wander_fraction` 0.15,
`key_then_door_fraction` 0.5, the paper preset); the quick and bench presets keep 0.3 and 0.

Frame t is the observation before action t, the last frame the one after the last action. Ground-truth
critical frames of a positive episode (three per episode):
  * the frame in which the agent faces the key and takes `pickup`,
  * the frame in which it faces the locked door and takes `toggle` (the unlock),
  * the last frame, in which it faces the ball.
Closed unlocked doors on the way are opened with an extra `toggle`; those are not critical.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from trajlab.data.frames import EpisodeVideo

LEFT, RIGHT, FORWARD, PICKUP, TOGGLE = 0, 1, 2, 3, 5
DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # minigrid's agent_dir 0..3: east, south, west, north
ENV_ID = "minigrid-keycorridor"
CLASS_NAMES = ("failure", "success")


@dataclass(frozen=True)
class GridWorldConfig:
    """How GridWorld-S episodes are drawn."""

    tile_size: int = 4
    """Pixels per grid tile of the agent's 7x7 view (the paper: 4, giving 28x28 frames)."""
    positive_fraction: float = 0.5
    """Share of positive (key, door, ball) episodes."""
    key_then_wander_fraction: float = 0.3
    """Share of the negative episodes that fetch the key before they wander."""
    key_then_door_fraction: float = 0.0
    """Share of those key-fetching negatives that also go to the locked door and unlock it before they wander."""
    max_steps: int = 80
    """Longest episode in frames."""
    match_lengths: bool = True
    """A negative episode is as long as the positive one on its layout would be, so that an episode's length does
    not tell its outcome (a return predictor that reads the length needs no frame at all, and no mask can hide
    it). False: negatives draw 15 .. max_steps // 2 frames, much shorter than the positives."""


def _env() -> object:
    from minigrid.envs import KeyCorridorEnv

    return KeyCorridorEnv(num_rows=3, room_size=6, max_steps=10_000)


def _frame(env: object, tile_size: int) -> np.ndarray:
    return env.get_frame(highlight=False, tile_size=tile_size, agent_pov=True)


def _find(env: object, kind: str) -> tuple[int, int]:
    grid = env.grid
    for x in range(grid.width):
        for y in range(grid.height):
            cell = grid.get(x, y)
            if cell is not None and cell.type == kind and (kind != "door" or cell.is_locked):
                return x, y
    raise RuntimeError(f"no {kind} in the grid")


def _walkable(env: object, x: int, y: int) -> bool:
    """Cells a path may cross: empty or a door that is not locked (closed ones are opened on the way)."""
    cell = env.grid.get(x, y)
    return cell is None or (cell.type == "door" and not cell.is_locked)


def shortest_actions(env: object, target: tuple[int, int]) -> list[int]:
    """Fewest left/right/forward actions after which the agent faces `target` from a neighbouring cell (BFS over
    position and heading)."""
    start = (int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir))
    parents: dict[tuple[int, int, int], tuple[tuple[int, int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        x, y, d = state
        if (x + DIRECTIONS[d][0], y + DIRECTIONS[d][1]) == target:
            return _unwind(parents, state)
        dx, dy = DIRECTIONS[d]
        moves = [((x, y, (d - 1) % 4), LEFT), ((x, y, (d + 1) % 4), RIGHT)]
        if _walkable(env, x + dx, y + dy):
            moves.append(((x + dx, y + dy, d), FORWARD))
        for nxt, action in moves:
            if nxt not in parents:
                parents[nxt] = (state, action)
                queue.append(nxt)
    raise RuntimeError(f"no path to {target}")


def _unwind(parents: dict, state: tuple[int, int, int]) -> list[int]:
    actions = []
    while parents[state] is not None:
        state, action = parents[state]
        actions.append(action)
    return actions[::-1]


class _Recorder:
    """Steps the env and keeps frame t = the view before action t (plus the final view)."""

    def __init__(self, env: object, tile_size: int) -> None:
        self.env, self.tile_size = env, tile_size
        self.frames = [_frame(env, tile_size)]

    def act(self, action: int) -> None:
        if action == FORWARD:  # a closed door ahead is opened first (not a critical step)
            cell = self.env.grid.get(*self.env.front_pos)
            if cell is not None and cell.type == "door" and not cell.is_open:
                self._step(TOGGLE)
        self._step(action)

    def _step(self, action: int) -> None:
        self.env.step(action)
        self.frames.append(_frame(self.env, self.tile_size))

    def go(self, target: tuple[int, int]) -> None:
        for action in shortest_actions(self.env, target):
            self.act(action)

    @property
    def step(self) -> int:
        """Index of the frame the next action is taken in."""
        return len(self.frames) - 1


def positive_episode(env: object, tile_size: int) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Key, door, ball by shortest paths; (frames, critical frame indices)."""
    rec = _Recorder(env, tile_size)
    key, door, ball = _find(env, "key"), _find(env, "door"), tuple(int(v) for v in env.obj.cur_pos)
    rec.go(key)
    key_step = rec.step
    rec.act(PICKUP)
    rec.go(door)
    door_step = rec.step
    rec.act(TOGGLE)
    rec.go(ball)
    return rec.frames, (key_step, door_step, rec.step)


def negative_episode(env: object, tile_size: int, length: int, fetch_key: bool,
                     rng: np.random.Generator, unlock_door: bool = False) -> list[np.ndarray]:
    """A random walk of about `length` frames (after fetching the key when `fetch_key`, and unlocking the door
    when `unlock_door` too) that never ends facing the ball."""
    rec = _Recorder(env, tile_size)
    if fetch_key:
        door = _find(env, "door")  # found while still locked
        rec.go(_find(env, "key"))
        rec.act(PICKUP)
        if unlock_door:
            rec.go(door)
            rec.act(TOGGLE)
    ball = tuple(int(v) for v in env.obj.cur_pos)
    facing_ball = set()
    while rec.step < length - 1:
        # forward twice as often as each turn: a walk that explores instead of spinning on the spot
        rec.act(int(rng.choice([LEFT, RIGHT, FORWARD, FORWARD, PICKUP, TOGGLE], p=[.2, .2, .25, .25, .05, .05])))
        if tuple(int(v) for v in env.front_pos) == ball:
            facing_ball.add(rec.step)
            rec.act(LEFT)  # turn away: a failure episode must not end on the goal
    end = max(length, 1)
    return rec.frames[:end + 1 if end - 1 in facing_ball else end]


def collect_episode(seed: int, positive: bool, config: GridWorldConfig, rng: np.random.Generator,
                    split: str = "train") -> EpisodeVideo:
    """One episode on the layout of `seed`."""
    env = _env()
    env.reset(seed=seed)
    if positive:
        frames, critical = positive_episode(env, config.tile_size)
        return EpisodeVideo(np.stack(frames[:config.max_steps]), 1,
                            tuple(s for s in critical if s < config.max_steps), split)
    short = int(rng.integers(15, config.max_steps // 2 + 1))
    length = _matched_length(seed, config) if config.match_lengths else short
    fetch = bool(rng.random() < config.key_then_wander_fraction)
    # drawn only when asked for, so the default settings keep their random stream (and their datasets)
    unlock = fetch and config.key_then_door_fraction > 0 and bool(rng.random() < config.key_then_door_fraction)
    frames = negative_episode(env, config.tile_size, length, fetch, rng, unlock_door=unlock)
    return EpisodeVideo(np.stack(frames), 0, (), split)


def _matched_length(seed: int, config: GridWorldConfig) -> int:
    """Frames of the positive episode on the layout of `seed` (capped at `max_steps`)."""
    env = _env()
    env.reset(seed=seed)
    frames, _ = positive_episode(env, tile_size=1)
    return min(len(frames), config.max_steps)
