"""PPO with a cost critic and a PID-Lagrangian multiplier (Stooke et al., 2020), for safe RL and safety unlearning.

* One shared tanh trunk over normalised observations feeds a policy head and two value heads, V_r for reward and
  V_c for cost. The policy is a Gaussian for a continuous action space and a categorical over the actions for a
  discrete one (MiniGrid). Observation statistics are buffers of the model, so checkpoints carry them.
* The policy loss is PPO's clipped surrogate on the Lagrangian-weighted advantage (A_r - lambda*A_c)/(1+lambda).
* `PIDLagrangian` sets lambda once per policy iteration from the measured cost rate J_C (cost per env step):
  delta = J_C - d; I <- clip(I + K_I*delta, 0, integral_max); P <- EMA(delta); D = max(0, EMA(J_C) - its value
  `delay` iterations ago); lambda = clip(K_P*P + I + K_D*D, 0, lambda_max). Its state is in the checkpoint.
  With `use_cost` False (the `unsafe` expert) lambda stays 0: plain PPO on reward.
* An optional representation editor sits after the trunk (`safety_repedit`): where the latent's projection on a
  unit hazard direction u exceeds tau it removes alpha * gate * (z.u) u, gate = sigmoid(beta*(z.u - tau)).

Losses are per sample. A `RolloutBatch` carries the on-policy loop's old log-probabilities, GAE advantages and
returns; a plain `Batch` (a dataset's transitions) gets one-step advantages from the critics and the current
policy as the old one, so every trajlab method that passes Batches works with this agent too.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trajlab.algos.base import AGENTS, AgentBase, RuntimeOptions
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Batch, LossOutput
from trajlab.core.spec import SpaceSpec


@dataclass(frozen=True)
class PPOLagrangianConfig:
    hidden: tuple[int, ...] = (64, 64)
    """Widths of the shared trunk's tanh layers (the latent the probes and the editor read is the last one)."""
    lr: float = 3e-4
    """Adam learning rate of all parameters."""
    gamma: float = 0.99
    """Discount factor of reward and cost."""
    gae_lambda: float = 0.95
    """GAE lambda, for reward and cost advantages alike."""
    clip: float = 0.2
    """PPO's ratio clipping range."""
    entropy_coef: float = 0.03
    """Weight of the entropy bonus."""
    value_coef: float = 0.5
    """Weight of each value head's squared error."""
    epochs: int = 6
    """PPO epochs over each rollout."""
    batch_size: int = 256
    """Minibatch size of the PPO epochs."""
    standardize_cost_advantage: bool = False
    """Scale the cost advantage to unit variance like the reward's (OmniSafe's default). False only centres it,
    so its size tells how much cost an action adds; but then the Lagrangian-weighted advantage shrinks as lambda
    grows (reward's share is divided by 1 + lambda, cost's is small) and the entropy bonus takes over."""
    max_grad_norm: float = 0.5
    """Gradient norm clipping of every update."""
    initial_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian policy (a state-independent parameter; continuous actions)."""
    use_cost: bool = True
    """Constrain the cost with the PID-Lagrangian; False trains on reward alone (lambda stays 0)."""
    target_cost: float = 0.03
    """d: the cost rate (cost per env step) the constraint allows."""
    kp: float = 0.5
    """K_P, the PID controller's proportional gain."""
    ki: float = 0.003
    """K_I, the integral gain."""
    kd: float = 0.02
    """K_D, the derivative gain."""
    lambda_max: float = 200.0
    """Upper clip of lambda."""
    integral_max: float = 5.0
    """Upper clip of the integral term I."""
    pid_ema: float = 0.95
    """EMA factor of P and of the cost EMA that D differentiates (new = ema * old + (1 - ema) * value)."""
    pid_delay: int = 10
    """D compares EMA(J_C) with its value this many iterations ago."""
    pid_cost_scale: float = 1000.0
    """J_C and d enter the controller as costs per episode: cost rate x this (SafetyPointGoal1's 1,000 steps), so
    the gains mean what they mean in OmniSafe and SafePO (target 0.03 per step = 30 per episode)."""
    editor: bool = False
    """Build the representation editor after the trunk (its direction and gates are set by safety_repedit)."""

    def __post_init__(self) -> None:
        if self.target_cost < 0:
            raise TrajlabError(f"target_cost must be 0 or positive, got {self.target_cost}")
        for name in ("epochs", "batch_size", "pid_delay"):
            if getattr(self, name) < 1:
                raise TrajlabError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class RolloutBatch(Batch):
    """A Batch with what PPO keeps of the rollout that collected it."""

    old_log_probs: Tensor | None = None
    advantages_r: Tensor | None = None
    advantages_c: Tensor | None = None
    returns_r: Tensor | None = None
    returns_c: Tensor | None = None

    def to(self, device: str | torch.device) -> RolloutBatch:
        return type(self)(**{f.name: _maybe(getattr(self, f.name), lambda t: t.to(device))
                             for f in dataclasses.fields(self)})

    def index(self, selection: Tensor) -> RolloutBatch:
        return type(self)(**{f.name: _maybe(getattr(self, f.name), lambda t: t[selection])
                             for f in dataclasses.fields(self)})


