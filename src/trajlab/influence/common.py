"""What PIToD's online estimate (`pitod.py`, replay-buffer groups) and the offline one (`offline.py`, episode
groups of a dataset) share: the influence itself, the self-influence on a loss term, the return score.

Both score the flipped mask of each group against all members with the agent's own `compute_losses` and its
`act_masked`; only where the groups' experiences come from differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trajlab.core.protocols import Batch
from trajlab.core.seeding import derive_seed
from trajlab.eval.rollouts import rollouts_by_copy


def influence(flipped: np.ndarray, all_members: float) -> np.ndarray:
    """score(flipped mask of each group) - score(all members)."""
    return np.asarray(flipped, dtype=np.float64) - float(all_members)


def return_scores(agent: Any, env_id: str, masks: np.ndarray, n_eval: int, seed: int,
                  max_steps: int | None) -> np.ndarray:
    """Mean deterministic return under each mask [M, K] -> [M]; every mask sees the same n_eval reset seeds."""
    first = derive_seed(seed, "pitod-return") % 2**31
    seeds = [first + episode for _ in range(len(masks)) for episode in range(n_eval)]
    rollouts = rollouts_by_copy(lambda obs, rows, det: agent.act_masked(obs, masks[rows // n_eval], det),
                                env_id, seeds, deterministic=True, max_steps=max_steps)
    return rollouts.returns.reshape(len(masks), n_eval).mean(axis=1)


def loss_shares(agent: Any, batch: Batch, owner: np.ndarray, num_groups: int, seed: int,
                terms: dict[str, str]) -> dict[str, np.ndarray]:
    """Share of each group's rows whose loss term rises under the flipped mask (score name -> [G]).

    `batch.masks` holds each row's own group mask and `owner` its group index; all groups go through one
    `compute_losses` call per mask setting, with the same random draws for both.
    """
    assert batch.masks is not None
    losses_seed = derive_seed(seed, "pitod-losses")
    flipped = losses_with_seed(agent, batch.replace(masks=~batch.masks), losses_seed)
    everyone = losses_with_seed(agent, batch.replace(masks=None), losses_seed)
    shares = {}
    for score, term in terms.items():
        rises = (flipped[term] > everyone[term]).cpu().numpy()
        shares[score] = np.asarray([rises[owner == index].mean() for index in range(num_groups)])
    return shares


def losses_with_seed(agent: Any, batch: Batch, seed: int) -> dict[str, Tensor]:
    """The agent's per-sample loss terms on `batch` with torch seeded by `seed` (the caller's random state kept)."""
    device = torch.device(getattr(agent, "device", "cpu"))
    with seeded_torch(agent, seed), torch.no_grad():
        return {name: value.detach() for name, value in agent.compute_losses(batch.to(device)).terms().items()}


@contextmanager
def seeded_torch(agent: Any, seed: int) -> Iterator[None]:
    """Torch's generators seeded by `seed` inside, the caller's random state restored after: the stochastic
    actions of an estimate are then the same for the same seed, and training resumes its own stream."""
    device = torch.device(getattr(agent, "device", "cpu"))
    # manual_seed below seeds every device, so the fork must restore the agent's GPU generator too
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield
