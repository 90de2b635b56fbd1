"""Soft Actor-Critic with automatic entropy tuning (Haarnoja et al., 2018), with DroQ and periodic resets.

* Twin critics are ONE vectorised ensemble (`EnsembleCritic`): both Q-functions cost one batched matmul per
  layer, and the TD target takes the minimum over its members.
* DroQ (Hiraoka et al., 2022): dropout and layer norm in the critics, several critic updates per env step
  (`utd_ratio`), the actor and temperature updated once per env step (`actor_every`).
* Resets (Nikishin et al., 2022): every `reset_every` updates all networks, the temperature and the
  optimisers start afresh; the replay buffer is kept. The influence work (PIToD) trains in this setting.

Losses are per-sample (`SACLosses`, each [B]); `update` reduces them with `Batch.weights`, so forgetting and
influence code can reweight transitions without touching this file. Batches are raw: actions in the env's
units, which the agent maps to [-1, 1] itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import functional_call

from trajlab.algos.base import AGENTS, AgentBase, RuntimeOptions
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec
from trajlab.nn.ensemble import EnsembleCritic
from trajlab.nn.policies import TanhGaussianPolicy
from trajlab.nn.training import LogScalar, PolyakAverager, adam, frozen_copy


@dataclass(frozen=True)
class SACConfig:
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(alpha), the entropy temperature."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak factor of the target critics: target <- (1 - tau) * target + tau * critic, after each update."""
    batch_size: int = 256
    """Minibatch size the online trainer samples from the replay buffer."""
    initial_alpha: float = 1.0
    """Entropy temperature at the start (and after each reset)."""
    tune_alpha: bool = True
    """Learn alpha so the policy's entropy tracks `target_entropy`; False keeps `initial_alpha` fixed."""
    target_entropy: float | None = None
    """Entropy the temperature tuning aims for; None means -action_dim (the SAC paper's heuristic)."""
    num_critics: int = 2
    """Q-functions in the critic ensemble; the TD target and the actor use their minimum."""
    utd_ratio: int = 1
    """Updates per environment step (update-to-data ratio); DroQ uses 20."""
    actor_every: int | None = None
    """Update the actor and alpha on every `actor_every`-th update only; None means once per env step
    (every `utd_ratio`-th update, as in DroQ/REDQ), so with utd_ratio 1 every update trains them."""
    critic_dropout: float = 0.0
    """Dropout rate in the critics' hidden layers (DroQ: 0.01); the target critics use it too."""
    critic_layer_norm: bool = False
    """Layer normalisation after each critic hidden layer (DroQ: True)."""
    reset_every: int = 0
    """Re-initialise every network, the temperature and the optimisers after this many updates (0: never)."""


@dataclass
class SACLosses(LossOutput):
    critic: Tensor
    """0.5 * sum over critics of (Q_i(s, a) - y)^2, per sample."""
    actor: Tensor
    """alpha * log pi(a~|s) - min_i Q_i(s, a~) for a fresh action a~ ~ pi(.|s) (critic weights held fixed)."""
    alpha: Tensor
    """-log(alpha) * (log pi(a~|s) + target_entropy) with the log-probability held fixed."""
    info_q: Tensor | None = None
    """Q_i(s, a) of every critic [num_critics, B] (diagnostics)."""
    info_log_prob: Tensor | None = None
    """log pi(a~|s) [B] (diagnostics: -mean is the policy entropy estimate)."""


def soft_td_target(rewards: Tensor, terminals: Tensor, next_q: Tensor, next_log_prob: Tensor, alpha: Tensor | float,
                   gamma: float) -> Tensor:
    """y = r + gamma * (1 - terminal) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')); next_q is [N, B].

    Only `terminals` (termination) stops bootstrapping; a time-limit truncation still bootstraps.
    """
    soft_value = next_q.min(dim=0).values - alpha * next_log_prob
    return rewards + gamma * (1.0 - terminals) * soft_value


def alpha_loss_per_sample(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """-log(alpha) * (log pi + target_entropy): its gradient raises alpha while entropy is below target."""
    return -log_alpha * (log_prob.detach() + target_entropy)


@AGENTS.register("sac")
class SAC(AgentBase):
    """SAC agent; networks: actor (TanhGaussianPolicy), critic and critic_target (EnsembleCritic), alpha."""

    name = "sac"
    config_class = SACConfig
    metric_names = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "q_mean")
    """What `update` reports (actor and alpha losses only on actor steps); the trainer's metrics.csv columns."""

    def __init__(self, spec: SpaceSpec, config: SACConfig | None = None, *, device: str = "cpu", seed: int = 0,
                 runtime: RuntimeOptions = RuntimeOptions()):
        config = config or SACConfig()
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.target_entropy = -float(spec.action_dim) if config.target_entropy is None else config.target_entropy
        centre, half_range = spec.action_scale()
        self._action_centre = torch.as_tensor(centre, device=self.device)
        self._action_half_range = torch.as_tensor(half_range, device=self.device)
        self.networks = self._new_networks()
        self.actor, self.critic = self.networks["actor"], self.networks["critic"]
        self.critic_target, self.log_alpha = self.networks["critic_target"], self.networks["alpha"].log_value
        self.polyak = PolyakAverager(self.critic, self.critic_target)
        self.optimizers = {
            "critic": adam(self.critic.parameters(), config.critic_lr),
            "actor": adam(self.actor.parameters(), config.actor_lr),
            "alpha": adam([self.log_alpha], config.alpha_lr),
        }
        # torch.compile (runtime.compile) pays off for small networks (+11% updates/s at 64x64 on one CPU thread),
        # not for 256x256, where matrix products dominate
        self._critic_step, self._full_step = self.compiled(self._critic_losses), self.compiled(self._all_losses)

    def _new_networks(self) -> dict[str, torch.nn.Module]:
        spec, config = self.spec, self.config
        critic = EnsembleCritic(config.num_critics, spec.observation_dim, spec.action_dim, config.hidden,
                                dropout=config.critic_dropout, layer_norm=config.critic_layer_norm).to(self.device)
        return {
            "actor": TanhGaussianPolicy(spec.observation_dim, spec.action_dim, config.hidden).to(self.device),
            "critic": critic,
            "critic_target": frozen_copy(critic),
            "alpha": LogScalar(config.initial_alpha).to(self.device),
        }

    # --- losses -----------------------------------------------------------------------------------------
    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.detach().exp()

    def normalized_actions(self, actions: Tensor) -> Tensor:
        """Env-unit actions mapped to the policy's [-1, 1] box."""
        return (actions - self._action_centre) / self._action_half_range

    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """Soft TD target [B] from the target critics and a fresh next action a' ~ pi(.|s')."""
        members = self._member_mask(batch)
        next_actions, next_log_prob = self.actor(batch.next_observations, **members)
        next_q = self.critic_target(batch.next_observations, next_actions, **members)
        return soft_td_target(batch.rewards, batch.terminals, next_q, next_log_prob, self.alpha, self.config.gamma)

    def _critic_losses(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(per-sample critic loss [B], Q-values [N, B])."""
        q = self.critic(batch.observations, self.normalized_actions(batch.actions), **self._member_mask(batch))
        squared = 0.5 * (q - self.td_target(batch)).pow(2).sum(dim=0)
        return self._per_sample(squared, batch), self._per_sample(q, batch)

    def _actor_losses(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """(actor [B], alpha [B], log pi [B]); the critic's weights enter as constants, so the actor loss's
        gradient reaches the actor only."""
        members = self._member_mask(batch)
        actions, log_prob = self.actor(batch.observations, **members)
        fixed_critic = {name: p.detach() for name, p in self.critic.named_parameters()}
        q = functional_call(self.critic, fixed_critic, (batch.observations, actions), members).min(dim=0).values
        actor = self.alpha * log_prob - q
        alpha = alpha_loss_per_sample(self.log_alpha, log_prob, self.target_entropy)
        return self._per_sample(actor, batch), self._per_sample(alpha, batch), self._per_sample(log_prob, batch)

    def _member_mask(self, batch: Batch) -> dict[str, Tensor | None]:
        """Extra keyword arguments of every actor and critic call on `batch`: none for plain SAC; the masked
        variant (`algos/online/masked_sac.py`) passes each sample's member mask here."""
        return {}

    def _per_sample(self, loss: Tensor, batch: Batch) -> Tensor:
        """A loss as one value per sample [B]: as it is for SAC; the masked variant with independent members
        averages its per-member losses [K, B] over each sample's mask."""
        return loss

    def compute_losses(self, batch: Batch) -> SACLosses:
        """Critic, actor and temperature losses per sample, all at the current weights."""
        with self.autocast():
            return self._all_losses(batch)

    def _all_losses(self, batch: Batch) -> SACLosses:
        critic, q = self._critic_losses(batch)
        actor, alpha, log_prob = self._actor_losses(batch)
        return SACLosses(critic=critic, actor=actor, alpha=alpha, info_q=q.detach(), info_log_prob=log_prob.detach())

    # --- update -----------------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step; on actor steps (see `actor_every`) also one actor and one temperature step."""
        train_actor = self.num_updates % self._actor_period() == self._actor_period() - 1
        with self.autocast():
            if train_actor:
                losses = self._full_step(batch)
                critic_loss = self.reduce("critic", losses.critic, batch)
                actor_loss = self.reduce("actor", losses.actor, batch)
                alpha_loss = self.reduce("alpha", losses.alpha, batch) if self.config.tune_alpha else None
                q = losses.info_q
            else:
                per_sample, q = self._critic_step(batch)
                critic_loss, actor_loss, alpha_loss = self.reduce("critic", per_sample, batch), None, None
        self._apply_gradients(critic_loss, actor_loss, alpha_loss)
        self.num_updates += 1
        if self.config.reset_every and self.num_updates % self.config.reset_every == 0:
            self.reset()
        return self._metrics(critic_loss, actor_loss, alpha_loss, q)

    def _actor_period(self) -> int:
        return self.config.actor_every or self.config.utd_ratio

    def _apply_gradients(self, critic_loss: Tensor, actor_loss: Tensor | None, alpha_loss: Tensor | None) -> None:
        """One backward pass through the summed losses (their parameters are disjoint), then Adam and Polyak."""
        stepped = [self.optimizers["critic"]]
        total = critic_loss
        if actor_loss is not None:
            total, stepped = total + actor_loss, [*stepped, self.optimizers["actor"]]
        if alpha_loss is not None:
            total, stepped = total + alpha_loss, [*stepped, self.optimizers["alpha"]]
        for optimizer in stepped:
            optimizer.zero_grad(set_to_none=True)
        total.backward()
        for optimizer in stepped:
            optimizer.step()
        self.polyak.update(self.config.tau)

    def _metrics(self, critic_loss: Tensor, actor_loss: Tensor | None, alpha_loss: Tensor | None,
                 q: Tensor) -> dict[str, float]:
        # one tensor -> list conversion instead of one .item() per metric
        names = ["critic_loss", "q_mean", "alpha"]
        values = [critic_loss.detach(), q.detach().mean(), self.alpha.mean()]  # masked SAC's members may each have one
        if actor_loss is not None:
            names.append("actor_loss")
            values.append(actor_loss.detach())
        if alpha_loss is not None:
            names.append("alpha_loss")
            values.append(alpha_loss.detach())
        return dict(zip(names, torch.stack(values).tolist()))

    def reset(self) -> None:
        """Re-initialise all networks (targets copy the new critics), the temperature and the optimisers.

        Weights are loaded into the existing modules, so optimisers, the Polyak averager and compiled
        functions keep pointing at the same parameters.
        """
        fresh = self._new_networks()
        for name, module in self.networks.items():
            module.load_state_dict(fresh[name].state_dict())
        for optimizer in self.optimizers.values():
            optimizer.state.clear()

    # --- acting -----------------------------------------------------------------------------------------
    def _policy_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        action, _ = self.actor(observations, deterministic)
        return action * self._action_half_range + self._action_centre