def _maybe(value: Tensor | None, function: Any) -> Tensor | None:
    return None if value is None else function(value)


@dataclass
class PPOLagrangianLosses(LossOutput):
    policy: Tensor
    """-min(ratio * A, clip(ratio) * A) with A = (A_r - lambda * A_c) / (1 + lambda), per sample."""
    value_r: Tensor
    """0.5 * (V_r(s) - return_r)^2."""
    value_c: Tensor
    """0.5 * (V_c(s) - return_c)^2."""
    entropy: Tensor
    """-entropy of the policy at s (minimising it raises the entropy)."""
    info_log_prob: Tensor | None = None
    """log pi(a|s) at the current weights."""


class PIDLagrangian:
    """The multiplier lambda from the cost rate of each policy iteration (see the module docstring)."""

    def __init__(self, config: PPOLagrangianConfig) -> None:
        self.config = config
        self.integral, self.p_ema, self.cost_ema, self.value = 0.0, 0.0, 0.0, 0.0
        self.history: deque[float] = deque([0.0], maxlen=config.pid_delay)

    def step(self, cost_rate: float) -> float:
        """Update with one iteration's measured cost per step (J_C = it x pid_cost_scale); returns the new lambda."""
        c = self.config
        cost_rate, target = cost_rate * c.pid_cost_scale, c.target_cost * c.pid_cost_scale
        delta = cost_rate - target
        self.integral = min(max(self.integral + c.ki * delta, 0.0), c.integral_max)
        self.p_ema = c.pid_ema * self.p_ema + (1 - c.pid_ema) * delta
        self.cost_ema = c.pid_ema * self.cost_ema + (1 - c.pid_ema) * cost_rate
        derivative = max(0.0, self.cost_ema - self.history[0])
        self.history.append(self.cost_ema)
        self.value = min(max(c.kp * self.p_ema + self.integral + c.kd * derivative, 0.0), c.lambda_max)
        return self.value

    def state(self) -> dict[str, Any]:
        return {"integral": self.integral, "p_ema": self.p_ema, "cost_ema": self.cost_ema, "value": self.value,
                "history": list(self.history)}

    def load(self, state: dict[str, Any]) -> None:
        self.integral, self.p_ema = float(state["integral"]), float(state["p_ema"])
        self.cost_ema, self.value = float(state["cost_ema"]), float(state["value"])
        self.history = deque((float(x) for x in state["history"]), maxlen=self.config.pid_delay)


class RepresentationEditor(nn.Module):
    """z -> z - alpha * sigmoid(beta * (z.u - tau)) * (z.u) u; off (the identity) until `set` is called."""

    def __init__(self, width: int) -> None:
        super().__init__()
        for name, value in {"direction": torch.zeros(width), "tau": torch.zeros(()), "alpha": torch.zeros(()),
                            "beta": torch.zeros(()), "enabled": torch.zeros(())}.items():
            self.register_buffer(name, value)

    def set(self, direction: Tensor, tau: float, alpha: float, beta: float) -> None:
        unit = direction / direction.norm().clamp_min(1e-12)
        self.direction.copy_(unit)
        for name, value in (("tau", tau), ("alpha", alpha), ("beta", beta), ("enabled", 1.0)):
            getattr(self, name).fill_(value)

    def forward(self, z: Tensor) -> Tensor:
        projection = z @ self.direction
        gate = torch.sigmoid(self.beta * (projection - self.tau)) * self.enabled
        return z - (self.alpha * gate * projection).unsqueeze(-1) * self.direction


