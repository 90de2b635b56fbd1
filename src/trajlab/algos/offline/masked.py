"""Turn-over dropout (PIToD) for offline agents: what `masked_td3_bc` and `masked_iql` add to their algorithm.

The algorithm's networks become masked ensembles of K sub-networks (`trajlab.nn.masked`); every transition
carries the member mask of its episode group (`Batch.masks`, put there by the offline sampler from
`episode_group_masks`: group = episode id // group_size, so a filtered dataset keeps each episode's mask). The
algorithm's losses pass `_member_mask(batch)` to every network call, so each sample's losses and TD targets use
its own members and nothing of the algorithm is copied. A batch without masks uses every member.

With `member_coupling: independent` the same calls return every member's own output instead of the masked mean
(`MemberCoupling`), so the members outside a group's mask never read a member that trained on it; `td_target`
then gives one target per member, [K, B].

`deploy_mask` (None: all members) is the mask the agent acts with, saved in the checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from trajlab.algos.masking import DeployMask, MemberCoupling
from trajlab.data.masks import GroupMasks


class MaskedOfflineMixin(DeployMask, MemberCoupling):
    """Masks, masked acting and the deploy mask of a masked offline agent (put before the algorithm's class).

    The config needs `ensemble_size`, `group_size` (episodes per group) and `mask_seed`; the algorithm's networks
    must take `mask=` (`trajlab.nn.masked`).
    """

    actor: Any
    critic: Any
    config: Any
    device: torch.device
    obs_normalizer: Any
    _action_centre: Tensor
    _action_half_range: Tensor

    def _init_masks(self, seed: int) -> None:
        config = self.config
        self.deploy_mask: Tensor | None = None
        # the offline sampler gives every row its episode group's mask from these (training.offline)
        self.episode_group_masks = GroupMasks(config.ensemble_size, config.group_size,
                                              seed if config.mask_seed is None else config.mask_seed)

    @property
    def num_members(self) -> int:
        return int(self.config.ensemble_size)

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self.actor.act(observations, deterministic, mask=self.deploy_mask)

    @torch.no_grad()
    def act_masked(self, observations: np.ndarray, masks: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for raw observations [N, obs], each under its own member mask [N, K] (batched evaluation)."""
        obs = torch.as_tensor(np.array(observations, dtype=np.float32), device=self.device)
        mask = torch.as_tensor(np.asarray(masks, dtype=bool), device=self.device)
        action = self.actor.act(self.obs_normalizer(obs), deterministic, mask=mask)
        return (action * self._action_half_range + self._action_centre).cpu().numpy()

    @torch.no_grad()
    def masked_q(self, observations: Tensor, actions: Tensor, mask: Tensor | None) -> Tensor:
        """min over the critics of Q(s, a) [N] under `mask`, for raw observations and env-unit actions."""
        inputs = self.network_inputs(observations.to(self.device), actions.to(self.device))  # type: ignore[attr-defined]
        return self.critic(*inputs, mask=mask).min(dim=0).values
