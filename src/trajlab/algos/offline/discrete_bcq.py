"""Discrete BCQ (Fujimoto, Conti, Ghavamzadeh & Pineau, 2019): Q-learning restricted to likely actions.

    imitation:  -log G(a | s) + logit_penalty * mean_k f_k(s)^2           (G = softmax(f), a behaviour model)
    allowed:    A(s) = {a : G(a | s) / max_a' G(a' | s) > threshold}
    td:         Huber(Q(s, a) - y),  y = r + gamma (1 - d) Q'(s', argmax_{a' in A(s')} Q(s', a'))

The next action is chosen by the online network among the allowed actions and valued by the target network
(double DQN). The agent acts greedily among the allowed actions. Defaults are the authors' settings for
non-Atari (vector-observation) tasks: 256x256 networks, Adam at 3e-4, Polyak rate 0.005, with the batch of 256
the other offline agents use (theirs: 64).
"""

from __future__ import annotations

import math
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
class DiscreteBCQConfig:
    """Discrete BCQ settings (defaults: the authors' non-Atari settings, batch 256)."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Q-network and of the behaviour model."""
    lr: float = 3e-4
    """Adam learning rate of the Q-network and the behaviour model."""
    batch_size: int = 256
    """Transitions per update."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target Q-network."""
    threshold: float = 0.3
    """An action is allowed when its behaviour probability is above threshold x the most likely action's."""
    logit_penalty: float = 0.01
    """Weight of the squared behaviour-model logits in the imitation loss."""
    act_epsilon: float = 0.001
    """Probability of a uniformly random action when acting with deterministic=False (the authors' eval epsilon)."""
    normalize_observations: bool = False
    """Standardise observations with the dataset's mean and std (the paper does not)."""


@dataclass
class DiscreteBCQLosses(LossOutput):
    td: Tensor
    """Huber loss of Q(s, a) against the batch-constrained double-DQN target [B]."""
    imitation: Tensor
    """Negative log-likelihood of the dataset action under G plus the logit penalty [B]."""


def allowed_actions(log_probs: Tensor, threshold: float) -> Tensor:
    """Mask [B, A] of actions whose probability is above threshold x the row's largest probability."""
    if threshold <= 0.0:
        return torch.ones_like(log_probs, dtype=torch.bool)
    log_ratio = log_probs - log_probs.max(dim=-1, keepdim=True).values  # log G(a|s) / max_a' G(a'|s)
    return log_ratio > math.log(threshold)


def filtered_greedy(q_values: Tensor, log_probs: Tensor, threshold: float) -> Tensor:
    """argmax of Q over the allowed actions, [B, A] -> [B] int64 (the most likely action is always allowed)."""
    return q_values.masked_fill(~allowed_actions(log_probs, threshold), -math.inf).argmax(dim=-1)


def imitation_loss(logits: Tensor, actions: Tensor, logit_penalty: float) -> Tensor:
    """Per-sample -log softmax(logits)[a] + logit_penalty * mean_k logits_k^2 -> [B]."""
    return F.cross_entropy(logits, actions, reduction="none") + logit_penalty * logits.pow(2).mean(-1)


@AGENTS.register("discrete_bcq")
class DiscreteBCQ(OfflineAgent):
    """Discrete BCQ: double DQN whose greedy choices are limited to actions a behaviour model finds likely."""

    name = "discrete_bcq"
    config_class = DiscreteBCQConfig

    def __init__(self, spec: SpaceSpec, config: DiscreteBCQConfig = DiscreteBCQConfig(), *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        if not spec.discrete:
            raise TrajlabError("discrete_bcq needs discrete actions; use bcq for continuous ones")
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.q_network = mlp(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.imitation = mlp(spec.observation_dim, spec.action_dim, config.hidden).to(self.device)
        self.q_target = frozen_copy(self.q_network)
        self.networks = {"q": self.q_network, "imitation": self.imitation, "q_target": self.q_target}
        parameters = [*self.q_network.parameters(), *self.imitation.parameters()]
        self.optimizers = {"q": adam(parameters, config.lr)}
        self._averager = PolyakAverager(self.q_network, self.q_target)
        self._losses = self.compiled(self._losses_eager)

    # --- losses -------------------------------------------------------------------------------------
    def _greedy_allowed(self, observations: Tensor) -> Tensor:
        log_probs = F.log_softmax(self.imitation(observations), dim=-1)
        return filtered_greedy(self.q_network(observations), log_probs, self.config.threshold)

    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """r + gamma (1 - d) Q'(s', best allowed a') for a preprocessed batch -> [B]."""
        next_actions = self._greedy_allowed(batch.next_observations)
        next_value = action_values(self.q_target(batch.next_observations), next_actions)
        return batch.rewards + self.config.gamma * (1.0 - batch.terminals) * next_value

    def _losses_eager(self, batch: Batch) -> tuple[Tensor, Tensor]:
        q_taken = action_values(self.q_network(batch.observations), batch.actions)
        td = F.smooth_l1_loss(q_taken, self.td_target(batch), reduction="none")
        return td, imitation_loss(self.imitation(batch.observations), batch.actions, self.config.logit_penalty)

    def compute_losses(self, batch: Batch) -> DiscreteBCQLosses:
        with self.autocast():
            td, imitation = self._losses(self.preprocess(batch))
            return DiscreteBCQLosses(td=td, imitation=imitation)

    # --- training -----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        with self.autocast():
            td, imitation = self._losses(self.preprocess(batch))
            td_loss, bc_loss = self.reduce("td", td, batch), self.reduce("imitation", imitation, batch)
            step(self.optimizers["q"], td_loss + bc_loss)
        self._averager.update(self.config.tau)
        self.num_updates += 1
        metrics = torch.stack([td_loss.detach(), bc_loss.detach()]).float().tolist()
        return dict(zip(("td_loss", "imitation_loss"), metrics))

    @torch.no_grad()
    def q_value(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Q(s, a) [B] for raw observations and action indices (TrajAuditor's value estimates)."""
        observations, actions = self.network_inputs(observations, actions)
        return action_values(self.q_network(observations), actions.long())

    def actor_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        greedy = self._greedy_allowed(observations)
        return greedy if deterministic else epsilon_greedy(greedy, self.spec.action_dim, self.config.act_epsilon)
