"""Group masks of turn-over dropout (PIToD): every `group_size` consecutive transitions share one member mask.

Group e holds the transitions with ids [e * group_size, (e + 1) * group_size), so a group id is derived from a
transition id alone (`group_of`). Its mask has exactly K/2 ones, drawn from a generator seeded with (seed, e): the
same seed gives the same masks in any process, whatever order the groups are asked for in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajlab.core.errors import TrajlabError


@dataclass(frozen=True)
class GroupMasks:
    """How transitions are assigned masks over an ensemble of `num_members` sub-networks."""

    num_members: int
    """K, the sub-networks of each masked ensemble (even, at least 2)."""
    group_size: int
    """Consecutive transitions that share one mask."""
    seed: int = 0
    """Seed of the masks (with the group id)."""

    def __post_init__(self) -> None:
        if self.num_members < 2 or self.num_members % 2:
            raise TrajlabError(f"a masked ensemble needs an even number of members (at least 2), "
                               f"got {self.num_members}")
        if self.group_size < 1:
            raise TrajlabError(f"group_size must be at least 1, got {self.group_size}")

    def group_of(self, transition_ids: np.ndarray | int) -> np.ndarray:
        """Group id of each transition id."""
        return np.asarray(transition_ids, dtype=np.int64) // self.group_size

    def mask(self, group: int) -> np.ndarray:
        """The mask [K] (bool, exactly K/2 True) of one group."""
        rng = np.random.default_rng([int(self.seed), int(group)])
        chosen = rng.choice(self.num_members, self.num_members // 2, replace=False)
        mask = np.zeros(self.num_members, dtype=bool)
        mask[chosen] = True
        return mask

    def transition_range(self, group: int) -> tuple[int, int]:
        """[first, last) transition ids of a group."""
        return group * self.group_size, (group + 1) * self.group_size

    def masks_of(self, ids: np.ndarray) -> np.ndarray:
        """The mask [N, K] of each id's group (ids of transitions, or of episodes when groups are episodes).

        Offline datasets group by episode id, not by row, so a filtered dataset (`without`, `subset`) keeps every
        episode's group and mask.
        """
        groups = self.group_of(ids)
        unique, inverse = np.unique(groups, return_inverse=True)
        table = np.stack([self.mask(int(group)) for group in unique]) if len(unique) else \
            np.zeros((0, self.num_members), dtype=bool)
        return table[inverse.reshape(-1)]
