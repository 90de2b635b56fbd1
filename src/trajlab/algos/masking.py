"""What every turn-over dropout agent shares (PIToD): the config fields of its masked ensembles and the member
mask it acts with. Masked SAC (online) and masked TD3+BC / IQL (offline) take both from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch
from trajlab.nn.masked import member_mean

MEMBER_COUPLINGS = ("mean", "independent")
"""How a sample trains the members of its mask: "mean" (the paper's) applies the algorithm's losses to the
masked means of the members' outputs, so a member's TD target and actor loss also read members that other groups
trained; "independent" trains every member as an agent of its own and averages the members' own losses over the
mask, so no group reaches the members outside its mask (docs/benchmarks.md)."""


def check_member_coupling(coupling: str) -> None:
    if coupling not in MEMBER_COUPLINGS:
        raise TrajlabError(f"member_coupling must be one of {', '.join(MEMBER_COUPLINGS)}, got {coupling!r}")


@dataclass(frozen=True)
class MaskedEnsembleFields:
    """Config fields of an offline agent whose networks are masked ensembles over episode groups."""

    ensemble_size: int = 10
    """K, the sub-networks of every masked ensemble (even; each episode group trains K/2 of them)."""
    group_size: int = 1
    """Consecutive episodes (by episode id) that share one member mask (1: a mask per episode)."""
    mask_seed: int | None = None
    """Seed of the group masks; None means the agent's seed."""
    layer_norm: bool = False
    """Layer normalisation after each hidden layer of every sub-network (PIToD's SAC has it; off by default as in
    the algorithm's paper, and because its batch reductions make a weight-0 sample differ from a left-out one by
    rounding, which `check_agent` refuses)."""
    member_coupling: str = "mean"
    """How a sample trains the members of its mask: "mean" (the paper's) or "independent" (every member an agent
    of its own: its own TD target, actor and value losses, averaged over the mask)."""

    def __post_init__(self) -> None:
        check_member_coupling(self.member_coupling)


class MemberCoupling:
    """How a masked agent calls its networks on a batch, and how per-member losses become per-sample ones.

    The algorithm passes `_member_mask(batch)` to every network call and `_per_sample` to every loss it returns.
    With the paper's coupling the networks average each sample's members and the losses are already [B]. With
    independent members the networks give every member's own output, the algorithm's formulas give every member's
    own losses and TD targets ([K, B]), and `_per_sample` averages each loss over the sample's mask. The agent's
    config has `member_coupling`.
    """

    config: Any

    @property
    def independent_members(self) -> bool:
        return self.config.member_coupling == "independent"

    def _member_mask(self, batch: Batch) -> dict[str, Any]:
        return {"per_member": True} if self.independent_members else {"mask": batch.masks}

    def _per_sample(self, loss: Tensor, batch: Batch) -> Tensor:
        return member_mean(loss, batch.masks) if self.independent_members else loss


class DeployMask:
    """The member mask an agent acts with (`deploy_mask`, None: every member), kept in its checkpoint.

    The agent provides `num_members` and `device`, and sets `self.deploy_mask = None` when it is built.
    """

    deploy_mask: Tensor | None
    num_members: int
    device: torch.device

    def set_deploy_mask(self, mask: np.ndarray | Tensor | None) -> None:
        """Act with this member mask [K] from now on (None: every member)."""
        if mask is None:
            self.deploy_mask = None
            return
        mask = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
        if mask.shape != (self.num_members,) or not bool(mask.any()):
            raise TrajlabError(f"a deploy mask needs {self.num_members} entries with at least one member on, "
                               f"got shape {tuple(mask.shape)}")
        self.deploy_mask = mask

    def extra_state(self) -> dict[str, Any]:
        return {"deploy_mask": None if self.deploy_mask is None else self.deploy_mask.cpu().tolist()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.set_deploy_mask(state.get("deploy_mask"))
