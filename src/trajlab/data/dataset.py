"""`TransitionDataset`: transitions with ids that never change when the dataset is filtered, split or saved.

Forgetting, auditing and influence all speak in `episode_id`s and `transition_id`s, so every operation here
returns a new dataset that keeps them; nothing mutates in place. Episodes are contiguous blocks of rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch
from trajlab.core.spec import SpaceSpec
from trajlab.data.schema import ARRAY_FIELDS, COLUMNS, ID_FIELDS

if TYPE_CHECKING:
    from trajlab.data.sampler import TensorSampler


@dataclass(frozen=True)
class Episode:
    """One episode's rows of a dataset (views, not copies)."""

    episode_id: int
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    transition_ids: np.ndarray
    costs: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


@dataclass(frozen=True, eq=False, repr=False)
class TransitionDataset:
    """Offline RL transitions (D4RL layout) with stable episode and transition ids.

    Arrays have one row per transition: observations/next_observations [N, obs_dim] float32, actions
    [N, act_dim] float32 (or [N] int64 for discrete actions), rewards [N] float32, terminals/timeouts [N]
    bool, episode_ids/transition_ids [N] int64, and optional costs [N] float32 for safe RL.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_ids: np.ndarray
    transition_ids: np.ndarray
    costs: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        kind = f"{self.action_dim} discrete actions" if self.discrete else f"actions {self.action_dim}-d"
        env = self.metadata.get("env_id")
        return (f"TransitionDataset({self.num_episodes} episodes, {len(self)} transitions, "
                f"observations {self.observation_dim}-d, {kind}{', costs' if self.costs is not None else ''}"
                f"{f', env_id={env!r}' if env else ''})")

    def __post_init__(self) -> None:
        for name, value in _coerce(self).items():
            object.__setattr__(self, name, value)
        _validate(self)
        for name in (*ARRAY_FIELDS, *ID_FIELDS, "costs"):
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        *,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray | None = None,
        next_observations: np.ndarray | None = None,
        episode_ids: np.ndarray | None = None,
        transition_ids: np.ndarray | None = None,
        costs: np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> TransitionDataset:
        """Build a dataset, deriving what is missing.

        Without `episode_ids`, an episode ends at every terminal or timeout, and trailing rows that end with
        neither form a final (unfinished) episode. Without `next_observations`, each row's next observation
        is the following row's observation within its episode; the last row of an episode that does not end
        in a terminal has no known successor and is dropped (as D4RL loaders do).
        """
        n = len(rewards)
        given = dict(observations=observations, actions=actions, rewards=rewards, terminals=terminals,
                     timeouts=timeouts, next_observations=next_observations, episode_ids=episode_ids,
                     transition_ids=transition_ids, costs=costs)
        lengths = {name: len(value) for name, value in given.items() if value is not None}
        if len(set(lengths.values())) > 1:
            raise TrajlabError("inconsistent array lengths: " + ", ".join(f"{k} {v}" for k, v in lengths.items()))
        terminals = np.asarray(terminals).astype(bool).reshape(-1)
        timeouts = np.zeros(n, dtype=bool) if timeouts is None else np.asarray(timeouts).astype(bool).reshape(-1)
        if len(terminals) != n or len(timeouts) != n:
            raise TrajlabError(
                f"inconsistent lengths: rewards {n}, terminals {len(terminals)}, timeouts {len(timeouts)}"
            )
        if episode_ids is None:
            episode_ids = episode_ids_from_ends(terminals | timeouts)
        if transition_ids is None:
            transition_ids = np.arange(n, dtype=np.int64)
        keep = np.ones(n, dtype=bool)
        if next_observations is None:
            next_observations, keep = _next_from_following(np.asarray(observations), episode_ids, terminals)
        arrays = dict(
            observations=observations, actions=actions, rewards=rewards, next_observations=next_observations,
            terminals=terminals, timeouts=timeouts, episode_ids=episode_ids, transition_ids=transition_ids,
            costs=costs,
        )
        arrays = {k: None if v is None else np.asarray(v)[keep] for k, v in arrays.items()}
        return cls(**arrays, metadata=dict(metadata or {}))

    # --- size and views ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def discrete(self) -> bool:
        return self.actions.ndim == 1

    @property
    def observation_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        if self.discrete:
            return int(self.metadata.get("num_actions", int(self.actions.max(initial=0)) + 1))
        return int(self.actions.shape[1])

    @property
    def spec(self) -> SpaceSpec:
        """Spaces for an agent trained on this data (action bounds from metadata, else [-1, 1])."""
        if self.discrete:
            return SpaceSpec(self.observation_dim, self.action_dim, discrete=True)
        low = self.metadata.get("action_low", [-1.0] * self.action_dim)
        high = self.metadata.get("action_high", [1.0] * self.action_dim)
        return SpaceSpec(self.observation_dim, self.action_dim, False, tuple(low), tuple(high))

    @property
    def episode_id_list(self) -> np.ndarray:
        """Episode ids in row order, each once."""
        starts = _episode_starts(self.episode_ids)
        return self.episode_ids[starts]

    @property
    def num_episodes(self) -> int:
        return len(_episode_starts(self.episode_ids))

    def episodes(self) -> Iterator[Episode]:
        """Iterate episodes in row order."""
        bounds = [*_episode_starts(self.episode_ids).tolist(), len(self)]
        for start, stop in zip(bounds, bounds[1:]):
            yield self._episode(slice(start, stop))

    def episode(self, episode_id: int) -> Episode:
        """One episode by id."""
        rows = np.flatnonzero(self.episode_ids == episode_id)
        if len(rows) == 0:
            raise TrajlabError(f"unknown episode id {episode_id}")
        return self._episode(slice(int(rows[0]), int(rows[-1]) + 1))

    def _episode(self, rows: slice) -> Episode:
        return Episode(
            episode_id=int(self.episode_ids[rows.start]),
            observations=self.observations[rows], actions=self.actions[rows], rewards=self.rewards[rows],
            next_observations=self.next_observations[rows], terminals=self.terminals[rows],
            timeouts=self.timeouts[rows], transition_ids=self.transition_ids[rows],
            costs=None if self.costs is None else self.costs[rows],
        )

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode, in the order of `episode_id_list`."""
        starts = _episode_starts(self.episode_ids)
        return np.add.reduceat(self.rewards.astype(np.float64), starts) if len(self) else np.zeros(0)

    def episode_lengths(self) -> np.ndarray:
        return np.diff([*_episode_starts(self.episode_ids).tolist(), len(self)])

    # --- operations that return new datasets ------------------------------------------------------------
    def subset(self, episode_ids: Iterable[int]) -> TransitionDataset:
        """The episodes with these ids (ids unknown to the dataset are an error)."""
        return self._take_rows(np.isin(self.episode_ids, self._checked_ids(episode_ids)))

    def without(self, episode_ids: Iterable[int]) -> TransitionDataset:
        """Every episode except these (ids unknown to the dataset are an error)."""
        return self._take_rows(~np.isin(self.episode_ids, self._checked_ids(episode_ids)))

    def subset_transitions(self, transition_ids: Iterable[int]) -> TransitionDataset:
        """The rows with these transition ids, in dataset order."""
        wanted = np.asarray(list(transition_ids), dtype=np.int64)
        unknown = np.setdiff1d(wanted, self.transition_ids)
        if len(unknown):
            raise TrajlabError(f"unknown transition id(s): {_preview(unknown)}")
        return self._take_rows(np.isin(self.transition_ids, wanted))

    def split(self, fraction: float, seed: int) -> tuple[TransitionDataset, TransitionDataset]:
        """Split by episodes: (a random `fraction` of episodes, the rest), both in dataset order."""
        if not 0.0 < fraction < 1.0:
            raise TrajlabError(f"split fraction must be in (0, 1), got {fraction}")
        ids = self.episode_id_list
        chosen = np.random.default_rng(seed).permutation(len(ids))[: max(1, round(fraction * len(ids)))]
        first = ids[np.sort(chosen)]
        return self.subset(first), self.without(first)

    def concat(self, other: TransitionDataset) -> TransitionDataset:
        """Rows of self then rows of other; ids are kept, so they must not overlap."""
        if np.intersect1d(self.transition_ids, other.transition_ids).size:
            raise TrajlabError("cannot concatenate: the datasets share transition ids")
        if np.intersect1d(self.episode_id_list, other.episode_id_list).size:
            raise TrajlabError("cannot concatenate: the datasets share episode ids")
        if (self.costs is None) != (other.costs is None):
            raise TrajlabError("cannot concatenate a dataset with costs and one without")
        joined = {
            name: None if getattr(self, name) is None else np.concatenate([getattr(self, name), getattr(other, name)])
            for name in (*ARRAY_FIELDS, *ID_FIELDS, "costs")
        }
        return TransitionDataset(**joined, metadata=dict(self.metadata))

    def with_rewards(self, rewards: np.ndarray) -> TransitionDataset:
        """The same transitions with other rewards (for example negated or randomised)."""
        return dataclasses.replace(self, rewards=np.asarray(rewards, dtype=np.float32))

    def with_actions(self, actions: np.ndarray) -> TransitionDataset:
        """The same transitions with other actions (same shape and dtype as the dataset's)."""
        actions = np.asarray(actions, dtype=self.actions.dtype)
        if actions.shape != self.actions.shape:
            raise TrajlabError(f"actions of shape {actions.shape} for a dataset whose actions are {self.actions.shape}")
        return dataclasses.replace(self, actions=actions)

    def with_metadata(self, **entries: Any) -> TransitionDataset:
        return dataclasses.replace(self, metadata={**self.metadata, **entries})

    def _take_rows(self, mask: np.ndarray) -> TransitionDataset:
        taken = {
            name: None if getattr(self, name) is None else getattr(self, name)[mask]
            for name in (*ARRAY_FIELDS, *ID_FIELDS, "costs")
        }
        return TransitionDataset(**taken, metadata=dict(self.metadata))

    def _checked_ids(self, episode_ids: Iterable[int]) -> np.ndarray:
        wanted = np.unique(np.asarray(list(episode_ids), dtype=np.int64))
        unknown = np.setdiff1d(wanted, self.episode_ids)
        if len(unknown):
            raise TrajlabError(f"unknown episode id(s): {_preview(unknown)}")
        return wanted

    # --- sampling -----------------------------------------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A uniform minibatch (with replacement) as CPU tensors, carrying the transition and episode ids."""
        rows = rng.integers(0, len(self), size=batch_size)
        return self.batch_at(rows)

    def batch_at(self, rows: np.ndarray) -> Batch:
        """The rows at these positions as a Batch."""
        def tensor(name: str) -> torch.Tensor | None:
            value = getattr(self, name)
            return None if value is None else torch.from_numpy(np.ascontiguousarray(value[rows]))

        return Batch(
            observations=tensor("observations"), actions=tensor("actions"), rewards=tensor("rewards"),
            next_observations=tensor("next_observations"), terminals=tensor("terminals").float(),
            timeouts=tensor("timeouts").float(), transition_ids=tensor("transition_ids"),
            episode_ids=tensor("episode_ids"), costs=tensor("costs"),
        )

    def sampler(self, *, device: str | torch.device = "cpu", seed: int = 0,
                masks: np.ndarray | None = None) -> TensorSampler:
        """A fast sampler holding the data as tensors on `device` (no per-step NumPy conversion); `masks`, one
        member mask per row, go into each batch's `Batch.masks`."""
        from trajlab.data.sampler import TensorSampler

        return TensorSampler(self.columns(), device=device, seed=seed, masks=masks)

    # --- files --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write an HDF5 file in the D4RL layout plus id arrays and metadata (atomically)."""
        from trajlab.data.hdf5 import save_columns

        return save_columns(path, self.columns(), self.metadata)

    @classmethod
    def load(cls, path: str | Path) -> TransitionDataset:
        """Read a file written by `save` (errors name the file and the problem)."""
        from trajlab.data.hdf5 import load_columns

        columns, metadata, source = load_columns(path)
        try:
            return cls(**columns, metadata=metadata)
        except TrajlabError as error:
            raise TrajlabError(f"{source}: {error}") from None

    def columns(self) -> dict[str, np.ndarray]:
        """Every per-transition array by its schema name (`costs` only when the dataset has costs)."""
        return {name: getattr(self, name) for name in COLUMNS if getattr(self, name) is not None}

    def summary(self) -> dict[str, Any]:
        """Counts, dimensions and return statistics, for `trajlab data info`."""
        returns = self.episode_returns()
        lengths = self.episode_lengths()
        return {
            "episodes": self.num_episodes,
            "transitions": len(self),
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
            "discrete": self.discrete,
            "return_mean": float(returns.mean()) if len(returns) else 0.0,
            "return_std": float(returns.std()) if len(returns) else 0.0,
            "return_min": float(returns.min()) if len(returns) else 0.0,
            "return_max": float(returns.max()) if len(returns) else 0.0,
            "episode_length_mean": float(lengths.mean()) if len(lengths) else 0.0,
            "terminals": int(self.terminals.sum()),
            "timeouts": int(self.timeouts.sum()),
            "has_costs": self.costs is not None,
            "metadata": dict(self.metadata),
        }


