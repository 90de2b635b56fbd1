"""Discrete CQL (Kumar, Zhou, Tucker & Levine, 2020): (double) DQN with the CQL(H) regulariser.

    td:            Huber(Q(s, a) - y),  y = r + gamma (1 - d) Q'(s', argmax_a' Q(s', a'))   (double DQN)
    conservative:  alpha * (logsumexp_a' Q(s, a') - Q(s, a))

With a finite action set the logsumexp is exact (no sampled actions). alpha is 1.0, the paper's value for
discrete actions. Network and optimiser settings are those of discrete BCQ for vector observations (256x256,
Adam at 3e-4, batch 256, Polyak rate 0.005), so the two discrete Q-learners compare like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from trajlab.algos.base import AGENTS, RuntimeOptions
from trajlab.algos.offline.base import OfflineAgent
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.mlp import mlp
from trajlab.nn.qlearning import action_values, epsilon_greedy
from trajlab.nn.training import PolyakAverager, adam, frozen_copy, step


@dataclass(frozen=True)
class DiscreteCQLConfig:
    """Discrete CQL settings (alpha: the paper's; network and optimiser: as discrete BCQ)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Q-network."""
    lr: float = 3e-4
    """Adam learning rate of the Q-network."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target Q-network."""
    alpha: float = 1.0
    """Weight of the conservative term logsumexp Q(s, .) - Q(s, a)."""
    double_dqn: bool = True
    """Pick the next action with the online network and value it with the target (False: max of the target)."""
    act_epsilon: float = 0.001
    """Probability of a uniformly random action when acting with deterministic=False."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean and std (the paper does not)."""


@dataclass
class DiscreteCQLLosses(LossOutput):
    td: Tensor
    """Huber loss of Q(s, a) against the (double) DQN target [B]."""
    conservative: Tensor
    """alpha * (logsumexp_a' Q(s, a') - Q(s, a)) [B]."""


def conservative_penalty(q_values: Tensor, actions: Tensor) -> Tensor:
    """logsumexp_a' Q(s, a') - Q(s, a): [B, A] Q-values and [B] actions -> [B] (>= 0 up to log A)."""
    return torch.logsumexp(q_values, dim=-1) - action_values(q_values, actions)


@AGENTS.register("discrete_cql")
class DiscreteCQL(OfflineAgent):
    """Double DQN with the CQL(H) conservative regulariser."""

    name = "discrete_cql"
    config_class = DiscreteCQLConfig

    def __init__(self, spec: SpaceSpec, config: DiscreteCQLConfig = DiscreteCQLConfig(), *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        if not spec.discrete:
            raise TrajlabError("discrete_cql needs discrete actions; use cql for continuous ones")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.q_network = mlp(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.q_target = frozen_copy(self.q_network)
        self.networks = {"q": self.q_network, "q_target": self.q_target}
        self.optimizers = {"q": adam(self.q_network.parameters(), config.lr)}
        self._averager = PolyakAverager(self.q_network, self.q_target)
        self._losses = self.compiled(self._losses_eager)

    # --- losses -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) Q'(s', a*) with a* from the online (double DQN) or target network -> [B]."""
        target_q = self.q_target(batch.next_observations)
        chooser = self.q_network(batch.next_observations) if self.config.double_dqn else target_q
        next_value = action_values(target_q, chooser.argmax(dim=-1))
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    def _losses_eager(self, batch: Batch) -> tuple[Tensor, Tensor]:
        q_values = self.q_network(batch.observations)
        td = F.smooth_l1_loss(action_values(q_values, batch.actions), self.td_target(batch), reduction="none")
        return td, self.config.alpha * conservative_penalty(q_values, batch.actions)

    def compute_losses(self, batch: Batch) -> DiscreteCQLLosses:
        with self.autocast():
            td, conservative = self._losses(self.preprocess(batch))
            return DiscreteCQLLosses(td=td, conservative=conservative)

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            td, conservative = self._losses(self.preprocess(batch))
            td_loss, conservative_loss = self.reduce("td", td, batch), self.reduce("conservative", conservative, batch)
            step(self.optimizers["q"], td_loss + conservative_loss)
        self._averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([td_loss.detach(), conservative_loss.detach()]).float().tolist()
        return dict(zip(("td_loss", "conservative_loss"), metrics))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Q(s, a) [B] for raw observations and action indices (TrajAuditor's value estimates)."""
        observations, actions = self.network_inputs(observations, actions)
        return action_values(self.q_network(observations), actions.long())

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        greedy = self.q_network(observations).argmax(dim=-1)
        return greedy if deterministic else epsilon_greedy(greedy, self.spec.action_dim, self.config.act_epsilon)