class ActorCritic(nn.Module):
    """Observation normaliser (buffers), shared trunk, policy head (Gaussian mean and log-std, or the logits of
    `action_dim` actions when `discrete`), V_r and V_c, optional editor."""

    def __init__(self, obs_dim: int, action_dim: int, config: PPOLagrangianConfig, discrete: bool = False) -> None:
        super().__init__()
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_var", torch.ones(obs_dim))
        self.register_buffer("obs_count", torch.tensor(1e-4))
        layers: list[nn.Module] = []
        width = obs_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.trunk = nn.Sequential(*layers)
        self.editor = RepresentationEditor(width) if config.editor else None
        self.mean = nn.Linear(width, action_dim)  # the Gaussian's mean, or the categorical's logits
        self.log_std = None if discrete else nn.Parameter(torch.full((action_dim,), config.initial_log_std))
        self.value_r, self.value_c = nn.Linear(width, 1), nn.Linear(width, 1)
        nn.init.orthogonal_(self.mean.weight, 0.01)
        nn.init.zeros_(self.mean.bias)

    def latents(self, observations: Tensor) -> Tensor:
        """The trunk's output before the editor (what hazard probes are fitted on)."""
        normalised = (observations - self.obs_mean) / (self.obs_var.sqrt() + 1e-8)
        return self.trunk(normalised.clamp(-10, 10))

    def features(self, observations: Tensor) -> Tensor:
        z = self.latents(observations)
        return z if self.editor is None else self.editor(z)

    @torch.no_grad()
    def observe(self, observations: Tensor) -> None:
        """Fold a block of observations into the running mean and variance (parallel-variance formula)."""
        count = observations.shape[0]
        mean, var = observations.mean(0), observations.var(0, unbiased=False)
        total = self.obs_count + count
        delta = mean - self.obs_mean
        self.obs_var.copy_((self.obs_var * self.obs_count + var * count
                            + delta.pow(2) * self.obs_count * count / total) / total)
        self.obs_mean.add_(delta * count / total)
        self.obs_count.copy_(total)