# --- helpers ---------------------------------------------------------------------------------------------
def episode_ids_from_ends(ends: np.ndarray) -> np.ndarray:
    """Episode ids 0, 1, ... where each True in `ends` closes an episode; trailing rows form a last one."""
    ends = np.asarray(ends, dtype=bool)
    starts = np.concatenate([[False], ends[:-1]]) if len(ends) else ends
    return np.cumsum(starts).astype(np.int64)


def _next_from_following(
    observations: np.ndarray, episode_ids: np.ndarray, terminals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    following = np.concatenate([observations[1:], observations[-1:]]) if len(observations) else observations
    same_episode = np.concatenate([episode_ids[1:] == episode_ids[:-1], [False]]) if len(episode_ids) else episode_ids
    # a terminal row's successor is never used for bootstrapping, so its own observation stands in
    following = np.where(same_episode[:, None] | ~terminals[:, None], following, observations)
    return following, same_episode | terminals


def _episode_starts(episode_ids: np.ndarray) -> np.ndarray:
    if len(episode_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], episode_ids[1:] != episode_ids[:-1]]))


def _preview(values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _coerce(ds: TransitionDataset) -> dict[str, np.ndarray | None]:
    obs = np.asarray(ds.observations, dtype=np.float32)
    actions = np.asarray(ds.actions)
    actions = actions.astype(np.int64) if actions.ndim == 1 and np.issubdtype(actions.dtype, np.integer) else actions
    if not (actions.ndim == 1 and actions.dtype == np.int64):
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim == 1:
            actions = actions[:, None]
    return {
        "observations": obs.reshape(len(obs), -1) if obs.ndim != 2 else obs,
        "actions": actions,
        "rewards": np.asarray(ds.rewards, dtype=np.float32).reshape(-1),
        "next_observations": np.asarray(ds.next_observations, dtype=np.float32).reshape(len(obs), -1)
        if len(obs) else np.asarray(ds.next_observations, dtype=np.float32).reshape(obs.shape),
        "terminals": np.asarray(ds.terminals).astype(bool).reshape(-1),
        "timeouts": np.asarray(ds.timeouts).astype(bool).reshape(-1),
        "episode_ids": np.asarray(ds.episode_ids).astype(np.int64).reshape(-1),
        "transition_ids": np.asarray(ds.transition_ids).astype(np.int64).reshape(-1),
        "costs": None if ds.costs is None else np.asarray(ds.costs, dtype=np.float32).reshape(-1),
    }


def _validate(ds: TransitionDataset) -> None:
    n = len(ds.rewards)
    lengths = {name: len(getattr(ds, name)) for name in (*ARRAY_FIELDS, *ID_FIELDS)}
    if ds.costs is not None:
        lengths["costs"] = len(ds.costs)
    if len(set(lengths.values())) > 1:
        raise TrajlabError("inconsistent array lengths: " + ", ".join(f"{k} {v}" for k, v in lengths.items()))
    if ds.next_observations.shape != ds.observations.shape:
        raise TrajlabError(
            f"next_observations shape {ds.next_observations.shape} != observations shape {ds.observations.shape}"
        )
    for name in ("observations", "next_observations", "rewards", "actions", "costs"):
        value = getattr(ds, name)
        if value is not None and value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).reshape(n, -1).any(axis=1).argmax())
            raise TrajlabError(f"{name} contains NaN or inf (first at row {bad})")
    if len(np.unique(ds.transition_ids)) != n:
        raise TrajlabError("transition ids are not unique")
    starts = _episode_starts(ds.episode_ids)
    if len(np.unique(ds.episode_ids[starts])) != len(starts):
        raise TrajlabError("episodes are not contiguous: an episode id appears in two separate blocks of rows")
