"""SAC with turn-over dropout (PIToD, Hiraoka et al., RLC 2025): masked ensembles in the policy and both Q's.

The policy's mean and log-std heads and each Q-network (and its target) are ensembles of K complete sub-MLPs
(`trajlab.nn.masked`). Every transition carries the member mask of its group (`Batch.masks`, stored by the replay
buffer from `group_masks`); its critic loss, its TD target (next action and target Q's) and its actor loss are all
computed under that mask, so a group only ever trains its half of every ensemble. The losses themselves are SAC's
(`SAC._member_mask` and `SAC._per_sample` are the hooks): nothing is copied. A batch without masks uses every member.

`member_coupling` chooses how a sample trains its members. "mean" (the paper's) computes SAC's losses on the
masked means, so a member's TD target and actor loss also read the other members of each sample's mask, members
that other groups trained: a group's harm reaches its flipped half through them (measured in docs/benchmarks.md).
"independent" makes every member a SAC agent of its own (its own policy member, critic members, targets and
temperature) and averages the members' own losses over the sample's mask (`MemberCoupling`): the members outside a
group's mask then depend on the group in no way but the data the whole ensemble collected, so on a fixed stream of
batches they end bit-identical whatever the group held.

`deploy_mask` (None: all members) is the mask the agent acts with; it is saved in the checkpoint, so an agent
amended to the flipped mask of a harmful group is a normal checkpoint any trajlab command loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.masking import DeployMask, MemberCoupling, check_member_coupling
from trajlab.algos.online.sac import SAC, SACConfig
from trajlab.core.errors import TrajlabError
from trajlab.core.spec import SpaceSpec
from trajlab.data.masks import GroupMasks
from trajlab.nn.masked import MaskedEnsembleCritic, MaskedTanhGaussianPolicy
from trajlab.nn.training import LogScalar, frozen_copy


@dataclass(frozen=True)
class MaskedSACConfig(SACConfig):
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer widths of every sub-network (the paper: 128 x 128)."""
    critic_layer_norm: bool = True
    """Layer normalisation after each hidden layer of the critics' sub-networks (the paper: True)."""
    actor_layer_norm: bool = True
    """Layer normalisation after each hidden layer of the policy's sub-networks (the paper: True)."""
    ensemble_size: int = 20
    """K, the sub-networks of every masked ensemble (even; each group trains K/2 of them)."""
    group_size: int = 5_000
    """Consecutive transitions that share one member mask (an experience group)."""
    mask_seed: int | None = None
    """Seed of the group masks; None means the agent's seed."""
    member_coupling: str = "mean"
    """How a sample trains the members of its mask: "mean" (the paper's) applies SAC's losses to the masked
    means of the members' outputs; "independent" trains every member as its own SAC agent (own TD target, actor
    loss and temperature) and averages their losses over the mask, so no group reaches its flipped half."""

    def __post_init__(self) -> None:
        check_member_coupling(self.member_coupling)



@AGENTS.register("masked_sac")
class MaskedSAC(DeployMask, MemberCoupling, SAC):
    """SAC whose actor and critics are masked ensembles; networks as SAC's, plus `deploy_mask` for acting."""

    name = "masked_sac"
    config_class = MaskedSACConfig

    def __init__(self, spec: SpaceSpec, config: MaskedSACConfig | None = None, *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        config = config or MaskedSACConfig()
        if spec.discrete:
            raise TrajlabError("masked_sac needs continuous actions")
        self.deploy_mask: Tensor | None = None
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        # the online trainer builds its replay buffer with these, so every stored transition gets its group's mask
        self.group_masks = GroupMasks(config.ensemble_size, config.group_size,
                                      seed if config.mask_seed is None else config.mask_seed)

    def _new_networks(self) -> dict[str, torch.nn.Module]:
        spec, config = self.spec, self.config
        critic = MaskedEnsembleCritic(config.num_critics, config.ensemble_size, spec.observation_dim,
                                      spec.action_dim, config.hidden, layer_norm=config.critic_layer_norm,
                                      dropout=config.critic_dropout).to(self.device)
        actor = MaskedTanhGaussianPolicy(config.ensemble_size, spec.observation_dim, spec.action_dim, config.hidden,
                                         layer_norm=config.actor_layer_norm)
        # independent members each have a temperature, shaped [K, 1] to broadcast over their [K, B] losses
        temperatures = (config.ensemble_size, 1) if config.member_coupling == "independent" else ()
        return {"actor": actor.to(self.device), "critic": critic, "critic_target": frozen_copy(critic),
                "alpha": LogScalar(config.initial_alpha, temperatures).to(self.device)}

    def masked_alpha(self, mask: Tensor | None) -> float:
        """The entropy temperature under `mask`: the mean of its members' own (one shared value unless
        independent)."""
        if not self.independent_members or mask is None:
            return float(self.alpha.mean())
        return float(self.alpha.reshape(-1)[mask.to(torch.bool)].mean())

    @property
    def num_members(self) -> int:
        return int(self.config.ensemble_size)

    # --- acting under a mask ----------------------------------------------------------------------------
    def _policy_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        return self._masked_action(observations, self.deploy_mask, deterministic)

    def _masked_action(self, observations: Tensor, mask: Tensor | None, deterministic: bool) -> Tensor:
        action, _ = self.actor(observations, deterministic, mask=mask)
        return action * self._action_half_range + self._action_centre

    @torch.no_grad()
    def act_masked(self, observations: np.ndarray, masks: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for observations [N, obs] each under its own member mask [N, K] (batched evaluation)."""
        obs = torch.as_tensor(np.array(observations, dtype=np.float32), device=self.device)
        mask = torch.as_tensor(np.asarray(masks, dtype=bool), device=self.device)
        return self._masked_action(obs, mask, deterministic).cpu().numpy()

    @torch.no_grad()
    def masked_q(self, observations: Tensor, actions: Tensor, mask: Tensor | None) -> Tensor:
        """min over the critics of Q(s, a) [N] under `mask` ([K] or [N, K]), for actions in env units."""
        q = self.critic(observations.to(self.device), self.normalized_actions(actions.to(self.device)), mask=mask)
        return q.min(dim=0).values

    @torch.no_grad()
    def masked_log_prob(self, observations: Tensor, actions: Tensor, mask: Tensor | None) -> Tensor:
        """log pi(a|s) [N] under `mask`, for actions in env units."""
        return self.actor.log_prob(observations.to(self.device), self.normalized_actions(actions.to(self.device)),
                                   mask=mask)
