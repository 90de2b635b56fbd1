"""`ReplayBuffer`: a NumPy ring buffer of transitions that keeps trajlab's ids.

Every transition gets a `transition_id` (its insertion index: 0, 1, 2, ... over the whole run, so the id is
also the env step at which it was collected) and an `episode_id` (consecutive episodes of the single
environment). Ids survive the ring wrap-around, so a dataset cut from the buffer (`to_dataset`) speaks the
same ids as the influence, forgetting and auditing code. Arrays are preallocated; `sample` indexes them and
hands them to torch without copying again.

A per-step safety `cost` (Safety-Gymnasium's, for safe RL and safety unlearning) is optional: the buffer holds
a cost column from the first transition that has one on, and batches and datasets carry it (`costs`).

Turn-over dropout masks (PIToD) are optional too: a buffer built with `GroupMasks` stores each transition's
member mask [K] (its group's) in a `masks` column, saved with the buffer state together with the group settings,
and batches carry it (`Batch.masks`), so a transition's loss and TD target use its own mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.io import atomic_path
from trajlab.core.protocols import Batch
from trajlab.data.dataset import TransitionDataset
from trajlab.data.masks import GroupMasks

_ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
           "episode_ids", "transition_ids")
_COUNTERS = ("capacity", "size", "position", "num_added", "episode_id", "episode_open")
_MASK_SETTINGS = ("mask_members", "mask_group_size", "mask_seed")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions from one environment, with stable episode and transition ids."""

    def __init__(self, observation_dim: int, action_dim: int, capacity: int, discrete: bool = False, *,
                 group_masks: GroupMasks | None = None) -> None:
        if capacity <= 0:
            raise TrajlabError(f"replay buffer capacity must be positive, got {capacity}")
        self.observation_dim, self.action_dim, self.discrete = observation_dim, action_dim, discrete
        self.capacity = int(capacity)
        self.observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.next_observations = np.zeros((capacity, observation_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64) if discrete else np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminals = np.zeros(capacity, dtype=np.float32)
        self.timeouts = np.zeros(capacity, dtype=np.float32)
        self.episode_ids = np.zeros(capacity, dtype=np.int64)
        self.transition_ids = np.zeros(capacity, dtype=np.int64)
        self.costs: np.ndarray | None = None  # allocated by the first transition with a cost
        self.group_masks = group_masks
        self.masks = None if group_masks is None else np.zeros((capacity, group_masks.num_members), dtype=bool)
        self._group_mask: tuple[int, np.ndarray] | None = None  # (group, its mask): one draw per group, not per step
        self.size = 0
        self.position = 0
        self.num_added = 0
        self.episode_id = 0
        self.episode_open = False

    def __len__(self) -> int:
        return self.size

    def add(self, observation: np.ndarray, action: np.ndarray | int, reward: float, next_observation: np.ndarray,
            terminated: bool, truncated: bool, cost: float | None = None) -> None:
        """Store one transition; a terminated or truncated one closes its episode. Once any transition has had a
        `cost`, one without counts as cost 0 (environments report a cost only where it was incurred)."""
        row = self.position
        if cost is not None and self.costs is None:
            self.costs = np.zeros(self.capacity, dtype=np.float32)
        if self.costs is not None:
            self.costs[row] = 0.0 if cost is None else cost
        self.observations[row] = np.ravel(observation)
        self.actions[row] = action
        self.rewards[row] = reward
        self.next_observations[row] = np.ravel(next_observation)
        self.terminals[row] = terminated
        self.timeouts[row] = truncated and not terminated
        self.episode_ids[row] = self.episode_id
        self.transition_ids[row] = self.num_added
        if self.masks is not None:
            self.masks[row] = self._mask_of(self.num_added)
        self.episode_open = not (terminated or truncated)
        if not self.episode_open:
            self.episode_id += 1
        self.num_added += 1
        self.position = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _mask_of(self, transition_id: int) -> np.ndarray:
        assert self.group_masks is not None
        group = int(self.group_masks.group_of(transition_id))
        if self._group_mask is None or self._group_mask[0] != group:
            self._group_mask = (group, self.group_masks.mask(group))
        return self._group_mask[1]

    def sample(self, batch_size: int, generator: np.random.Generator) -> Batch:
        """A uniform minibatch (with replacement) as CPU tensors; terminals/timeouts as float32 0/1; costs
        when the buffer has them, else None."""
        if self.size == 0:
            raise TrajlabError("cannot sample from an empty replay buffer")
        return self.batch_at(generator.integers(0, self.size, size=batch_size))

    def batch_at(self, rows: np.ndarray) -> Batch:
        """The transitions stored at these rows of the ring, as a Batch."""
        return Batch(
            observations=torch.from_numpy(self.observations[rows]),
            actions=torch.from_numpy(self.actions[rows]),
            rewards=torch.from_numpy(self.rewards[rows]),
            next_observations=torch.from_numpy(self.next_observations[rows]),
            terminals=torch.from_numpy(self.terminals[rows]),
            timeouts=torch.from_numpy(self.timeouts[rows]),
            transition_ids=torch.from_numpy(self.transition_ids[rows]),
            episode_ids=torch.from_numpy(self.episode_ids[rows]),
            costs=None if self.costs is None else torch.from_numpy(self.costs[rows]),
            masks=None if self.masks is None else torch.from_numpy(self.masks[rows]),
        )

    # --- datasets ---------------------------------------------------------------------------------------
    @property
    def oldest_step(self) -> int:
        """Transition id (= env step) of the oldest transition still held."""
        return self.num_added - self.size

    def to_dataset(self, metadata: dict[str, Any] | None = None, *, first: int | None = None,
                   last: int | None = None) -> TransitionDataset:
        """The held transitions whose step index (transition id) is in [first, last), in insertion order.

        `first` defaults to the oldest step still held, `last` to the number of transitions added. An episode
        cut by either end of the window is kept as an unfinished episode (D4RL "medium-replay" datasets are
        the buffer up to the step where the agent reached medium performance).
        """
        first = self.oldest_step if first is None else int(first)
        last = self.num_added if last is None else int(last)
        if first < self.oldest_step:
            raise TrajlabError(f"steps before {self.oldest_step} are no longer in the replay buffer "
                               f"(capacity {self.capacity}); asked for first={first}")
        if last > self.num_added or last < first:
            raise TrajlabError(f"invalid step window [{first}, {last}): the buffer holds steps "
                               f"[{self.oldest_step}, {self.num_added})")
        rows = np.arange(first, last) % self.capacity
        return TransitionDataset(
            observations=self.observations[rows], actions=self.actions[rows], rewards=self.rewards[rows],
            next_observations=self.next_observations[rows], terminals=self.terminals[rows].astype(bool),
            timeouts=self.timeouts[rows].astype(bool), episode_ids=self.episode_ids[rows],
            transition_ids=self.transition_ids[rows], costs=None if self.costs is None else self.costs[rows],
            metadata=dict(metadata or {}),
        )

    # --- resume -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Filled rows and counters as plain NumPy arrays (no objects), for `np.savez`; costs only if held."""
        arrays = {name: getattr(self, name)[: self.size] for name in self._held_arrays()}
        counters = {name: np.asarray(int(getattr(self, name)), dtype=np.int64) for name in _COUNTERS}
        if self.group_masks is not None:
            masks = self.group_masks
            settings = (masks.num_members, masks.group_size, masks.seed)
            counters.update({name: np.asarray(value, dtype=np.int64) for name, value in zip(_MASK_SETTINGS, settings)})
        return {**arrays, **counters}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what `state()` returned (the capacity and shapes must match this buffer)."""
        missing = [name for name in (*_ARRAYS, *_COUNTERS) if name not in state]
        if missing:
            raise TrajlabError(f"replay buffer state lacks {', '.join(missing)}")
        if int(state["capacity"]) != self.capacity:
            raise TrajlabError(f"replay buffer state has capacity {int(state['capacity'])}, expected {self.capacity}")
        size = int(state["size"])
        self.costs = np.zeros(self.capacity, dtype=np.float32) if "costs" in state else None
        self._load_mask_settings(state)
        for name in self._held_arrays():
            target, value = getattr(self, name), np.asarray(state[name])
            if value.shape[1:] != target.shape[1:] or len(value) != size:
                raise TrajlabError(f"replay buffer state: {name} has shape {value.shape}, does not fit this buffer")
            target[:size] = value
        self.size, self.position, self.num_added = size, int(state["position"]), int(state["num_added"])
        self.episode_id, self.episode_open = int(state["episode_id"]), bool(state["episode_open"])

    def _load_mask_settings(self, state: dict[str, np.ndarray]) -> None:
        """Group masks as the state has them (a buffer built with other mask settings must not mix them)."""
        if "masks" not in state:
            self.group_masks, self.masks = None, None
        else:
            if any(name not in state for name in _MASK_SETTINGS):
                raise TrajlabError(f"replay buffer state has masks but lacks {', '.join(_MASK_SETTINGS)}")
            saved = GroupMasks(*(int(state[name]) for name in _MASK_SETTINGS))
            if self.group_masks is not None and saved != self.group_masks:
                raise TrajlabError(f"replay buffer state has group masks {saved}, this buffer {self.group_masks}")
            self.group_masks = saved
            self.masks = np.zeros((self.capacity, saved.num_members), dtype=bool)
        self._group_mask = None

    def _held_arrays(self) -> tuple[str, ...]:
        optional = tuple(name for name in ("costs", "masks") if getattr(self, name) is not None)
        return (*_ARRAYS, *optional)

    def save(self, path: str | Path) -> Path:
        """Write `state()` to an .npz file atomically."""
        target = Path(path)
        # a file handle, not a name: np.savez would append ".npz" to the temporary file's name
        with atomic_path(target) as temp, open(temp, "wb") as handle:
            np.savez(handle, **self.state())
        return target

    def load(self, path: str | Path) -> None:
        """Restore a buffer written by `save` (arrays only; nothing is unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                state = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as error:
            raise TrajlabError(f"{path}: not a readable replay buffer file ({error})") from None
        self.load_state(state)