@AGENTS.register("ppo_lagrangian")
class PPOLagrangian(AgentBase):
    """PPO-Lagrangian agent; one network `model` (ActorCritic), one optimiser, the PID controller's state."""

    name = "ppo_lagrangian"
    config_class = PPOLagrangianConfig
    metric_names = ("policy_loss", "value_r_loss", "value_c_loss", "entropy", "lagrange")

    def __init__(self, spec: SpaceSpec, config: PPOLagrangianConfig | None = None, *, device: str = "cpu",
                 seed: int = 0, runtime: RuntimeOptions = RuntimeOptions()):
        config = config or PPOLagrangianConfig()
        super().__init__(spec, config, device=device, seed=seed, runtime=runtime)
        self.model = ActorCritic(spec.observation_dim, spec.action_dim, config, spec.discrete).to(self.device)
        self.networks = {"model": self.model}
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), lr=config.lr, eps=1e-5)}
        self.pid = PIDLagrangian(config)
        self.iterations = 0

    @property
    def lagrange(self) -> float:
        return self.pid.value if self.config.use_cost else 0.0

    def end_iteration(self, cost_rate: float) -> float:
        """After a policy iteration: step the PID controller with its cost rate (when constrained)."""
        self.iterations += 1
        if self.config.use_cost:
            self.pid.step(cost_rate)
        return self.lagrange

    # --- acting and values -------------------------------------------------------------------------------
    def distribution(self, observations: Tensor) -> torch.distributions.Normal | torch.distributions.Categorical:
        if not torch.isfinite(observations).all():  # else torch's Normal fails with a page of tensor values
            raise TrajlabError("ppo_lagrangian: observations hold NaN or infinite values (the loss is not finite)")
        head = self.model.mean(self.model.features(observations))
        if self.model.log_std is None:
            return torch.distributions.Categorical(logits=head)
        return torch.distributions.Normal(head, self.model.log_std.exp().expand_as(head))

    def log_prob(self, dist: torch.distributions.Distribution, actions: Tensor) -> Tensor:
        """log pi(a|s) per sample: summed over a Gaussian's dimensions; a discrete action is its index."""
        if self.spec.discrete:
            return dist.log_prob(actions.reshape(-1).long())
        return dist.log_prob(actions).sum(-1)

    def entropy(self, dist: torch.distributions.Distribution) -> Tensor:
        """The policy's entropy per state (summed over a Gaussian's dimensions)."""
        return dist.entropy() if self.spec.discrete else dist.entropy().sum(-1)

    def values(self, observations: Tensor) -> tuple[Tensor, Tensor]:
        z = self.model.features(observations)
        return self.model.value_r(z).squeeze(-1), self.model.value_c(z).squeeze(-1)

    def _policy_action(self, observations: Tensor, deterministic: bool) -> Tensor:
        dist = self.distribution(observations)
        if self.spec.discrete:
            return dist.probs.argmax(-1) if deterministic else dist.sample()
        return (dist.mean if deterministic else dist.sample()).clamp(-1.0, 1.0)

    @torch.no_grad()
    def sample(self, observations: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(unclipped action, its log-probability, V_r, V_c) for a rollout step."""
        dist = self.distribution(observations)
        action = dist.sample()
        value_r, value_c = self.values(observations)
        return action, self.log_prob(dist, action), value_r, value_c

    # --- losses ------------------------------------------------------------------------------------------
    def compute_losses(self, batch: Batch) -> PPOLagrangianLosses:
        """Clipped surrogate, both value errors and the entropy term per sample, at the current weights."""
        dist = self.distribution(batch.observations)
        log_prob = self.log_prob(dist, batch.actions)
        value_r, value_c = self.values(batch.observations)
        old, adv_r, adv_c, ret_r, ret_c = self._targets(batch, log_prob, value_r, value_c)
        lam = self.lagrange
        advantage = (adv_r - lam * adv_c) / (1.0 + lam)
        ratio = (log_prob - old).exp()
        clipped = ratio.clamp(1 - self.config.clip, 1 + self.config.clip)
        return PPOLagrangianLosses(
            policy=-torch.minimum(ratio * advantage, clipped * advantage),
            value_r=0.5 * (value_r - ret_r).pow(2), value_c=0.5 * (value_c - ret_c).pow(2),
            entropy=-self.entropy(dist), info_log_prob=log_prob.detach())

    def _targets(self, batch: Batch, log_prob: Tensor, value_r: Tensor,
                 value_c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(old log-prob, A_r, A_c, return_r, return_c): the rollout's, or one-step ones for a plain Batch."""
        if isinstance(batch, RolloutBatch) and batch.old_log_probs is not None:
            return (batch.old_log_probs, batch.advantages_r, batch.advantages_c,  # type: ignore[return-value]
                    batch.returns_r, batch.returns_c)
        with torch.no_grad():
            next_r, next_c = self.values(batch.next_observations)
            keep = self.config.gamma * (1.0 - batch.terminals)
            costs = batch.costs if batch.costs is not None else torch.zeros_like(batch.rewards)
            ret_r, ret_c = batch.rewards + keep * next_r, costs + keep * next_c
            return log_prob.detach(), ret_r - value_r.detach(), ret_c - value_c.detach(), ret_r, ret_c

    # --- update ------------------------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One Adam step on a minibatch: policy + value_coef * (value_r + value_c) + entropy_coef * entropy."""
        losses = self.compute_losses(batch)
        policy = self.reduce("policy", losses.policy, batch)
        value_r = self.reduce("value_r", losses.value_r, batch)
        value_c = self.reduce("value_c", losses.value_c, batch)
        entropy = self.reduce("entropy", losses.entropy, batch)
        total = policy + self.config.value_coef * (value_r + value_c) + self.config.entropy_coef * entropy
        if not torch.isfinite(total):
            raise TrajlabError("ppo_lagrangian: the loss is not finite (NaN inputs or a diverged run)")
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        optimizer.step()
        self.num_updates += 1
        metrics = torch.stack([policy.detach(), value_r.detach(), value_c.detach(), -entropy.detach()]).tolist()
        return {**dict(zip(("policy_loss", "value_r_loss", "value_c_loss", "entropy"), metrics)),
                "lagrange": self.lagrange}

    def with_options(self, *, keep_optimizer: bool = True, **changes: Any) -> PPOLagrangian:
        """A new agent with config fields changed and this one's weights (and optimiser state), PID reset.

        A trunk without an editor loads into one with an editor (which starts switched off)."""
        config = dataclasses.replace(self.config, **changes)
        agent = type(self)(self.spec, config, device=str(self.device), seed=self.seed, runtime=self.runtime)
        agent.model.load_state_dict(self.model.state_dict(), strict=False)
        if keep_optimizer and config.editor == self.config.editor:
            agent.optimizers["model"].load_state_dict(self.optimizers["model"].state_dict())
            for group in agent.optimizers["model"].param_groups:
                group["lr"] = config.lr
        agent.num_updates, agent.iterations = self.num_updates, self.iterations
        return agent

    # --- checkpoints -------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"pid": self.pid.state(), "iterations": self.iterations}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pid" in state:
            self.pid.load(state["pid"])
        self.iterations = int(state.get("iterations", 0))


def gaussian_kl(p: torch.distributions.Normal, q: torch.distributions.Normal) -> Tensor:
    """KL(p || q) per state, summed over action dimensions."""
    return torch.distributions.kl_divergence(p, q).sum(-1)

